"""Graph exchanges, throttling and client retries are counted by the gateway's transport."""

from __future__ import annotations

import asyncio

import httpx

from meetgate.gateway.graph_transport import ObservedGraphTransport
from meetgate.gateway.metrics import GatewayMetrics
from meetgate.graph.auth import StaticTokenProvider
from meetgate.graph.client import AsyncGraphClient
from meetgate.graph.credentials import ClientSecretCredential
from meetgate.graph.settings import GraphSettings

ORGANIZER = "0b5c1f1e-1111-4222-8333-444455556666"


def test_retries_and_throttling_are_counted():
    calls: list[str] = []

    def graph(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["client-request-id"])
        if len(calls) == 1:
            return httpx.Response(
                429,
                headers={"Retry-After": "0"},
                json={"error": {"code": "TooManyRequests", "message": "Please retry again later."}},
            )
        return httpx.Response(
            200,
            json={"id": "m1", "joinWebUrl": "https://teams.microsoft.com/l/meetup-join/x", "subject": "s"},
        )

    async def no_sleep(_seconds: float) -> None:
        return None

    metrics = GatewayMetrics()
    settings = GraphSettings(tenant_id="t", client_id="c", credential=ClientSecretCredential("not-used"))
    client = AsyncGraphClient(
        settings,
        transport=ObservedGraphTransport(httpx.MockTransport(graph), metrics),
        tokens=StaticTokenProvider("header.payload.signature"),
        sleep=no_sleep,
    )

    async def run():
        async with client:
            return await client.meetings.get(ORGANIZER, "m1")

    meeting = asyncio.run(run())
    assert meeting.id == "m1" and len(calls) == 2 and calls[0] == calls[1]
    value = metrics.registry.get_sample_value
    assert value("meetgate_gateway_graph_retries_total", {"after": "429"}) == 1
    assert value("meetgate_gateway_graph_http_responses_total", {"status": "429"}) == 1
    assert value("meetgate_gateway_graph_http_responses_total", {"status": "200"}) == 1
    assert value("meetgate_gateway_throttled_total", {"limit": "graph-429"}) == 1
