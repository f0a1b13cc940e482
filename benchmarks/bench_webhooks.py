"""Webhooks: delivery latency to a healthy local receiver, from publication to arrival.

Target: p99 under 1 s. One gateway-side process holds the store (SQLite file, or ``--store-url``
PostgreSQL), the publisher and the delivery worker exactly as ``create_app`` wires them (the worker
woken by each publication); the receiver is a small HTTP/1.1 server in a child process (no shared GIL)
that answers 204 and notes when each event arrived. Events are published at ``--rate`` per second for
``--seconds`` to ``--endpoints`` endpoints of one consumer, each persisted before ``publish_event``
returns; latency is the receiver's arrival time minus the publication's start (one machine's clock).

``python benchmarks/bench_webhooks.py [--rate 50] [--seconds 20] [--endpoints 4] [--store-url URL]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

TARGET_P99_S = 1.0


def _receiver(conn: Connection) -> None:
    """An HTTP server on 127.0.0.1: 204 to every POST; sends its port, then (on "stop") the arrivals."""
    arrivals: list[tuple[str, float]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, event = 0, ""
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "meetgate-event-id":
                        event = value.strip()
                await reader.readexactly(length)
                arrivals.append((event, time.time()))
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)
        conn.send(arrivals)
        server.close()

    asyncio.run(main())


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _run(
    args: argparse.Namespace, port: int, store_url: str
) -> tuple[dict[str, float], dict[str, float]]:
    """Publish at the rate, let the worker deliver; returns (figures, event id → publication time)."""
    import httpx

    from meetgate.gateway.consumers import ConsumerAdmin
    from meetgate.gateway.scope import StaticPolicyScope
    from meetgate.gateway.webhooks.events import WebhookPublisher
    from meetgate.gateway.webhooks.manage import WebhookAdmin, secret_box_factory
    from meetgate.gateway.webhooks.worker import USER_AGENT, DeliveryWorker, WorkerSettings
    from meetgate.store import Store
    from meetgate.store.webhooks import WebhookStore

    store = Store.open(store_url)
    box = secret_box_factory(
        "q1xJ2i0qkq1K0mV3f0m1oGm2zq8xA6uY1cVQmX3n7dE=", Path(tempfile.gettempdir()) / "x.key"
    )
    consumer = ConsumerAdmin(store, StaticPolicyScope(["a@contoso.test"])).add(
        f"bench-{os.getpid()}-{time.time_ns()}", organizers=["a@contoso.test"]
    )
    admin = WebhookAdmin(store, box, allow_local_http=True, resolve=None)
    for n in range(args.endpoints):
        admin.add(consumer.consumer.id, f"http://127.0.0.1:{port}/hook/{n}", ["recording.ready"])
    hooks = WebhookStore(store)
    client = httpx.AsyncClient(
        timeout=10, headers={"User-Agent": USER_AGENT}, limits=httpx.Limits(max_keepalive_connections=64)
    )
    worker = DeliveryWorker(
        hooks, box, settings=WorkerSettings(allow_local_http=True), client=client, resolve=None
    )
    publisher = WebhookPublisher(hooks, wake=worker.wake)
    worker.start()
    published: dict[str, float] = {}
    total = int(args.rate * args.seconds)
    started = time.monotonic()
    publish_ms: list[float] = []
    for n in range(total):
        due = started + n / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        at = time.time()
        if store.inline:
            event = publisher.publish_event(consumer.consumer.id, "recording.ready", None, {"n": n})
        else:
            event = await asyncio.to_thread(
                publisher.publish_event, consumer.consumer.id, "recording.ready", None, {"n": n}
            )
        publish_ms.append((time.time() - at) * 1000)
        published[event] = at
    deadline = time.monotonic() + 120
    while hooks.pending_count() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await worker.stop()
    await client.aclose()
    store.close()
    return {"events": float(total), "publish_p99_ms": _percentile(publish_ms, 0.99)}, published


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="events published per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--endpoints", type=int, default=4)
    parser.add_argument("--store-url", default=None, help="default: an SQLite file in a temporary folder")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_receiver, args=(child,), daemon=True)
    proc.start()
    port = parent.recv()
    with tempfile.TemporaryDirectory() as folder:
        store_url = args.store_url or f"sqlite:///{folder}/bench.db"
        stats, published = asyncio.run(_run(args, port, store_url))
    parent.send("stop")
    arrivals: list[tuple[str, float]] = parent.recv()
    proc.join(10)
    latencies = [at - published[event] for event, at in arrivals if event in published]
    expected = int(stats["events"]) * args.endpoints
    p99 = _percentile(latencies, 0.99)
    result = {
        "store": "postgresql" if args.store_url else "sqlite",
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "endpoints": args.endpoints,
        "deliveries_expected": expected,
        "deliveries_received": len(latencies),
        "publish_p99_ms": round(stats["publish_p99_ms"], 2),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "latency_p95_ms": round(_percentile(latencies, 0.95) * 1000, 1),
        "latency_p99_ms": round(p99 * 1000, 1),
        "latency_max_ms": round(max(latencies) * 1000, 1),
        "target_p99_ms": TARGET_P99_S * 1000,
        "meets_target": p99 < TARGET_P99_S and len(latencies) == expected,
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
