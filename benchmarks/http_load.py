"""A small, CPU-cheap HTTP/1.1 load generator for the benchmarks.

A general-purpose client (httpx) spends about as much CPU per request as the server it measures, so on a
2-core machine it becomes the bottleneck. This one does the least a benchmark needs:

- one persistent keep-alive connection per worker (plain asyncio streams, uvloop when installed);
- request bytes written by hand (:func:`build_request`), the variable parts only per request;
- a small response parser: status line, headers up to CRLFCRLF, then a Content-Length, chunked or
  close-delimited body; the connection is reopened when the server closes it;
- errors (refused, reset, timeout, malformed answer) counted as status 0, never raised.

:func:`drive` runs ``count`` calls either closed-loop (each worker starts its next call when the previous
one ends: the maximum throughput) or open-loop at a fixed arrival rate (call ``i`` is due at
``start + i / rate``, at most one call in flight per worker). At a fixed rate a call's latency counts from
its due time, not from when a worker got to it, so a server that falls behind shows the queueing in its
percentiles instead of hiding it. The process CPU time spent during the run is measured too, so a report
can say how much of the machine the load generator itself took.

    from http_load import HttpLoad, build_request, drive, run

    async def main() -> None:
        async with HttpLoad("127.0.0.1", 8000, connections=64) as load:
            result = await drive(load.calls(lambda i: build_request("GET", "/", host=load.host_header)), 1000)
        print(result.per_second, result.percentile(0.99))

    run(main())
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

Call = Callable[[int], Awaitable[int]]
"""One worker's way to make call ``i``; returns the HTTP status (0: no answer)."""

_NO_BODY_STATUSES = frozenset({204, 304})


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a uvloop event loop when uvloop is installed, else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def build_request(
    method: str, path: str, *, host: str, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> bytes:
    """The bytes of one HTTP/1.1 request; Content-Length is added when there is a body (or a method
    that normally has one)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if headers:
        lines.extend(f"{name}: {value}" for name, value in headers.items())
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 this parser understands."""


class Connection:
    """One keep-alive HTTP/1.1 connection, opened on first use and reopened after the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = False  # a response was read on the current socket

    async def open(self) -> None:
        """Connect now (rather than on the first request)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self._used = False

    def close(self) -> None:
        """Drop the socket; the next request opens a new one."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(self, raw: bytes) -> int:
        """Send ``raw`` (a whole request) and read the answer; returns its status code. A reused
        connection the server closed while idle is reopened and the request sent once more."""
        for attempt in (1, 2):
            await self.open()
            reader, writer = self._reader, self._writer
            assert reader is not None and writer is not None
            reused = self._used
            try:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                self.close()
                if attempt == 1 and reused and not getattr(exc, "partial", b""):
                    continue  # closed while idle (keep-alive timeout): nothing was answered
                raise
            except BaseException:
                self.close()
                raise
            try:
                status, keep_alive = await self._read_rest(reader, head)
            except BaseException:
                self.close()
                raise
            if keep_alive:
                self._used = True
            else:
                self.close()
            return status
        raise AssertionError("unreachable")

    @staticmethod
    async def _read_rest(reader: asyncio.StreamReader, head: bytes) -> tuple[int, bool]:
        """Parse the status line and headers in ``head`` and consume the body; returns the status and
        whether the connection stays open."""
        lines = head[:-4].split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            raise ProtocolError(f"bad status line {status_line[:40]!r}")
        status = int(status_line[9:12])
        keep_alive = status_line[7:8] == b"1"  # HTTP/1.1 keeps the connection open by default
        length: int | None = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep_alive = b"close" not in value.lower()
        if status < 200 or status in _NO_BODY_STATUSES:
            return status, keep_alive
        if chunked:
            await Connection._read_chunked(reader)
        elif length is not None:
            if length:
                await reader.readexactly(length)
        else:  # no length: the body ends when the server closes
            await reader.read()
            keep_alive = False
        return status, keep_alive

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> None:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the empty line
                    pass
                return
            await reader.readexactly(size + 2)  # the chunk and its CRLF


class HttpLoad:
    """``connections`` keep-alive connections to one server, opened on entering, closed on leaving."""

    def __init__(self, host: str, port: int, *, connections: int) -> None:
        self.host = host
        self.port = port
        self.host_header = f"{host}:{port}"
        self.connections = [Connection(host, port) for _ in range(connections)]

    async def __aenter__(self) -> HttpLoad:
        await asyncio.gather(*(c.open() for c in self.connections))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for c in self.connections:
            c.close()

    def calls(self, make_request: Callable[[int], bytes]) -> list[Call]:
        """One call per connection for :func:`drive`: call ``i`` sends ``make_request(i)``."""

        def call_on(connection: Connection) -> Call:
            async def call(i: int) -> int:
                return await connection.request(make_request(i))

            return call

        return [call_on(c) for c in self.connections]


@dataclass
class LoadResult:
    """What one :func:`drive` run measured."""

    latencies: list[float]
    """Seconds per call: from its start (closed loop) or its due time (fixed rate) to its answer."""
    elapsed: float
    """Seconds from the first call's start to the last answer."""
    statuses: dict[int, int]
    cpu_seconds: float
    """CPU time (user + system) this process spent during the run."""
    offered_rate: float | None = None
    start_lags: list[float] = field(default_factory=list)
    """At a fixed rate: seconds each call started after its due time (all workers were busy)."""

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    @property
    def cpu_ms_per_call(self) -> float:
        return self.cpu_seconds * 1000 / self.count if self.count else 0.0

    @property
    def cpu_cores(self) -> float:
        """The share of one core this process used while the run lasted."""
        return self.cpu_seconds / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float, values: list[float] | None = None) -> float:
        """The ``q`` quantile (0..1) of ``values`` (default: the latencies), in seconds."""
        ordered = sorted(self.latencies if values is None else values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def drive(
    calls: Sequence[Call], count: int, *, rate: float | None = None, timeout: float = 60.0
) -> LoadResult:
    """Make calls ``0..count-1``, one worker per entry of ``calls`` (so ``len(calls)`` in flight at most).

    Closed loop without ``rate``; with it, call ``i`` is due ``i / rate`` seconds after the start. A call
    that raises or takes longer than ``timeout`` counts as status 0.
    """
    latencies: list[float] = []
    lags: list[float] = []
    statuses: dict[int, int] = {}
    next_index = 0
    clock = time.perf_counter

    async def worker(call: Call) -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            if rate:
                due = started + i / rate
                delay = due - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                begun = due
                lags.append(max(0.0, clock() - due))
            else:
                begun = clock()
            try:
                async with asyncio.timeout(timeout):
                    status = await call(i)
            except Exception:
                status = 0
            latencies.append(clock() - begun)
            statuses[status] = statuses.get(status, 0) + 1

    cpu_before = time.process_time()
    started = clock()
    await asyncio.gather(*(worker(call) for call in calls))
    elapsed = clock() - started
    return LoadResult(
        latencies=latencies,
        elapsed=elapsed,
        statuses=dict(sorted(statuses.items())),
        cpu_seconds=time.process_time() - cpu_before,
        offered_rate=rate,
        start_lags=lags,
    )
