"""The gateway's HTTP surface: ``create_app(settings, meetings=..., scope=...)`` builds a FastAPI app.

``create_app`` wires the parts (store, limiter, metrics, the service, the audit writer) onto
``app.state``, adds the middleware and the exception handlers, and includes one router per resource
(:mod:`meetgate.gateway.routers`): ``/v1/meetings`` (create with Idempotency-Key, find by join URL),
``/v1/meetings/{id}`` (get, patch, delete), ``/v1/meetings/{id}/cancel``, ``/v1/meetings/{id}/invite.ics``,
``/v1/meetings/{id}/occurrences[/{occurrenceId}[/cancel]]``, ``/v1/meetings/{id}/attendance``,
``/transcripts[/{tid}]`` and ``/recordings[/{rid}[/content]]``, ``/v1/webhooks`` (a consumer's webhook
endpoints and deliveries; the delivery worker runs in the lifespan), ``/graph/notifications`` and
``/graph/lifecycle`` (Graph's change notifications, public), ``/healthz``,
``/readyz``, ``/metrics``, ``/admin/dashboard`` and ``/admin/dashboard.json`` (admin key), ``/docs``
(Swagger UI). Routes reach ``app.state`` through :mod:`meetgate.gateway.deps`.
Every ``/v1`` request is authenticated by API key, audited, logged and measured; every answer carries
the security headers of :mod:`meetgate.gateway.security_headers`; every error answer is a
:class:`~meetgate.gateway.problems.Problem`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from meetgate.gateway.audit import AuditWriter
from meetgate.gateway.dashboard import AdminAuthError
from meetgate.gateway.forwarded import TrustedProxies
from meetgate.gateway.limits import InMemoryLimiter, Limiter, RedisLimiter
from meetgate.gateway.logs import LOGGER_NAME
from meetgate.gateway.metrics import GatewayMetrics
from meetgate.gateway.middleware import RequestObserver, problem_response
from meetgate.gateway.notifications.service import NotificationService
from meetgate.gateway.ports import (
    AsyncArtifactsPort,
    AsyncEventsPort,
    AsyncMeetingsPort,
    PolicyScope,
    TokenCheck,
)
from meetgate.gateway.problems import Problem, admin_key_problem, http_problem
from meetgate.gateway.routers import ROUTERS
from meetgate.gateway.schemas import PROBLEM_RESPONSES
from meetgate.gateway.scope import CachedPolicyScope
from meetgate.gateway.security_headers import SecurityHeaders
from meetgate.gateway.service import GatewayService
from meetgate.gateway.settings import GatewaySettings
from meetgate.gateway.webhooks.events import WebhookPublisher
from meetgate.gateway.webhooks.manage import WebhookAdmin, default_key_file, secret_box_factory
from meetgate.gateway.webhooks.urls import Resolver, system_resolver
from meetgate.gateway.webhooks.worker import DeliveryWorker, WorkerSettings
from meetgate.store import Store, StoreError
from meetgate.store.webhooks import WebhookStore

log = logging.getLogger(LOGGER_NAME)

DESCRIPTION = (
    "Create and manage Microsoft Teams online meetings for your organizers: standalone, or on the "
    "organizer's calendar (invitations, recurring series). Authenticate with "
    "your API key; send an Idempotency-Key with every creation and reuse it on retries. "
    "Errors are RFC 9457 problem details with a stable `type` and a `remedy`."
)


def create_app(
    settings: GatewaySettings,
    *,
    meetings: AsyncMeetingsPort,
    scope: PolicyScope,
    events: AsyncEventsPort | None = None,
    token_check: TokenCheck | None = None,
    store: Store | None = None,
    limiter: Limiter | None = None,
    metrics: GatewayMetrics | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    graph_pause: Callable[[], float] | None = None,
    webhook_client: httpx.AsyncClient | None = None,
    webhook_resolve: Resolver | None = system_resolver,
    artifacts: AsyncArtifactsPort | None = None,
    notifications: Callable[[Store, WebhookAdmin], NotificationService] | None = None,
) -> FastAPI:
    """Build the gateway. ``meetings`` is the Graph client's ``AsyncMeetingsService`` (or a fake);
    ``events`` its ``AsyncCalendarEventsService`` for calendar meetings (None: standalone only);
    ``graph_pause`` says how many seconds Graph has asked the app to stop calling (its client's
    limiter): beyond ``graph_max_wait_seconds`` requests are refused with ``graph-throttled`` at once;
    ``artifacts`` its ``AsyncArtifactsService`` (the kinds read: ``settings.artifacts``)."""
    store = store or Store.open(settings.store_url, migrate=settings.migrate)
    if limiter is None:
        limiter = (
            RedisLimiter(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else InMemoryLimiter()
        )
    metrics = metrics or GatewayMetrics()
    webhooks, worker = _webhooks(settings, store, webhook_client, webhook_resolve, metrics)
    service = GatewayService(
        settings=settings,
        store=store,
        meetings=meetings,
        events=events,
        scope=CachedPolicyScope(scope, settings.policy_cache_seconds),
        limiter=limiter,
        metrics=metrics,
        graph_pause=graph_pause,
        publisher=webhooks.publisher,
        artifacts=artifacts,
    )
    audit = AuditWriter(store)
    app = FastAPI(
        title=settings.title,
        version="1",
        description=DESCRIPTION,
        lifespan=_lifespan,
        responses={422: PROBLEM_RESPONSES[422]},
        # /docs is served by routers.docs with a policy of its own; ReDoc would need inline styles
        # and third-party fonts, so it is not served
        docs_url=None,
        redoc_url=None,
    )
    # what the routes (gateway.deps) and the lifespan read
    app.state.settings = settings
    app.state.service = service
    app.state.store = store
    app.state.limiter = limiter
    app.state.metrics = metrics
    app.state.audit = audit
    app.state.token_check = token_check
    app.state.on_shutdown = on_shutdown
    app.state.webhooks = webhooks
    app.state.webhook_worker = worker
    app.state.notifications = notifications(store, webhooks) if notifications else None

    # ---- cross-cutting: request id, audit, log, metrics (outside the exception handlers, which
    # find the request's context on request.state.ctx)
    app.add_middleware(
        RequestObserver,
        metrics=metrics,
        audit=audit,
        log=log,
        trusted_proxies=TrustedProxies(settings.forwarded_allow_ips)
        if settings.trust_forwarded_for
        else None,
    )
    # outermost: every answer, the observer's own 500 included, gets the security headers
    app.add_middleware(SecurityHeaders)

    app.exception_handler(Problem)(on_problem)
    app.exception_handler(StoreError)(on_store_error)
    app.exception_handler(RequestValidationError)(on_invalid)
    app.exception_handler(StarletteHTTPException)(on_http)
    app.exception_handler(AdminAuthError)(on_admin_auth)

    for router in ROUTERS:  # meetings, docs, operations, admin
        app.include_router(router)
    return app


def _webhooks(
    settings: GatewaySettings,
    store: Store,
    client: httpx.AsyncClient | None,
    resolve: Resolver | None,
    metrics: GatewayMetrics,
) -> tuple[WebhookAdmin, DeliveryWorker | None]:
    """The webhook endpoints' admin (with the outbox's publisher) and the delivery worker."""
    key_file = (
        Path(settings.webhook_key_file) if settings.webhook_key_file else default_key_file(settings.store_url)
    )
    box = secret_box_factory(settings.webhook_key, key_file)
    hooks = WebhookStore(store)
    worker = None
    if settings.webhook_worker:
        worker = DeliveryWorker(
            hooks,
            box,
            settings=WorkerSettings(
                retry_window=dt.timedelta(hours=settings.webhook_retry_hours),
                timeout_seconds=settings.webhook_timeout_seconds,
                allow_local_http=settings.webhook_allow_local_http,
                allow_private=settings.webhook_allow_private,
            ),
            client=client,
            resolve=resolve,
            metrics=metrics,
        )
    publisher = WebhookPublisher(hooks, wake=worker.wake if worker is not None else None)
    admin = WebhookAdmin(
        store,
        box,
        allow_local_http=settings.webhook_allow_local_http,
        allow_private=settings.webhook_allow_private,
        grace=dt.timedelta(hours=settings.webhook_secret_grace_hours),
        resolve=resolve,
        publisher=publisher,
    )
    return admin, worker


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the audit writer and the webhook worker; on shutdown stop them, close the limiter,
    then ``on_shutdown``."""
    state = app.state
    state.audit.start()
    if state.webhook_worker is not None:
        state.webhook_worker.start()
    if state.notifications is not None:
        state.notifications.start()
    yield
    if state.notifications is not None:
        await state.notifications.stop()
    if state.webhook_worker is not None:
        await state.webhook_worker.stop()
    await state.audit.stop()
    await state.limiter.close()
    if state.on_shutdown is not None:
        await state.on_shutdown()


# ---- exception handlers: every error answer is a Problem ---------------------------------------


async def on_problem(request: Request, exc: Problem) -> JSONResponse:
    """A :class:`Problem` raised anywhere in a request."""
    return problem_response(exc, request)


async def on_store_error(request: Request, exc: StoreError) -> JSONResponse:
    """The store failed: ``store-unavailable`` (the error's class goes to the log)."""
    log.error("store error", extra={"error": type(exc).__name__})
    return problem_response(Problem("store-unavailable"), request)


async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """An invalid request: ``idempotency-key-required`` when that header is missing or malformed,
    else ``invalid-request`` listing the ``errors`` (a meeting rule's remedy as the remedy)."""
    errors = exc.errors()
    if any(tuple(e.get("loc", ())) == ("header", "Idempotency-Key") for e in errors):
        return problem_response(Problem("idempotency-key-required"), request)
    cleaned = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in errors
    ]
    first = cleaned[0] if cleaned else {"loc": [], "msg": "invalid"}
    where = ".".join(str(p) for p in first["loc"][1:]) or "request"
    # a meeting rule says what to do (meetgate.graph.meeting_rules): that is the problem's remedy
    ctx = errors[0].get("ctx") if errors else None
    remedy = ctx.get("remedy") if isinstance(ctx, dict) and errors[0].get("type") == "meeting_rule" else None
    return problem_response(
        Problem(
            "invalid-request",
            f"{where}: {first['msg']}",
            remedy=str(remedy) if remedy else None,
            extra={"errors": jsonable_encoder(cleaned)},
        ),
        request,
    )


async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The router's own errors (unknown path, method not allowed): ``about:blank`` problems; a 405's
    ``Allow`` names every method the API documents at the path."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # the router names only its first matching route's methods
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(http_problem(exc.status_code, str(exc.detail), headers), request)


async def on_admin_auth(request: Request, exc: AdminAuthError) -> JSONResponse:
    """``/admin/...`` without the admin key: 401 with ``WWW-Authenticate: Basic`` (a browser prompts)."""
    return problem_response(admin_key_problem(), request)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API documents at this request's path (for a 405's ``Allow``: the router
    names only its first matching route's)."""
    compiled = getattr(request.app.state, "path_methods", None)
    if compiled is None:
        compiled = [
            (compile_path(template)[0], {m.upper() for m in path_item})
            for template, path_item in request.app.openapi()["paths"].items()
        ]
        request.app.state.path_methods = compiled
    allowed: set[str] = set()
    for pattern, methods in compiled:
        if pattern.match(request.url.path):
            allowed |= methods
    return sorted(allowed)
