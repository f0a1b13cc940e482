"""``meetgate demo``: the runbook, end to end, against a fresh built-in sandbox tenant.

Each step is titled as in the runbook, says what meetgate did, shows the evidence and the manual
action it replaces. Steps are added here as the capabilities behind them land.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from meetgate.cli._common import console


def demo(
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir", help="Folder for the demo's keys, state and reports (default: a temp dir)."
        ),
    ] = None,
) -> None:
    """Run the runbook end to end against a built-in sandbox tenant and narrate each step."""
    from meetgate import certificates

    out = console()
    base = workdir or Path(tempfile.mkdtemp(prefix="meetgate-demo-"))
    out.rule("[bold]Step 3 · Configure certificate authentication")
    pair = certificates.generate_self_signed()
    key_path = base / "TeamsMeetingsIntegration.key.pem"
    certificates.write_secret_file(key_path, certificates.private_key_pem(pair.private_key), force=True)
    certificates.write_public_file(
        base / "TeamsMeetingsIntegration.cer", certificates.certificate_der(pair.certificate), force=True
    )
    out.print(f"generated RSA 2048 / SHA-256 certificate CN={certificates.DEFAULT_SUBJECT}")
    out.print(f"  thumbprint (SHA-1): {pair.thumbprint_sha1}")
    out.print(f"  key file: {key_path} (mode {certificates.file_mode(key_path):o})")
    out.print(
        "  replaces: New-SelfSignedCertificate ... ; Export-Certificate ... ; $cert.Thumbprint", style="dim"
    )
