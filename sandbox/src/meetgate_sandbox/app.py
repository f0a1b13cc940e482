"""The sandbox's ASGI app: one Starlette app serving Entra, Graph and the control API.

Route modules plug in two ways: their routes (a list of Starlette routes) and, when they keep
per-tenant state, a tenant extension factory (see :mod:`meetgate_sandbox.state`). Both are listed in
:func:`builtin_routes` and :func:`builtin_extensions`, which :class:`~meetgate_sandbox.server.SandboxServer`
uses; ``create_app(runtime, routes=[...])`` takes any extra ones (tests use that).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from meetgate_sandbox import (
    app_registrations,
    audit_logs,
    batch,
    calendar_api,
    control_api,
    devicecode,
    directory,
    directory_units,
    entra,
    exchange_control,
    exchange_rbac,
    meeting_artifacts,
    meeting_artifacts_api,
    meeting_sessions,
    meetings_backend,
    notifications_delivery,
    subscriptions,
    subscriptions_api,
)
from meetgate_sandbox.directory_audit import EXTENSION as PROVISIONING
from meetgate_sandbox.directory_audit import ProvisioningExtension
from meetgate_sandbox.http import GraphErrorResponse, graph_error
from meetgate_sandbox.middleware import AuthMiddleware, FaultMiddleware, FrontMiddleware, request_kind
from meetgate_sandbox.runtime import SandboxRuntime
from meetgate_sandbox.state import ExtensionFactory


def builtin_routes() -> list[BaseRoute]:
    """Every route the server offers (route modules add theirs here)."""
    # the online-meeting routes first: they are the hot path (Starlette tries routes in order)
    return [
        *meeting_artifacts_api.routes(),  # before the meeting routes: they share /onlineMeetings/{id}
        *meetings_backend.routes(),
        *entra.routes(),
        *control_api.routes(),
        *directory.routes(),
        *directory_units.routes(),
        *app_registrations.routes(),
        *devicecode.routes(),
        *audit_logs.routes(),
        *calendar_api.routes(),
        *exchange_control.routes(),
        *meeting_sessions.routes(),
        *batch.routes(),
        *subscriptions_api.routes(),
    ]


def builtin_extensions() -> dict[str, ExtensionFactory]:
    """Per-tenant state of route modules, by name (route modules add theirs here)."""
    return {
        **dict(meetings_backend.extensions()),
        PROVISIONING: ProvisioningExtension.for_tenant,
        calendar_api.CALENDAR_EXTENSION: calendar_api.calendar_extension,
        meeting_artifacts.ARTIFACTS_EXTENSION: meeting_artifacts.artifacts_extension,
        exchange_rbac.EXTENSION: exchange_rbac.ExchangeRbac.for_tenant,
        subscriptions.EXTENSION: subscriptions.SubscriptionStore.for_tenant,
    }


async def _graph_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GraphErrorResponse)
    return graph_error(exc.status, exc.code, exc.message, headers=exc.headers, inner=exc.inner)


def _unknown_segment(routes: Sequence[BaseRoute], path: str) -> str:
    """The first segment of a Graph path that no route leads on to (Graph names it in its 400).

    ``/v1.0/users/{id}/xyz`` names ``xyz``: ``/v1.0/users/{id}`` is a resource; ``/v1.0/xyz`` names ``xyz``.
    """
    segments = path.rstrip("/").split("/")  # ["", "v1.0", ...]
    for end in range(len(segments) - 1, 2, -1):
        prefix = "/".join(segments[:end])
        if any(regex.match(prefix) for regex in (getattr(r, "path_regex", None) for r in routes) if regex):
            return segments[end]
    return segments[2] if len(segments) > 2 else segments[-1]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 404:
        if request_kind(path) == "graph":
            segment = _unknown_segment(request.app.routes, path)
            return graph_error(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        return graph_error(
            404, "UnknownError", f"No HTTP resource was found that matches the request URI '{path}'."
        )
    if exc.status_code == 405:
        return graph_error(
            405, "Request_BadRequest", "Specified HTTP method is not allowed for the request uri."
        )
    return graph_error(exc.status_code, "BadRequest", exc.detail or "Bad request.", headers=exc.headers)


def create_app(
    runtime: SandboxRuntime,
    *,
    routes: Sequence[BaseRoute] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    on_shutdown: Callable[[], None] | None = None,
) -> Starlette:
    """The app over ``runtime``; ``routes`` defaults to :func:`builtin_routes`."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        notifications_delivery.detach(runtime)
        if on_shutdown is not None:
            on_shutdown()

    app = Starlette(
        routes=[*(builtin_routes() if routes is None else routes), *extra_routes],
        middleware=[Middleware(FrontMiddleware), Middleware(FaultMiddleware), Middleware(AuthMiddleware)],
        exception_handlers={GraphErrorResponse: _graph_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.sandbox = runtime
    notifications_delivery.attach(runtime)  # change notifications listen to the runtime's changes
    return app
