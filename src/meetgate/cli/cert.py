"""``meetgate cert new | upload | status | rotate | remove`` — runbook step 3."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from meetgate.cli._common import EXIT_FAILED, EXIT_USAGE, console, err_console, fail, print_json, state

app = typer.Typer(help="Certificates of the app registration (runbook step 3).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _passphrase(env_name: str | None) -> bytes | None:
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        fail(
            f"--passphrase-env names {env_name}, which is not set",
            f"export {env_name}=... (the passphrase is never taken as an argument)",
        )
    if not value:
        fail(f"{env_name} is empty", "set a non-empty passphrase or drop --passphrase-env")
    return value.encode()


@app.command("new")
def new(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the files.")] = Path("keys"),
    name: Annotated[
        str, typer.Option("--name", help="File name stem: NAME.key.pem, NAME.pem, NAME.cer, NAME.pfx.")
    ] = "TeamsMeetingsIntegration",
    subject: Annotated[
        str | None, typer.Option("--subject", help="Subject common name (default: CN=NAME).")
    ] = None,
    key_size: Annotated[int, typer.Option("--key-size", help="RSA key size: 2048, 3072 or 4096.")] = 2048,
    years: Annotated[float, typer.Option("--years", help="Validity in years.")] = 2.0,
    days: Annotated[int | None, typer.Option("--days", help="Validity in days (instead of --years).")] = None,
    passphrase_env: Annotated[
        str | None,
        typer.Option(
            "--passphrase-env",
            help="Environment variable holding a passphrase to encrypt the key (and .pfx) with.",
        ),
    ] = None,
    pfx: Annotated[bool, typer.Option("--pfx", help="Also write NAME.pfx (PKCS#12).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    use: Annotated[
        bool, typer.Option("--use", help="Make the active profile sign in with the new key and certificate.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Generate a self-signed certificate for the app (replaces New-SelfSignedCertificate)."""
    from meetgate.admin.credentials import create_certificate
    from meetgate.certificates import CertificateError

    passphrase = _passphrase(passphrase_env)
    valid_days = days if days is not None else round(years * 365)
    try:
        result = create_certificate(
            out,
            name=name,
            subject=subject or f"CN={name}",
            key_size=key_size,
            valid_days=valid_days,
            passphrase=passphrase,
            pfx=pfx,
            force=force,
        )
    except CertificateError as exc:
        fail(str(exc), code=EXIT_USAGE)
    profile_name = None
    if use:
        from meetgate.cli._common import load_active_profile
        from meetgate.cli._signin import relative_to_config, settings_file
        from meetgate.config import save_profile_values

        config_file = settings_file(state(ctx).config)
        profile_name = load_active_profile(ctx, may_create=True).name
        values: dict[str, object] = {
            "private_key_path": relative_to_config(result.files.key_path, config_file),
            "certificate_path": relative_to_config(result.files.certificate_path, config_file),
            "pfx_path": None,
        }
        if passphrase_env:
            values["passphrase_env"] = passphrase_env
        save_profile_values(config_file, profile_name, values)
    if as_json:
        print_json({**result.to_dict(), "profile": profile_name})
        return
    c = console()
    c.print(f"[bold]certificate[/] {result.subject}  RSA {result.key_size} / SHA-256")
    c.print(f"  valid            {result.not_before:%Y-%m-%d} → {result.not_after:%Y-%m-%d}")
    c.print(f"  thumbprint SHA-1   {result.thumbprint_sha1}  (what the portal shows)")
    c.print(f"  thumbprint SHA-256 {result.thumbprint_sha256}")
    f = result.files
    enc = "encrypted" if result.key_encrypted else "NOT encrypted (set --passphrase-env to encrypt)"
    c.print(f"  private key      {f.key_path}  mode 600, {enc}")
    c.print(f"  certificate      {f.certificate_path} (PEM), {f.cer_path} (DER, for the portal)")
    if f.pfx_path:
        c.print(f"  pfx              {f.pfx_path}  mode 600")
    if profile_name:
        c.print(f"  profile '{profile_name}' now signs in with this certificate")
        c.print(f"next: `meetgate --profile {profile_name} cert upload` (to that profile's app)", style="dim")
    else:
        c.print(
            f"next: `meetgate --profile PROFILE cert upload --certificate {f.certificate_path}` "
            "(PROFILE: the profile of the app this certificate is for)",
            style="dim",
        )


# --- commands that talk to the directory -------------------------------------------------------

AsAppOption = Annotated[
    str | None,
    typer.Option("--as-app", help="Act as the automation app of this profile instead of an administrator."),
]
SelfOption = Annotated[
    bool,
    typer.Option("--self", help="Act as the integration app itself (its own certificate; no admin needed)."),
]
TenantOption = Annotated[str | None, typer.Option("--tenant", help="Tenant id or verified domain.")]


def _object_id(session: Any, profile: Any) -> str:
    from meetgate.config import ConfigError

    if profile.application_object_id:
        return str(profile.application_object_id)
    if profile.client_id:
        app = session.service.find_application_by_app_id(profile.client_id)
        if app is not None:
            return str(app.id)
        raise ConfigError(f"no application with client_id {profile.client_id} in tenant {session.tenant_id}")
    raise ConfigError(
        f"profile '{profile.name}' names no application (client_id / application_object_id): "
        "run `meetgate setup app` first"
    )


def _open(ctx: typer.Context, *, as_app: str | None, as_self: bool, tenant: str | None) -> tuple[Any, Any]:
    from meetgate.cli._common import load_active_profile
    from meetgate.cli._signin import open_session

    profile = load_active_profile(ctx)
    session = open_session(
        profile,
        config=state(ctx).config,
        as_app=as_app,
        as_self=as_self,
        tenant=tenant,
        prompt=lambda message: err_console().print(message),
    )
    return profile, session


@contextmanager
def _signed_in(
    ctx: typer.Context, *, as_app: str | None, as_self: bool, tenant: str | None
) -> Iterator[tuple[Any, Any]]:
    """The active profile and an open session for a command's work.

    meetgate's own errors raised inside become the CLI's failure messages; the session is closed
    either way (what the command prints afterwards still reads its ``rights``).
    """
    from meetgate.cli.setup import handle_errors

    session = None
    try:
        profile, session = _open(ctx, as_app=as_app, as_self=as_self, tenant=tenant)
        yield profile, session
    except Exception as exc:
        handle_errors(exc)
        raise
    finally:
        if session is not None:
            session.close()


def _local(profile: Any) -> Any:
    from meetgate.admin.credentials import inspect_local_certificate

    if not (profile.pfx_path or profile.private_key_path or profile.certificate_path):
        return None
    return inspect_local_certificate(
        key_path=profile.private_key_path,
        certificate_path=profile.certificate_path,
        pfx_path=profile.pfx_path,
        passphrase=profile.passphrase(),
    )


@app.command("upload")
def upload(
    ctx: typer.Context,
    certificate: Annotated[
        Path | None,
        typer.Option("--certificate", help="Certificate file, PEM or DER (default: the profile's)."),
    ] = None,
    as_app: AsAppOption = None,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add the certificate to the app's key credentials, keeping the others."""
    from meetgate import certificates as certs
    from meetgate.admin.credentials import upload_certificate
    from meetgate.cli.setup import signed_in_line

    with _signed_in(ctx, as_app=as_app, as_self=False, tenant=tenant) as (profile, session):
        session.rights.require(register=True)
        path = certificate or profile.certificate_path
        if path is not None:
            cert = certs.load_certificate(path)
        elif profile.pfx_path is not None:
            cert = certs.load_pfx(profile.pfx_path, profile.passphrase()).certificate
        else:
            raise certs.CertificateError(
                "no certificate to upload: pass --certificate or set certificate_path in the profile"
            )
        change = upload_certificate(session.service, _object_id(session, profile), cert)
    if as_json:
        print_json(change.to_dict())
        return
    c = console()
    c.print(signed_in_line(session.rights), style="dim")
    if change.action == "none":
        c.print(f"[green]no changes[/]: certificate {change.thumbprint_sha1} is already on the application")
    else:
        c.print(f"uploaded certificate [bold]{change.thumbprint_sha1}[/]; kept {len(change.kept)} other(s)")


@app.command("status")
def status(
    ctx: typer.Context,
    as_app: AsAppOption = None,
    as_self: SelfOption = False,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every certificate and secret on the app with its expiry, and findings."""
    from meetgate.admin.credential_status import certificate_status

    with _signed_in(ctx, as_app=as_app, as_self=as_self, tenant=tenant) as (profile, session):
        if not as_self:
            session.rights.require()
        application = session.service.get_application(_object_id(session, profile))
        report = certificate_status(
            application.key_credentials,
            application.password_credentials,
            local=_local(profile),
            app_id=application.app_id,
            profile_client_id=profile.client_id,
        )
    if as_json:
        print_json(
            {"client_id": application.app_id, "application_object_id": application.id, **report.to_dict()}
        )
    else:
        c = console()
        c.print(f"[bold]{application.display_name}[/] ({application.app_id})")
        for cred in report.credentials:
            colour = {"valid": "green", "expiring": "yellow", "expired": "red", "not_yet_valid": "cyan"}[
                cred.state
            ]
            label = cred.thumbprint_sha1 or cred.display_name or cred.key_id
            end = f"{cred.end:%Y-%m-%d}" if cred.end else "?"
            left = f"{cred.days_left} days" if cred.days_left is not None else ""
            c.print(f"  {cred.kind:<13} {label}  until {end} ({left}) [{colour}]{cred.state}[/]")
        if report.local is not None:
            local = report.local
            c.print(
                f"  local key     {local.key_path} mode {local.key_mode:o}"
                if local.key_mode
                else "  local key     -"
            )
        for finding in report.findings:
            colour = {"error": "red", "warning": "yellow", "info": "cyan"}[finding.severity]
            c.print(f"  [{colour}]{finding.severity}[/] {finding.message}")
            if finding.remedy:
                c.print(f"      → {finding.remedy}", style="dim")
        if not report.findings:
            c.print("[green]no findings[/]")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _writer(session: Any, profile: Any, object_id: str, as_self: bool) -> Any:
    from meetgate import certificates as certs
    from meetgate.admin.credentials import AdminCredentialWriter, SelfServiceCredentialWriter

    if not as_self:
        session.rights.require(register=True)
        return AdminCredentialWriter(session.service, object_id)
    if profile.pfx_path:
        signer = certs.load_pfx(profile.pfx_path, profile.passphrase())
    else:
        if profile.private_key_path is None or profile.certificate_path is None:
            raise certs.CertificateError("--self needs the profile's current key and certificate")
        signer = certs.KeyPair(
            certs.load_private_key(profile.private_key_path, profile.passphrase()),
            certs.load_certificate(profile.certificate_path),
        )
    return SelfServiceCredentialWriter(session.service, object_id, signer)


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    remove_old: Annotated[
        bool, typer.Option("--remove-old", help="Remove the old certificate once the new one works.")
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            help="Seconds between switching the profile and removing the old certificate (--remove-old).",
        ),
    ] = 5.0,
    name: Annotated[
        str | None, typer.Option("--name", help="File stem of the new files (default: dated).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder (default: next to the current key).")
    ] = None,
    key_size: Annotated[int, typer.Option("--key-size", help="RSA key size: 2048, 3072 or 4096.")] = 2048,
    years: Annotated[float, typer.Option("--years", help="Validity in years.")] = 2.0,
    as_app: AsAppOption = None,
    as_self: SelfOption = False,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """New certificate, uploaded next to the old one, verified, switched to; old removed on request."""
    import dataclasses
    import datetime as dt

    from meetgate import certificates as certs
    from meetgate.admin.credentials import rotate_certificate
    from meetgate.cli._signin import relative_to_config, settings_file
    from meetgate.composition import graph_settings_from_profile
    from meetgate.config import save_profile_values

    with _signed_in(ctx, as_app=as_app, as_self=as_self, tenant=tenant) as (profile, session):
        local = _local(profile)
        if local is None or local.error or not local.thumbprint_sha1:
            raise certs.CertificateError(
                "the profile has no usable certificate to rotate"
                + (f" ({local.error})" if local is not None and local.error else "")
                + ": use `meetgate cert new` and `meetgate cert upload` first"
            )
        object_id = _object_id(session, profile)
        writer = _writer(session, profile, object_id, as_self)
        base = profile.pfx_path or profile.private_key_path
        directory = out or (base.parent if base else Path("keys"))
        stem = name or f"{certs.DEFAULT_SUBJECT}-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
        config_file = settings_file(state(ctx).config)
        passphrase = profile.passphrase()

        def profile_with(files: Any) -> Any:
            return dataclasses.replace(
                profile,
                private_key_path=files.key_path,
                certificate_path=files.certificate_path,
                pfx_path=None,
            )

        def verify(files: Any) -> list[str]:
            from meetgate.graph.auth import TokenProvider

            provider = TokenProvider(graph_settings_from_profile(profile_with(files)))
            try:
                return list(provider.get_token().claims.roles)
            finally:
                provider.close()

        def switch(files: Any) -> None:
            save_profile_values(
                config_file,
                profile.name,
                {
                    "private_key_path": relative_to_config(files.key_path, config_file),
                    "certificate_path": relative_to_config(files.certificate_path, config_file),
                    "pfx_path": None,
                },
            )

        def new_signer(files: Any) -> None:
            if hasattr(writer, "signer"):
                writer.signer = certs.KeyPair(
                    certs.load_private_key(files.key_path, passphrase),
                    certs.load_certificate(files.certificate_path),
                )

        result = rotate_certificate(
            writer,
            directory=directory,
            name=stem,
            previous_thumbprint=local.thumbprint_sha1,
            verify=verify,
            switch_profile=switch,
            remove_old=remove_old,
            key_size=key_size,
            valid_days=round(years * 365),
            passphrase=passphrase,
            on_new_signer=new_signer,
            grace_seconds=max(0.0, grace),
        )
    if as_json:
        print_json(result.to_dict())
        return
    c = console()
    c.print(
        f"new certificate [bold]{result.new.thumbprint_sha1}[/] valid until {result.new.not_after:%Y-%m-%d}"
    )
    c.print(
        f"  uploaded next to {result.previous_thumbprint}; token taken with it (roles: {', '.join(result.verified_roles) or 'none'})"
    )
    c.print(f"  profile '{profile.name}' now uses {result.new.files.key_path}")
    if result.removed:
        c.print(f"  removed the old certificate {result.removed.thumbprint_sha1}")
    else:
        c.print(
            f"  the old certificate {result.previous_thumbprint} is still valid on the app; remove it with "
            f"`meetgate cert remove --thumbprint {result.previous_thumbprint}` once nothing uses it",
            style="dim",
        )


@app.command("remove")
def remove(
    ctx: typer.Context,
    thumbprint: Annotated[str, typer.Option("--thumbprint", help="SHA-1 thumbprint of the certificate.")],
    force: Annotated[
        bool, typer.Option("--force", help="Also when it is the certificate this profile signs in with.")
    ] = False,
    as_app: AsAppOption = None,
    as_self: SelfOption = False,
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove one certificate from the app, keeping the others."""
    from meetgate.admin.credentials import remove_certificate

    with _signed_in(ctx, as_app=as_app, as_self=as_self, tenant=tenant) as (profile, session):
        local = _local(profile)
        in_use = None if force or local is None else local.thumbprint_sha1
        object_id = _object_id(session, profile)
        if as_self:
            change = _writer(session, profile, object_id, True).remove(thumbprint, in_use=in_use)
        else:
            session.rights.require(register=True)
            change = remove_certificate(session.service, object_id, thumbprint, in_use=in_use, force=force)
    if as_json:
        print_json(change.to_dict())
        return
    console().print(f"removed certificate [bold]{change.thumbprint_sha1}[/]; kept {len(change.kept)}")
