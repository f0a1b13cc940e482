"""An httpx transport for the gateway's Graph client: aiohttp's keep-alive pool (HTTP/1.1) sized for
the gateway's concurrency, and metrics of every HTTP exchange with Graph (statuses, throttling,
retries).

The Graph client retries inside one operation with the same ``client-request-id``; a request id
seen again is counted as a retry, labelled with the status (or error) of the attempt before it.
Every answer's ``request-id`` goes to the gateway request being served (:mod:`graph_ids`).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import httpx

from meetgate.gateway import graph_ids
from meetgate.gateway.metrics import GatewayMetrics

_SEEN_MAX = 10_000


class ObservedGraphTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, metrics: GatewayMetrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._last_outcome: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def for_graph(
        cls,
        metrics: GatewayMetrics,
        *,
        ca_bundle: Path | None,
        max_connections: int = 400,
    ) -> ObservedGraphTransport:
        """The transport ``meetgate serve`` uses: aiohttp (a third of httpcore's CPU per call, see
        docs/benchmarks.md), trusting the system CAs plus ``ca_bundle``."""
        from meetgate.graph.aiohttp_transport import AiohttpTransport
        from meetgate.graph.auth import build_ssl_context

        inner = AiohttpTransport(ssl_context=build_ssl_context(ca_bundle), max_connections=max_connections)
        return cls(inner, metrics)

    def _remember(self, request_id: str | None, outcome: str) -> None:
        if not request_id:
            return
        self._last_outcome[request_id] = outcome
        self._last_outcome.move_to_end(request_id)
        while len(self._last_outcome) > _SEEN_MAX:
            self._last_outcome.popitem(last=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request_id = request.headers.get("client-request-id")
        previous = self._last_outcome.get(request_id) if request_id else None
        if previous is not None:
            self._metrics.graph_retries.labels(previous).inc()
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError as exc:
            self._metrics.graph_http.labels("transport-error").inc()
            self._remember(request_id, type(exc).__name__)
            raise
        graph_ids.record(response.headers.get("request-id"))
        status = str(response.status_code)
        self._metrics.graph_http.labels(status).inc()
        if response.status_code in (429, 503):
            self._metrics.throttled.labels(f"graph-{status}").inc()
        self._remember(request_id, status)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
