"""`meetgate monitor report / watch`: runbook step 7 — sign-ins, audits, policy, gateway, alerts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meetgate.cli._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    console,
    err_console,
    fail,
    load_active_profile,
    print_json,
)

if TYPE_CHECKING:
    import datetime as dt

    from meetgate.admin.monitoring.model import Alert
    from meetgate.admin.monitoring.service import Monitor
    from meetgate.admin.monitoring.sinks import AlertSink
    from meetgate.config import Profile

app = typer.Typer(help="Watch the app: Entra sign-ins and audits, policy scope, gateway use; raise alerts.")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_STYLE = {"critical": "bold red", "high": "red", "warning": "yellow", "info": "cyan"}


def parse_duration(text: str) -> dt.timedelta:
    import datetime as dt

    match = _DURATION.match(text)
    if not match:
        fail(f"not a duration: {text!r}", "use a number and a unit: 30m, 24h, 7d")
    return dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


SinceOpt = Annotated[str, typer.Option("--since", help="Period to evaluate, back from now (30m, 24h, 7d).")]
ThresholdsOpt = Annotated[
    Path | None,
    typer.Option(
        "--thresholds",
        # rich markup would swallow a bare [hypercare] as a style tag
        help="TOML file of rule thresholds (its \\[hypercare] table applies in the go-live window).",
    ),
]
AppIdOpt = Annotated[
    str | None, typer.Option("--app-id", help="App (client) id to watch; the profile's client_id by default.")
]
PolicyOpt = Annotated[
    str,
    typer.Option(
        "--policy-backend", help="Snapshot the policy through powershell or graph; none to skip (default)."
    ),
]
PwshOpt = Annotated[
    str,
    typer.Option(
        "--pwsh", envvar="MEETGATE_PWSH", help="PowerShell command for --policy-backend powershell."
    ),
]
CollectOpt = Annotated[
    bool, typer.Option("--collect/--no-collect", help="Read Entra's logs first (needs AuditLog.Read.All).")
]


def _certificates(profile: Profile) -> list[Any]:
    from meetgate.admin.monitoring.model import CertificateStatus

    try:
        if profile.certificate_path is not None:
            from meetgate.graph.credentials import CertificateCredential

            if profile.private_key_path is not None:
                cred = CertificateCredential.from_pem_files(
                    profile.private_key_path, profile.certificate_path, profile.passphrase()
                )
                return [
                    CertificateStatus(cred.thumbprint_sha1, cred.not_after, str(profile.certificate_path))
                ]
    except Exception as exc:  # reported, not fatal: monitoring still runs
        err_console().print(f"[yellow]certificate not read:[/] {type(exc).__name__}")
    return []


def _monitor(
    ctx: typer.Context,
    thresholds: Path | None,
    app_id: str | None,
    collect: bool,
    policy_backend: str,
    pwsh: str = "pwsh",
) -> Monitor:
    from meetgate.admin.mailbox_scope.loader import is_scoped
    from meetgate.admin.monitoring.collect import Collector
    from meetgate.admin.monitoring.model import MonitorError, MonitorScope, Thresholds
    from meetgate.admin.monitoring.service import Monitor
    from meetgate.composition.store import open_store
    from meetgate.store.monitoring import MonitorRepository

    profile = load_active_profile(ctx)
    try:
        normal, hypercare = Thresholds.load(thresholds)
    except MonitorError as exc:
        fail(str(exc), exc.remedy)
    profile.require("tenant_id")
    watched = app_id or profile.client_id
    if not watched:
        fail("no app to watch", "pass --app-id or set client_id in the profile")
    own_app = watched == profile.client_id  # else the profile's object ids are the reader's own
    object_ids = (profile.application_object_id, profile.service_principal_id) if own_app else (None, None)
    # the profile's certificate is the watched app's only when the profile is that app; a reader
    # watching another app checks that app's certificates on its registration instead
    certificates = _certificates(profile) if own_app else []
    client = None
    if collect:
        from meetgate.composition import graph_client_from_profile

        client = graph_client_from_profile(profile)
        if None in object_ids or not own_app:
            application, principal = _directory_entry(client, watched)
            object_ids = (
                object_ids[0] or (application.id if application else None),
                object_ids[1] or (principal.id if principal else None),
            )
            if not own_app:
                certificates = _registration_certificates(application, watched)
    elif not own_app:
        err_console().print(
            f"[dim]certificate expiry of app {watched} not checked: it is read from its registration "
            "(drop --no-collect)[/]"
        )
    scope = MonitorScope(
        tenant_id=str(profile.tenant_id),
        app_id=watched,
        application_object_id=object_ids[0],
        service_principal_id=object_ids[1],
        policy_name=profile.policy_name,
    )
    repo = MonitorRepository(open_store(profile))
    collector = None
    if client is not None:
        from meetgate.graph.audit import AuditLogService

        collector = Collector(AuditLogService(client.http), repo, scope)
    monitor = Monitor(
        repo,
        scope,
        collector=collector,
        thresholds=normal,
        hypercare_thresholds=hypercare,
        certificates=certificates,
        mailbox_scoped=is_scoped(profile.policy_file),
    )
    if policy_backend != "none":
        _snapshot_policy(ctx, monitor, policy_backend, pwsh)
    return monitor


def _directory_entry(client: Any, app_id: str) -> tuple[Any, Any]:
    """The watched app's application and service principal, read once from the directory
    (Directory.Read.All): Entra's consent and certificate audits name their object ids, not the app
    id, and the registration holds the certificates. ``(None, None)`` with a warning when refused."""
    from meetgate.graph.applications import ApplicationsService
    from meetgate.graph.errors import GraphError

    service = ApplicationsService(client.http)
    try:
        return service.find_application_by_app_id(app_id), service.find_service_principal(app_id)
    except GraphError as exc:
        err_console().print(
            f"[yellow]warning:[/] cannot look up app {app_id} in the directory ({exc}); audits that name "
            "only its object ids (consent, certificate changes) are missed and its certificate expiry is "
            "not checked — give the monitoring app Directory.Read.All, or set application_object_id and "
            "service_principal_id in the profile"
        )
        return None, None


def _registration_certificates(application: Any, app_id: str) -> list[Any]:
    """The certificate on the watched app's registration that expires last: the date after which
    the app can no longer sign in."""
    from meetgate.admin.monitoring.model import CertificateStatus

    dated = [
        (key.end_date_time, key.thumbprint_sha1 or key.key_id or "?")
        for key in (application.key_credentials if application else [])
        if key.end_date_time is not None and (key.type or "AsymmetricX509Cert") == "AsymmetricX509Cert"
    ]
    if not dated:
        return []
    not_after, thumbprint = max(dated)
    return [CertificateStatus(thumbprint, not_after, f"registration of app {app_id}")]


def _snapshot_policy(ctx: typer.Context, monitor: Monitor, backend: str, pwsh: str) -> None:
    from meetgate.admin.policy.planner import resolve_organizers
    from meetgate.cli.policy import DEFAULT_STATE_DIR, PolicySession

    session = PolicySession(ctx, None, backend, pwsh, DEFAULT_STATE_DIR)
    state = session.read_state()
    approved = resolve_organizers(session.desired, session.directory()).users
    if monitor.collector is None:
        fail("a policy snapshot needs collection", "drop --no-collect or use --policy-backend none")
    monitor.collector.snapshot_policy(state, approved.keys())


def _run(monitor: Monitor, since: dt.timedelta) -> Any:
    from meetgate.graph.errors import AuthorizationError, GraphError

    try:
        return monitor.run(since, collect=monitor.collector is not None)
    except AuthorizationError as exc:
        fail(
            f"reading Entra's logs was refused: {exc}",
            "the profile's app needs AuditLog.Read.All (and Directory.Read.All) with admin consent; use a "
            "separate monitoring-reader profile with --app-id, or --no-collect to evaluate what is stored",
            code=EXIT_FAILED,
        )
    except GraphError as exc:
        fail(f"collection failed: {exc}", getattr(exc, "remedy", None), code=EXIT_FAILED)


def print_alerts(alerts: list[Alert]) -> None:
    from rich.markup import escape

    out = console()
    for alert in alerts:
        style = _STYLE[alert.severity]
        out.print(f"[{style}]{alert.severity.upper():8}[/] {escape(alert.title)}  [dim]({alert.rule})[/]")
        for line in alert.evidence[:5]:
            out.print(f"           [dim]evidence:[/] {escape(line)}")
        out.print(f"           [bold]check first:[/] {escape(alert.remedy)}")


def report_html(data: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (inline SVG charts, no script, no CDN)."""
    from html import escape

    from meetgate.gateway.dashboard import dashboard_html

    page = dashboard_html(
        {
            "gateway": data["gateway"],
            "alerts": [{**a, "lastSeen": a.get("at", "")} for a in data["alerts"]],
            "certificates": data["certificates"],
            "policy": data["policy"],
            "hypercare": data["hypercare"],
            "hypercareUntil": data["hypercareUntil"],
            "monitorLastRun": data["until"],
        },
        title=f"meetgate monitoring report — app {data['appId']}",
    )
    s = data["signIns"]
    extra = (
        f'<div class="card" id="signins"><h2>Sign-ins</h2><p>{s["total"]} sign-in(s), {s["failed"]} failed, '
        f"from {escape(', '.join(s['ips']) or '-')}</p><h2>Directory audits</h2><table>"
        + "".join(
            f"<tr><td>{escape(str(a['at']))}</td><td>{escape(str(a['activity']))}</td><td>{escape(str(a['result']))}</td></tr>"
            for a in data["directoryAudits"]
        )
        + "</table></div>"
    )
    page = page.replace('<meta http-equiv="refresh" content="60">', "")
    return page.replace('<p><a href="dashboard.json">data as JSON</a></p>', extra)


def _print_report(data: dict[str, Any], alerts: list[Alert]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    hyper = f"  [bold magenta]hypercare until {data['hypercareUntil']}[/]" if data["hypercare"] else ""
    out.print(f"[bold]meetgate monitor[/] app {data['appId']} tenant {data['tenantId']}{hyper}")
    out.print(f"period {data['since']} .. {data['until']}")
    if data["collected"]:
        c = data["collected"]
        out.print(
            f"collected: {c['newSignIns']} new sign-in(s), {c['newAudits']} new audit record(s) "
            f"in {c['requests']} request(s)"
        )
    s = data["signIns"]
    out.print(f"sign-ins: {s['total']} ({s['failed']} failed) from {', '.join(s['ips']) or '-'}")
    gw = data["gateway"]
    out.print(f"gateway: {gw['requests']} request(s), {gw['meetingsCreated']} meeting(s) created")
    failures = {k: v for k, v in gw["failuresByClass"].items() if v}
    out.print(f"failures: {', '.join(f'{k} {v}' for k, v in failures.items()) or 'none'}")
    if gw["topOrganizers"]:
        table = Table("top organizers", "meetings", "top consumers", "meetings")
        orgs, cons = gw["topOrganizers"][:5], gw["topConsumers"][:5]
        for i in range(max(len(orgs), len(cons))):
            o = orgs[i] if i < len(orgs) else {"name": "", "count": ""}
            c2 = cons[i] if i < len(cons) else {"name": "", "count": ""}
            table.add_row(escape(o["name"]), str(o["count"]), escape(c2["name"]), str(c2["count"]))
        out.print(table)
    for audit in data["directoryAudits"][-10:]:
        out.print(f"audit: {audit['at']} {escape(str(audit['activity']))} ({audit['result']})")
    if data["policy"]:
        p = data["policy"]
        out.print(
            f"policy: {p['holding']}/{p['approved']} approved organizers hold it, "
            f"{p['beyondApproved']} beyond the list, global {'YES' if p['global'] else 'no'}"
        )
    for cert in data["certificates"]:
        out.print(f"certificate {cert['thumbprint'][:12]}…: {cert['daysLeft']} day(s) left")
    out.print(f"[bold]{len(alerts)} alert(s)[/]")
    print_alerts(alerts)


@app.command("report")
def report(
    ctx: typer.Context,
    since: SinceOpt = "24h",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the report as an HTML file.")
    ] = None,
    thresholds: ThresholdsOpt = None,
    app_id: AppIdOpt = None,
    collect: CollectOpt = True,
    policy_backend: PolicyOpt = "none",
    pwsh: PwshOpt = "pwsh",
) -> None:
    """Collect, evaluate the rules over the period and show activity and alerts (exit 1 on alerts)."""
    if as_json and html is not None:
        fail("--json and --html are exclusive", "choose one output form", code=EXIT_USAGE)
    period = parse_duration(since)
    monitor = _monitor(ctx, thresholds, app_id, collect, policy_backend, pwsh)
    result = _run(monitor, period)
    data = monitor.report(result)
    if as_json:
        print_json(data)
    elif html is not None:
        html.write_text(report_html(data), encoding="utf-8")
        console().print(f"report written to {html} ({len(result.alerts)} alert(s))", soft_wrap=True)
    else:
        _print_report(data, result.alerts)
    if result.alerts:
        raise typer.Exit(EXIT_FAILED)


def _sinks(
    jsonl: Path | None,
    webhook: str | None,
    teams: str | None,
    email_to: list[str] | None,
    smtp: str,
    email_from: str,
    starttls: bool,
) -> list[AlertSink]:
    import os

    from meetgate.admin.monitoring.model import MonitorError
    from meetgate.admin.monitoring.sinks import JsonLinesSink, SmtpSink, TeamsSink, WebhookSink

    sinks: list[AlertSink] = []
    try:
        if jsonl is not None:
            sinks.append(JsonLinesSink(jsonl))
        if webhook:
            sinks.append(WebhookSink(webhook))
        if teams:
            sinks.append(TeamsSink(teams))
        if email_to:
            host, _, port = smtp.rpartition(":")
            if not host or not port.isdigit():
                fail(f"--smtp must be HOST:PORT, not {smtp!r}", "e.g. --smtp mail.contoso.com:587")
            sinks.append(
                SmtpSink(
                    host,
                    int(port),
                    email_from,
                    tuple(email_to),
                    starttls=starttls,
                    username=os.environ.get("MEETGATE_SMTP_USERNAME"),
                    password=os.environ.get("MEETGATE_SMTP_PASSWORD"),
                )
            )
    except MonitorError as exc:
        fail(str(exc), exc.remedy)
    return sinks


@app.command("watch")
def watch(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 300.0,
    window: Annotated[str, typer.Option(help="Period each poll evaluates (de-duplicated alerts).")] = "24h",
    iterations: Annotated[int, typer.Option(help="Stop after this many polls (0: run until stopped).")] = 0,
    thresholds: ThresholdsOpt = None,
    app_id: AppIdOpt = None,
    policy_backend: PolicyOpt = "none",
    pwsh: PwshOpt = "pwsh",
    jsonl: Annotated[
        Path | None, typer.Option("--jsonl", help="Append alerts to this JSON lines file.")
    ] = None,
    webhook: Annotated[str | None, typer.Option("--webhook", help="POST alerts as JSON to this URL.")] = None,
    teams: Annotated[
        str | None, typer.Option("--teams-webhook", help="Post an Adaptive Card to a Teams incoming webhook.")
    ] = None,
    email_to: Annotated[list[str] | None, typer.Option("--email-to", help="Mail alerts to (repeat).")] = None,
    smtp: Annotated[str, typer.Option("--smtp", help="SMTP HOST:PORT.")] = "localhost:25",
    email_from: Annotated[str, typer.Option("--email-from", help="Sender address.")] = "meetgate@localhost",
    starttls: Annotated[bool, typer.Option("--starttls", help="STARTTLS before sending.")] = False,
) -> None:
    """Poll: collect, evaluate, send each new alert once to the console and the chosen sinks."""
    import time

    from meetgate.admin.monitoring.sinks import SinkError

    period = parse_duration(window)
    sinks = _sinks(jsonl, webhook, teams, email_to, smtp, email_from, starttls)
    monitor = _monitor(ctx, thresholds, app_id, True, policy_backend, pwsh)
    done = 0
    pending: dict[str, list[Alert]] = {sink.name: [] for sink in sinks}
    retried: set[str] = set()
    try:
        while True:
            result = _run(monitor, period)
            collected = result.collected.to_dict() if result.collected else {}
            err_console().print(
                f"[dim]{result.now.isoformat(timespec='seconds')} poll {done + 1}: "
                f"{collected.get('newSignIns', 0)} new sign-in(s), {collected.get('newAudits', 0)} new audit(s), "
                f"{len(result.new_alerts)} new alert(s)[/]",
                soft_wrap=True,
            )
            if result.new_alerts:
                print_alerts(result.new_alerts)
            for sink in sinks:
                # a sink that failed gets its missed alerts again at the next poll (the others do not)
                batch = pending[sink.name] + result.new_alerts
                if not batch:
                    continue
                try:
                    sink.send(batch)
                    pending[sink.name] = []
                except SinkError as exc:
                    pending[sink.name] = batch
                    err_console().print(
                        f"[red]sink {sink.name} failed:[/] {exc} — {exc.remedy} (retried at the next poll)"
                    )
            unsent = {a.key for batch in pending.values() for a in batch}
            monitor.repo.mark_sent(keys=[a.key for a in result.new_alerts if a.key not in unsent])
            monitor.repo.mark_sent(keys=[k for k in retried if k not in unsent])
            retried = unsent
            done += 1
            if iterations and done >= iterations:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        err_console().print("stopped")
