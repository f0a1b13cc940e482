"""The routes' dependencies, as ``Annotated`` types: what :func:`~meetgate.gateway.app.create_app`
put on ``app.state``, the request's context, its consumer and the meeting id in the path.

A route names what it needs (``consumer: CurrentConsumer, service: Service``) instead of reaching
into ``request.app.state``; none of these adds anything to the OpenAPI document except the two API
key schemes (:data:`CurrentConsumer`) and the meeting id's path parameter (:data:`MeetingId`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from meetgate.gateway.dashboard import AdminAuthError, hash_admin_key, presented_key
from meetgate.gateway.limits import Limiter
from meetgate.gateway.metrics import GatewayMetrics
from meetgate.gateway.ports import TokenCheck
from meetgate.gateway.service import CallContext, GatewayService
from meetgate.gateway.settings import GatewaySettings
from meetgate.gateway.webhooks.manage import WebhookAdmin
from meetgate.store import ConsumerRecord, Store

#: ``Authorization: Bearer <api key>`` (an OpenAPI security scheme)
bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <api key>`")
#: ``X-API-Key: <api key>`` (an OpenAPI security scheme)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or `X-API-Key: <api key>`")


def _from_app_state(name: str, what: str) -> Callable[[Request], Any]:
    """A dependency reading ``app.state.<name>``, which :func:`~meetgate.gateway.app.create_app` sets."""

    def read(request: Request) -> Any:
        return getattr(request.app.state, name)

    read.__name__ = f"get_{name}"
    read.__doc__ = what
    return read


def call_context(request: Request) -> CallContext:
    """The request's context, put on ``request.state.ctx`` by the
    :class:`~meetgate.gateway.middleware.RequestObserver`."""
    ctx: CallContext = request.state.ctx
    return ctx


Settings = Annotated[GatewaySettings, Depends(_from_app_state("settings", "The gateway's settings."))]
#: authentication, limits and the meetings' operations
Service = Annotated[GatewayService, Depends(_from_app_state("service", "The gateway's service."))]
AppStore = Annotated[Store, Depends(_from_app_state("store", "The gateway's store."))]
#: the rate limits' and quotas' limiter (in-process or Redis)
RateLimiter = Annotated[Limiter, Depends(_from_app_state("limiter", "The rate limiter."))]
Metrics = Annotated[GatewayMetrics, Depends(_from_app_state("metrics", "The Prometheus metrics."))]
#: what /readyz calls to see that a Graph token can be taken (None: not checked)
ReadyTokenCheck = Annotated[TokenCheck | None, Depends(_from_app_state("token_check", "The token check."))]
Context = Annotated[CallContext, Depends(call_context)]
#: the consumers' webhook endpoints and deliveries
Webhooks = Annotated[WebhookAdmin, Depends(_from_app_state("webhooks", "The webhook endpoints."))]


async def current_consumer(
    service: Service,
    ctx: Context,
    bearer_auth: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    header_key: Annotated[str | None, Depends(api_key_header)],
) -> ConsumerRecord:
    """The consumer whose API key came with the request (Bearer or X-API-Key); charges its rate."""
    key = bearer_auth.credentials if bearer_auth is not None else header_key
    return await service.authenticate(key, ctx)


#: the authenticated consumer of a ``/v1`` request (refused with ``unauthenticated`` or ``rate-limited``)
CurrentConsumer = Annotated[ConsumerRecord, Depends(current_consumer)]
#: the gateway's meeting id in the path
MeetingId = Annotated[str, Path(pattern=r"^mtg_[0-9a-f]{32}$", description="The gateway's meeting id")]


async def require_admin(request: Request, settings: Settings) -> None:
    """Let the request through only with the gateway's admin key (``X-Admin-Key``, Bearer, or HTTP
    Basic with the key as the password); the dashboard is closed when no admin key is set."""
    expected = settings.admin_key_sha256
    key = presented_key(request)
    if expected is None or key is None or not hmac.compare_digest(hash_admin_key(key), expected):
        raise AdminAuthError
