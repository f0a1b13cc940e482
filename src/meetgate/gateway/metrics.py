"""Prometheus metrics of one gateway process (one registry per app, so tests do not collide)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "meetgate_gateway_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "meetgate_gateway_request_seconds",
            "Time to answer a request",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.graph_calls = Counter(
            "meetgate_gateway_graph_calls",
            "Calls to Microsoft Graph by outcome",
            ["operation", "status"],
            registry=r,
        )
        self.graph_latency = Histogram(
            "meetgate_gateway_graph_seconds",
            "Time spent in Graph calls",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.graph_retries = Counter(
            "meetgate_gateway_graph_retries",
            "Graph requests the client retried, by the outcome of the attempt before",
            ["after"],
            registry=r,
        )
        self.graph_http = Counter(
            "meetgate_gateway_graph_http_responses",
            "Every HTTP exchange with Graph, by status",
            ["status"],
            registry=r,
        )
        self.graph_waits = Counter(
            "meetgate_gateway_graph_limit_waits", "Calls delayed by the client-side Graph limit", registry=r
        )
        self.throttled = Counter(
            "meetgate_gateway_throttled",
            "Requests refused by a gateway limit or quota",
            ["limit"],
            registry=r,
        )
        self.meetings_created = Counter(
            "meetgate_gateway_meetings_created", "Meetings created in Graph", ["consumer"], registry=r
        )
        self.idempotent_replays = Counter(
            "meetgate_gateway_idempotent_replays",
            "Creations answered from an earlier request",
            ["consumer"],
            registry=r,
        )
        self.webhook_attempts = Counter(
            "meetgate_gateway_webhook_attempts",
            "Webhook delivery attempts by outcome (ok, retry, failed)",
            ["outcome"],
            registry=r,
        )
        self.webhook_latency = Histogram(
            "meetgate_gateway_webhook_seconds",
            "Time from a webhook event's publication to its successful delivery",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        # label children by (metric, label values): ``labels()`` takes a lock and checks its arguments
        self._children: dict[tuple[Any, ...], Any] = {}

    def labelled(self, metric: MetricWrapperBase, *values: str) -> Any:
        """``metric.labels(*values)``, remembered (the hot path asks for the same few children)."""
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def request_answered(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency, by method, route template and status."""
        self.labelled(self.requests, method, route, str(status)).inc()
        self.labelled(self.latency, method, route).observe(seconds)
