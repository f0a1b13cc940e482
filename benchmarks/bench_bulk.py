"""Bulk creates at the throttle limit: 3,000 meetings against the sandbox throttled at 30 requests/s.

Targets for the adaptive limiter: ≥ 95 % of the limit (3,000 creates within about 105 s), ≤ 2 % of
requests answered 429, exactly 3,000 meetings in the sandbox, none duplicated. Compared in the same
run with a fixed concurrency of 1 and of 32 (same client, same retry policy, no adaptation), each on a
fresh tenant and app so every run starts with a full throttle bucket.

The meetings are counted in the sandbox's own store (its state file, read after the server stopped):
per tenant, the number of meetings and of distinct (organizer, externalId) pairs.

    .venv/bin/python benchmarks/bench_bulk.py [--rows 3000] [--rps 30] [--modes adaptive,1,32]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from meetgate import certificates
from meetgate.admin.bulk import BULK_RETRY, run_bulk_job
from meetgate.composition import async_graph_client_from_profile
from meetgate.config import Profile
from meetgate.graph.limiter import AdaptiveLimiter, fixed_concurrency
from meetgate_sandbox.control import SandboxControl
from meetgate_sandbox.meetings import Meeting, MeetingStore
from meetgate_sandbox.server import SandboxInfo, read_info

POLICY = "Tag:TeamsMeetingsIntegration"
ROLES = ["OnlineMeetings.ReadWrite.All", "User.Read.All"]


@dataclass
class Outcome:
    mode: str
    tenant_id: str
    rows: int
    seconds: float
    done: int
    failed: int
    requests: int
    throttled: int


@contextmanager
def sandbox_process(state_dir: Path) -> Iterator[SandboxInfo]:
    """``meetgate sandbox serve`` in its own process (as in real use: the client does not share a GIL
    with the service), stopped with Ctrl-C so it saves its state."""
    command = [
        sys.executable,
        "-m",
        "meetgate",
        "sandbox",
        "serve",
        "--state",
        str(state_dir),
        "--users",
        "12",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (state_dir / "sandbox.json").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the sandbox did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            time.sleep(0.1)
        info = read_info(state_dir)
        with SandboxControl(info.control_url, info.ca_bundle) as control:
            while True:
                try:
                    control.health()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        yield info
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_app(control: SandboxControl, work: Path, name: str, info: SandboxInfo) -> tuple[Profile, list[str]]:
    tenant = control.create_tenant(users=12)
    tid = tenant["tenantId"]
    pair = certificates.generate_self_signed()
    key, cert = work / f"{name}.key.pem", work / f"{name}.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key))
    cert_pem = certificates.certificate_pem(pair.certificate)
    certificates.write_public_file(cert, cert_pem)
    app = control.register_app(tid, "Teams Meetings Integration", certificate_pem=cert_pem, roles=ROLES)
    organizers = [u["userPrincipalName"] for u in tenant["users"] if u.get("accountEnabled", True)][:4]
    control.create_policy(tid, POLICY, [app["appId"]], "bench")
    for upn in organizers:
        control.grant_policy(tid, POLICY.removeprefix("Tag:"), user=upn)
    profile = Profile(
        name=name,
        tenant_id=tid,
        client_id=app["appId"],
        private_key_path=key,
        certificate_path=cert,
        authority_url=info.authority_url,
        graph_url=info.graph_url,
        ca_bundle=info.ca_bundle,
    )
    return profile, organizers


def write_rows(path: Path, rows: int, organizers: list[str]) -> None:
    start = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["key", "organizer", "start", "end", "subject", "attendees"])
        for i in range(rows):
            slot = start + dt.timedelta(minutes=30 * i)
            writer.writerow(
                [
                    f"advising-{i:05d}",
                    organizers[i % len(organizers)],
                    slot.isoformat(),
                    (slot + dt.timedelta(minutes=25)).isoformat(),
                    f"Advising slot {i}",
                    f"student{i}@students.example.edu",
                ]
            )


async def run_mode(mode: str, profile: Profile, path: Path) -> Outcome:
    limiter = AdaptiveLimiter() if mode == "adaptive" else fixed_concurrency(int(mode))
    client = async_graph_client_from_profile(profile, limiter=limiter, retry=BULK_RETRY)
    # the token is fetched before the clock starts (as a long-running integration holds one)
    await asyncio.to_thread(client.tokens.get_token)
    started = time.monotonic()
    async with client:
        report = await run_bulk_job(
            client, path, "create", limiter=limiter, journal_path=path.with_suffix(".j")
        )
    seconds = time.monotonic() - started
    stats = limiter.snapshot().stats
    return Outcome(
        mode,
        profile.tenant_id or "",
        report.total,
        seconds,
        report.done,
        report.failed,
        stats.attempts,
        stats.throttled,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--rps", type=float, default=30.0)
    parser.add_argument("--modes", default="adaptive,1,32")
    parser.add_argument(
        "--capacity-rows",
        type=int,
        default=300,
        help="first measure the unthrottled sandbox with this many creates at concurrency 16 (0: skip)",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        work = Path(tmp)
        state_dir = work / "sandbox"
        with sandbox_process(state_dir) as info, SandboxControl(info.control_url, info.ca_bundle) as control:
            capacity = None
            if args.capacity_rows:
                control.set_faults(throttle_rps=None)
                profile, organizers = make_app(control, work, "app-capacity", info)
                path = work / "rows-capacity.csv"
                write_rows(path, args.capacity_rows, organizers)
                probe = asyncio.run(run_mode("16", profile, path))
                capacity = probe.done / probe.seconds
                print(
                    f"  unthrottled sandbox capacity: {capacity:.1f} creates/s (concurrency 16)", flush=True
                )
            for mode in modes:
                control.set_faults(throttle_rps=None)
                profile, organizers = make_app(control, work, f"app-{mode}", info)
                path = work / f"rows-{mode}.csv"
                write_rows(path, args.rows, organizers)
                control.set_faults(throttle_rps=args.rps)
                outcome = asyncio.run(run_mode(mode, profile, path))
                outcomes.append(outcome)
                print(
                    f"  {mode:>8}: {outcome.seconds:7.1f} s, {outcome.done} done, {outcome.failed} failed",
                    flush=True,
                )
            control.set_faults(throttle_rps=None)
        state = json.loads((state_dir / "state.json").read_text())
    tenants = {t["id"] if "id" in t else t.get("tenantId"): t for t in _tenants(state)}
    print()
    print(f"{args.rows:,} creates per run, sandbox throttled at {args.rps:g} requests/s per app")
    if capacity is not None:
        print(f"(the same sandbox unthrottled, on this machine now: {capacity:.1f} creates/s)")
    print(
        f"{'mode':>14} | {'seconds':>8} | {'creates/s':>9} | {'% of limit':>10} | {'requests':>8} | "
        f"{'429s':>6} | {'% 429':>6} | {'failed':>6} | {'meetings':>8} | {'duplicates':>10}"
    )
    for o in outcomes:
        meetings = _saved_meetings(tenants, o.tenant_id)
        pairs = {(m.organizer_id, m.external_id) for m in meetings}
        rate = o.done / o.seconds if o.seconds else 0.0
        label = "adaptive" if o.mode == "adaptive" else f"fixed {o.mode}"
        print(
            f"{label:>14} | {o.seconds:8.1f} | {rate:9.2f} | {100 * rate / args.rps:9.1f}% | {o.requests:8d} | "
            f"{o.throttled:6d} | {100 * o.throttled / max(1, o.requests):5.2f}% | {o.failed:6d} | "
            f"{len(meetings):8d} | {len(meetings) - len(pairs):10d}"
        )
    adaptive = next((o for o in outcomes if o.mode == "adaptive"), None)
    if adaptive is not None:
        rate = adaptive.done / adaptive.seconds
        meetings = _saved_meetings(tenants, adaptive.tenant_id)
        checks = {
            "≥ 95 % of the limit": rate >= 0.95 * args.rps,
            "≤ 2 % answered 429": adaptive.throttled <= 0.02 * adaptive.requests,
            f"exactly {args.rows:,} meetings": len(meetings) == args.rows,
            "none duplicated": len({m.external_id for m in meetings}) == len(meetings),
        }
        print()
        for name, ok in checks.items():
            print(f"  adaptive {name}: {'pass' if ok else 'FAIL'}")


def _saved_meetings(tenants: dict, tenant_id: str) -> list[Meeting]:  # type: ignore[type-arg]
    """The meetings the sandbox saved for ``tenant_id`` (its state.json, read as the sandbox reads it)."""
    store = MeetingStore(tenant_id)
    store.load_dict(tenants.get(tenant_id, {}).get("extensions", {}).get("meetings", {}))
    return store.snapshot()


def _tenants(state: dict) -> list[dict]:  # type: ignore[type-arg]
    tenants = state.get("tenants", [])
    return list(tenants.values()) if isinstance(tenants, dict) else list(tenants)


if __name__ == "__main__":
    main()
