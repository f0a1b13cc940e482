"""``meetgate cert new | upload | status | rotate | remove`` — runbook step 3."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from meetgate.cli._common import EXIT_USAGE, console, fail, print_json

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
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the files.")] = Path("keys"),
    name: Annotated[
        str, typer.Option("--name", help="File name stem: NAME.key.pem, NAME.pem, NAME.cer, NAME.pfx.")
    ] = "TeamsMeetingsIntegration",
    subject: Annotated[str, typer.Option("--subject", help="Subject common name.")] = (
        "CN=TeamsMeetingsIntegration"
    ),
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
            subject=subject,
            key_size=key_size,
            valid_days=valid_days,
            passphrase=passphrase,
            pfx=pfx,
            force=force,
        )
    except CertificateError as exc:
        fail(str(exc), code=EXIT_USAGE)
    if as_json:
        print_json(result.to_dict())
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
    c.print("next: `meetgate cert upload`", style="dim")
