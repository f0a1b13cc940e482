"""The demo's "step 6 by hand": export the manual tests, run the Postman collection with newman and the
PowerShell script under the sandbox's stand-in, as an administrator would for a change record."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from meetgate.cli.plugin import console

if TYPE_CHECKING:
    from meetgate_sandbox.demo import DemoRun

#: where `make demo` / `make test` install newman (tools/newman/package.json)
REPO_NEWMAN = Path("tools/newman/node_modules/.bin/newman")


def find_newman() -> str | None:
    """``$MEETGATE_NEWMAN``, the repository's tools/newman, or newman on PATH (None: not installed)."""
    for candidate in (os.environ.get("MEETGATE_NEWMAN"), str(REPO_NEWMAN)):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("newman")


def step_6_by_hand(run: DemoRun) -> None:
    """Export the kit, then run it with newman (when Node.js is there) and the pwsh stand-in."""
    from meetgate.admin import manual_tests as mt
    from meetgate.config import load_profile
    from meetgate.private_files import write_private_file

    out = console()
    out.print("[bold]The same tests, handed over for Postman, newman and PowerShell[/] (a change record):")
    kit = run.workdir / "manual-tests"
    run.meetgate("validate", "--export", str(kit), "--force")
    newman = find_newman()
    if newman is None or shutil.which("node") is None:
        out.print(
            "[yellow]newman not run:[/] Node.js / newman are not installed here "
            "(`make demo` installs newman into tools/newman when npm exists; or `npm install -g newman`)"
        )
    else:
        command = [
            newman,
            "run",
            str(kit / mt.COLLECTION_FILE),
            "-e",
            str(kit / mt.ENVIRONMENT_FILE),
            "--ssl-extra-ca-certs",
            str(run.info.ca_bundle),
            "--color",
            "off",
        ]
        out.print(
            f"[bold cyan]$ newman run {kit.name}/{mt.COLLECTION_FILE} -e {kit.name}/{mt.ENVIRONMENT_FILE}[/]"
        )
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        summary = [line for line in result.stdout.splitlines() if "requests" in line or "assertions" in line]
        out.print("\n".join(summary[-2:]) if summary else result.stdout[-1500:], soft_wrap=True, markup=False)
        run.check("newman: the Postman collection's assertions all pass", result.returncode == 0)
    profile = load_profile(run.config)
    store = run.workdir / "cert-store"  # the stand-in's Cert:\CurrentUser\My
    if profile.certificate_path is None or profile.private_key_path is None:
        return
    write_private_file(store / "app.key.pem", profile.private_key_path.read_bytes())
    shutil.copyfile(profile.certificate_path, store / "app.pem")
    out.print(f"[bold cyan]$ pwsh -File {kit.name}/{mt.POWERSHELL_FILE}[/]  [dim](the sandbox's stand-in)[/]")
    env = {**os.environ, "MEETGATE_PWSH_CERT_STORE": str(store)}
    script = [
        sys.executable,
        "-m",
        "meetgate_sandbox.pwsh",
        "-NoProfile",
        "-File",
        str(kit / mt.POWERSHELL_FILE),
    ]
    result = subprocess.run(script, capture_output=True, text=True, env=env, timeout=120, check=False)
    for line in result.stdout.splitlines():
        if line.startswith(("PASS", "FAIL", "SKIP")):
            out.print(line, soft_wrap=True, markup=False)
    run.check(
        "PowerShell: Connect-MgGraph, Connect-MicrosoftTeams, New-MgUserOnlineMeeting pass",
        result.returncode == 0,
    )
