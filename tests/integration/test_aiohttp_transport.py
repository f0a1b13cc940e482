"""The aiohttp transport: the async Graph client over it behaves as over httpx's own transport.

Against the sandbox (TLS, Graph's error bodies, dropped connections) and against tiny local servers
for what the sandbox does not do (a silent server, gzip bodies).
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace

import httpx
import pytest

from meetgate.composition import graph_settings_from_profile
from meetgate.graph.aiohttp_transport import AiohttpTransport
from meetgate.graph.auth import build_ssl_context
from meetgate.graph.client import AsyncGraphClient
from meetgate.graph.errors import AccessPolicyMissing, TransportError
from meetgate.graph.models import MeetingRequest
from meetgate.graph.retry import RetryPolicy, no_jitter

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _no_sleep(_seconds: float) -> None:
    return None


def _client(settings, **kw) -> AsyncGraphClient:  # type: ignore[no-untyped-def]
    transport = AiohttpTransport(ssl_context=build_ssl_context(settings.ca_bundle), max_connections=8)
    return AsyncGraphClient(
        settings, transport=transport, retry=RetryPolicy(jitter=no_jitter), sleep=_no_sleep, **kw
    )


@pytest.fixture
def settings(sandbox_app):
    return graph_settings_from_profile(sandbox_app.profile(), environ={})


@pytest.fixture
def faults(sandbox_control):
    sandbox_control.clear_faults()
    yield sandbox_control
    sandbox_control.clear_faults()


def test_create_or_get_is_idempotent_and_errors_keep_their_meaning(sandbox_app, settings):
    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no policy engine")
    organizer = sandbox_app.pilot_users[0].upn

    async def run():  # type: ignore[no-untyped-def]
        async with _client(settings) as graph:
            first = await graph.meetings.create_or_get(organizer, "aio-1", MeetingRequest(subject="Intake"))
            again = await graph.meetings.create_or_get(organizer, "aio-1", MeetingRequest(subject="Intake"))
            read = await graph.meetings.get(organizer, first.meeting.id)
            many = await asyncio.gather(
                *(
                    graph.meetings.create_or_get(organizer, f"aio-par-{n}", MeetingRequest())
                    for n in range(20)
                )
            )
            with pytest.raises(AccessPolicyMissing) as refused:
                await graph.meetings.create(sandbox_app.other_users[0].upn, MeetingRequest())
            return first, again, read, many, refused.value

    first, again, read, many, refused = asyncio.run(run())
    assert first.created and not again.created and again.meeting.id == first.meeting.id
    assert read.id == first.meeting.id and read.subject == "Intake"
    assert len({m.meeting.id for m in many}) == 20  # 20 at once over a pool of 8 connections
    assert refused.status == 403 and refused.request_id and refused.client_request_id
    log = sandbox_app.control.request_log(sandbox_app.tenant_id, limit=200)
    creates = [r for r in log if r["path"].endswith("/createOrGet") and r["status"] == 201]
    assert len(creates) == 21  # "aio-1" once, and each parallel key once


def test_dropped_connections_are_retried_then_a_transport_error(sandbox_app, faults, settings):
    faults.set_faults(drop_rate=0.5, seed=11)
    user = sandbox_app.pilot_users[0]

    async def run():  # type: ignore[no-untyped-def]
        async with _client(settings) as graph:
            found = [(await graph.directory.get_user(user.id)).id for _ in range(10)]
            faults.set_faults(drop_rate=1.0)
            with pytest.raises(TransportError) as caught:
                await graph.directory.get_user(user.id)
            return found, caught.value

    found, error = asyncio.run(run())
    assert found == [user.id] * 10
    assert any(r["fault"] == "dropped" for r in sandbox_app.control.request_log(sandbox_app.tenant_id))
    assert error.client_request_id


def test_unreachable_graph_is_retried_even_for_unsafe_requests_then_a_transport_error(settings):
    """Refused connections never reached Graph: safe to retry whatever the method."""
    dead = replace(settings, graph_url="https://127.0.0.1:9", timeout_seconds=2)

    async def run() -> TransportError:
        async with _client(dead) as graph:
            await asyncio.to_thread(graph.tokens.get_token)
            with pytest.raises(TransportError) as caught:
                await graph.http.post("/users", json={}, safe=False)
            return caught.value

    message = str(asyncio.run(run()))
    assert "ConnectError" in message and "not safe" not in message
    assert "after 1 attempt" not in message


async def _serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def _read_request(reader: asyncio.StreamReader) -> tuple[list[str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    length = next((int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:")), 0)
    return head, await reader.readexactly(length) if length else b""


def test_headers_body_and_gzip_pass_through():
    seen: dict[str, object] = {}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = await _read_request(reader)
        seen["head"], seen["body"] = head, body
        payload = gzip.compress(json.dumps({"value": [1, 2, 3]}).encode())
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"request-id: r-1\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )
        await writer.drain()
        writer.close()

    async def run() -> httpx.Response:
        server, base = await _serve(handler)
        transport = AiohttpTransport()
        try:
            async with httpx.AsyncClient(transport=transport) as http:
                return await http.post(
                    f"{base}/v1.0/x?a=1",
                    json={"subject": "é"},
                    headers={"Authorization": "Bearer tok", "client-request-id": "c-1"},
                )
        finally:
            server.close()

    response = asyncio.run(run())
    assert response.status_code == 200 and response.json() == {"value": [1, 2, 3]}
    assert response.headers["request-id"] == "r-1"
    head = [h.lower() for h in seen["head"]]  # type: ignore[union-attr]
    assert head[0] == "post /v1.0/x?a=1 http/1.1"
    assert "authorization: bearer tok" in head and "client-request-id: c-1" in head
    assert sum(1 for h in head if h.startswith("host:")) == 1
    assert json.loads(seen["body"]) == {"subject": "é"}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [("silent", httpx.ReadTimeout), ("hang-up", httpx.RemoteProtocolError)],
)
def test_failures_after_sending_are_the_httpx_errors_retries_know(behaviour, expected):
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        if behaviour == "silent":
            await asyncio.sleep(2)
        writer.close()

    async def run() -> None:
        server, base = await _serve(handler)
        try:
            async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=0.3) as http:
                await http.get(f"{base}/")
        finally:
            server.close()

    with pytest.raises(expected):
        asyncio.run(run())


def test_nothing_listening_is_a_connect_error_and_a_closed_transport_refuses():
    async def run() -> None:
        transport = AiohttpTransport()
        async with httpx.AsyncClient(transport=transport, timeout=2) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get("http://127.0.0.1:9/")
        with pytest.raises(RuntimeError, match="closed"):
            await transport.handle_async_request(httpx.Request("GET", "http://127.0.0.1:9/"))
        assert "tok" not in repr(transport)

    asyncio.run(run())
