"""Sandbox: sustained createOrGet throughput over keep-alive HTTPS, and memory with 100,000 meetings.

Targets: at least 500 requests/s from one client process on this machine, and under 500 MB of
resident memory for the sandbox holding 100,000 meetings.

The sandbox runs in a child process (``SandboxServer`` over TLS on 127.0.0.1, no state folder), so
client and server do not share a GIL. The client is one process: httpx over HTTP/1.1 keep-alive
with a real MSAL token (certificate credential) for an app whose organizers hold the application
access policy, so every request goes through TLS, JWT verification, throttling/fault checks, the
policy engine and the meeting store. Measured, in the same run:

1. createOrGet creating new meetings (201), C concurrent connections, for a fixed time;
2. createOrGet returning existing meetings (200);
3. GET of one meeting (200), for comparison;
4. the server's RSS before any meeting, then with 100,000 meetings stored: those created over
   HTTPS plus the rest created inside the server process through the same ``MeetingStore``
   (``createOrGet`` with an attendee, a subject and an externalId, like the HTTP requests).

``python benchmarks/bench_sandbox_meetings.py [--seconds 8] [--connections 8] [--meetings 100000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

TARGET_RPS = 500.0
TARGET_MB = 500.0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _server(conn: Connection) -> None:
    """Child process: run the sandbox; answer ``rss``, ``fill`` and ``stop`` commands."""
    from meetgate_sandbox.meetings import MeetingStore, Organizer
    from meetgate_sandbox.server import SandboxOptions, SandboxServer

    with SandboxServer(SandboxOptions(users=20)) as server:
        info = server.info
        conn.send({"control_url": info.control_url, "ca_bundle": str(info.ca_bundle), "url": info.graph_url})
        while True:
            command, arg = conn.recv()
            if command == "rss":
                conn.send(_rss_mb())
            elif command == "cpu":
                conn.send(time.process_time())
            elif command == "count":
                (tenant_id,) = arg
                store = _store(server, tenant_id)
                conn.send(len(store))
            elif command == "fill":
                tenant_id, users, target = arg
                store = _store(server, tenant_id)
                assert isinstance(store, MeetingStore)
                organizers = [Organizer(u["id"], u["upn"], u["name"]) for u in users]
                index = 0
                while len(store) < target:
                    organizer = organizers[index % len(organizers)]
                    body = {
                        "externalId": f"fill-{index}",
                        "subject": f"Appointment {index}",
                        "participants": {"attendees": [{"upn": f"customer{index}@example.com"}]},
                    }
                    store.create_or_get(organizer, body)
                    index += 1
                conn.send(len(store))
            elif command == "stop":
                conn.send("bye")
                return


def _store(server: Any, tenant_id: str) -> Any:
    # the benchmark reaches into its own child's server to fill the store quickly
    app = server._server.config.app
    return app.state.sandbox.state.tenants[tenant_id].extensions["meetings"]


def _setup(control_url: str, ca_bundle: str, workdir: Path) -> dict[str, Any]:
    import httpx
    import msal

    from meetgate import certificates
    from meetgate.graph.msal_http import MsalHttpxAdapter
    from meetgate_sandbox.control import SandboxControl, ssl_context

    control = SandboxControl(control_url, Path(ca_bundle))
    tenant = control.create_tenant(users=20)
    tid = tenant["tenantId"]
    pair = certificates.generate_self_signed("bench")
    cert_pem = certificates.certificate_pem(pair.certificate)
    app = control.register_app(tid, "Bench", certificate_pem=cert_pem, roles=["OnlineMeetings.ReadWrite.All"])
    control.create_policy(tid, "Tag:Bench", [app["appId"]])
    users = [u for u in tenant["users"] if u["accountEnabled"]][:10]
    for user in users:
        control.grant_policy(tid, "Bench", user=user["id"])
    authority = control_url.removesuffix("/_sandbox")
    with httpx.Client(verify=ssl_context(ca_bundle)) as http:
        msal_app = msal.ConfidentialClientApplication(
            app["appId"],
            client_credential={
                "private_key": certificates.private_key_pem(pair.private_key).decode(),
                "public_certificate": cert_pem.decode(),
            },
            authority=f"{authority}/{tid}",
            instance_discovery=False,
            http_client=MsalHttpxAdapter(http),
        )
        token = msal_app.acquire_token_for_client(["https://graph.microsoft.com/.default"])["access_token"]
    control.close()
    return {
        "tenant_id": tid,
        "token": token,
        "users": [{"id": u["id"], "upn": u["userPrincipalName"], "name": u["displayName"]} for u in users],
    }


def _measured(parent: Connection, run: Any) -> dict[str, Any]:
    """Run a load and add the server's CPU time per request (all its threads) and the client's."""
    parent.send(("cpu", None))
    server_before = parent.recv()
    client_before = time.process_time()
    result: dict[str, Any] = asyncio.run(run)
    client_cpu = time.process_time() - client_before
    parent.send(("cpu", None))
    server_cpu = parent.recv() - server_before
    result["server_cpu_ms"] = server_cpu * 1000 / result["requests"]
    result["client_cpu_ms"] = client_cpu * 1000 / result["requests"]
    return result


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client over TLS (like wrk): the load generator must not be the
    bottleneck, and httpx spends several times the server's CPU per request."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, token: str
    ) -> None:
        self.reader, self.writer = reader, writer
        self.prefix = f"Host: {host}\r\nAuthorization: Bearer {token}\r\n".encode()

    @classmethod
    async def open(cls, url: str, ca_bundle: str, token: str) -> RawConnection:
        from meetgate_sandbox.control import ssl_context

        host_port = url.removeprefix("https://")
        host, port = host_port.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port), ssl=ssl_context(ca_bundle))
        return cls(reader, writer, host_port, token)

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self.prefix
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        self.writer.write(head + b"\r\n" + (body or b""))
        headers = await self.reader.readuntil(b"\r\n\r\n")
        status = int(headers[9:12])
        length = 0
        for line in headers.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()


async def _load(
    url: str,
    ca_bundle: str,
    token: str,
    paths: list[str],
    make_body: Any,
    seconds: float,
    connections: int,
    client: str = "raw",
) -> dict[str, Any]:
    import httpx

    from meetgate_sandbox.control import ssl_context

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = 0
    deadline = 0.0

    async def one(send: Any) -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            counter += 1
            n = counter
            path = paths[n % len(paths)]
            body = None if make_body is None else json.dumps(make_body(n)).encode()
            started = time.perf_counter()
            status = await send(path, body)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    if client == "raw":
        pool = [await RawConnection.open(url, ca_bundle, token) for _ in range(connections)]

        def sender(conn: RawConnection) -> Any:
            async def send(path: str, body: bytes | None) -> int:
                status, _ = await conn.request("GET" if body is None else "POST", path, body)
                return status

            return send

        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(one(sender(c)) for c in pool))
        elapsed = time.perf_counter() - started
        for conn in pool:
            await conn.close()
    else:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(
            base_url=url,
            verify=ssl_context(ca_bundle),
            limits=limits,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as http:

            async def send(path: str, body: bytes | None) -> int:
                if body is None:
                    response = await http.get(path)
                else:
                    response = await http.post(
                        path, content=body, headers={"Content-Type": "application/json"}
                    )
                return response.status_code

            # open every connection first (TLS handshakes are not what is measured)
            await asyncio.gather(*(http.get("/v1.0/users/x/onlineMeetings/y") for _ in range(connections)))
            deadline = time.perf_counter() + seconds
            started = time.perf_counter()
            await asyncio.gather(*(one(send) for _ in range(connections)))
            elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000,
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--meetings", type=int, default=100_000)
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_server, args=(child,), daemon=True)
    process.start()
    try:
        info = parent.recv()
        with tempfile.TemporaryDirectory() as workdir:
            setup = _setup(info["control_url"], info["ca_bundle"], Path(workdir))
        tid, token, users = setup["tenant_id"], setup["token"], setup["users"]
        parent.send(("rss", None))
        rss_empty = parent.recv()
        create_paths = [f"/v1.0/users/{u['id']}/onlineMeetings/createOrGet" for u in users]

        def new_body(n: int) -> dict[str, Any]:
            return {
                "externalId": f"http-{n}",
                "subject": f"Appointment {n}",
                "participants": {"attendees": [{"upn": f"customer{n}@example.com"}]},
            }

        def existing_body(n: int) -> dict[str, Any]:
            # one of the first ~110 created above, with the organizer it was created for (path n % users)
            count = len(users)
            return {"externalId": f"http-{count * ((n // count) % 10 + 1) + n % count}", "subject": "again"}

        results = {}
        results["createOrGet, new meeting (201)"] = _measured(
            parent,
            _load(
                info["url"], info["ca_bundle"], token, create_paths, new_body, args.seconds, args.connections
            ),
        )
        results["createOrGet, existing meeting (200)"] = _measured(
            parent,
            _load(
                info["url"],
                info["ca_bundle"],
                token,
                create_paths,
                existing_body,
                args.seconds,
                args.connections,
            ),
        )
        import httpx

        from meetgate_sandbox.control import ssl_context

        results["createOrGet, existing meeting (200), httpx.AsyncClient"] = _measured(
            parent,
            _load(
                info["url"],
                info["ca_bundle"],
                token,
                create_paths,
                existing_body,
                args.seconds,
                args.connections,
                client="httpx",
            ),
        )
        with httpx.Client(verify=ssl_context(info["ca_bundle"])) as http:
            one = http.post(
                f"{info['url']}{create_paths[0]}",
                json={"externalId": "http-1"},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
        get_paths = [f"/v1.0/users/{users[0]['id']}/onlineMeetings/{one['id']}"]
        results["GET one meeting (200)"] = _measured(
            parent,
            _load(info["url"], info["ca_bundle"], token, get_paths, None, args.seconds, args.connections),
        )
        parent.send(("count", (tid,)))
        over_http = parent.recv()
        started = time.perf_counter()
        parent.send(("fill", (tid, users, args.meetings)))
        stored = parent.recv()
        fill_s = time.perf_counter() - started
        parent.send(("rss", None))
        rss_full = parent.recv()
        parent.send(("stop", None))
        parent.recv()
    finally:
        process.join(timeout=20)
        if process.is_alive():
            process.terminate()

    print(
        f"sandbox benchmark — {args.connections} keep-alive HTTPS connections, {args.seconds:.0f} s per run"
    )
    print()
    print(
        f"| workload | requests | req/s | p50 ms | p95 ms | statuses | server CPU ms/req | "
        f"server capacity req/s per core | client CPU ms/req | target ≥ {TARGET_RPS:.0f} req/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        verdict = "pass" if r["rps"] >= TARGET_RPS else "MISS"
        statuses = ", ".join(f"{k}×{v}" for k, v in sorted(r["statuses"].items()))
        verdict_cell = verdict if name.startswith("createOrGet") and "httpx" not in name else "(comparison)"
        print(
            f"| {name} | {r['requests']:.0f} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} "
            f"| {statuses} | {r['server_cpu_ms']:.2f} | {1000 / r['server_cpu_ms']:.0f} | {r['client_cpu_ms']:.2f} "
            f"| {verdict_cell} |"
        )
    print()
    print(f"| memory | MB | target < {TARGET_MB:.0f} MB |")
    print("|---|---|---|")
    print(f"| server RSS, no meetings | {rss_empty:.0f} | |")
    print(
        f"| server RSS, {stored:,} meetings ({over_http:,} over HTTPS, the rest in-process in {fill_s:.1f} s) "
        f"| {rss_full:.0f} | {'pass' if rss_full < TARGET_MB else 'MISS'} |"
    )
    print(f"| per meeting | {(rss_full - rss_empty) * 1024 / max(stored, 1):.2f} KB | |")


if __name__ == "__main__":
    main()
