"""``meetgate validate`` (runbook step 6) and ``meetgate golive`` (step 8): parse → gather → render.

The checks live in :mod:`meetgate.admin.validation` and :mod:`meetgate.admin.readiness`; this module
wires them to the profile, the Graph client, pwsh and the store, and renders the results.
"""

from __future__ import annotations

import os
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
    state,
)

if TYPE_CHECKING:
    from meetgate.admin.readiness import ReadinessReport
    from meetgate.admin.validation import CheckResult, ValidationRun
    from meetgate.config import Profile

_ICON = {
    "pass": "[green]PASS[/]",
    "warn": "[yellow]WARN[/]",
    "fail": "[bold red]FAIL[/]",
    "skip": "[dim]SKIP[/]",
}

UsersOpt = Annotated[list[str] | None, typer.Option(help="UPN or object id (repeat, or comma-separate).")]
PolicyFileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="Policy file (default: the profile's policy_file)."),
]
PwshOpt = Annotated[
    str | None,
    typer.Option(
        "--pwsh",
        envvar="MEETGATE_PWSH",
        help="pwsh command line (the sandbox stand-in: 'meetgate-sandbox-pwsh'); default: pwsh when installed.",
    ),
]


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}", "choose a writable path", code=EXIT_USAGE)


def _open_runs(profile: Profile) -> Any:
    """The store's validation repository, or None (with a note) when the store cannot be opened."""
    from meetgate.composition.store import open_runs
    from meetgate.store import StoreError

    try:
        return open_runs(profile)
    except StoreError as exc:
        err_console().print(f"[yellow]note:[/] results are not kept: {exc}")
        return None


def _approved_users(profile: Profile, file: Path | None) -> tuple[list[str], str | None]:
    """The policy file's listed users (UPNs / ids), or a note on why there are none."""
    from meetgate.admin.policy.loader import load_desired_state
    from meetgate.admin.policy.model import PolicyError

    path = file or profile.policy_file
    if path is None:
        return [], "no policy file (set policy_file or pass --file)"
    try:
        desired = load_desired_state(path, profile.policy_name)
    except PolicyError as exc:
        return [], f"policy file unusable: {exc}"
    return list(desired.organizers.users), None


def _calendar_outside(profile: Profile, file: Path | None) -> tuple[str, ...]:
    """``[mailbox_scope] outside`` of the policy file (empty when not given or the file is unusable:
    the calendar negative test then uses the negative users)."""
    from meetgate.admin.mailbox_scope.loader import load_mailbox_scope
    from meetgate.admin.mailbox_scope.model import MailboxScopeError
    from meetgate.admin.policy.loader import load_desired_state
    from meetgate.admin.policy.model import PolicyError

    path = file or profile.policy_file
    if path is None:
        return ()
    try:
        desired = load_mailbox_scope(path, load_desired_state(path, profile.policy_name))
    except (PolicyError, MailboxScopeError) as exc:
        err_console().print(f"[yellow]note:[/] [mailbox_scope] unusable, outside samples not read: {exc}")
        return ()
    return desired.outside if desired is not None else ()


# --- validate -------------------------------------------------------------------------------------


def _render_run(run: ValidationRun) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    table = Table("", "check", "finding", "what to do", show_lines=False, expand=True)
    for c in run.checks:
        table.add_row(
            _ICON[c.status], c.name, escape(c.finding), escape(c.remedy or "") if c.status != "pass" else ""
        )
    out.print(table)
    counts = ", ".join(f"{n} {s}" for s, n in run.counts().items() if n)
    colour = {"pass": "green", "warn": "yellow", "fail": "red"}[run.status]
    out.print(f"[bold {colour}]{run.status.upper()}[/] — {counts}; run {run.id}")


def validate(
    ctx: typer.Context,
    pilot: UsersOpt = None,
    negative: UsersOpt = None,
    file: PolicyFileOpt = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these checks (repeat); others are skipped.")
    ] = None,
    pwsh: PwshOpt = None,
    access_token_env: Annotated[
        str | None,
        typer.Option(
            "--access-token-env",
            help="Validate the access token in this environment variable (e.g. the one a third-party app "
            "was configured with) instead of signing in with the certificate.",
        ),
    ] = None,
    as_app: Annotated[
        str | None,
        typer.Option(
            "--as-app",
            help="Read the app registration (certificates, client secrets) as this automation app's profile "
            "(needs Application.Read.All); default: try the integration app's own token.",
        ),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", min=1, max=20, help="Reachability calls.")] = 3,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML to FILE (for CI).")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write an HTML report to FILE.")] = None,
    keep: Annotated[bool, typer.Option("--keep/--no-keep", help="Keep the result in the store.")] = True,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            metavar="DIR",
            help="Run no checks: write step 6's manual tests for this tenant into DIR — a Postman "
            "collection + environment (for Postman or newman), a PowerShell script and a README.",
        ),
    ] = None,
    assertion_minutes: Annotated[
        int,
        typer.Option(
            "--assertion-minutes",
            min=1,
            max=60,
            help="With --export: how long the signed client assertion in the environment stays valid.",
        ),
    ] = 15,
    force: Annotated[bool, typer.Option("--force", help="With --export: replace an earlier export.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Runbook step 6: app-only token, roles, policy positive and negative tests, with evidence.

    Exit code 1 when any check fails. Test meetings are deleted, also on Ctrl-C. With --export DIR,
    writes the same tests for people to repeat by hand (Postman, newman, PowerShell) instead.
    """
    import shlex
    import shutil
    from dataclasses import replace

    from meetgate.admin import validation as v
    from meetgate.admin.mailbox_scope.loader import is_scoped
    from meetgate.admin.records import StoreCleanupJournal, save_run
    from meetgate.admin.reports import validation_html, validation_junit
    from meetgate.config import ConfigError

    try:
        profile = load_active_profile(ctx)
    except ConfigError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:
        fail(problem, "fix meetgate.toml (docs/configuration.md)")
    if export is not None:
        _export(profile, export, file, pilot, negative, assertion_minutes, force, as_json)
        return
    external_token = None
    if access_token_env:
        external_token = os.environ.get(access_token_env)
        if not external_token:
            fail(
                f"--access-token-env names {access_token_env}, which is not set",
                f"export {access_token_env}=…",
            )
    config = v.ValidationConfig(
        profile=profile.name,
        tenant_id=profile.tenant_id,
        client_id=profile.client_id,
        authority_url=profile.authority_url,
        graph_url=profile.graph_url,
        private_key_path=profile.private_key_path,
        certificate_path=profile.certificate_path,
        pfx_path=profile.pfx_path,
        passphrase=profile.passphrase(),
        client_secret_env=profile.client_secret_env,
        client_secret_configured=profile.client_secret() is not None,
        external_token=external_token is not None,
        policy_name=profile.policy_name,
        mailbox_scoped=is_scoped(file or profile.policy_file),
        artifacts=profile.artifacts,
    )
    if config.mailbox_scoped:
        config = replace(config, calendar_outside=_calendar_outside(profile, file))
    client, client_error = _client(profile, external_token)
    runs = _open_runs(profile) if keep else None
    journal: Any = (
        StoreCleanupJournal(runs, profile.client_id) if runs is not None else v.InMemoryCleanupJournal()
    )
    target = v.ValidationTarget(config=config, journal=journal, client_error=client_error)
    pilots, negatives = _split(pilot), _split(negative)
    if client is not None:
        from meetgate.graph.applications import ApplicationsService

        target.tokens = client.tokens
        target.meetings = client.meetings
        if config.mailbox_scoped:
            target.events = client.events
        target.directory = client.directory
        if config.artifacts:
            target.artifacts = client.artifacts
        target.registration = ApplicationsService(_registration_http(ctx, as_app, client))
        target.reachability = v.GraphReachabilityProbe(client.http)
        _default_users(profile, file, client, pilots, negatives, pilot is None, negative is None)
        leftovers = (
            v.cleanup_leftovers(client.meetings, journal, events=target.events) if journal.pending() else []
        )
        for item in leftovers:
            err_console().print(
                f"[dim]cleanup of an earlier run: {item['external_id']} for {item['organizer_id']}: {item['outcome']}[/]"
            )
    target.teams, target.teams_skip_reason = _teams_probe(profile, pwsh, shutil.which, shlex.split)
    progress = _progress if (not as_json and err_console().is_terminal) else None
    try:
        run = v.run_validation(
            target,
            pilot=pilots,
            negative=negatives,
            reachability_samples=samples,
            only=only,
            on_result=progress,
        )
    except ValueError as exc:
        fail(str(exc), "see `meetgate validate --help`")
    except KeyboardInterrupt:
        err_console().print("[yellow]interrupted[/]: test meetings created so far were deleted")
        raise typer.Exit(130) from None
    finally:
        if client is not None:
            client.close()
    if runs is not None:
        save_run(runs, run)
    if junit:
        _write(junit, validation_junit(run))
    if html:
        _write(html, validation_html(run))
    if as_json:
        print_json(run.to_dict())
    else:
        _render_run(run)
        for label, path in (("JUnit", junit), ("HTML", html)):
            if path:
                console().print(f"[dim]{label} report: {path}[/]")
    if not run.ok:
        raise typer.Exit(EXIT_FAILED)


def _export(
    profile: Profile,
    directory: Path,
    file: Path | None,
    pilot: list[str] | None,
    negative: list[str] | None,
    assertion_minutes: int,
    force: bool,
    as_json: bool,
) -> None:
    """--export: the test users default as for the checks (policy file; first user outside it)."""
    from meetgate.cli.validate_export import export_manual_tests
    from meetgate.composition import graph_client_from_profile
    from meetgate.config import ConfigError
    from meetgate.graph.errors import GraphError

    pilots, negatives = _split(pilot), _split(negative)
    try:
        client = graph_client_from_profile(profile)
    except (ConfigError, GraphError) as exc:
        fail(f"cannot sign in as the app: {exc}", "`meetgate validate` says what is wrong")
    try:
        _default_users(profile, file, client, pilots, negatives, pilot is None, negative is None)
        export_manual_tests(
            profile,
            client,
            directory,
            pilots=pilots,
            negatives=negatives,
            assertion_minutes=assertion_minutes,
            force=force,
            as_json=as_json,
        )
    finally:
        client.close()


def _progress(result: CheckResult) -> None:
    from rich.markup import escape

    err_console().print(f"{_ICON[result.status]} {result.name}: {escape(result.finding)}", soft_wrap=True)


def _registration_http(ctx: typer.Context, as_app: str | None, client: Any) -> Any:
    """Graph HTTP of the identity that reads the app registration."""
    if as_app is None:
        return client.http
    from meetgate.composition import graph_client_from_profile
    from meetgate.config import ConfigError, load_profile
    from meetgate.graph.errors import GraphError

    try:
        reader = graph_client_from_profile(load_profile(state(ctx).config, as_app))
    except (ConfigError, GraphError) as exc:
        fail(f"--as-app {as_app}: {exc}", "name a profile of an app with Application.Read.All")
    return reader.http


def _client(profile: Profile, external_token: str | None) -> tuple[Any, str | None]:
    """A Graph client for the profile (or for a handed-over token), or why none could be built."""
    from meetgate.composition import graph_client_from_profile, graph_client_with_token
    from meetgate.config import ConfigError
    from meetgate.graph.errors import GraphError

    try:
        if external_token is None:
            return graph_client_from_profile(profile), None
        return graph_client_with_token(profile, external_token), None
    except (ConfigError, GraphError) as exc:
        return None, str(exc)


def _default_users(
    profile: Profile,
    file: Path | None,
    client: Any,
    pilots: list[str],
    negatives: list[str],
    want_pilot: bool,
    want_negative: bool,
) -> None:
    """Fill --pilot / --negative from the policy file when they were not given."""
    import itertools

    from meetgate.admin.validation import default_test_users
    from meetgate.graph.errors import GraphError

    if not (want_pilot or want_negative):
        return
    approved, note = _approved_users(profile, file)
    if note:
        err_console().print(f"[dim]defaults for --pilot/--negative: {note}[/]")
        return
    directory_users: list[Any] = []
    if want_negative:
        try:
            directory_users = list(itertools.islice(client.directory.list_users(top=50), 200))
        except GraphError:
            directory_users = []  # the organizer_lookup check reports the reason
    default_pilot, default_negative = default_test_users(
        approved, directory_users, exclude=() if want_pilot else pilots
    )
    if want_pilot:
        pilots.extend(default_pilot)
    if want_negative:
        negatives.extend(default_negative)


def _teams_probe(profile: Profile, pwsh: str | None, which: Any, split: Any) -> tuple[Any, str]:
    from meetgate.admin.policy.powershell import SubprocessPwshRunner
    from meetgate.admin.validation import PwshTeamsProbe

    command = pwsh or ("pwsh" if which("pwsh") else None)
    if command is None:
        return None, "pwsh (PowerShell 7 with the MicrosoftTeams module) is not installed here; pass --pwsh"
    if not (profile.tenant_id and profile.client_id):
        return None, "the profile has no tenant_id / client_id"
    if profile.pfx_path is not None or not (profile.certificate_path and profile.private_key_path):
        return None, "Teams PowerShell is tested with a PEM certificate + key (the profile has none)"
    runner = SubprocessPwshRunner(tuple(split(command)), timeout_seconds=120.0)
    probe = PwshTeamsProbe(
        profile.tenant_id, profile.client_id, profile.certificate_path, profile.private_key_path, runner
    )
    return probe, ""


# --- golive ---------------------------------------------------------------------------------------


def _render_report(report: ReadinessReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    table = Table("", "item", "finding", "what to do", expand=True)
    for item in report.items:
        table.add_row(_ICON[item.status], item.title, escape(item.finding), escape(item.remedy or ""))
    out.print(table)
    if report.go:
        out.print("[bold green]GO[/]")
    else:
        out.print("[bold red]NO-GO[/]")
        for reason in report.reasons:
            out.print(f"  - {escape(reason)}")


def golive(
    ctx: typer.Context,
    file: PolicyFileOpt = None,
    backend: Annotated[
        str, typer.Option("--backend", "-b", help="How to read the policy grants: powershell or graph.")
    ] = "powershell",
    pwsh: Annotated[
        str,
        typer.Option("--pwsh", envvar="MEETGATE_PWSH", help="pwsh command line (or the sandbox stand-in)."),
    ] = "pwsh",
    max_age_days: Annotated[
        int, typer.Option("--max-age-days", min=1, help="A passing validation must be this recent.")
    ] = 7,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Write the report as Markdown to FILE.")
    ] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the report as HTML to FILE.")] = None,
    start: Annotated[
        bool,
        typer.Option(
            "--start", help="Record the go-live now and start the 7-day hypercare window (needs GO)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Runbook step 8: the go-live readiness report with evidence, GO / NO-GO (exit 1 on NO-GO)."""
    import datetime as dt
    from dataclasses import replace

    from meetgate.admin.mailbox_scope.loader import is_scoped
    from meetgate.admin.readiness import ReadinessInputs, assess_readiness
    from meetgate.admin.records import load_runs, record_go_live
    from meetgate.admin.reports import readiness_html, readiness_markdown
    from meetgate.config import ConfigError

    try:
        profile = load_active_profile(ctx)
    except ConfigError as exc:
        fail(str(exc), "fix meetgate.toml (docs/configuration.md)")
    now = dt.datetime.now(dt.UTC)
    approved, unknown, state, policy_error = _policy_facts(ctx, profile, file, backend, pwsh)
    not_after, thumbprint = _certificate_facts(profile)
    runs_repo = _open_runs(profile)
    runs = load_runs(runs_repo, profile.client_id) if runs_repo is not None else []
    inputs = ReadinessInputs(
        tenant_id=profile.tenant_id,
        client_id=profile.client_id,
        policy_identity=profile.policy_name,
        now=now,
        approved=approved,
        approved_unknown=unknown,
        policy_state=state,
        policy_error=policy_error,
        certificate_not_after=not_after,
        certificate_thumbprint=thumbprint,
        client_secret_configured=profile.client_secret() is not None,
        client_secret_env=profile.client_secret_env,
        runs=runs,
        validation_max_age_days=max_age_days,
        consumers=_consumers(profile),
        monitoring=_monitoring_status(profile),
        monitoring_skip_reason="the store holding `meetgate monitor` runs could not be read",
        mailbox_scoped=is_scoped(file or profile.policy_file),
    )
    if inputs.mailbox_scoped:
        roles, roles_error = _token_roles(profile)
        inputs = replace(inputs, entra_roles=roles, roles_error=roles_error)
    report = assess_readiness(inputs)
    if markdown:
        _write(markdown, readiness_markdown(report))
    if html:
        _write(html, readiness_html(report))
    window = None
    if start and report.go:
        if runs_repo is None:
            fail("cannot record the go-live: the store is not available", "check store_url")
        window = record_go_live(runs_repo, report, at=now)
    if as_json:
        data = report.to_dict()
        if window is not None:
            data["hypercare"] = window.to_dict()
        print_json(data)
    else:
        _render_report(report)
        if window is not None:
            console().print(
                f"go-live recorded at {window.started_at:%Y-%m-%d %H:%M} UTC; hypercare until "
                f"{window.ends_at:%Y-%m-%d %H:%M} UTC (monitoring tightens thresholds and sends a daily digest)"
            )
    if start and not report.go:
        err_console().print("[red]go-live not recorded: the verdict is NO-GO[/]")
    if not report.go:
        raise typer.Exit(EXIT_FAILED)


def _token_roles(profile: Any) -> tuple[list[str] | None, str | None]:
    """The roles of the app's current token (Entra grants), or why they could not be read."""
    from meetgate.composition import graph_client_from_profile
    from meetgate.errors import MeetgateError

    try:
        with graph_client_from_profile(profile) as client:
            return list(client.token_claims().roles), None
    except MeetgateError as exc:
        return None, str(exc)


def _policy_facts(
    ctx: typer.Context, profile: Profile, file: Path | None, backend: str, pwsh: str
) -> tuple[dict[str, str] | None, tuple[str, ...], Any, str | None]:
    """(approved id → UPN, unresolved refs, tenant policy state, why the state is missing)."""
    from meetgate.admin.policy.model import PolicyError
    from meetgate.admin.readiness_facts import policy_facts
    from meetgate.cli.policy import DEFAULT_STATE_DIR, PolicySession
    from meetgate.config import ConfigError
    from meetgate.graph.errors import GraphError

    if (file or profile.policy_file) is None:
        return None, (), None, "no policy file (set policy_file or pass --file)"
    try:
        approved, unknown, state = policy_facts(PolicySession(ctx, file, backend, pwsh, DEFAULT_STATE_DIR))
    except (PolicyError, GraphError, ConfigError) as exc:
        return None, (), None, str(exc)
    return approved, unknown, state, None


def _certificate_facts(profile: Profile) -> tuple[Any, str | None]:
    from meetgate.admin.readiness_facts import certificate_facts

    return certificate_facts(
        key_path=profile.private_key_path,
        certificate_path=profile.certificate_path,
        pfx_path=profile.pfx_path,
        passphrase=profile.passphrase(),
    )


def _monitoring_status(profile: Profile) -> Any:
    """The newest `meetgate monitor` run for this tenant and app, or None when the store is unreadable."""
    from meetgate.admin.readiness_facts import monitoring_status
    from meetgate.composition.store import open_store
    from meetgate.store import StoreError
    from meetgate.store.monitoring import MonitorRepository

    if not profile.tenant_id or not profile.client_id:
        return monitoring_status(None, profile.tenant_id, profile.client_id)
    try:
        store = open_store(profile)
        try:
            return monitoring_status(MonitorRepository(store), profile.tenant_id, profile.client_id)
        finally:
            store.close()
    except StoreError:
        return None


def _consumers(profile: Profile) -> list[Any] | None:
    from meetgate.admin.readiness_facts import consumer_scopes
    from meetgate.composition.store import open_store
    from meetgate.store import StoreError

    try:
        store = open_store(profile)
        try:
            return consumer_scopes(store.list_consumers())
        finally:
            store.close()
    except StoreError:
        return None
