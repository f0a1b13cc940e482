"""What every request passes on its way in and out: its context, metrics, audit entry and log line.

:class:`RequestObserver` is plain ASGI (no per-request task group or response streaming, unlike
Starlette's ``BaseHTTPMiddleware``). For each HTTP request it

- takes the request id from ``X-Request-Id`` when it is well formed, else a new UUID, and answers
  with it in ``X-Request-Id``;
- puts a :class:`~meetgate.gateway.service.CallContext` on ``request.state.ctx`` (``scope["state"]``),
  where the routes and the exception handlers find it;
- counts the request and its latency by route template;
- for ``/v1/`` paths, hands an audit entry to the :class:`~meetgate.gateway.audit.AuditWriter` and
  logs one structured line;
- answers an unhandled error with the ``internal`` problem (when no response has started yet).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meetgate.gateway.audit import AuditWriter
from meetgate.gateway.forwarded import TrustedProxies, client_address
from meetgate.gateway.metrics import GatewayMetrics
from meetgate.gateway.problems import MEDIA_TYPE, Problem
from meetgate.gateway.service import CallContext
from meetgate.store import AuditEntry

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    """The problem+json answer to ``problem``; notes it on the request's context for the audit
    (a plain HTTP error is not noted: its audit outcome stays ``error``)."""
    ctx: CallContext | None = getattr(request.state, "ctx", None)
    body = problem.body(instance=request.url.path, request_id=ctx.request_id if ctx else None)
    if ctx is not None and not problem.kind.plain:
        ctx.notes["problem"] = problem.slug
        ctx.graph_status = ctx.graph_status or problem.graph_status
        ctx.graph_request_id = ctx.graph_request_id or problem.graph_request_id
    return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=MEDIA_TYPE)


def request_context(scope: Scope, trusted_proxies: TrustedProxies | None) -> CallContext:
    """A new context for the request in ``scope``: its request id and client address (the socket
    peer, or with ``trusted_proxies`` what :func:`~meetgate.gateway.forwarded.client_address` finds)."""
    incoming = None
    forwarded: list[str] = []
    for name, value in scope["headers"]:
        if name == b"x-request-id" and incoming is None:
            incoming = value.decode("latin-1")
        elif name == b"x-forwarded-for":
            forwarded.append(value.decode("latin-1"))
    client = scope.get("client")
    client_ip = client_address(client[0] if client else None, forwarded, trusted_proxies)
    return CallContext(
        request_id=incoming if incoming and _REQUEST_ID.match(incoming) else str(uuid.uuid4()),
        client_ip=client_ip[:64] if client_ip else None,
    )


class RequestObserver:
    """Pure ASGI middleware: request context, metrics, audit, log line, 500 problems.

    ``trusted_proxies``: believe ``X-Forwarded-For`` from these proxies (None: the socket peer is
    the client)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: GatewayMetrics,
        audit: AuditWriter,
        log: logging.Logger,
        trusted_proxies: TrustedProxies | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.audit = audit
        self.log = log
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        ctx = request_context(scope, self.trusted_proxies)
        scope.setdefault("state", {})["ctx"] = ctx
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-Id"] = ctx.request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            self.log.exception("unhandled error", extra={"request_id": ctx.request_id, "path": scope["path"]})
            if status:  # the response has started: nothing else can be sent
                self._observe(scope, ctx, status, time.perf_counter() - started)
                raise
            response = problem_response(Problem("internal"), Request(scope))
            await response(scope, receive, send_with_id)
        self._observe(scope, ctx, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, ctx: CallContext, status: int, elapsed: float) -> None:
        method: str = scope["method"]
        template: str = getattr(scope.get("route"), "path", "unmatched")
        self.metrics.request_answered(method, template, status, elapsed)
        if not scope["path"].startswith("/v1/"):
            return
        consumer = ctx.consumer
        outcome = ctx.notes.get("problem") or ("ok" if status < 400 else "error")
        entry = AuditEntry(
            request_id=ctx.request_id,
            action=ctx.action,
            outcome=str(outcome),
            http_status=status,
            latency_ms=round(elapsed * 1000, 3),
            consumer_id=consumer.id if consumer else None,
            consumer_name=consumer.name if consumer else None,
            organizer=ctx.organizer,
            meeting_id=ctx.meeting_id,
            graph_status=ctx.graph_status,
            graph_request_id=ctx.graph_request_id,
            client_ip=ctx.client_ip,
        )
        self.audit.submit(entry)
        if self.log.isEnabledFor(logging.INFO):
            fields = _log_fields(entry, method, template)
            if "graph_error" in ctx.notes:  # what Graph or Entra said: the consumer sees only the problem
                fields["graph_error"] = ctx.notes["graph_error"]
                fields["graph_error_message"] = ctx.notes.get("graph_error_message")
            self.log.info("request", extra=fields)


def _log_fields(entry: AuditEntry, method: str, template: str) -> dict[str, Any]:
    return {
        "request_id": entry.request_id,
        "method": method,
        "route": template,
        "status": entry.http_status,
        "latency_ms": entry.latency_ms,
        "consumer": entry.consumer_name,
        "organizer": entry.organizer,
        "action": entry.action,
        "outcome": entry.outcome,
        "graph_status": entry.graph_status,
        "graph_request_id": entry.graph_request_id,
    }
