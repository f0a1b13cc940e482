"""The layers every request passes, outermost first.

1. :class:`FrontMiddleware` — request ids (``request-id`` / ``client-request-id`` on every response),
   the request log, Graph-shaped 500s for unexpected errors, and a save of the state afterwards.
2. :class:`FaultMiddleware` — injected latency, errors (500/503/504) and dropped connections.
3. :class:`AuthMiddleware` — bearer token verification on ``/v1.0`` and ``/beta`` → ``Caller``, then
   throttling per (tenant, app) with ``Retry-After`` (``throttleRps``, and under the realistic profile
   the documented limits of :mod:`meetgate_sandbox.realistic`; a ``$batch`` is not throttled itself:
   each of its requests passes these layers again, see :mod:`meetgate_sandbox.batch`).

All three are plain ASGI so they see every byte (and can drop the connection).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meetgate_sandbox.apps import GRAPH_APP_ID
from meetgate_sandbox.batch import is_batch_path
from meetgate_sandbox.faults import InjectedFault, format_retry_after
from meetgate_sandbox.http import REQUEST_IDS, Caller, graph_error, new_request_ids
from meetgate_sandbox.realistic import (
    THROTTLED_CODE,
    THROTTLED_INNER,
    THROTTLED_MESSAGE,
    Metered,
    RealisticRuntime,
    meter,
    throttle_headers,
)
from meetgate_sandbox.recording import RequestRecord, utc_stamp
from meetgate_sandbox.runtime import SandboxRuntime
from meetgate_sandbox.tokens import AccessTokenError, caller_from_claims

#: what the request log records for a request whose client disconnected before the answer (nginx's
#: "client closed request"; no response is sent)
CLIENT_CLOSED_REQUEST = 499

logger = logging.getLogger("meetgate_sandbox")

#: ASGI scope extension a server offers to close the TCP connection without a response
DROP_EXTENSION = "meetgate.drop_connection"


def request_kind(path: str) -> str:
    """``graph`` | ``token`` | ``control`` | ``other``."""
    if path.startswith("/_sandbox"):
        return "control"
    if path in ("/v1.0", "/beta") or path.startswith(("/v1.0/", "/beta/")):
        return "graph"
    if "/oauth2/" in path or "/.well-known/" in path or "/discovery/" in path:
        return "token"
    return "other"


def _literal_segments(app: Any) -> dict[str, str]:
    """Lower-cased -> declared spelling of every literal path segment of the app's routes (cached)."""
    cached = getattr(app.state, "literal_segments", None)
    if isinstance(cached, dict):
        return cached
    literals: dict[str, str] = {}
    for route in getattr(app, "routes", []):
        for segment in str(getattr(route, "path", "")).split("/"):
            if segment and "{" not in segment:
                literals.setdefault(segment.lower(), segment)
    app.state.literal_segments = literals
    return literals


def canonical_path(path: str, literals: dict[str, str]) -> str:
    """``path`` with each segment that matches a route literal case-insensitively spelled as declared."""
    return "/".join(literals.get(seg.lower(), seg) for seg in path.split("/"))


def _state(scope: Scope) -> dict[str, Any]:
    state = scope.setdefault("state", {})
    assert isinstance(state, dict)
    return state


def _runtime(scope: Scope) -> SandboxRuntime:
    runtime = scope["app"].state.sandbox
    assert isinstance(runtime, SandboxRuntime)
    return runtime


class FrontMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = request_kind(str(scope.get("path", "")))
        if kind == "graph":
            # Graph's path segments are case-insensitive (/Users, /groups/{id}/transitivemembers)
            scope["path"] = canonical_path(str(scope["path"]), _literal_segments(scope["app"]))
        request_id, client_request_id = new_request_ids(Request(scope))
        reset = REQUEST_IDS.set((request_id, client_request_id))
        is_token_endpoint = kind == "token"
        started = time.perf_counter()
        status = 0

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers["request-id"] = request_id
                headers["client-request-id"] = client_request_id
                if is_token_endpoint:  # Entra names its request id so
                    headers["x-ms-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        except ClientDisconnect:  # the client went away mid-request: nothing failed here
            logger.debug("client disconnected: %s %s", scope.get("method"), scope.get("path"))
            _state(scope).setdefault("fault", "client-disconnected")
            status = status or CLIENT_CLOSED_REQUEST
        except Exception:
            logger.exception("sandbox route failed: %s %s", scope.get("method"), scope.get("path"))
            if status == 0:
                response = graph_error(500, "InternalServerError", "An internal server error occurred.")
                await response(scope, receive, send_with_ids)
                status = 500
        finally:
            REQUEST_IDS.reset(reset)
            self._record(scope, status, started, request_id, client_request_id)

    def _record(
        self, scope: Scope, status: int, started: float, request_id: str, client_request_id: str
    ) -> None:
        path = str(scope.get("path", ""))
        if request_kind(path) == "control":
            return
        runtime = _runtime(scope)
        state = _state(scope)
        caller = state.get("caller")
        tenant_id = caller.tenant_id if isinstance(caller, Caller) else state.get("tenant_id")
        app_id = caller.app_id if isinstance(caller, Caller) else state.get("app_id")
        headers = Headers(scope=scope)
        client = scope.get("client")
        record = RequestRecord(
            time=utc_stamp(),
            tenant_id=tenant_id,
            app_id=app_id,
            method=str(scope.get("method", "")),
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            status=status,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            client_ip=client[0] if client else "",
            request_id=request_id,
            client_request_id=client_request_id,
            user_agent=headers.get("user-agent", ""),
            fault=state.get("fault"),
        )
        tenant = runtime.state.tenants.get(tenant_id) if tenant_id else None
        (tenant.log if tenant else runtime.state.unattributed).requests.append(record)
        runtime.state.changed()


class FaultMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = request_kind(str(scope.get("path", "")))
        runtime = _runtime(scope)
        if kind not in ("graph", "token"):
            await self.app(scope, receive, send)
            return
        runtime.in_flight += 1
        try:
            await self._serve(scope, receive, send, kind, runtime)
        finally:
            runtime.in_flight -= 1

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, kind: str, runtime: SandboxRuntime
    ) -> None:
        faults = runtime.state.faults
        if not faults.applies_to(kind):
            await self.app(scope, receive, send)
            return
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        injected = runtime.fault_dice().roll(str(scope.get("method", "GET")))
        if injected is None:
            await self.app(scope, receive, send)
            return
        state = _state(scope)
        if injected.kind == "lost":
            await self.app(scope, receive, _discard)  # the work is done; its answer never arrives
            state["fault"] = "answer-lost"
        else:
            _attribute(scope, runtime, kind, state)
        if injected.kind == "drop":
            drop = (scope.get("extensions") or {}).get(DROP_EXTENSION)
            if drop is not None:
                state["fault"] = "dropped"
                drop()
                await _wait_for_disconnect(receive)
                return
            # a server without the extension (an in-process test client): the closest is a bare 502
            injected = InjectedFault("error", 502)
        state.setdefault("fault", "error")
        headers = {"Retry-After": injected.retry_after} if injected.retry_after else None
        code, message = {
            500: ("InternalServerError", "An internal server error occurred."),
            502: ("BadGateway", "The server received an invalid response from an upstream server."),
            503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
            504: ("GatewayTimeout", "The operation timed out. Please retry later."),
        }[injected.status]
        if kind == "token":
            from starlette.responses import JSONResponse

            response: Any = JSONResponse(
                {"error": "temporarily_unavailable", "error_description": message}, injected.status, headers
            )
        else:
            response = graph_error(injected.status, code, message, headers=headers)
        await response(scope, receive, send)


async def _discard(message: Message) -> None:
    """An ASGI ``send`` that throws the answer away (the ``lost`` fault)."""


def _attribute(scope: Scope, runtime: SandboxRuntime, kind: str, state: dict[str, Any]) -> None:
    """Name the tenant and app of a request answered before authentication (for the request log)."""
    if kind == "token":
        segment = str(scope.get("path", "/")).split("/")[1]
        tenant = runtime.state.find_tenant(segment)
        if tenant is not None:
            state["tenant_id"] = tenant.id
        return
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return
    try:
        claims = runtime.issuer.verify(token.strip())
    except AccessTokenError:
        return
    state["tenant_id"] = str(claims.get("tid"))
    state["app_id"] = str(claims.get("appid"))


async def _wait_for_disconnect(receive: Receive) -> None:
    try:
        async with asyncio.timeout(5):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        pass


def www_authenticate(scope: Scope) -> str:
    headers = Headers(scope=scope)
    scheme = "https" if scope.get("scheme") == "https" else "http"
    host = headers.get("host", "127.0.0.1")
    return (
        f'Bearer realm="", authorization_uri="{scheme}://{host}/common/oauth2/authorize", '
        f'client_id="{GRAPH_APP_ID}"'
    )


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or request_kind(str(scope.get("path", ""))) != "graph":
            await self.app(scope, receive, send)
            return
        runtime = _runtime(scope)
        authorization = Headers(scope=scope).get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise AccessTokenError("Access token is empty.")
            claims = runtime.issuer.verify(token.strip())
            caller = caller_from_claims(claims)
            if caller.tenant_id not in runtime.state.tenants:
                raise AccessTokenError("Access token validation failure. Invalid audience.")
        except AccessTokenError as exc:
            response = graph_error(
                401,
                "InvalidAuthenticationToken",
                exc.message,
                headers={"WWW-Authenticate": www_authenticate(scope)},
            )
            await response(scope, receive, send)
            return
        state = _state(scope)
        state["caller"] = caller
        state["tenant_id"] = caller.tenant_id
        if is_batch_path(str(scope.get("path", ""))):  # each request inside takes its own token
            await self.app(scope, receive, send)
            return
        realistic = runtime.realistic()
        wait = runtime.throttler.check(runtime.state.faults.throttle_rps, caller.tenant_id, caller.app_id)
        headers: dict[str, str] = {}
        metered = None
        if wait == 0 and realistic is not None:
            metered = meter(str(scope.get("method", "GET")), str(scope["path"]), _query(scope))
            tenant = runtime.state.tenants.get(caller.tenant_id)
            users = len(tenant.users) if tenant else 0
            throttled = realistic.throttle.check(metered, caller.tenant_id, caller.app_id, user_count=users)
            if throttled is not None:
                wait = throttled.retry_after
                headers = throttle_headers(throttled, caller.tenant_id, caller.app_id)
        if wait > 0:
            state["fault"] = "throttled"
            response = graph_error(
                429,
                THROTTLED_CODE,
                THROTTLED_MESSAGE,
                headers={"Retry-After": format_retry_after(wait), **headers},
                inner=THROTTLED_INNER if realistic is not None else None,
            )
            await response(scope, receive, send)
            return
        if realistic is not None and metered is not None and metered.identity:
            await self.app(scope, receive, _resource_unit_headers(send, realistic, metered, caller, runtime))
            return
        await self.app(scope, receive, send)


def _query(scope: Scope) -> str:
    return bytes(scope.get("query_string", b"")).decode("latin-1")


def _resource_unit_headers(
    send: Send, realistic: RealisticRuntime, metered: Metered, caller: Caller, runtime: SandboxRuntime
) -> Send:
    """``send`` that adds the identity and access service's ``x-ms-resource-unit`` (the request's cost)
    and, past 0.8 of the budget, ``x-ms-throttle-limit-percentage`` (0.8 to 1.8) to the answer."""

    async def send_with_units(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers["x-ms-resource-unit"] = str(int(metered.costs["identity"]))
            tenant = runtime.state.tenants.get(caller.tenant_id)
            used = realistic.throttle.used(
                "identity", caller.tenant_id, caller.app_id, user_count=len(tenant.users) if tenant else 0
            )
            if used > 0.8:
                headers["x-ms-throttle-limit-percentage"] = f"{min(used, 1.8):.2f}"
        await send(message)

    return send_with_units
