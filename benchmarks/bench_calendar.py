"""Calendar-placement creation beside standalone, in one run, against one sandbox.

The same client (meetgate's sync ``GraphClient``) creates N meetings each way, for the same two
organizers, each run in its own child process so the sandbox's CPU is not counted:

- **standalone**: ``graph.meetings.create_or_get`` (one ``POST …/onlineMeetings/createOrGet``);
- **calendar**: ``graph.events.create_or_get`` (a search for the external id's extended property,
  then ``POST …/events``: two requests per new meeting, by design — the search is what makes a lost
  answer safe);
- **calendar, replayed**: the same N external ids again (each finds its event: one request).

Figures: wall time, CPU time (``time.process_time``) per meeting and per request, distinct meetings.
The floor is the standalone create, the same client doing the single call Graph needs.

    .venv/bin/python benchmarks/bench_calendar.py [--count 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import datetime as dt, json, sys, time
from pathlib import Path
cfg = json.loads(sys.argv[1])
from meetgate.graph.client import GraphClient
from meetgate.graph.credentials import CertificateCredential
from meetgate.graph.models import MeetingRequest
from meetgate.graph.settings import GraphSettings

settings = GraphSettings(
    tenant_id=cfg["tenant_id"], client_id=cfg["client_id"],
    credential=CertificateCredential.from_pem_files(cfg["key"], cfg["cert"]),
    authority_url=cfg["authority_url"], graph_url=cfg["graph_url"], ca_bundle=Path(cfg["ca_bundle"]),
)
start = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)
placement = "calendar" if cfg["mode"] != "standalone" else "standalone"
def request(n):
    return MeetingRequest(placement=placement, subject=f"bench {n}", start=start, end=start + dt.timedelta(minutes=30))
organizers, prefix, count = cfg["organizers"], cfg["prefix"], cfg["count"]
ids = []
with GraphClient(settings) as graph:
    service = graph.meetings if placement == "standalone" else graph.events
    service.create_or_get(organizers[0], prefix + "warmup", request(-1))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for n in range(count):
        result = service.create_or_get(organizers[n % len(organizers)], f"{prefix}{n}", request(n))
        ids.append(result.meeting.id if placement == "standalone" else result.event.id)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
print(json.dumps({"wall": wall, "cpu": cpu, "ids": len(set(ids))}))
"""


def run_child(cfg: dict[str, object], env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"child failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from meetgate import certificates
    from meetgate_sandbox.control import SandboxControl
    from meetgate_sandbox.server import SandboxOptions, SandboxServer

    work = Path(tempfile.mkdtemp(prefix="meetgate-bench-calendar-"))
    results: dict[str, dict[str, float]] = {}
    with SandboxServer(SandboxOptions(state_dir=work / "sandbox")) as server:
        info = server.info
        control = SandboxControl(info.control_url, info.ca_bundle)
        tenant = control.create_tenant(users=8)
        tid = tenant["tenantId"]
        pair = certificates.generate_self_signed("bench")
        key, cert = work / "key.pem", work / "cert.pem"
        certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key))
        certificates.write_public_file(cert, certificates.certificate_pem(pair.certificate))
        app = control.register_app(
            tid,
            "bench",
            certificate_pem=certificates.certificate_pem(pair.certificate),
            roles=["OnlineMeetings.ReadWrite.All", "User.Read.All"],
        )
        organizers = [u["id"] for u in tenant["users"][:2]]
        control.create_policy(tid, "Tag:Bench", [app["appId"]])
        base = f"/tenants/{tid}/exchange"
        for organizer in organizers:
            control.grant_policy(tid, "Bench", user=organizer)
            control.request(
                "PATCH",
                f"{base}/mailboxes/{organizer}",
                json={"customAttributes": {"CustomAttribute1": "bench"}},
            )
        # the calendar plane as meetgate sets it up: Exchange RBAC scoped to the organizers
        control.request(
            "POST",
            f"{base}/service-principals",
            json={"appId": app["appId"], "objectId": app["servicePrincipalId"]},
        )
        control.request(
            "POST",
            f"{base}/management-scopes",
            json={"name": "bench", "recipientRestrictionFilter": "CustomAttribute1 -eq 'bench'"},
        )
        control.request(
            "POST",
            f"{base}/role-assignments",
            json={
                "role": "Application Calendars.ReadWrite",
                "app": app["appId"],
                "customResourceScope": "bench",
            },
        )
        cfg: dict[str, object] = {
            "tenant_id": tid,
            "client_id": app["appId"],
            "key": str(key),
            "cert": str(cert),
            "ca_bundle": str(info.ca_bundle),
            "authority_url": info.authority_url,
            "graph_url": info.graph_url,
            "organizers": organizers,
            "count": args.count,
        }
        env = dict(os.environ)
        for label, mode, prefix in (
            ("standalone", "standalone", "s-"),
            ("calendar", "calendar", "c-"),
            ("calendar, replayed", "calendar", "c-"),
        ):
            print(f"running {label}: {args.count} creates…", flush=True)
            results[label] = run_child({**cfg, "mode": mode, "prefix": prefix}, env)
        control.close()

    load = os.getloadavg()
    requests = {"standalone": 1, "calendar": 2, "calendar, replayed": 1}
    floor = results["standalone"]["cpu"] / args.count
    print()
    print(
        f"{args.count} meetings each way, one sandbox, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"{'placement':22} {'wall s':>8} {'CPU ms/meeting':>15} {'CPU ms/request':>15} {'× standalone':>13} {'distinct':>9}"
    )
    for label, r in results.items():
        per_meeting = r["cpu"] / args.count
        print(
            f"{label:22} {r['wall']:8.2f} {1000 * per_meeting:15.3f} {1000 * per_meeting / requests[label]:15.3f} "
            f"{per_meeting / floor:13.2f} {int(r['ids']):9d}"
        )
    if args.json:
        args.json.write_text(json.dumps({"count": args.count, "load": load, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
