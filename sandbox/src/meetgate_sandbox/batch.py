"""Graph's JSON batching: ``POST /v1.0/$batch`` (and ``/beta``) with up to 20 requests.

Follows "Combine multiple HTTP requests using JSON batching" (learn.microsoft.com/graph/json-batching)
and the batching parts of Graph's throttling guidance and known issues (docs/sandbox.md, *JSON
batching*):

- the body is ``{"requests": [{"id", "method", "url", "headers"?, "body"?, "dependsOn"?}]}``; ``url``
  is relative to the batch's version (``/users/x`` or ``users?$top=1``); ids are unique, compared
  case-insensitively; a ``body`` needs a ``Content-Type`` header and is a JSON value or base64 bytes;
- a batch that cannot be read, has no or more than 20 requests, repeats an id, names an unknown or
  circular dependency, or nests a batch is a 400 ``BadRequest`` as a whole; otherwise the answer is
  200 ``{"responses": [{"id", "status", "headers", "body"}]}`` whatever the inner statuses;
- each request is served by the same app, in process (no socket): the same bearer token (the
  batch's ``Authorization``), the same faults, throttling (each inner request takes its own token
  from the caller's bucket; the batch itself takes none), policy checks, request ids and activity
  log as a direct request;
- requests run one at a time, in request order, each after the requests it ``dependsOn``; one whose
  dependency failed (a status of 400 or more, or a 424 itself) is not run and answers 424;
- a response body is JSON when the inner response is JSON, base64 of the bytes otherwise, null
  when empty.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Scope

from meetgate_sandbox.http import REQUEST_IDS, GraphErrorResponse, graph_error

#: Graph's limit on the requests of one batch
MAX_REQUESTS = 20
#: methods an inner request may use
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
#: the start of Graph's 400 message for a batch it cannot read
INVALID_PAYLOAD = "Invalid batch payload format."
#: how response header names are spelled in a batch response (others: Title-Case)
_HEADER_SPELLING = {
    "www-authenticate": "WWW-Authenticate",
    "request-id": "request-id",
    "client-request-id": "client-request-id",
    "odata-version": "OData-Version",
}
#: inner response headers a batch response does not repeat
_DROPPED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


@dataclass
class BatchItem:
    """One request of a batch, checked."""

    id: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    depends_on: list[str] = field(default_factory=list)


@dataclass
class InnerResponse:
    """What the app answered one request of a batch."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _malformed(detail: str) -> GraphErrorResponse:
    return GraphErrorResponse(400, "BadRequest", f"{INVALID_PAYLOAD} {detail}")


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _malformed(f"The headers of {where} must be an object of strings.")
    return {str(k): v for k, v in value.items()}


def _body_bytes(value: Any, headers: Mapping[str, str], where: str) -> bytes:
    if "body" not in value:
        return b""
    body = value["body"]
    if not any(name.lower() == "content-type" for name in headers):
        raise _malformed(f"{where.capitalize()} has a body but no Content-Type header.")
    if isinstance(body, str):  # base64 (URL-safe or standard) of bytes that are not JSON
        try:
            return base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=False)
        except (binascii.Error, ValueError):
            raise _malformed(f"The body of {where} is neither JSON nor base64.") from None
    return json.dumps(body).encode()


def _item(value: Any, index: int) -> BatchItem:
    if not isinstance(value, dict):
        raise _malformed(f"Request {index + 1} is not a JSON object.")
    item_id = value.get("id")
    if not isinstance(item_id, str) or not item_id.strip():
        raise _malformed(f"Request {index + 1} has no id.")
    where = f"the request with id '{item_id}'"
    method = value.get("method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _malformed(f"The method of {where} must be one of {', '.join(sorted(METHODS))}.")
    url = value.get("url")
    if not isinstance(url, str) or not url.strip():
        raise _malformed(f"{where.capitalize()} has no url.")
    url = url.strip()
    if urllib.parse.urlsplit(url).scheme or url.startswith("//"):
        raise _malformed(f"The url of {where} must be relative (for example /users), not {url!r}.")
    raw_path, _, query = url.partition("?")
    path = "/" + raw_path.lstrip("/")
    if path.split("/")[1].lower() == "$batch":
        raise _malformed("Nested batch requests are not supported.")
    depends_on = value.get("dependsOn") or []
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        raise _malformed(f"The dependsOn of {where} must be an array of request ids.")
    headers = _string_map(value.get("headers"), where)
    return BatchItem(
        id=item_id,
        method=method.upper(),
        path=path,
        query=query,
        headers=headers,
        body=_body_bytes(value, headers, where),
        depends_on=list(depends_on),
    )


def parse_batch(payload: Any) -> list[BatchItem]:
    """The batch's requests, checked (:class:`GraphErrorResponse` 400 for a batch Graph refuses)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise _malformed("The body must be a JSON object with a 'requests' array.")
    raw = payload["requests"]
    if not raw:
        raise _malformed("The batch has no requests.")
    if len(raw) > MAX_REQUESTS:
        raise GraphErrorResponse(
            400,
            "BadRequest",
            f"The batch has {len(raw)} requests: JSON batch requests are limited to {MAX_REQUESTS}.",
        )
    items = [_item(value, index) for index, value in enumerate(raw)]
    seen: set[str] = set()
    for item in items:
        if item.id.lower() in seen:
            raise _malformed(f"The request id '{item.id}' is used more than once (ids must be unique).")
        seen.add(item.id.lower())
    for item in items:
        for dependency in item.depends_on:
            if dependency.lower() not in seen or dependency.lower() == item.id.lower():
                raise _malformed(f"The request '{item.id}' depends on '{dependency}', no other request.")
    return execution_order(items)


def execution_order(items: list[BatchItem]) -> list[BatchItem]:
    """``items`` in request order, each moved after the requests it depends on (400 on a cycle)."""
    done: set[str] = set()
    ordered: list[BatchItem] = []
    pending = list(items)
    while pending:
        ready = next(
            (i for i in pending if all(d.lower() in done for d in i.depends_on)),
            None,
        )
        if ready is None:
            ids = ", ".join(f"'{i.id}'" for i in pending)
            raise _malformed(f"The requests {ids} depend on each other in a cycle.")
        pending.remove(ready)
        done.add(ready.id.lower())
        ordered.append(ready)
    return ordered


# ---- dispatching one request through the app ------------------------------------------------------


def _inner_scope(outer: Scope, version: str, item: BatchItem, headers: Iterable[tuple[str, str]]) -> Scope:
    path = urllib.parse.unquote(item.path)
    query = item.query.replace(" ", "%20")
    return {
        "type": "http",
        "asgi": outer.get("asgi", {"version": "3.0"}),
        "http_version": outer.get("http_version", "1.1"),
        "method": item.method,
        "scheme": outer.get("scheme", "https"),
        "path": f"/{version}{path}",
        "raw_path": f"/{version}{item.path}".encode(),
        "root_path": outer.get("root_path", ""),
        "query_string": query.encode("latin-1", "replace"),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers],
        "client": outer.get("client"),
        "server": outer.get("server"),
        # no extensions: an inner request cannot drop the connection the batch came on
        "extensions": {},
        "state": {},
    }


async def dispatch(app: ASGIApp, scope: Scope, body: bytes) -> InnerResponse:
    """Serve one request through ``app`` in process: an ASGI call, no socket."""
    status = 0
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []
    delivered = False
    answered = asyncio.Event()

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()  # the "client" (the batch) stays until the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            headers.extend((k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"])
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body"):
                answered.set()

    await app(scope, receive, send)
    return InnerResponse(status, headers, b"".join(chunks))


def _header_name(name: str) -> str:
    lower = name.lower()
    return _HEADER_SPELLING.get(lower) or "-".join(part.capitalize() for part in lower.split("-"))


def render_response(item_id: str, inner: InnerResponse) -> dict[str, Any]:
    """One entry of ``responses``: JSON bodies as JSON, other bytes as base64, no body as null."""
    headers = {_header_name(k): v for k, v in inner.headers if k.lower() not in _DROPPED_HEADERS}
    content_type = next((v for k, v in inner.headers if k.lower() == "content-type"), "")
    body: Any = None
    if inner.body:
        body = base64.b64encode(inner.body).decode()
        if "json" in content_type.lower():
            with contextlib.suppress(ValueError):  # JSON in name only: its bytes, as base64
                body = json.loads(inner.body)
    return {"id": item_id, "status": inner.status, "headers": headers, "body": body}


def _failed_dependency(item: BatchItem, failed: str) -> dict[str, Any]:
    error = graph_error(
        424, "FailedDependency", f"The request '{item.id}' depends on the request '{failed}', which failed."
    )
    return {
        "id": item.id,
        "status": 424,
        "headers": {"Content-Type": "application/json"},
        "body": json.loads(bytes(error.body)),
    }


def _inner_headers(request: Request, item: BatchItem, client_request_id: str) -> list[tuple[str, str]]:
    """The item's own headers plus the batch's credentials, host and client (Authorization: the batch's)."""
    own = {k.lower(): (k, v) for k, v in item.headers.items() if k.lower() not in ("authorization", "host")}
    result = list(own.values())
    for name in ("authorization", "host", "user-agent"):
        if name in request.headers and name not in own:
            result.append((name, request.headers[name]))
    if "client-request-id" not in own:
        result.append(("client-request-id", client_request_id))
    if item.body and "content-length" not in own:
        result.append(("content-length", str(len(item.body))))
    return result


async def batch(request: Request) -> Response:
    """``POST /{version}/$batch``: each request served by this app in turn; 200 with their answers."""
    raw = await request.body()
    try:
        payload = json.loads(raw) if raw.strip() else None
    except ValueError:
        payload = None
    items = parse_batch(payload)
    version = request.scope["path"].split("/")[1]
    _, client_request_id = REQUEST_IDS.get()
    failed: set[str] = set()
    responses: list[dict[str, Any]] = []
    for item in items:
        broken = next((d for d in item.depends_on if d.lower() in failed), None)
        if broken is not None:
            entry = _failed_dependency(item, broken)
        else:
            headers = _inner_headers(request, item, client_request_id)
            inner = await dispatch(
                request.app, _inner_scope(request.scope, version, item, headers), item.body
            )
            entry = render_response(item.id, inner)
        if entry["status"] >= 400:
            failed.add(item.id.lower())
        responses.append(entry)
    return JSONResponse({"responses": responses})


def is_batch_path(path: str) -> bool:
    """Whether ``path`` is a batch (``/v1.0/$batch``, ``/beta/$batch``): the batch is not throttled itself."""
    return path.rstrip("/").lower() in ("/v1.0/$batch", "/beta/$batch")


def routes(versions: tuple[str, ...] = ("v1.0", "beta")) -> list[BaseRoute]:
    """``POST /{version}/$batch`` for each version."""
    return [Route(f"/{version}/$batch", batch, methods=["POST"]) for version in versions]
