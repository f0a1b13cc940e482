"""``meetgate demo``: the runbook, end to end, against a fresh built-in sandbox tenant.

Every step runs the real ``meetgate`` command an administrator would run (shown as ``$ meetgate ...``)
in-process against a sandbox started for the demo, titled as in the runbook, with the manual action
it replaces. Nothing is left running unless ``--keep-running``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meetgate.cli.plugin import console, print_json
from meetgate.errors import MeetgateError
from meetgate_sandbox.demo_calendar import step_calendar
from meetgate_sandbox.demo_manual import step_6_by_hand

if TYPE_CHECKING:
    from meetgate_sandbox.server import SandboxInfo

PILOT_COUNT = 2


class DemoFailed(MeetgateError, RuntimeError):
    """A demo step did not behave as the runbook expects."""


@dataclass
class DemoRun:
    """What the demo set up: paths, the sandbox and the outcomes it checked."""

    workdir: Path
    info: SandboxInfo
    config: Path
    outcomes: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def pilots(self) -> list[str]:
        return [user.upn for user in self.info.users[:PILOT_COUNT]]

    @property
    def outsider(self) -> str:
        return self.info.users[PILOT_COUNT + 3].upn

    def meetgate(self, *args: str, expect: int | None = 0) -> int:
        """Run ``meetgate --config <demo> ARGS`` in-process, echoing the command line first."""
        from meetgate.cli.main import invoke

        out = console()
        out.print(f"[bold cyan]$ meetgate {shlex.join(args)}[/]")
        code = invoke(["--config", str(self.config), *args])
        if expect is not None and code != expect:
            raise DemoFailed(f"`meetgate {shlex.join(args)}` exited {code}, expected {expect}")
        return code

    @property
    def pwsh(self) -> list[str]:
        """``--pwsh`` naming the sandbox's stand-in for PowerShell 7 + MicrosoftTeams."""
        return ["--pwsh", f"{shlex.quote(sys.executable)} -m meetgate_sandbox.pwsh"]

    def check(self, label: str, ok: bool) -> None:
        self.outcomes.append((label, ok))
        mark = "[green]✔[/]" if ok else "[red]✘[/]"
        console().print(f"{mark} {label}")
        if not ok:
            raise DemoFailed(label)


def _step(number: str, title: str, manual: str) -> None:
    out = console()
    out.print()
    out.rule(f"[bold]Step {number} · {title}")
    out.print(f"[dim]by hand: {manual}[/]")


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _write_config(run_dir: Path, info: SandboxInfo) -> Path:
    from meetgate.config import save_profile_values

    config = run_dir / "meetgate.toml"
    save_profile_values(
        config,
        "demo",
        {
            "tenant_id": info.tenant_id,
            "authority_url": info.authority_url,
            "graph_url": info.graph_url,
            "ca_bundle": info.ca_bundle,
            "policy_file": run_dir / "policy.toml",
            "store_url": f"sqlite:///{run_dir / 'meetgate.db'}",
        },
    )
    return config


def _write_policy_file(run: DemoRun, client_id: str) -> None:
    users = ", ".join(f'"{upn}"' for upn in run.pilots)
    (run.workdir / "policy.toml").write_text(
        "[policy]\n"
        'identity = "Tag:TeamsMeetingsIntegration"\n'
        f'app_ids = ["{client_id}"]\n'
        'description = "Restricts Teams meeting creation to approved operator accounts"\n\n'
        "[organizers]\n"
        f"users = [{users}]\n"
    )


def _steps_1_to_3(run: DemoRun) -> str:
    from meetgate.config import load_profile

    _step(
        "1–2",
        "App registration, API permissions and admin consent",
        "Entra admin center › App registrations › New registration; API permissions › Grant admin consent",
    )
    run.meetgate("setup", "app", "--plan")
    run.meetgate("setup", "app")
    run.meetgate("setup", "app")  # idempotent: the second run reports no changes
    profile = load_profile(run.config)
    if not profile.client_id:
        raise DemoFailed("setup app did not record the client id")

    _step(
        "3",
        "Certificate authentication",
        "New-SelfSignedCertificate …; Export-Certificate …; portal › Certificates & secrets › Upload",
    )
    keys = run.workdir / "keys"
    run.meetgate("cert", "new", "--out", str(keys), "--use")
    run.meetgate("cert", "upload")
    run.meetgate("cert", "status")
    return profile.client_id


def _steps_4_and_5(run: DemoRun, client_id: str) -> None:
    _step(
        "4–5",
        "Application access policy, granted to approved organizers",
        "New-CsApplicationAccessPolicy …; Grant-CsApplicationAccessPolicy -Identity <user> (per user)",
    )
    _write_policy_file(run, client_id)
    pwsh = run.pwsh
    state = ["--state-dir", str(run.workdir / "policy-state")]
    run.meetgate("policy", "plan", *pwsh)
    run.meetgate("policy", "apply", "--yes", *pwsh, *state)
    run.meetgate("policy", "status", *pwsh)
    run.meetgate(
        "policy", "verify", *pwsh, "--sample", "0", "--negative", "1", "--interval", "1", "--timeout", "60"
    )
    run.meetgate("policy", "drift", *pwsh)  # exit 0: the tenant matches the file (a scheduled job's check)


def _step_6_meetings(run: DemoRun) -> None:
    from meetgate.composition import graph_client_from_profile
    from meetgate.config import load_profile
    from meetgate.graph.errors import AccessPolicyMissing, NotFoundError
    from meetgate.graph.models import MeetingRequest, MeetingUpdate

    _step(
        "6",
        "Testing: app-only meetings for pilot organizers, refusal for everyone else",
        "Postman: client_credentials token, POST /users/{id}/onlineMeetings",
    )
    organizer = run.pilots[0]
    run.meetgate(
        "meetings",
        "create",
        "--organizer",
        organizer,
        "--subject",
        "Advising slot (demo)",
        "--external-id",
        "demo-booking-1",
        "--attendee",
        run.pilots[1],
    )

    out = console()
    out.print("[bold]Through the Python library[/] (meetgate.GraphClient):")
    profile = load_profile(run.config)
    with graph_client_from_profile(profile) as client:
        start = _next_hour()
        first = client.meetings.create_or_get(
            organizer, "demo-booking-2", MeetingRequest(subject="Interview", start=start)
        )
        again = client.meetings.create_or_get(
            organizer, "demo-booking-2", MeetingRequest(subject="Interview", start=start)
        )
        run.check(
            "createOrGet is idempotent: 201 then 200, same meeting",
            first.created and not again.created and first.meeting.id == again.meeting.id,
        )
        found = client.meetings.find_by_join_url(organizer, first.meeting.join_web_url or "")
        run.check("found again by its join URL", found is not None and found.id == first.meeting.id)
        moved = client.meetings.update(
            organizer,
            first.meeting.id,
            MeetingUpdate(start=start + dt.timedelta(hours=1), end=start + dt.timedelta(hours=2)),
        )
        run.check(
            f"rescheduled to {moved.start:%H:%M}Z (same id, same join link)",
            moved.id == first.meeting.id and moved.join_web_url == first.meeting.join_web_url,
        )
        client.meetings.cancel(organizer, first.meeting.id, mode="delete")
        try:
            client.meetings.get(organizer, first.meeting.id)
        except NotFoundError:
            run.check("cancelled: the meeting is gone, no stale link left behind", True)
        else:
            run.check("a cancelled meeting must be gone", False)
        try:
            client.meetings.create_or_get(
                run.outsider, "demo-outsider", MeetingRequest(subject="Not allowed")
            )
        except AccessPolicyMissing as refused:
            run.check(f"organizer {run.outsider} (not approved) is refused: {refused.code}", True)
            out.print(f"[yellow]remedy:[/] {refused.remedy}")
        else:
            run.check("a non-approved organizer must be refused by the policy", False)
    out.print("[bold]The whole test step as one command[/] (app-only, certificate, positive and negative):")
    reports = run.workdir / "reports"
    run.meetgate(
        "validate",
        *run.pwsh,
        "--junit",
        str(reports / "validate.xml"),
        "--html",
        str(reports / "validate.html"),
    )
    step_6_by_hand(run)
    out.print("[bold]Same refusal on the command line:[/]")
    run.meetgate("meetings", "create", "--organizer", run.outsider, "--subject", "Not allowed", expect=None)


def _capture_json(run: DemoRun, *args: str, ok_codes: tuple[int, ...] = (0,)) -> Any:
    """Run a ``--json`` command quietly and return its document."""
    import io
    import json

    from meetgate.cli.main import invoke

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = invoke(["--config", str(run.config), *args, "--json"])
    if code not in ok_codes:
        raise DemoFailed(f"`meetgate {shlex.join(args)} --json` exited {code}")
    return json.loads(buffer.getvalue())


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _gateway_process(run: DemoRun, port: int, admin_key: str | None = None) -> Iterator[str]:
    """``meetgate serve`` in a child process, stopped on exit (nothing is left running)."""
    import subprocess

    import httpx

    log = (run.workdir / "gateway.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "meetgate", "--config", str(run.config), "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **({"MEETGATE_ADMIN_KEY": admin_key} if admin_key else {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise DemoFailed(f"the gateway exited with {process.returncode}; see {log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise DemoFailed(f"the gateway did not start within 60 s; see {log.name}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _step_6_gateway(run: DemoRun) -> None:
    import uuid

    import httpx

    _step(
        "6",
        "The integration for non-Python apps: the gateway, one key per consuming app",
        "every third-party app holds the certificate itself; nobody can tell which app did what",
    )
    out = console()
    booking = _capture_json(run, "consumers", "add", "booking-system", "--organizers", run.pilots[0])
    crm = _capture_json(run, "consumers", "add", "crm", "--organizers", run.pilots[1], "--rate", "120/min")
    for doc in (booking, crm):
        out.print(
            f"[bold cyan]$ meetgate consumers add {doc['name']} …[/]  key shown once: {doc['apiKey'][:12]}…"
        )
    run.meetgate("consumers", "list")
    port = _free_port()
    out.print(f"[bold cyan]$ meetgate serve --port {port}[/]  (in the background for the demo)")
    with _gateway_process(run, port) as base, httpx.Client(base_url=base, timeout=30) as http:
        as_booking = {"Authorization": f"Bearer {booking['apiKey']}"}
        as_crm = {"Authorization": f"Bearer {crm['apiKey']}"}
        start = _next_hour()
        body = {
            "organizer": run.pilots[0],
            "subject": "Campus tour",
            "start": start.isoformat(),
            "end": (start + dt.timedelta(minutes=30)).isoformat(),
            "attendees": [{"upn": run.pilots[1], "role": "attendee"}],
        }
        key = {"Idempotency-Key": str(uuid.uuid4())}
        created = http.post("/v1/meetings", json=body, headers={**as_booking, **key})
        out.print(f"POST /v1/meetings (booking-system) → {created.status_code} {created.json().get('id')}")
        replay = http.post("/v1/meetings", json=body, headers={**as_booking, **key})
        run.check(
            "the same Idempotency-Key returns the same meeting (a retry never books twice)",
            created.status_code == 201
            and replay.status_code == 200
            and replay.json()["id"] == created.json()["id"],
        )
        meeting_id = created.json()["id"]
        peek = http.get(f"/v1/meetings/{meeting_id}", headers=as_crm)
        run.check(
            f"the CRM cannot read the booking system's meeting ({peek.status_code})", peek.status_code == 404
        )
        overreach = http.post(
            "/v1/meetings", json=body, headers={**as_crm, "Idempotency-Key": str(uuid.uuid4())}
        )
        problem = overreach.json()
        run.check(
            f"the CRM cannot create for the booking system's organizer ({overreach.status_code} {problem.get('type')})",
            overreach.status_code == 403,
        )
        out.print(f"[yellow]remedy:[/] {problem.get('remedy')}")
        moved = http.patch(
            f"/v1/meetings/{meeting_id}",
            json={
                "start": (start + dt.timedelta(hours=1)).isoformat(),
                "end": (start + dt.timedelta(hours=1, minutes=30)).isoformat(),
            },
            headers=as_booking,
        )
        run.check(f"rescheduled through the gateway ({moved.status_code})", moved.status_code == 200)
        invite = http.get(f"/v1/meetings/{meeting_id}/invite.ics", headers=as_booking)
        run.check(
            "an .ics invitation for the attendees",
            invite.status_code == 200 and "BEGIN:VCALENDAR" in invite.text,
        )
        cancelled = http.delete(f"/v1/meetings/{meeting_id}", params={"mode": "delete"}, headers=as_booking)
        run.check(
            "cancelled through the gateway",
            cancelled.status_code == 200 and cancelled.json().get("state") == "cancelled",
        )
        metrics = http.get("/metrics").text
        shown = [
            line
            for line in metrics.splitlines()
            if line.startswith("meetgate_") and "_total{consumer=" in line
        ][:4]
        out.print("GET /metrics (excerpt):")
        for line in shown:
            out.print(f"  {line}")


def _step_6_bulk(run: DemoRun) -> None:
    _step(
        "6",
        "Bulk: a term's advising slots in one job, at the rate Graph allows",
        "a script that loops one request at a time, or hammers Graph into 429s and books twice on retry",
    )
    day = (_next_hour() + dt.timedelta(days=7)).replace(hour=8)
    lines = ["key,organizer,start,end,subject,attendees"]
    for slot in range(40):
        start = day + dt.timedelta(minutes=30 * (slot // 2))
        organizer = run.pilots[slot % 2]
        lines.append(
            f"adv-{slot:04d},{organizer},{start.isoformat()},{(start + dt.timedelta(minutes=25)).isoformat()},"
            f"Advising slot {slot + 1},"
        )
    good = run.workdir / "term-start.csv"
    good.write_text("\n".join(lines) + "\n")
    bad = run.workdir / "term-start-with-mistakes.csv"
    bad.write_text(
        "\n".join(
            [
                *lines[:3],
                f"adv-bad-1,{run.pilots[0]},{day.isoformat()},{(day - dt.timedelta(hours=1)).isoformat()},End before start,",
                f"adv-bad-2,{run.outsider},{day.isoformat()},{(day + dt.timedelta(minutes=25)).isoformat()},Not approved,",
                lines[1],
            ]
        )
        + "\n"
    )
    run.meetgate("meetings", "bulk", "create", str(bad), "--dry-run", expect=1)
    run.meetgate("meetings", "bulk", "create", str(good), "--no-progress")
    run.meetgate("meetings", "bulk", "create", str(good), "--no-progress")  # a rerun creates nothing new


def _step_7_monitoring(run: DemoRun, client_id: str) -> None:
    from meetgate import certificates
    from meetgate.config import load_profile, save_profile_values
    from meetgate.graph.credentials import CertificateCredential
    from meetgate.graph.errors import AuthenticationError
    from meetgate_sandbox.control import SandboxControl

    _step(
        "7",
        "Monitoring: sign-ins, audit logs, policy scope and Graph usage, with rules and alerts",
        "Entra admin center › Sign-in logs and Audit logs, Get-CsOnlineUser, by hand, every day",
    )
    out = console()
    # The monitor reads Entra's logs with its own app (AuditLog.Read.All), never the integration app.
    pair = certificates.generate_self_signed("MeetgateMonitoringReader")
    keys = run.workdir / "keys" / "monitoring-reader"
    certificates.write_secret_file(
        keys / "reader.key.pem", certificates.private_key_pem(pair.private_key), force=True
    )
    certificates.write_public_file(
        keys / "reader.pem", certificates.certificate_pem(pair.certificate), force=True
    )
    with SandboxControl(run.info.control_url, run.info.ca_bundle) as control:
        reader = control.register_app(
            run.info.tenant_id,
            "meetgate monitoring reader",
            certificate_pem=certificates.certificate_pem(pair.certificate),
            roles=["AuditLog.Read.All", "Directory.Read.All"],
        )
    demo_profile = load_profile(run.config)
    save_profile_values(
        run.config,
        "monitoring-reader",
        {
            "tenant_id": run.info.tenant_id,
            "client_id": reader["appId"],
            "private_key_path": keys / "reader.key.pem",
            "certificate_path": keys / "reader.pem",
            "authority_url": run.info.authority_url,
            "graph_url": run.info.graph_url,
            "ca_bundle": run.info.ca_bundle,
            "policy_file": demo_profile.policy_file,
            "store_url": demo_profile.store_url,
        },
    )
    out.print(
        f"registered a monitoring reader app {reader['appId']} with AuditLog.Read.All (profile monitoring-reader)"
    )

    out.print(
        "[bold]Provoking an alert on purpose:[/] someone tries, three times, to sign in as the app with a certificate it never had"
    )
    stolen = certificates.generate_self_signed()
    from meetgate.graph.auth import TokenProvider
    from meetgate.graph.settings import GraphSettings

    intruder = TokenProvider(
        GraphSettings(
            tenant_id=run.info.tenant_id,
            client_id=client_id,
            credential=CertificateCredential.from_pem(
                certificates.private_key_pem(stolen.private_key),
                certificates.certificate_pem(stolen.certificate),
            ),
            authority_url=run.info.authority_url,
            graph_url=run.info.graph_url,
            ca_bundle=run.info.ca_bundle,
        )
    )
    refusals = []
    for _attempt in range(3):
        try:
            intruder.get_token(True)
        except AuthenticationError as refused:
            refusals.append(refused.code)
    run.check(
        f"Entra refused the unknown certificate 3 times ({', '.join(map(str, refusals))})", len(refusals) == 3
    )
    report_args = (
        "--profile",
        "monitoring-reader",
        "monitor",
        "report",
        "--app-id",
        client_id,
        "--since",
        "2h",
    )
    # collect Entra's logs and a policy snapshot, evaluate the rules; exit 1: alerts exist
    # (one collecting run writes the HTML too: a --no-collect run has no certificate expiry to show)
    html = run.workdir / "reports" / "monitor.html"
    run.meetgate(*report_args, "--policy-backend", "powershell", *run.pwsh, "--html", str(html), expect=1)
    report = _capture_json(run, *report_args, "--no-collect", ok_codes=(0, 1))
    rules = sorted({alert.get("rule") for alert in report.get("alerts", [])})
    run.check(
        f"the failed sign-ins were caught (alerts: {', '.join(map(str, rules))})", "sign_in_failures" in rules
    )
    run.check(
        "the set-up's admin consent and certificate upload are on record, found by the app's object ids "
        "(permission_change, credential_change)",
        {"permission_change", "credential_change"} <= set(rules),
    )


def _step_8_golive(run: DemoRun) -> None:
    from meetgate_sandbox.control import SandboxControl

    _step("8", "Enforcement / go-live", "the pre-production checklist, by hand, without evidence")
    reports = str(run.workdir / "reports" / "golive.md")
    run.meetgate("golive", *run.pwsh, "--markdown", reports)
    out = console()
    out.print(f"[bold]Breaking something on purpose:[/] someone grants the policy by hand to {run.outsider}")
    with SandboxControl(run.info.control_url, run.info.ca_bundle) as control:
        control.grant_policy(run.info.tenant_id, "TeamsMeetingsIntegration", user=run.outsider)
    code = run.meetgate("golive", *run.pwsh, expect=None)
    run.check("golive says NO-GO: the policy reaches beyond the approved organizers", code == 1)
    run.meetgate("policy", "drift", *run.pwsh, expect=1)
    out.print("[bold]Fixing it:[/] converge the tenant back to the reviewed policy file")
    run.meetgate("policy", "apply", "--yes", *run.pwsh, "--state-dir", str(run.workdir / "policy-state"))
    run.meetgate("golive", *run.pwsh, "--start")


def _next_hour() -> dt.datetime:
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return now + dt.timedelta(hours=2)


def _summary(run: DemoRun, started: float) -> None:
    out = console()
    out.print()
    out.rule("[bold]Done")
    passed = sum(1 for _, ok in run.outcomes if ok)
    out.print(f"{passed}/{len(run.outcomes)} checks passed in {time.monotonic() - started:.1f} s")
    out.print("[bold]Where to look next[/]")
    out.print(f"  settings (profiles demo and monitoring-reader): {run.config}")
    for report in sorted((run.workdir / "reports").glob("*")):
        out.print(f"  report: {report}")
    out.print(f"  keys, policy file, bulk results and journals: {run.workdir}")
    out.print(
        "  guides: docs/admin-guide.md, docs/integrator-guide.md, docs/operations.md, docs/troubleshooting.md"
    )
    out.print(
        "  try it yourself: `meetgate demo --keep-running` leaves the sandbox, gateway and dashboard up"
    )


def _keep_running(run: DemoRun) -> None:
    import secrets

    out = console()
    admin_key = secrets.token_urlsafe(24)
    port = _free_port()
    with _gateway_process(run, port, admin_key=admin_key) as base:
        out.print()
        out.rule("[bold]Left running (Ctrl-C or SIGTERM stops everything)")
        out.print(f"sandbox tenant:  {run.info.graph_url}  (control API {run.info.control_url})")
        out.print(f"gateway:         {base}  (API docs {base}/docs, metrics {base}/metrics)")
        out.print(f"dashboard:       {base}/admin/dashboard  (user any, password = admin key below)")
        out.print(f"admin key:       {admin_key}")
        out.print(f"settings:        export MEETGATE_CONFIG={run.config} MEETGATE_PROFILE=demo")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)


def _run_demo(workdir: Path, keep_running: bool, runs: list[DemoRun] | None = None) -> DemoRun:
    from meetgate_sandbox.server import SandboxOptions, SandboxServer

    started = time.monotonic()
    out = console()
    out.rule("[bold]meetgate demo · the runbook against a fresh sandbox tenant")
    server = SandboxServer(SandboxOptions(state_dir=workdir / "sandbox", policy_delay_seconds=0))
    info = server.start()
    try:
        out.print(
            f"sandbox tenant {info.tenant_domain} ({info.tenant_id}) at {info.graph_url}, {len(info.users)} users"
        )
        run = DemoRun(workdir=workdir, info=info, config=_write_config(workdir, info))
        if runs is not None:
            runs.append(run)  # the caller reports its checks even when a step fails
        with _environment({"MEETGATE_SANDBOX_JSON": str(workdir / "sandbox" / "sandbox.json")}):
            client_id = _steps_1_to_3(run)
            _steps_4_and_5(run, client_id)
            _step_6_meetings(run)
            _step(
                "6c",
                "Calendar meetings: a weekly series, scoped by Exchange RBAC for Applications",
                "New-ServicePrincipal; New-ManagementScope; New-ManagementRoleAssignment -App …; Outlook by hand",
            )
            step_calendar(run, client_id, _next_hour() + dt.timedelta(days=1))
            _step_6_gateway(run)
            _step_6_bulk(run)
            _step_7_monitoring(run, client_id)
            _step_8_golive(run)
        _summary(run, started)
        if keep_running:
            _keep_running(run)
        return run
    finally:
        server.stop()


def demo(
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="Folder for the demo's settings, keys, state and reports (default: a new temp dir).",
        ),
    ] = None,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the sandbox running at the end (Ctrl-C stops it).")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Narrate on stderr and print the outcome as JSON on stdout: checks, settings, reports.",
        ),
    ] = False,
) -> None:
    """Run the runbook end to end against a built-in sandbox tenant and narrate each step."""
    import signal

    base = workdir or Path(tempfile.mkdtemp(prefix="meetgate-demo-"))
    base.mkdir(parents=True, exist_ok=True)

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds like Ctrl-C: the gateway and the sandbox are stopped

    previous = signal.signal(signal.SIGTERM, _terminate)
    runs: list[DemoRun] = []
    error: str | None = None
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            _run_demo(base.resolve(), keep_running, runs)
    except DemoFailed as failed:
        error = str(failed)
        console().print(f"[bold red]demo failed:[/] {failed}")
    finally:
        signal.signal(signal.SIGTERM, previous)
    if as_json:
        print_json(_outcome(base.resolve(), runs[0] if runs else None, error, time.monotonic() - started))
    if error is not None:
        raise typer.Exit(1)


def _outcome(workdir: Path, run: DemoRun | None, error: str | None, elapsed: float) -> dict[str, object]:
    """What ``demo --json`` prints: every check, where the settings and reports are."""
    checks = [{"check": label, "ok": ok} for label, ok in run.outcomes] if run is not None else []
    return {
        "ok": error is None,
        "error": error,
        "passed": sum(1 for c in checks if c["ok"]),
        "checks": checks,
        "elapsedSeconds": round(elapsed, 1),
        "workdir": str(workdir),
        "config": str(run.config) if run is not None else None,
        "reports": sorted(str(p) for p in (workdir / "reports").glob("*")),
    }


__all__: Sequence[str] = ["demo"]
