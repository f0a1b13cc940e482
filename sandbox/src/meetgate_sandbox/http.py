"""What every sandbox route shares: the authenticated caller and Graph's error envelope.

Routes raise :class:`GraphErrorResponse`; the app's exception handler renders it exactly like Graph::

    {"error": {"code": "...", "message": "...",
               "innerError": {"date": "2026-06-11T10:00:00", "request-id": "<guid>",
                              "client-request-id": "<guid>"}}}

The auth middleware verifies the bearer token and stores a :class:`Caller` in ``request.state.caller``;
routes read it with :func:`caller_of`. Routes that take a JSON object read it with :func:`json_object_body`.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

#: Graph's 400 ``BadRequest`` messages for a request body that is not JSON, or JSON but not an object
INVALID_JSON_MESSAGE = "Unable to read JSON request payload. Please ensure Content-Type header is set."
NOT_AN_OBJECT_MESSAGE = "The request body must be a JSON object."

#: request-id / client-request-id of the request being served (set by the app's middleware).
REQUEST_IDS: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "sandbox_request_ids", default=("", "")
)


@dataclass(frozen=True)
class Caller:
    """Who is calling, from a verified access token."""

    tenant_id: str
    #: the calling application's client id (``appid`` claim)
    app_id: str
    #: object id of the calling app's service principal (``oid`` for app-only tokens)
    service_principal_id: str
    #: application permissions (``roles``); empty for delegated tokens
    roles: frozenset[str] = field(default_factory=frozenset)
    #: the signed-in user's object id for delegated tokens, else None
    delegated_user_id: str | None = None
    #: delegated permissions (``scp``); empty for app-only tokens
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_app_only(self) -> bool:
        return self.delegated_user_id is None


class GraphErrorResponse(Exception):
    """Raised by routes; rendered as Graph's error envelope with the given status and headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        inner: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        #: members added to ``innerError`` (e.g. ``{"code": "GraphAccessToTranscriptsDisabled"}``)
        self.inner = dict(inner or {})


def new_request_ids(request: Request) -> tuple[str, str]:
    """Graph echoes the client's ``client-request-id`` or makes one; ``request-id`` is always new."""
    request_id = str(uuid.uuid4())
    client_request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    return request_id, client_request_id


def graph_error(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    inner: Mapping[str, str] | None = None,
) -> Response:
    """Graph's error envelope; ``inner`` adds members to ``innerError`` (as some services send)."""
    request_id, client_request_id = REQUEST_IDS.get()
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                **(inner or {}),
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def caller_of(request: Request) -> Caller:
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        raise GraphErrorResponse(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty.",
            headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
        )
    return caller


async def json_object_body(
    request: Request,
    *,
    invalid_json: str = INVALID_JSON_MESSAGE,
    not_an_object: str = NOT_AN_OBJECT_MESSAGE,
    blank_is_empty: bool = True,
) -> dict[str, Any]:
    """The request body as a JSON object; no body is ``{}``.

    A body that is not JSON is a 400 ``BadRequest`` with ``invalid_json``, JSON that is not an object a
    400 ``BadRequest`` with ``not_an_object`` (Graph's messages by default; the control APIs word their
    own). ``blank_is_empty``: a body of only whitespace counts as no body; else it is not JSON.
    """
    raw = await request.body()
    if not (raw.strip() if blank_is_empty else raw):
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise GraphErrorResponse(400, "BadRequest", invalid_json) from None
    if not isinstance(data, dict):
        raise GraphErrorResponse(400, "BadRequest", not_an_object)
    return data
