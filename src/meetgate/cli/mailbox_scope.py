"""``meetgate mailbox-scope``: the calendar plane — Exchange Online RBAC for Applications as desired state.

plan → review → apply → verify; status and drift for operations; script for an administrator. The
desired state is the policy file's ``[mailbox_scope]`` section. Heavy imports stay inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meetgate.cli._common import EXIT_FAILED, console, fail, load_active_profile, print_json, print_warnings

if TYPE_CHECKING:
    from meetgate.admin.mailbox_scope.model import DesiredMailboxScope
    from meetgate.admin.mailbox_scope.planner import MailboxScopePlan
    from meetgate.config import Profile

app = typer.Typer(
    help="Calendar meetings, scoped: Exchange Online RBAC for Applications (service principal pointer, "
    "management scope, 'Application Calendars.ReadWrite' role assignment) from the policy file's "
    "mailbox_scope section. Needs no Entra Calendars.ReadWrite grant — and must not have one (Entra grants and "
    "Exchange RBAC add up).",
    no_args_is_help=True,
)

FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        help="Policy file with a mailbox_scope section (default: the profile's policy_file).",
    ),
]
BackendOpt = Annotated[
    str, typer.Option("--backend", "-b", help="powershell (pwsh + ExchangeOnlineManagement, app-only).")
]
PwshOpt = Annotated[
    str,
    typer.Option(
        "--pwsh",
        envvar="MEETGATE_PWSH",
        help="pwsh command line (the sandbox stand-in: 'meetgate-sandbox-pwsh').",
    ),
]
OrgOpt = Annotated[
    str | None,
    typer.Option(
        "--organization",
        help="The tenant's primary .onmicrosoft.com domain for Connect-ExchangeOnline (default: the "
        "profile's exchange_organization).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class ScopeSession:
    """Profile + desired state + backend + Graph directory, built once per command."""

    def __init__(
        self,
        ctx: typer.Context,
        file: Path | None,
        *,
        backend: str = "powershell",
        pwsh: str = "pwsh",
        organization: str | None = None,
        with_backend: bool = True,
    ) -> None:
        from dataclasses import replace

        from meetgate.admin.mailbox_scope.loader import load_mailbox_scope
        from meetgate.admin.mailbox_scope.model import MailboxScopeError
        from meetgate.admin.policy.loader import load_desired_state
        from meetgate.admin.policy.model import PolicyError
        from meetgate.config import ConfigError

        self.profile: Profile = load_active_profile(ctx)
        path = file or self.profile.policy_file
        if path is None:
            fail(
                "no policy file",
                "pass --file policy.toml or set policy_file in the profile (docs/admin-guide.md)",
            )
        try:
            policy = load_desired_state(path, self.profile.policy_name)
            desired = load_mailbox_scope(path, policy)
        except (PolicyError, MailboxScopeError) as exc:
            fail(str(exc), exc.remedy)
        if desired is None:
            fail(
                f"{path} has no [mailbox_scope] section",
                "add one (docs/admin-guide.md, 'Calendar meetings: the mailbox scope'); an empty "
                "[mailbox_scope] scopes the Teams policy's organizers",
            )
        client_id = self.profile.client_id
        if client_id and client_id.lower() in {a.lower() for a in policy.app_ids}:
            desired = replace(desired, app_id=client_id)
        self.desired: DesiredMailboxScope = desired
        self.path = path
        self.organization = organization
        self._graph: Any = None
        self.backend: Any = None
        if with_backend:
            from meetgate.composition.mailbox_scope import mailbox_scope_backend

            try:
                self.backend = mailbox_scope_backend(
                    self.profile, backend, pwsh=pwsh, organization=organization
                )
            except ConfigError as exc:
                fail(str(exc), exc.remedy or "see `meetgate mailbox-scope --help`")

    def graph_client(self) -> Any:
        if self._graph is None:
            from meetgate.composition import graph_client_from_profile

            self._graph = graph_client_from_profile(self.profile)
        return self._graph

    def directory(self) -> Any:
        from meetgate.admin.mailbox_scope.adapters import GraphScopeDirectory

        return GraphScopeDirectory(self.graph_client().directory)

    def service_principal_id(self) -> str:
        sp_id = self.profile.service_principal_id
        if sp_id:
            return sp_id
        from meetgate.graph.applications import ApplicationsService

        found = ApplicationsService(self.graph_client().http).find_service_principal(self.desired.app_id)
        if found is None:
            fail(
                f"no enterprise application (service principal) for app {self.desired.app_id}",
                "run `meetgate setup app`, which creates it and writes service_principal_id to the profile",
            )
        return str(found.id)

    def plan(self, state: Any = None) -> MailboxScopePlan:
        from meetgate.admin.mailbox_scope.model import ExchangeState
        from meetgate.admin.mailbox_scope.planner import build_plan, resolve_scope_organizers

        current = (
            state
            if state is not None
            else (self.backend.read_state(self.desired) if self.backend else ExchangeState())
        )
        organizers = resolve_scope_organizers(self.desired, self.directory())
        return build_plan(
            self.desired,
            organizers,
            current,
            service_principal_id=self.service_principal_id(),
            display_name=self.profile.app_display_name,
        )

    def entra_roles(self) -> list[str] | None:
        try:
            return list(self.graph_client().token_claims().roles)
        except Exception:  # reported as "not read"; the token's own failure shows elsewhere
            return None


def _guard(fn: Any) -> Any:
    """Turn meetgate's errors (the file, Exchange, Graph) into a clear exit with the remedy."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from meetgate.errors import MeetgateError

        try:
            return fn(*args, **kwargs)
        except MeetgateError as exc:
            fail(str(exc), exc.remedy, code=EXIT_FAILED)

    return wrapper


_ACTION_STYLE = {
    "new-service-principal": "green",
    "tag": "green",
    "new-scope": "green",
    "new-assignment": "green",
    "untag": "red",
    "remove-assignment": "red",
    "remove-scope": "red",
}


def _render_plan(plan: MailboxScopePlan, *, limit: int = 50) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    d = plan.desired
    if d.administrative_unit is not None:
        out.print(
            f"[bold]{escape(d.role)}[/] for app {d.app_id} over administrative unit "
            f"[bold]{d.administrative_unit}[/] (administrative_unit mode, -RecipientAdministrativeUnitScope)"
        )
    else:
        out.print(
            f"[bold]{escape(d.role)}[/] for app {d.app_id} over scope [bold]{escape(d.scope_name)}[/] "
            f"({d.mode} mode)\n  recipient filter: {escape(plan.recipient_filter)}"
        )
    out.print(
        f"approved organizers {len(plan.organizers.approved)} (from {d.organizers_from}), in scope "
        f"{len(plan.organizers.in_scope)}; {len(plan.steps)} step(s)   (plan {plan.plan_id})"
    )
    if plan.steps:
        table = Table("step", "target", "detail", show_edge=False)
        for step in plan.steps[:limit]:
            style = _ACTION_STYLE.get(step.action, "white")
            table.add_row(f"[{style}]{step.action}[/]", escape(step.target), escape(step.detail))
        out.print(table)
        if len(plan.steps) > limit:
            out.print(f"… and {len(plan.steps) - limit} more (use --json for all)")
    else:
        out.print("[green]no changes[/]: Exchange matches the policy file")
    print_warnings(plan.warnings)


@app.command("plan")
@_guard
def plan_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    organization: OrgOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare the policy file's mailbox_scope section with Exchange: the steps apply would take, and warnings (nested members…)."""
    session = ScopeSession(ctx, file, backend=backend, pwsh=pwsh, organization=organization)
    plan = session.plan()
    if json_out:
        print_json(plan.to_dict())
    else:
        _render_plan(plan)


@app.command("apply")
@_guard
def apply_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    organization: OrgOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create the service principal pointer, tag mailboxes (or use the group), the scope and the role
    assignment; refuses while the app holds a tenant-wide Entra calendar grant (the union rule)."""
    from rich.markup import escape

    from meetgate.admin.mailbox_scope.apply import apply_plan
    from meetgate.admin.mailbox_scope.model import union_violation

    session = ScopeSession(ctx, file, backend=backend, pwsh=pwsh, organization=organization)
    roles = session.entra_roles()
    held = union_violation(roles or [])
    if held:
        fail(
            f"the app holds the tenant-wide Entra permission(s) {', '.join(held)}: a mailbox scope would limit "
            "nothing (Entra grants and Exchange RBAC add up); nothing was changed",
            f"remove {', '.join(held)} from the app's API permissions and revoke the admin consent, then apply",
            code=EXIT_FAILED,
        )
    plan = session.plan()
    if not plan.has_changes:
        if json_out:
            print_json({"planId": plan.plan_id, "ok": True, "done": 0, "failed": [], "steps": []})
        else:
            console().print("nothing to do: Exchange matches the policy file")
        return
    report = apply_plan(plan, session.backend)
    if json_out:
        print_json(report.to_dict())
    else:
        _render_plan(plan)
        data = report.to_dict()
        console().print(f"done {data['done']} of {len(plan.steps)} step(s), failed {len(report.failed)}")
        for failure in report.failed:
            console().print(
                f"  [red]{failure.step.action} {escape(failure.step.target)} failed:[/] {escape(str(failure.error))}"
            )
        if report.ok:
            console().print(
                "Exchange's permission cache takes 30 minutes to 2 hours to reach Graph: run "
                "`meetgate mailbox-scope verify` (Test-ServicePrincipalAuthorization answers at once)"
            )
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _parse_duration(text: str) -> float:
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if match is None:
        fail(f"--wait {text!r} is not a duration", "use e.g. 0, 90s, 30m or 2h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


@app.command("verify")
@_guard
def verify_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    organization: OrgOpt = None,
    outside: Annotated[
        list[str] | None,
        typer.Option(
            "--outside",
            help="A mailbox that must be OUT of scope (repeatable; default: the file's, else picked).",
        ),
    ] = None,
    events: Annotated[
        bool,
        typer.Option(
            "--events/--no-events", help="Also create a real event (deleted at once) and a refused one."
        ),
    ] = True,
    wait: Annotated[
        str,
        typer.Option(
            "--wait",
            help="Poll the event tests this long for Exchange's cache (documented 30m to 2h), e.g. 2h.",
        ),
    ] = "0",
    poll: Annotated[str, typer.Option("--poll", help="Time between event attempts while waiting.")] = "60s",
    json_out: JsonOpt = False,
) -> None:
    """Test-ServicePrincipalAuthorization for every approved organizer (in scope) and outside samples
    (out of scope), no tenant-wide Entra grant, then real events: created in scope, refused outside.
    Exit 1 on failure, 3 while Exchange's cache has not caught up."""
    from rich.markup import escape

    from meetgate.admin.mailbox_scope.adapters import GraphEventProbe, pick_outside
    from meetgate.admin.mailbox_scope.verify import verify

    session = ScopeSession(ctx, file, backend=backend, pwsh=pwsh, organization=organization)
    plan = session.plan()
    samples = pick_outside(
        session.directory(),
        plan.organizers.covered(),
        outside or session.desired.outside,
    )
    report = verify(
        plan,
        session.backend,
        outside=samples,
        roles=session.entra_roles(),
        probe=GraphEventProbe(session.graph_client().events) if events else None,
        wait_seconds=_parse_duration(wait),
        poll_seconds=max(1.0, _parse_duration(poll)),
    )
    if json_out:
        print_json({**report.to_dict(), "planChanges": len(plan.steps)})
    else:
        icons = {
            "pass": "[green]PASS[/]",
            "fail": "[red]FAIL[/]",
            "pending": "[yellow]PENDING[/]",
            "skip": "[dim]skip[/]",
        }
        if plan.has_changes:
            console().print(
                f"[yellow]note[/]: Exchange differs from the file by {len(plan.steps)} step(s) (run `meetgate mailbox-scope plan`)"
            )
        for check in report.checks:
            console().print(f"{icons[check.status]} {check.name}: {escape(check.finding)}")
            if check.remedy and check.status in ("fail", "pending"):
                console().print(f"      → {escape(check.remedy)}", style="dim")
    if report.pending:
        raise typer.Exit(3)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command("status")
@_guard
def status_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    organization: OrgOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """What Exchange holds for the app: pointer, scope and filter, role assignments, tagged mailboxes."""
    from rich.markup import escape

    from meetgate.admin.mailbox_scope.model import union_violation
    from meetgate.admin.mailbox_scope.status import scope_status

    session = ScopeSession(ctx, file, backend=backend, pwsh=pwsh, organization=organization)
    state = session.backend.read_state(session.desired)
    plan = session.plan(state)
    status = scope_status(plan, state)
    held = union_violation(session.entra_roles() or [])
    if json_out:
        print_json({**status.to_dict(), "entraCalendarRoles": list(held)})
        return
    out = console()
    p, s, a = status.pointer, status.scope, status.assignment
    out.print(f"service principal pointer: {'[green]' + p['objectId'] + '[/]' if p else '[red]none[/]'}")
    if session.desired.administrative_unit is not None:
        out.print(f"administrative unit: {session.desired.administrative_unit} (no management scope)")
    else:
        out.print(
            f"management scope: {escape(s['name'] + ' — ' + s['recipientFilter']) if s else '[red]none[/]'}"
        )
    out.print(f"role assignment: {escape(a['name'] + ' (' + a['role'] + ')') if a else '[red]none[/]'}")
    for other in status.other_assignments:
        out.print(
            f"  other assignment: {escape(str(other['name']))} {other['role']} over {other['scope'] or 'the organization'}"
        )
    if session.desired.mode == "attribute":
        out.print(f"tagged mailboxes ({session.desired.attribute} = {session.desired.tag}): {status.tagged}")
    if held:
        out.print(f"[red]tenant-wide Entra grant {', '.join(held)}: the scope limits nothing[/]")
    for note in status.notes:
        out.print(f"[dim]{escape(note)}[/]")
    out.print(
        "[green]in sync with the policy file[/]"
        if status.in_sync
        else f"[yellow]{len(status.drift)} step(s) of drift[/]: `meetgate mailbox-scope drift`"
    )


@app.command("drift")
@_guard
def drift_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    organization: OrgOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Exit 1 when Exchange differs from the file (a removed assignment, a changed scope, untagged
    organizers) or a tenant-wide Entra calendar grant voids the scope; for cron and CI."""
    from rich.markup import escape

    from meetgate.admin.mailbox_scope.model import union_violation

    session = ScopeSession(ctx, file, backend=backend, pwsh=pwsh, organization=organization)
    plan = session.plan()
    held = union_violation(session.entra_roles() or [])
    drifted = plan.has_changes or bool(held)
    if json_out:
        print_json(
            {"drift": drifted, "steps": [s.to_dict() for s in plan.steps], "entraCalendarRoles": list(held)}
        )
    else:
        if not drifted:
            console().print("[green]no drift[/]: Exchange matches the policy file")
        for step in plan.steps:
            console().print(f"[yellow]drift[/]: {step.action} {escape(step.target)} — {escape(step.detail)}")
        if held:
            console().print(
                f"[red]drift[/]: the app holds the tenant-wide Entra permission(s) {', '.join(held)}"
            )
        if drifted:
            console().print("fix with `meetgate mailbox-scope apply` (and remove any Entra calendar grant)")
    if drifted:
        raise typer.Exit(EXIT_FAILED)


@app.command("script")
@_guard
def script_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the .ps1.")] = Path(
        "meetgate-mailbox-scope.ps1"
    ),
    read_state: Annotated[
        bool,
        typer.Option(
            "--read-state/--no-read-state",
            help="Read Exchange through --backend first (includes untags and removals).",
        ),
    ] = False,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    organization: OrgOpt = None,
    outside: Annotated[
        list[str] | None, typer.Option("--outside", help="A mailbox the script must test out of scope.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write a reviewed, idempotent Exchange Online PowerShell script (transcript, per-step error
    handling, Test-ServicePrincipalAuthorization at the end) for an Exchange administrator to run."""
    from meetgate.admin.mailbox_scope.adapters import pick_outside
    from meetgate.admin.mailbox_scope.model import ExchangeState
    from meetgate.admin.mailbox_scope.script import render_script
    from meetgate.composition.mailbox_scope import exchange_organization
    from meetgate.config import ConfigError

    session = ScopeSession(
        ctx, file, backend=backend, pwsh=pwsh, organization=organization, with_backend=read_state
    )
    state = session.backend.read_state(session.desired) if read_state else ExchangeState()
    if not read_state and session.desired.mode == "group":
        state.group_dn = None
    plan = session.plan(state) if read_state or session.desired.mode != "group" else None
    if plan is None:
        fail(
            "a MemberOfGroup scope needs the group's distinguished name from Exchange",
            "pass --read-state (Get-Group is read through --backend), or list the organizers instead of `group`",
        )
    samples = pick_outside(
        session.directory(),
        plan.organizers.covered(),
        outside or session.desired.outside,
    )
    try:
        org: str | None = exchange_organization(session.profile, organization)
    except ConfigError:
        org = None
    text = render_script(plan, organization=org, outside=samples)
    out.write_text(text, encoding="utf-8")
    if json_out:
        print_json({"script": str(out), "planId": plan.plan_id, "steps": len(plan.steps), "outside": samples})
    else:
        _render_plan(plan)
        console().print(
            f"script written to {out}: review it, then an Exchange administrator runs `pwsh -File {out}` "
            "(or -AppId/-CertificateThumbPrint for app-only)"
        )
