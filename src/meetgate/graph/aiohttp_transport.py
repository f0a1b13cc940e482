"""An httpx transport that sends through aiohttp: the async Graph client at a fraction of the CPU.

``AsyncGraphClient(settings, transport=AiohttpTransport(ssl_context=...))`` keeps everything the
client does (plans, retries, tokens, errors) and replaces only the wire: aiohttp's C HTTP parser and
the event loop's own TLS instead of httpcore's pure-Python HTTP/1.1 and anyio's TLS stream. Measured in
``benchmarks/bench_gateway.py``; the gateway uses it for every call to Graph.

HTTP/1.1 only (a pool of keep-alive connections). Failures are raised as the httpx exceptions the
client's retry rules know, split the same way: :class:`httpx.ConnectError` /
:class:`httpx.ConnectTimeout` when the request cannot have been sent (safe to retry for any method),
:class:`httpx.ReadTimeout`, :class:`httpx.ReadError` or :class:`httpx.RemoteProtocolError` when it
may have been (retried only for requests safe to repeat).

The aiohttp session is opened on the first request, on the running event loop, so one transport
serves one event loop. Needs ``aiohttp`` (installed with ``meetgate[gateway]``).
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import httpx

#: request headers aiohttp writes itself from the URL and the body
_SKIP_HEADERS = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    """httpx's per-request timeouts (``request.extensions["timeout"]``) as aiohttp's."""
    limits: dict[str, float | None] = request.extensions.get("timeout", {})
    connect = limits.get("connect")
    pool = limits.get("pool")
    return aiohttp.ClientTimeout(
        total=None,
        connect=None if connect is None and pool is None else (connect or 0) + (pool or 0),
        sock_connect=connect,
        sock_read=limits.get("read"),
    )


def _translate(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """An aiohttp failure as the httpx exception of the same meaning (the message never carries
    headers or body, so no token can leak through it)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # waiting for a pooled or new connection
        return httpx.ConnectTimeout(text, request=request)
    if isinstance(exc, TimeoutError):  # the response did not come in time: it may have been sent
        return httpx.ReadTimeout(text, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text, request=request)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return httpx.RemoteProtocolError(text, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):  # a malformed status line or headers
        return httpx.RemoteProtocolError(text, request=request)
    return httpx.ReadError(text, request=request)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests with an aiohttp connection pool (see the module docstring)."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 400,
        keepalive_seconds: float = 30.0,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._max_connections = max_connections
        self._keepalive = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"AiohttpTransport(max_connections={self._max_connections})"

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the transport is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                ssl=self._ssl,
                limit=self._max_connections,
                limit_per_host=self._max_connections,
                keepalive_timeout=self._keepalive,
                enable_cleanup_closed=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes by Content-Encoding
                trust_env=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        body = await request.aread()
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower() not in _SKIP_HEADERS
        ]
        try:
            async with session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                timeout=_timeout(request),
                allow_redirects=False,
                compress=None,
            ) as response:
                content = await response.read()
                return httpx.Response(
                    response.status,
                    headers=list(response.raw_headers),
                    content=content,
                    request=request,
                    extensions={
                        "http_version": b"HTTP/1.1",
                        "reason_phrase": (response.reason or "").encode(),
                    },
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _translate(exc, request) from None

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            await asyncio.sleep(0)  # let the connector close its sockets before the loop goes away
