"""``meetgate setup app`` — runbook steps 1 and 2: registration, permissions, admin consent."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from meetgate.cli._common import EXIT_FAILED, EXIT_USAGE, console, err_console, fail, print_json, state

app = typer.Typer(help="Provision the app registration (runbook steps 1–2).", no_args_is_help=True)

AsAppOption = Annotated[
    str | None,
    typer.Option(
        "--as-app",
        help="Act as the automation app of this profile (certificate) instead of an administrator sign-in.",
    ),
]
TenantOption = Annotated[
    str | None,
    typer.Option("--tenant", help="Tenant id or verified domain (default: the profile's tenant_id)."),
]
AdminClientOption = Annotated[
    str | None,
    typer.Option(
        "--admin-client-id",
        help="Public client to sign the administrator in with (default: Microsoft Graph Command Line Tools).",
    ),
]

_SYMBOL = {
    "create_application": "+ create application",
    "add_required_permissions": "~ request permissions",
    "create_service_principal": "+ create service principal",
    "grant_admin_consent": "+ grant admin consent",
}


def handle_errors(exc: Exception) -> None:
    """Render meetgate's own errors (bad input, sign-in, Graph) and exit; re-raise anything else."""
    from meetgate.admin.credentials import CredentialChangeError
    from meetgate.admin.registration import RegistrationError
    from meetgate.admin.signin import SignInError
    from meetgate.certificates import CertificateError
    from meetgate.config import ConfigError
    from meetgate.graph.errors import AuthenticationError, GraphError

    remedy = getattr(exc, "remedy", None)
    if isinstance(exc, GraphError) and exc.status == 403:
        fail(
            f"the directory refused the change: {exc.message}",
            "sign in as a Global Administrator (or Application Administrator for registrations); "
            "nothing after this step was changed",
            code=EXIT_USAGE,
        )
    if isinstance(
        exc, SignInError | ConfigError | CertificateError | RegistrationError | CredentialChangeError
    ):
        fail(str(exc), remedy if isinstance(remedy, str) else None, code=EXIT_USAGE)
    if isinstance(exc, AuthenticationError):
        fail(str(exc), remedy if isinstance(remedy, str) else None, code=EXIT_USAGE)
    if isinstance(exc, GraphError):
        fail(str(exc), remedy if isinstance(remedy, str) else None, code=EXIT_FAILED)
    raise exc


def artifacts_line(kinds: tuple[str, ...]) -> str:
    """Which meeting-artifact permissions the profile's ``artifacts`` asks for (least privilege)."""
    from meetgate.graph.artifact_models import ARTIFACT_PERMISSIONS

    if not kinds:
        return "meeting artifacts: none enabled (profile `artifacts`), so no artifact permission is requested"
    return "meeting artifacts (profile `artifacts`): " + ", ".join(
        f"{kind} → {ARTIFACT_PERMISSIONS[kind]}" for kind in kinds
    )


def signed_in_line(rights: Any) -> str:
    if rights.kind == "user":
        roles = ", ".join(rights.directory_roles) or "no directory role"
        return f"signed in as {rights.name} ({roles})"
    return f"acting as app {rights.name} ({', '.join(rights.permissions) or 'no application permissions'})"


@app.command("app")
def setup_app_command(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Display name (default: the profile's app_display_name)."),
    ] = None,
    user_read: Annotated[
        str,
        typer.Option(
            "--user-read", help="basic = User.ReadBasic.All (least privilege), all = User.Read.All."
        ),
    ] = "basic",
    calendar: Annotated[
        str | None,
        typer.Option(
            "--calendar",
            help="Calendar placement: scoped (Exchange RBAC, no Entra calendar permission; the default when "
            "the policy file has a mailbox_scope section), none (standalone meetings only; otherwise the default), "
            "tenant-wide (Entra Calendars.ReadWrite: every mailbox; refused while the policy file scopes it).",
        ),
    ] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Show the changes; make none.")] = False,
    tenant: TenantOption = None,
    as_app: AsAppOption = None,
    admin_client_id: AdminClientOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Ensure the app registration, its service principal, permissions and admin consent."""
    from meetgate.admin.mailbox_scope.loader import is_scoped
    from meetgate.admin.registration import RegistrationSpec, required_permissions, setup_app
    from meetgate.cli._common import load_active_profile
    from meetgate.cli._signin import open_session, settings_file
    from meetgate.config import save_profile_values

    st = state(ctx)
    session = None
    try:
        profile = load_active_profile(ctx, may_create=True)
        scoped = is_scoped(profile.policy_file)
        placement = calendar or ("scoped" if scoped else "none")
        if placement == "tenant-wide" and scoped:
            fail(
                f"--calendar tenant-wide would grant Entra Calendars.ReadWrite, but {profile.policy_file} scopes "
                "calendar placement ([mailbox_scope]): Entra grants and Exchange RBAC add up, so the scope would "
                "limit nothing",
                "keep --calendar scoped (the Exchange role assignment of `meetgate mailbox-scope apply` gives the "
                "access), or remove [mailbox_scope] from the policy file",
                code=EXIT_USAGE,
            )
        spec = RegistrationSpec(
            display_name=name or profile.app_display_name,
            permissions=required_permissions(user_read, placement, profile.artifacts),
            client_id=profile.client_id if (tenant is None or tenant == profile.tenant_id) else None,
        )
        session = open_session(
            profile,
            config=st.config,
            as_app=as_app,
            tenant=tenant,
            admin_client_id=admin_client_id,
            prompt=lambda message: err_console().print(message),
        )
        session.rights.require(register=not plan, consent=not plan)
        result = setup_app(session.service, spec, apply=not plan)
        written: dict[str, Any] = {}
        config_file = settings_file(st.config)
        if not plan:
            written = {
                "tenant_id": session.tenant_id,
                "client_id": result.client_id,
                "application_object_id": result.application_object_id,
                "service_principal_id": result.service_principal_id,
            }
            if spec.display_name != profile.app_display_name:
                written["app_display_name"] = spec.display_name
            save_profile_values(config_file, profile.name, written)
    except Exception as exc:
        handle_errors(exc)
        raise
    finally:
        if session is not None:
            session.close()
    # a plan lists what it would change (exit 0, like `policy plan`); it fails only on an error the
    # plan does not fix. After a run, any required permission still missing is a failure.
    if plan:
        failed = any(f.severity == "error" for f in result.findings)
    else:
        failed = result.check is not None and not result.check.ok
    if as_json:
        print_json(
            {
                **result.to_dict(),
                "tenant_id": session.tenant_id,
                "signed_in": session.rights.to_dict(),
                "profile": {"name": profile.name, "file": str(config_file), "written": written},
            }
        )
        if failed:
            raise typer.Exit(EXIT_FAILED)
        return
    out = console()
    out.print(signed_in_line(session.rights), style="dim")
    if plan:
        out.print(f"[bold]plan[/] for {spec.display_name!r} in tenant {session.tenant_id}:")
    out.print(artifacts_line(profile.artifacts), style="dim")
    if not result.changes:
        out.print("[green]no changes[/]: the registration is as required")
    for change in result.changes:
        verb = _SYMBOL[change.action]
        out.print(f"  {verb} [bold]{change.target}[/] — {change.detail}")
    if plan and result.changes:
        out.print("nothing was changed (--plan); run without --plan to apply", style="dim")
    if result.check is not None:
        for permission in result.check.required:
            ok = permission in result.check.granted
            mark = (
                "[green]granted[/]"
                if ok
                else "[yellow]not granted yet[/] (the plan grants it)"
                if plan
                else "[red]NOT granted[/]"
            )
            out.print(f"  {permission}: {mark} for {session.tenant_id}")
    for finding in result.findings:
        colour = {"error": "red", "warning": "yellow", "info": "cyan"}[finding.severity]
        out.print(f"  [{colour}]{finding.severity}[/] {finding.message}")
        if finding.remedy:
            out.print(f"      → {finding.remedy}", style="dim")
    if written:
        out.print(f"profile '{profile.name}' in {config_file}:")
        for key, value in written.items():
            out.print(f"  {key} = {value}")
    if failed:
        raise typer.Exit(EXIT_FAILED)
