"""``meetgate policy``: runbook steps 4–5 — the application access policy as desired state.

plan → review → apply (resumable) → verify; status and drift for operations. Heavy imports stay
inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meetgate.cli._common import (
    EXIT_FAILED,
    console,
    err_console,
    fail,
    load_active_profile,
    print_json,
    print_warnings,
)

if TYPE_CHECKING:
    from meetgate.admin.policy.model import DesiredPolicy, TenantPolicyState
    from meetgate.admin.policy.planner import PolicyPlan
    from meetgate.config import Profile

app = typer.Typer(
    help="Runbook steps 4–5: the Teams application access policy as a reviewed desired state.",
    no_args_is_help=True,
)

FileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="Policy file, .toml or .yaml (default: the profile's policy_file)."),
]
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend", "-b", help="powershell (pwsh + MicrosoftTeams) or graph (assignment endpoints)."
    ),
]
PwshOpt = Annotated[
    str,
    typer.Option(
        "--pwsh",
        envvar="MEETGATE_PWSH",
        help="pwsh command line (the sandbox stand-in: 'meetgate-sandbox-pwsh').",
    ),
]
StateDirOpt = Annotated[
    Path,
    typer.Option("--state-dir", envvar="MEETGATE_POLICY_STATE_DIR", help="Journal and last-apply record."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="No live progress bar (for logs and CI).")]
#: how the apply summary names what happened to the policy itself
POLICY_DONE = {"create": "policy created", "update": "policy updated", "none": "policy unchanged"}
MassRevokeOpt = Annotated[
    float | None,
    typer.Option(
        "--mass-revoke-percent",
        min=0,
        max=100,
        help="Warn (mass-revoke) when the plan revokes more than this % of the current holders "
        "(default: the file's [warnings] mass_revoke_percent, else 20; revoking all always warns).",
    ),
]
YesOpt = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Accept every warning of the plan except mass-revoke (-a mass-revoke)."),
]
DEFAULT_STATE_DIR = Path(".meetgate/policy")


class PolicySession:
    """Profile + desired state + backend + directory, built once per command (also used by `monitor` and `golive`)."""

    def __init__(
        self,
        ctx: typer.Context,
        file: Path | None,
        backend: str,
        pwsh: str,
        state_dir: Path,
        *,
        mass_revoke_percent: float | None = None,
    ) -> None:
        from meetgate.admin.policy.model import PolicyError

        self.profile: Profile = load_active_profile(ctx)
        path = file or self.profile.policy_file
        if path is None:
            fail(
                "no policy file", "pass --file policy.toml or set policy_file in the profile (docs/policy.md)"
            )
        try:
            self.desired: DesiredPolicy = _load_desired(path, self.profile.policy_name, mass_revoke_percent)
        except PolicyError as exc:
            fail(str(exc), exc.remedy)
        self.state_dir = state_dir
        self.backend_name = backend
        self.pwsh = pwsh
        self._graph: Any = None
        self.backend = self._backend()

    def graph_client(self) -> Any:
        if self._graph is None:
            from meetgate.composition import graph_client_from_profile

            self._graph = graph_client_from_profile(self.profile)
        return self._graph

    def _backend(self) -> Any:
        from meetgate.composition.policy import policy_backend
        from meetgate.config import ConfigError

        try:
            return policy_backend(
                self.profile,
                self.backend_name,
                pwsh=self.pwsh,
                desired=self.desired,
                graph_client=self.graph_client,
                graph_users=_graph_users,
            )
        except ConfigError as exc:
            fail(str(exc), exc.remedy or "see `meetgate policy --help`")

    def directory(self) -> Any:
        if self.backend_name == "graph" or self.desired.organizers.groups:
            from meetgate.admin.policy.graph import GraphDirectory

            return GraphDirectory(self.graph_client().directory)
        return self.backend  # the users Get-CsOnlineUser listed

    def read_state(self) -> TenantPolicyState:
        import contextlib
        from dataclasses import replace

        from meetgate.admin.policy.model import PolicyError

        state: TenantPolicyState = self.backend.read_state(self.desired.identity)
        if state.group_grants:
            directory = self.directory()
            # without Graph, group grants are reported without their members
            with contextlib.suppress(PolicyError):
                state.group_grants = [
                    replace(g, members=tuple(u.id for u in (directory.group_members(g.group_id) or [])))
                    for g in state.group_grants
                ]
        return state

    def plan(self) -> PolicyPlan:
        from meetgate.admin.policy.apply import ApplyJournal
        from meetgate.admin.policy.planner import build_plan, resolve_organizers

        state = self.read_state()
        organizers = resolve_organizers(self.desired, self.directory())
        last = ApplyJournal(self.state_dir, self.desired.identity).last_apply()
        return build_plan(self.desired, organizers, state, last)


def _load_desired(path: Path, policy_name: str | None, mass_revoke_percent: float | None) -> DesiredPolicy:
    """The policy file, with ``--mass-revoke-percent`` (when given) over its ``[warnings]`` value."""
    from dataclasses import replace

    from meetgate.admin.policy.loader import load_desired_state

    desired = load_desired_state(path, policy_name)
    if mass_revoke_percent is None:
        return desired
    return replace(desired, mass_revoke_percent=mass_revoke_percent)


def _acknowledge_remedy(blocking: list[Any], action: str) -> str:
    """What to pass to accept ``blocking``; ``--yes`` is offered only when it would be enough."""
    from meetgate.admin.policy.planner import EXPLICIT_ONLY

    codes = " ".join(f"--acknowledge {w.code}" for w in blocking)
    explicit = [w.code for w in blocking if w.code in EXPLICIT_ONLY]
    if explicit:
        return (
            f"review them (`meetgate policy plan`), fix the policy file, or {action} with {codes} "
            f"({', '.join(explicit)} is accepted only by name: --yes does not cover it)"
        )
    return f"review them (`meetgate policy plan`), fix the policy file, or {action} with {codes} (or --yes)"


def _graph_users(client: Any) -> list[Any]:
    from meetgate.admin.policy.graph import _user

    return [_user(u) for u in client.directory.list_users()]


def _guard(fn: Any) -> Any:
    """Turn PolicyError into a clear exit."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from meetgate.admin.policy.model import PolicyError

        try:
            return fn(*args, **kwargs)
        except PolicyError as exc:
            fail(str(exc), exc.remedy)

    return wrapper


def _render_plan(plan: PolicyPlan, *, limit: int = 50) -> None:
    from rich.table import Table

    out = console()
    d = plan.policy.definition
    head = {"create": "[green]create[/]", "update": "[yellow]update[/]", "none": "unchanged"}[
        plan.policy.action
    ]
    out.print(f"[bold]{d.identity}[/]: {head}  app ids {', '.join(d.app_ids)}")
    if plan.policy.current and plan.policy.action == "update":
        out.print(
            f"  now: app ids {', '.join(plan.policy.current.app_ids)}; description {plan.policy.current.description!r}"
        )
    out.print(
        f"approved organizers {plan.approved}: [green]grant {len(plan.grants)}[/], "
        f"[red]revoke {len(plan.revokes)}[/], keep {len(plan.keeps)}   (plan {plan.plan_id})"
    )
    rows = [("grant", o.upn or o.user_id, plan.replaces.get(o.user_id, "")) for o in plan.grants]
    rows += [("revoke", o.upn or o.user_id, "") for o in plan.revokes]
    if rows:
        table = Table("change", "user", "replaces policy", show_edge=False)
        for action, user, replaces in rows[:limit]:
            table.add_row(f"[{'green' if action == 'grant' else 'red'}]{action}[/]", user, replaces)
        out.print(table)
        if len(rows) > limit:
            out.print(f"… and {len(rows) - limit} more (use --json for all)")
    print_warnings(plan.warnings)


@app.command("plan")
@_guard
def plan_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Save the plan for review and `apply --plan`.")
    ] = None,
    mass_revoke_percent: MassRevokeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare the policy file with the tenant: per user grant / revoke / keep, plus warnings."""
    import json

    session = PolicySession(ctx, file, backend, pwsh, state_dir, mass_revoke_percent=mass_revoke_percent)
    plan = session.plan()
    if out:
        out.write_text(json.dumps(plan.to_dict(), indent=2) + "\n", encoding="utf-8")
    if json_out:
        print_json(plan.to_dict())
    else:
        _render_plan(plan)
        if out:
            console().print(f"plan saved to {out}; apply it with `meetgate policy apply --plan {out}`")


@app.command("apply")
@_guard
def apply_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="A plan saved by `plan --out` (reviewed).")
    ] = None,
    acknowledge: Annotated[
        list[str] | None,
        typer.Option("--acknowledge", "-a", help="Warning code you reviewed and accept (repeatable)."),
    ] = None,
    yes: YesOpt = False,
    mass_revoke_percent: MassRevokeOpt = None,
    json_out: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Carry out the plan (batched, resumable, each failure reported); refuses unreviewed warnings."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from meetgate.admin.policy.apply import ApplyJournal, apply_plan
    from meetgate.admin.policy.planner import PolicyPlan, unacknowledged

    session = PolicySession(ctx, file, backend, pwsh, state_dir, mass_revoke_percent=mass_revoke_percent)
    if plan_file:
        try:
            plan = PolicyPlan.from_dict(json.loads(plan_file.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            fail(
                f"cannot use the plan {plan_file}: {exc}",
                "make a new one with `meetgate policy plan --out plan.json`",
            )
        if plan.policy.definition.identity.lower() != session.desired.identity.lower():
            fail(
                f"the plan is for {plan.policy.definition.identity}, the policy file for {session.desired.identity}"
            )
    else:
        plan = session.plan()
    blocking = unacknowledged(plan, acknowledge or [], yes=yes)
    if blocking:
        if not json_out:
            _render_plan(plan)
        fail(
            f"the plan has {len(blocking)} unreviewed warning(s): {', '.join(w.code for w in blocking)}; nothing was changed",
            _acknowledge_remedy(blocking, "accept them"),
        )
    if not plan.has_changes:
        if json_out:
            print_json({"planId": plan.plan_id, "changes": 0, "ok": True})
        else:
            console().print("nothing to do: the tenant matches the policy file")
        return
    journal = ApplyJournal(state_dir, session.desired.identity)
    with Progress(
        TextColumn("[bold]applying[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        transient=json_out,
        disable=json_out or no_progress,
    ) as bar:
        task = bar.add_task("apply", total=len(plan.ops))
        report = apply_plan(
            plan,
            session.backend,
            journal,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            # a saved plan may be old: refuse it when the tenant no longer matches what it saw
            current_state=session.read_state if plan_file else None,
        )
    if json_out:
        print_json(report.to_dict())
    else:
        data = report.to_dict()
        console().print(
            f"{POLICY_DONE.get(data['policy']['action'], 'policy ' + data['policy']['action'])}"
            f"{'' if report.policy_ok else ': FAILED ' + str(report.policy_error)}; "
            f"granted {data['granted']}, revoked {data['revoked']}, failed {len(report.failed)}"
            + (f", {report.skipped} already done before an interruption" if report.skipped else "")
        )
        for failure in report.failed[:50]:
            console().print(f"  [red]{failure.action} {failure.user_id} failed:[/] {failure.error}")
        if report.ok:
            console().print("changes take up to 30 minutes to reach Graph: run `meetgate policy verify`")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command("script")
@_guard
def script_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the .ps1.")] = Path(
        "meetgate-policy.ps1"
    ),
    read_state: Annotated[
        bool,
        typer.Option(
            "--read-state/--no-read-state", help="Read the tenant through --backend to include revokes."
        ),
    ] = False,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    acknowledge: Annotated[
        list[str] | None, typer.Option("--acknowledge", "-a", help="Accepted warning code.")
    ] = None,
    yes: YesOpt = False,
    mass_revoke_percent: MassRevokeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write a reviewed, idempotent PowerShell script (transcript, per-user error handling) for an admin."""
    from meetgate.admin.policy.model import TenantPolicyState
    from meetgate.admin.policy.planner import build_plan, resolve_organizers, unacknowledged
    from meetgate.admin.policy.script import render_script

    session = (
        PolicySession(ctx, file, backend, pwsh, state_dir, mass_revoke_percent=mass_revoke_percent)
        if read_state
        else None
    )
    if session is not None:
        plan = session.plan()
        profile = session.profile
    else:
        profile = load_active_profile(ctx)
        path = file or profile.policy_file
        if path is None:
            fail("no policy file", "pass --file policy.toml or set policy_file in the profile")
        desired = _load_desired(path, profile.policy_name, mass_revoke_percent)
        if desired.organizers.groups or any(not _looks_like_id(r) for r in desired.organizers.users):
            from meetgate.admin.policy.graph import GraphDirectory
            from meetgate.composition import graph_client_from_profile

            directory: Any = GraphDirectory(graph_client_from_profile(profile).directory)
        else:
            directory = _IdsDirectory()
        plan = build_plan(desired, resolve_organizers(desired, directory), TenantPolicyState())
    blocking = unacknowledged(plan, acknowledge or [], yes=yes)
    if blocking:
        if not json_out:
            _render_plan(plan)
        fail(
            f"the plan has unreviewed warning(s): {', '.join(w.code for w in blocking)}; no script written",
            _acknowledge_remedy(blocking, "accept them"),
        )
    out.write_text(
        render_script(plan, tenant_id=profile.tenant_id, app_id=profile.client_id), encoding="utf-8"
    )
    if json_out:
        print_json(
            {
                "script": str(out),
                "planId": plan.plan_id,
                "policy": plan.policy.action,
                "grants": len(plan.grants),
                "revokes": len(plan.revokes),
                "warnings": [w.code for w in plan.warnings],
            }
        )
        return
    console().print(
        f"wrote {out}: {len(plan.grants)} grant(s), {len(plan.revokes)} revoke(s). Review it, then run it in "
        "PowerShell 7 with the MicrosoftTeams module as a Teams Administrator."
    )


def _looks_like_id(ref: str) -> bool:
    from meetgate.admin.policy.loader import is_guid

    return is_guid(ref)


class _IdsDirectory:
    """Object ids taken at their word (no Graph): the script checks each user when it runs."""

    def find_users(self, refs: Any) -> Any:
        from meetgate.admin.policy.model import DirectoryUser

        return {r: DirectoryUser(r.lower(), "") for r in refs}

    def group_members(self, group_id: str) -> Any:
        return None


@app.command("status")
@_guard
def status_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    json_out: JsonOpt = False,
) -> None:
    """Who holds the policy now: direct grants, group grants, and any Global grant."""
    from rich.table import Table

    from meetgate.admin.policy.model import describe_global_grant, policy_key

    session = PolicySession(ctx, file, backend, pwsh, DEFAULT_STATE_DIR)
    state = session.read_state()
    ours = session.desired.key
    pol = state.policy(session.desired.identity)
    direct = sorted((state.upns.get(u, u), u) for u, p in state.direct.items() if policy_key(p) == ours)
    groups = [g for g in state.group_grants if policy_key(g.policy) == ours]
    global_def = state.policy(state.global_policy)
    listing_global = bool(
        state.global_policy
        and (
            policy_key(state.global_policy) == ours
            or (global_def is not None and global_def.lists_any(session.desired.app_ids))
        )
    )
    data = {
        "policy": {
            "identity": session.desired.identity,
            "exists": pol is not None,
            "appIds": list(pol.app_ids) if pol else [],
        },
        "direct": [{"upn": upn, "id": uid} for upn, uid in direct],
        "groups": [{"group": g.group_id, "rank": g.rank, "members": len(g.members)} for g in groups],
        "global": state.global_policy if listing_global else None,
    }
    if json_out:
        print_json(data)
        return
    out = console()
    if pol is None:
        out.print(
            f"[yellow]{session.desired.identity} does not exist[/] — `meetgate policy apply` creates it"
        )
        return
    out.print(f"[bold]{pol.identity}[/] app ids {', '.join(pol.app_ids)}; description {pol.description!r}")
    table = Table("source", "holder", show_edge=False)
    for upn, uid in direct:
        table.add_row("direct", f"{upn} ({uid})" if upn != uid else uid)
    for g in groups:
        table.add_row(f"group (rank {g.rank})", f"{g.group_id}: {len(g.members)} member(s)")
    tenant_wide = describe_global_grant(state) if listing_global else None
    if tenant_wide:
        table.add_row("[red]tenant-wide (Global)[/]", "every user without a direct or group grant")
    out.print(table)
    out.print(
        f"{len(direct)} direct holder(s), {len(groups)} group grant(s), "
        + (tenant_wide or "no tenant-wide (Global) grant of a policy listing this app")
    )


@app.command("drift")
@_guard
def drift_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    state_dir: StateDirOpt = DEFAULT_STATE_DIR,
    json_out: JsonOpt = False,
) -> None:
    """Compare the tenant with the policy file; exit 1 on any difference (for a scheduled job)."""
    session = PolicySession(ctx, file, backend, pwsh, state_dir)
    plan = session.plan()
    drifted = plan.has_changes or any(w.code in {"global-grant", "group-grant"} for w in plan.warnings)
    if json_out:
        print_json({"drift": drifted, **plan.to_dict()})
    elif drifted:
        _render_plan(plan)
        err_console().print(
            "[bold red]drift:[/] the tenant differs from the policy file; `meetgate policy apply` converges it"
        )
    else:
        console().print(
            f"no drift: {plan.approved} approved organizer(s) hold {session.desired.identity}, nobody else"
        )
    if drifted:
        raise typer.Exit(EXIT_FAILED)


@app.command("verify")
@_guard
def verify_cmd(
    ctx: typer.Context,
    file: FileOpt = None,
    backend: BackendOpt = "powershell",
    pwsh: PwshOpt = "pwsh",
    sample: Annotated[int, typer.Option("--sample", help="Approved organizers to probe (0 = all).")] = 5,
    negative: Annotated[
        int, typer.Option("--negative", help="Non-approved users to probe (must be refused).")
    ] = 2,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for propagation.")] = 45 * 60,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between rounds.")] = 30.0,
    json_out: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Prove enforcement through Graph, app-only: approved organizers succeed, others get the policy 403."""
    import random

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from meetgate.admin.policy.graph import GraphMeetingProbe
    from meetgate.admin.policy.planner import resolve_organizers
    from meetgate.admin.policy.verify import Subject, verify_enforcement

    session = PolicySession(ctx, file, backend, pwsh, DEFAULT_STATE_DIR)
    client = session.graph_client()
    from meetgate.admin.policy.graph import GraphDirectory

    organizers = resolve_organizers(session.desired, GraphDirectory(client.directory))
    approved = list(organizers.users.values())
    rng = random.Random(0)  # noqa: S311 — sampling, not cryptography
    chosen = approved if sample == 0 or sample >= len(approved) else rng.sample(approved, sample)
    others: list[Any] = []
    if negative:
        from meetgate.admin.policy.graph import _user

        for raw in client.directory.list_users(top=max(50, negative * 10)):
            user = _user(raw)
            if user.id not in organizers.users and user.enabled:
                others.append(user)
            if len(others) >= negative:
                break
    subjects = [Subject(u.id, u.upn, "allowed") for u in chosen] + [
        Subject(u.id, u.upn, "refused") for u in others
    ]
    if not subjects:
        fail("nobody to probe", "approve organizers in the policy file first")
    from meetgate.graph.errors import AccessPolicyMissing
    from meetgate.graph.models import MeetingRequest

    def create(organizer: str) -> Any:
        return client.meetings.create(
            organizer, MeetingRequest(subject="meetgate policy verify (deleted at once)")
        )

    probe = GraphMeetingProbe(create, client.meetings.delete, AccessPolicyMissing)
    with Progress(
        TextColumn("[bold]verifying[/] (propagation can take 30 min)"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        disable=json_out or no_progress,
    ) as bar:
        task = bar.add_task("verify", total=len(subjects))
        report = verify_enforcement(
            probe,
            subjects,
            timeout=timeout,
            interval=interval,
            progress=lambda done, total, _: bar.update(task, completed=done),
        )
    if json_out:
        print_json(report.to_dict())
    else:
        from rich.table import Table

        table = Table("organizer", "expected", "observed", "attempts", "detail", show_edge=False)
        for r in report.results:
            observed = r.last.outcome if r.last else "-"
            colour = "green" if r.ok else "red"
            table.add_row(
                r.subject.upn or r.subject.user_id,
                r.subject.expect,
                f"[{colour}]{observed}[/]",
                str(r.attempts),
                r.last.detail if r.last else "",
            )
        console().print(table)
        console().print(
            f"{'[green]enforced[/]' if report.ok else '[red]NOT enforced[/]'} after {report.elapsed:.0f} s; "
            f"test meetings created {report.meetings_created}, deleted {report.meetings_deleted}"
        )
        for failure in report.cleanup_failures:
            console().print(f"[red]could not delete test meeting {failure}[/]")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
