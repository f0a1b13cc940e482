"""The gateway's HTTP surface: ``create_app(settings, meetings=..., scope=...)`` builds a FastAPI app.

Routes: ``/v1/meetings`` (create with Idempotency-Key, find by join URL), ``/v1/meetings/{id}``
(get, patch, delete), ``/v1/meetings/{id}/invite.ics``, ``/healthz``, ``/readyz``, ``/metrics``,
``/admin/dashboard`` and ``/admin/dashboard.json`` (admin key), ``/docs`` (Swagger UI).
Every ``/v1`` request is authenticated by API key, audited, logged and measured; every answer carries
the security headers of :mod:`meetgate.gateway.security_headers`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from meetgate.gateway.audit import AuditWriter
from meetgate.gateway.dashboard import AdminAuthError, dashboard_router
from meetgate.gateway.forwarded import TrustedProxies
from meetgate.gateway.limits import InMemoryLimiter, Limiter, RedisLimiter
from meetgate.gateway.logs import LOGGER_NAME
from meetgate.gateway.metrics import GatewayMetrics
from meetgate.gateway.middleware import RequestObserver, problem_response
from meetgate.gateway.ports import MeetingsPort, PolicyScope, TokenCheck
from meetgate.gateway.problems import MEDIA_TYPE, Problem
from meetgate.gateway.schemas import Health, MeetingCreate, MeetingList, MeetingOut, MeetingPatch, ProblemOut
from meetgate.gateway.scope import CachedPolicyScope
from meetgate.gateway.security_headers import SecurityHeaders, page_policy
from meetgate.gateway.service import CallContext, GatewayService
from meetgate.gateway.settings import GatewaySettings
from meetgate.store import ConsumerRecord, Store, StoreError

#: where FastAPI's Swagger UI page loads its script and style from
SWAGGER_CDN = "https://cdn.jsdelivr.net"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemOut, "content": {MEDIA_TYPE: {}}, "description": text}
    for status, text in {
        400: "Idempotency-Key missing",
        401: "API key missing, unknown, revoked, rotated or expired",
        403: "Organizer not allowed, or outside the application access policy",
        404: "No such meeting for this consumer",
        409: "Idempotency-Key reused with another request, or meeting cancelled",
        422: "Invalid request",
        429: "Rate limit or daily quota reached",
        502: "Microsoft Graph failed",
        503: "Microsoft Graph throttling, or the store unavailable",
    }.items()
}

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <api key>`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or `X-API-Key: <api key>`")


async def current_consumer(
    request: Request,
    bearer_auth: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    header_key: Annotated[str | None, Depends(api_key_header)],
) -> ConsumerRecord:
    """The consumer whose API key came with the request (Bearer or X-API-Key)."""
    service: GatewayService = request.app.state.service
    key = bearer_auth.credentials if bearer_auth is not None else header_key
    return await service.authenticate(key, request.state.ctx)


Consumer = Annotated[ConsumerRecord, Depends(current_consumer)]
MeetingId = Annotated[str, Path(pattern=r"^mtg_[0-9a-f]{32}$", description="The gateway's meeting id")]


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API documents at this request's path (for a 405's ``Allow``: the router
    names only its first matching route's)."""
    from starlette.routing import compile_path

    compiled = getattr(request.app.state, "path_methods", None)
    if compiled is None:
        compiled = [
            (compile_path(template)[0], {m.upper() for m in operations})
            for template, operations in request.app.openapi()["paths"].items()
        ]
        request.app.state.path_methods = compiled
    allowed: set[str] = set()
    for pattern, methods in compiled:
        if pattern.match(request.url.path):
            allowed |= methods
    return sorted(allowed)


def create_app(
    settings: GatewaySettings,
    *,
    meetings: MeetingsPort,
    scope: PolicyScope,
    token_check: TokenCheck | None = None,
    store: Store | None = None,
    limiter: Limiter | None = None,
    metrics: GatewayMetrics | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    graph_pause: Callable[[], float] | None = None,
) -> FastAPI:
    """Build the gateway. ``meetings`` is the Graph client's ``AsyncMeetingsService`` (or a fake);
    ``graph_pause`` says how many seconds Graph has asked the app to stop calling (its client's
    limiter): beyond ``graph_max_wait_seconds`` requests are refused with ``graph-throttled`` at once."""
    store = store or Store.open(settings.store_url, migrate=settings.migrate)
    if limiter is None:
        limiter = (
            RedisLimiter(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else InMemoryLimiter()
        )
    metrics = metrics or GatewayMetrics()
    service = GatewayService(
        settings=settings,
        store=store,
        meetings=meetings,
        scope=CachedPolicyScope(scope, settings.policy_cache_seconds),
        limiter=limiter,
        metrics=metrics,
        graph_pause=graph_pause,
    )
    log = logging.getLogger(LOGGER_NAME)
    audit = AuditWriter(store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        audit.start()
        yield
        await audit.stop()
        await limiter.close()
        if on_shutdown is not None:
            await on_shutdown()

    app = FastAPI(
        title=settings.title,
        version="1",
        description=(
            "Create and manage Microsoft Teams online meetings for your organizers. Authenticate with "
            "your API key; send an Idempotency-Key with every creation and reuse it on retries. "
            "Errors are RFC 9457 problem details with a stable `type` and a `remedy`."
        ),
        lifespan=lifespan,
        responses={422: _PROBLEM_RESPONSES[422]},
        # /docs is served below with a policy of its own; ReDoc would need inline styles and
        # third-party fonts, so it is not served
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.state.store = store
    app.state.metrics = metrics
    app.state.audit = audit

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

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(StoreError)
    async def on_store_error(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error", extra={"error": type(exc).__name__})
        return problem_response(Problem("store-unavailable"), request)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
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
        remedy = (
            ctx.get("remedy") if isinstance(ctx, dict) and errors[0].get("type") == "meeting_rule" else None
        )
        return problem_response(
            Problem(
                "invalid-request",
                f"{where}: {first['msg']}",
                remedy=str(remedy) if remedy else None,
                extra={"errors": jsonable_encoder(cleaned)},
            ),
            request,
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        ctx: CallContext | None = getattr(request.state, "ctx", None)
        body = {
            "type": "about:blank",
            "title": str(exc.detail),
            "status": exc.status_code,
            "detail": str(exc.detail),
            "remedy": "check the method and path against /openapi.json",
            "requestId": ctx.request_id if ctx else None,
        }
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # the router names only its first matching route's methods
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return JSONResponse(body, status_code=exc.status_code, headers=headers, media_type=MEDIA_TYPE)

    meetings_router = APIRouter(prefix="/v1/meetings", tags=["meetings"], responses=_PROBLEM_RESPONSES)

    @meetings_router.post(
        "", status_code=201, response_model=MeetingOut, summary="Create a meeting (idempotent)"
    )
    async def create_meeting(
        request: Request,
        response: Response,
        body: MeetingCreate,
        consumer: Consumer,
        idempotency_key: Annotated[
            str,
            Header(
                alias="Idempotency-Key",
                min_length=1,
                max_length=255,
                pattern=r"^[\x21-\x7e]+$",
                description="Unique per meeting; resend it unchanged on retries",
            ),
        ],
    ) -> MeetingOut:
        result = await service.create(consumer, body, idempotency_key, request.state.ctx)
        response.headers["Location"] = f"/v1/meetings/{result.meeting.id}"
        if not result.created:
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
        return result.meeting

    @meetings_router.get("", response_model=MeetingList, summary="Find a meeting by its join URL")
    async def find_meeting(
        request: Request,
        consumer: Consumer,
        join_url: Annotated[str, Query(min_length=10, max_length=2048)],
    ) -> MeetingList:
        try:
            found = await service.find_by_join_url(consumer, join_url, request.state.ctx)
        except Problem as problem:
            if problem.slug != "not-found":
                raise
            return MeetingList(value=[])
        return MeetingList(value=[found])

    @meetings_router.get("/{meeting_id}", response_model=MeetingOut, summary="Read a meeting")
    async def get_meeting(request: Request, consumer: Consumer, meeting_id: MeetingId) -> MeetingOut:
        return await service.get(consumer, meeting_id, request.state.ctx)

    @meetings_router.patch(
        "/{meeting_id}", response_model=MeetingOut, summary="Reschedule or change a meeting"
    )
    async def patch_meeting(
        request: Request, consumer: Consumer, meeting_id: MeetingId, body: MeetingPatch
    ) -> MeetingOut:
        return await service.update(consumer, meeting_id, body, request.state.ctx)

    @meetings_router.delete(
        "/{meeting_id}", response_model=MeetingOut, summary="Cancel (delete) or lock a meeting"
    )
    async def delete_meeting(
        request: Request,
        consumer: Consumer,
        meeting_id: MeetingId,
        mode: Annotated[Literal["delete", "lock"], Query()] = "delete",
    ) -> MeetingOut:
        return await service.cancel(consumer, meeting_id, mode, request.state.ctx)

    @meetings_router.get(
        "/{meeting_id}/invite.ics",
        response_class=Response,
        responses={200: {"content": {"text/calendar": {}}, "description": "iCalendar invitation"}},
        summary="An iCalendar invitation to send to attendees",
    )
    async def meeting_invite(request: Request, consumer: Consumer, meeting_id: MeetingId) -> Response:
        text = await service.invite(consumer, meeting_id, request.state.ctx)
        return Response(
            text,
            media_type="text/calendar; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{meeting_id}.ics"'},
        )

    app.include_router(meetings_router)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=request.scope.get("root_path", "") + (app.openapi_url or "/openapi.json"),
            title=f"{settings.title} - Swagger UI",
            oauth2_redirect_url=None,  # API keys only: no OAuth flow to come back from
        )
        html = bytes(page.body).decode()
        policy = page_policy(
            html,
            script_src=[SWAGGER_CDN],
            style_src=[SWAGGER_CDN],
            img_src=["'self'", "data:", "https://fastapi.tiangolo.com"],
            connect_src=["'self'"],
        )
        return HTMLResponse(html, headers={"Content-Security-Policy": policy})

    # ---- operations
    @app.get("/healthz", response_model=Health, tags=["operations"], summary="The process is up")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        tags=["operations"],
        summary="The store answers and a Graph token can be taken",
        responses={503: {"model": Health}},
    )
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await to_thread.run_sync(store.ping)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"failed: {type(exc).__name__}"
        ping = getattr(limiter, "ping", None)
        if ping is not None:
            try:
                await ping()
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"failed: {type(exc).__name__}"
        if token_check is not None:
            try:
                await token_check()
                checks["graph_token"] = "ok"
            except Exception as exc:
                checks["graph_token"] = f"failed: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            Health(status="ok" if ok else "unavailable", checks=checks).model_dump(),
            status_code=200 if ok else 503,
        )

    @app.exception_handler(AdminAuthError)
    async def on_admin_auth(request: Request, exc: AdminAuthError) -> JSONResponse:
        ctx: CallContext | None = getattr(request.state, "ctx", None)
        body = {
            "type": "about:blank",
            "title": "Admin key required",
            "status": 401,
            "detail": "the dashboard needs the gateway's admin key",
            "remedy": "send X-Admin-Key (or HTTP Basic with the key as password); set MEETGATE_ADMIN_KEY "
            "when starting `meetgate serve`",
            "requestId": ctx.request_id if ctx else None,
        }
        headers = {"WWW-Authenticate": 'Basic realm="meetgate dashboard"'}
        return JSONResponse(body, status_code=401, headers=headers, media_type=MEDIA_TYPE)

    app.include_router(dashboard_router(store, settings.admin_key_sha256))

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
