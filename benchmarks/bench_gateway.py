"""Gateway throughput and overhead with the sandbox adding 200 ms to every Graph call.

Three processes on 127.0.0.1 share the machine: the sandbox (`meetgate sandbox serve --latency-ms 200`),
one gateway (`meetgate serve`, SQLite store, in-process limits) and this load generator. Measured in
one run:

1. direct: the async Graph client calling createOrGet on the sandbox (the latency floor),
2. gateway: the same number of creations through `POST /v1/meetings` at the same concurrency,
3. gateway alone: the same through a gateway whose Graph is the in-memory fake with the same latency
   (the gateway's own capacity, without the sandbox's CPU),
4. machine baseline: `GET /` on a bare ASGI app under uvicorn (what any server process gets here;
   at least 20 000 calls, as they take a few ms each).

Phases 2-4 use the small keep-alive HTTP/1.1 client in `http_load.py` (uvloop, one connection per
worker, hand-written requests), so that the load generator takes little of the 2 cores. Each phase
reports the load generator's own CPU per request (in the direct phase: the Graph client's) and the share
of a core it used; the direct and gateway phases also report the sandbox process's CPU per request.

Workers run closed-loop (`--concurrency` calls in flight: the maximum throughput). With `--rate R`,
phases 1-3 run a second time open-loop at a fixed arrival rate of R calls/s (at most `--concurrency` in
flight), latency counted from each call's due time, so queueing behind a saturated server shows in the
percentiles: `--rate 200` checks the target at the offered load it names.

Targets (issue 7): at least 200 creations/s through one gateway process, and p99 of
(gateway latency − 200 ms sandbox latency) under 50 ms.

    python benchmarks/bench_gateway.py [--count 2000] [--concurrency 64] [--rate 200] [--latency-ms 200]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from http_load import HttpLoad, LoadResult, build_request, drive, run

from meetgate import certificates
from meetgate.composition import graph_settings_from_profile
from meetgate.config import Profile
from meetgate.gateway.consumers import ConsumerAdmin
from meetgate.gateway.graph_transport import ObservedGraphTransport
from meetgate.gateway.metrics import GatewayMetrics
from meetgate.gateway.scope import StaticPolicyScope
from meetgate.graph.client import AsyncGraphClient
from meetgate.graph.models import MeetingRequest
from meetgate.store import Store
from meetgate_sandbox.control import SandboxControl
from meetgate_sandbox.server import read_info

POLICY = "Tag:TeamsMeetingsIntegration"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(name: str, result: LoadResult) -> dict[str, object]:
    """One phase's row: rate, latency percentiles, statuses and the load generator's CPU."""
    row: dict[str, object] = {
        "name": name,
        "count": result.count,
        "per_second": round(result.per_second, 1),
        "p50_ms": round(result.percentile(0.50) * 1000, 1),
        "p90_ms": round(result.percentile(0.90) * 1000, 1),
        "p99_ms": round(result.percentile(0.99) * 1000, 1),
        "max_ms": round(max(result.latencies) * 1000, 1),
        "statuses": result.statuses,
        "offered_rate": result.offered_rate,
        "loadgen_cpu_ms_per_request": round(result.cpu_ms_per_call, 3),
        "loadgen_cpu_cores": round(result.cpu_cores, 2),
    }
    if result.offered_rate:
        row["start_lag_p99_ms"] = round(result.percentile(0.99, result.start_lags) * 1000, 1)
    return row


async def measured(
    phase: Callable[[], Awaitable[LoadResult]], name: str, count: int, pids: dict[str, int]
) -> dict[str, object]:
    """Run ``phase`` and add each process's CPU per request (``pids``: key prefix → pid) to its row."""
    before = {key: cpu_seconds(pid) for key, pid in pids.items()}
    result = await phase()
    row = summary(name, result)
    for key, pid in pids.items():
        row[f"{key}_cpu_ms_per_request"] = round((cpu_seconds(pid) - before[key]) * 1000 / count, 2)
    return row


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEETGATE_")}
    with log.open("wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)


def wait_for(check, what: str, log: Path, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start in {timeout}s:\n{log.read_text()[-2000:]}")


def serve_fake(db: str, port: int, latency_ms: float, organizers: list[str]) -> None:
    """A gateway process whose Graph is the in-memory fake with the same added latency: the
    gateway's own capacity, apart from the sandbox's."""
    import logging

    import uvicorn

    from meetgate.gateway.app import create_app
    from meetgate.gateway.settings import GatewaySettings
    from meetgate_sandbox.fakes.meetings import InMemoryMeetings

    logging.disable(logging.INFO)
    settings = GatewaySettings(
        store_url=f"sqlite:///{db}",
        default_consumer_rate_per_minute=1_000_000,
        organizer_rate_per_minute=None,
        organizer_daily_quota=None,
        graph_rate_per_second=None,
    )
    scope = StaticPolicyScope(organizers)
    graph = InMemoryMeetings(scope=scope, latency_seconds=latency_ms / 1000)
    uvicorn.run(
        create_app(settings, meetings=graph, scope=scope), host="127.0.0.1", port=port, log_level="warning"
    )


def serve_hello(port: int) -> None:
    """A bare ASGI app answering 200: what this machine gives any uvicorn process right now."""
    import uvicorn

    async def hello(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": b"ok"})

    uvicorn.run(hello, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-hello":
        serve_hello(int(sys.argv[2]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-fake":
        serve_fake(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5].split(","))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--rate",
        type=float,
        help="also run each phase at this fixed arrival rate (calls/s, at most --concurrency in flight)",
    )
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="meetgate-bench-gateway-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        sandbox_dir = work / "sandbox"
        sandbox_log = work / "sandbox.log"
        meetgate = [sys.executable, "-m", "meetgate"]
        processes.append(
            start(
                [*meetgate, "sandbox", "serve", "--state", str(sandbox_dir), "--port", str(free_port()),
                 "--users", "12", "--no-save", "--latency-ms", str(args.latency_ms)],
                sandbox_log,
            )
        )  # fmt: skip
        wait_for(lambda: (sandbox_dir / "sandbox.json").exists(), "the sandbox", sandbox_log)
        info = read_info(sandbox_dir)
        control = SandboxControl(info.control_url, info.ca_bundle)
        wait_for(lambda: control.health() is not None, "the sandbox control API", sandbox_log)

        pair = certificates.generate_self_signed()
        key_path, cert_path = work / "app.key.pem", work / "app.pem"
        certificates.write_secret_file(key_path, certificates.private_key_pem(pair.private_key))
        cert_pem = certificates.certificate_pem(pair.certificate)
        certificates.write_public_file(cert_path, cert_pem)
        tenant = control.create_tenant(users=12)
        app = control.register_app(
            tenant["tenantId"],
            "bench",
            certificate_pem=cert_pem,
            roles=["OnlineMeetings.ReadWrite.All", "User.Read.All"],
        )
        control.create_policy(tenant["tenantId"], POLICY, [app["appId"]], "bench")
        organizers = [u["userPrincipalName"] for u in tenant["users"][:4]]
        for upn in organizers:
            control.grant_policy(tenant["tenantId"], POLICY.removeprefix("Tag:"), user=upn)

        store_url = f"sqlite:///{work}/gateway.db"
        config = work / "meetgate.toml"
        config.write_text(
            "[profiles.default]\n"
            f'tenant_id = "{tenant["tenantId"]}"\nclient_id = "{app["appId"]}"\n'
            f'private_key_path = "{key_path}"\ncertificate_path = "{cert_path}"\n'
            f'ca_bundle = "{info.ca_bundle}"\nauthority_url = "{info.authority_url}"\n'
            f'graph_url = "{info.graph_url}"\nstore_url = "{store_url}"\n'
        )
        store = Store.open(store_url)
        api_key = (
            ConsumerAdmin(store, StaticPolicyScope(organizers)).add("bench", organizers=organizers).api_key
        )
        (work / "policy-scope.toml").write_text(
            f'[policy]\nidentity = "{POLICY}"\napp_ids = ["{app["appId"]}"]\n\n'
            f"[organizers]\nusers = {json.dumps(organizers)}\n"
        )
        with config.open("a") as fh:
            fh.write(f'policy_file = "{work / "policy-scope.toml"}"\n')
        store.close()

        port = free_port()
        gateway_log = work / "gateway.log"
        processes.append(
            start(
                [*meetgate, "--config", str(config), "serve", "--port", str(port), "--graph-rps", "0",
                 "--organizer-rate", "0", "--organizer-quota", "0", "--default-rate", "1000000",
                 "--log-level", "warning"],
                gateway_log,
            )
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200, "the gateway", gateway_log
        )

        profile = Profile(
            tenant_id=tenant["tenantId"], client_id=app["appId"], private_key_path=key_path,
            certificate_path=cert_path, ca_bundle=info.ca_bundle, authority_url=info.authority_url,
            graph_url=info.graph_url,
        )  # fmt: skip

        rates = [None, args.rate] if args.rate else [None]

        def label(name: str, rate: float | None) -> str:
            return name.replace(":", f" @ {rate:g}/s:", 1) if rate else name

        async def direct() -> list[dict[str, object]]:
            settings = graph_settings_from_profile(profile)
            # the same connection pool as the gateway's, so the two paths differ only by the gateway
            transport = ObservedGraphTransport.for_graph(GatewayMetrics(), ca_bundle=settings.ca_bundle)
            async with AsyncGraphClient(settings, transport=transport) as client:
                await client.meetings.create_or_get(
                    organizers[0], "warm-" + uuid.uuid4().hex, MeetingRequest()
                )

                async def call(i: int) -> int:
                    await client.meetings.create_or_get(
                        organizers[i % len(organizers)],
                        uuid.uuid4().hex,
                        MeetingRequest(subject=f"direct {i}"),
                    )
                    return 201

                return [
                    await measured(
                        lambda rate=rate: drive([call] * args.concurrency, args.count, rate=rate),
                        label("direct: Graph client → sandbox", rate),
                        args.count,
                        {"sandbox": sandbox_pid},
                    )
                    for rate in rates
                ]

        async def through_gateway(
            port: int, api_key: str, name: str, pids: dict[str, int]
        ) -> list[dict[str, object]]:
            async with HttpLoad("127.0.0.1", port, connections=args.concurrency) as load:
                prefix = (
                    f"POST /v1/meetings HTTP/1.1\r\nHost: {load.host_header}\r\n"
                    f"Content-Type: application/json\r\nAuthorization: Bearer {api_key}\r\n"
                ).encode()

                def request(i: int) -> bytes:
                    body = json.dumps(
                        {"organizer": organizers[i % len(organizers)], "subject": f"gateway {i}"}
                    ).encode()
                    return b"%sIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s" % (
                        prefix,
                        uuid.uuid4().hex.encode(),
                        len(body),
                        body,
                    )

                calls = load.calls(request)
                await drive(calls, min(200, args.count))  # warm-up
                return [
                    await measured(
                        lambda rate=rate: drive(calls, args.count, rate=rate),
                        label(name, rate),
                        args.count,
                        pids,
                    )
                    for rate in rates
                ]

        sandbox_pid = processes[0].pid
        direct_rows = run(direct())
        gateway_rows = run(
            through_gateway(
                port,
                api_key,
                "gateway: HTTP → gateway → sandbox",
                {"gateway": processes[1].pid, "sandbox": sandbox_pid},
            )
        )

        # the gateway's own capacity: the same, with an in-memory Graph adding the same latency
        fake_db = work / "fake-gateway.db"
        fake_store = Store.open(f"sqlite:///{fake_db}")
        fake_key = (
            ConsumerAdmin(fake_store, StaticPolicyScope(organizers))
            .add("bench", organizers=organizers)
            .api_key
        )
        fake_store.close()
        fake_port = free_port()
        fake_log = work / "fake-gateway.log"
        processes.append(
            start(
                [sys.executable, __file__, "--serve-fake", str(fake_db), str(fake_port), str(args.latency_ms),
                 ",".join(organizers)],
                fake_log,
            )
        )  # fmt: skip
        fake_base = f"http://127.0.0.1:{fake_port}"
        wait_for(
            lambda: httpx.get(f"{fake_base}/healthz", timeout=5).status_code == 200,
            "the fake gateway",
            fake_log,
        )
        processes[1].send_signal(signal.SIGTERM)  # the sandbox-backed gateway is done
        processes[0].send_signal(signal.SIGTERM)  # and so is the sandbox
        own_rows = run(
            through_gateway(
                fake_port,
                fake_key,
                "gateway alone: HTTP → gateway → in-memory Graph",
                {"gateway": processes[2].pid},
            )
        )
        hello_port = free_port()
        hello_log = work / "hello.log"
        processes.append(start([sys.executable, __file__, "--serve-hello", str(hello_port)], hello_log))
        hello_pid = processes[-1].pid
        hello_base = f"http://127.0.0.1:{hello_port}"
        wait_for(
            lambda: httpx.get(hello_base, timeout=5).status_code == 200, "the hello-world app", hello_log
        )

        async def hello() -> dict[str, object]:
            async with HttpLoad("127.0.0.1", hello_port, connections=args.concurrency) as load:
                get = build_request("GET", "/", host=load.host_header)
                calls = load.calls(lambda i: get)
                await drive(calls, min(200, args.count))  # warm-up
                # thousands per second: more calls, so the CPU clock's 10 ms ticks add up to a figure
                count = max(args.count, 20_000)
                return await measured(
                    lambda: drive(calls, count),
                    "machine baseline: bare ASGI app, no work",
                    count,
                    {"gateway": hello_pid},
                )

        hello_result = run(hello())
        direct_result, gateway_result, own_result = direct_rows[0], gateway_rows[0], own_rows[0]
        added = args.latency_ms
        overhead_p99 = round(float(gateway_result["p99_ms"]) - added, 1)  # type: ignore[arg-type]
        own_overhead_p99 = round(float(own_result["p99_ms"]) - added, 1)  # type: ignore[arg-type]
        overhead_vs_direct = round(
            float(gateway_result["p99_ms"]) - float(direct_result["p99_ms"]),  # type: ignore[arg-type]
            1,
        )
        result = {
            "count": args.count,
            "concurrency": args.concurrency,
            "sandbox_latency_ms": added,
            "offered_rate": args.rate,
            "direct": direct_result,
            "gateway": gateway_result,
            "gateway_alone": own_result,
            "gateway_alone_p99_overhead_ms": own_overhead_p99,
            "machine_baseline": hello_result,
            "gateway_p99_overhead_over_sandbox_latency_ms": overhead_p99,
            "gateway_p99_minus_direct_p99_ms": overhead_vs_direct,
            "target_rate_met": float(gateway_result["per_second"]) >= 200,  # type: ignore[arg-type]
            "target_overhead_met": overhead_p99 < 50,
            "cpus": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2),
        }
        if args.rate:
            direct_at, gateway_at, own_at = direct_rows[1], gateway_rows[1], own_rows[1]
            overhead_at = round(float(gateway_at["p99_ms"]) - added, 1)  # type: ignore[arg-type]
            result.update(
                {
                    "direct_at_rate": direct_at,
                    "gateway_at_rate": gateway_at,
                    "gateway_alone_at_rate": own_at,
                    "gateway_at_rate_p99_overhead_ms": overhead_at,
                    "gateway_at_rate_p99_minus_direct_p99_ms": round(
                        float(gateway_at["p99_ms"]) - float(direct_at["p99_ms"]),  # type: ignore[arg-type]
                        1,
                    ),
                    "gateway_alone_at_rate_p99_overhead_ms": round(
                        float(own_at["p99_ms"]) - added,  # type: ignore[arg-type]
                        1,
                    ),
                    # latency counts from each call's due time, so a gateway that cannot keep up with
                    # the offered rate fails the overhead bound as its queue grows
                    "target_met_at_rate": args.rate >= 200
                    and overhead_at < 50
                    and set(gateway_at["statuses"]) == {201},  # type: ignore[call-overload]
                }
            )
        rows = [*direct_rows, *gateway_rows, *own_rows, hello_result]
        for row in rows:
            print(
                f"{row['name']:<56} {row['per_second']:>7}/s  p50 {row['p50_ms']:>7} ms  p90 {row['p90_ms']:>7} ms"
                f"  p99 {row['p99_ms']:>7} ms  max {row['max_ms']:>7} ms  {row['statuses']}"
            )
        print(
            f"gateway p99 overhead over the sandbox's {added:.0f} ms: {overhead_p99} ms "
            f"(target < 50: {'pass' if result['target_overhead_met'] else 'FAIL'}); "
            f"rate {gateway_result['per_second']}/s (target >= 200: {'pass' if result['target_rate_met'] else 'FAIL'}); "
            f"load average {result['load_average_1min']} on {result['cpus']} cores"
        )
        if args.rate:
            print(
                f"at an offered {args.rate:g}/s: gateway p99 overhead {result['gateway_at_rate_p99_overhead_ms']} ms "
                f"({result['gateway_at_rate_p99_minus_direct_p99_ms']} ms over direct), start lag p99 "
                f"{gateway_at['start_lag_p99_ms']} ms "
                f"(target 200/s with overhead < 50: {'pass' if result['target_met_at_rate'] else 'FAIL'})"
            )
        print(
            f"gateway alone (in-memory Graph, same {added:.0f} ms): {own_result['per_second']}/s, "
            f"p99 overhead {own_overhead_p99} ms"
        )
        for row in rows:
            cpu = row.get("gateway_cpu_ms_per_request")
            server = "" if cpu is None else f"server process CPU {cpu} ms per request, "
            sandbox = row.get("sandbox_cpu_ms_per_request")
            sandbox_cpu = "" if sandbox is None else f"sandbox CPU {sandbox} ms, "
            client = "Graph client" if row in direct_rows else "load generator"
            print(
                f"{row['name']}: {server}{sandbox_cpu}{client} CPU "
                f"{row['loadgen_cpu_ms_per_request']} ms per request ({row['loadgen_cpu_cores']} of a core)"
            )
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return 0
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    raise SystemExit(main())
