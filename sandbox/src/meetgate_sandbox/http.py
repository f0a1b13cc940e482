"""What every sandbox route shares: the authenticated caller and Graph's error envelope.

Routes raise :class:`GraphErrorResponse`; the app's exception handler renders it exactly like Graph::

    {"error": {"code": "...", "message": "...",
               "innerError": {"date": "2026-06-11T10:00:00", "request-id": "<guid>",
                              "client-request-id": "<guid>"}}}

The auth middleware verifies the bearer token and stores a :class:`Caller` in ``request.state.caller``;
routes read it with :func:`caller_of`.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

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
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def new_request_ids(request: Request) -> tuple[str, str]:
    """Graph echoes the client's ``client-request-id`` or makes one; ``request-id`` is always new."""
    request_id = str(uuid.uuid4())
    client_request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    return request_id, client_request_id


def graph_error(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> Response:
    request_id, client_request_id = REQUEST_IDS.get()
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
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
