"""`make clients-check` as a test: msgraph-sdk's GraphServiceClient over azure-identity's
CertificateCredential, unmodified, against a sandbox (sandbox/clients_check/check.py).

It builds .venv-clients from sandbox/clients_check/requirements.txt when the venv is missing or the
requirements changed (about 40 s from PyPI; the check itself about 15 s), and is skipped when the
venv cannot be built, e.g. without PyPI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "sandbox" / "clients_check" / "check.py"
EXIT_NO_VENV = 3


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_msgraph_sdk_and_azure_identity_work_against_the_sandbox():
    result = subprocess.run(
        [sys.executable, str(CHECK), "--venv", str(REPO / ".venv-clients")],
        capture_output=True,
        text=True,
        timeout=540,
    )
    output = result.stdout + result.stderr
    if result.returncode == EXIT_NO_VENV:
        pytest.skip("the clients' venv could not be built: " + output[-1500:])
    assert result.returncode == 0, output
    for mode in ("the environment", "transport configuration"):
        assert f"== trust through {mode}" in result.stdout
    steps = (
        "token",
        "token (aio)",
        "create",
        "createOrGet 1",
        "createOrGet 2",
        "get",
        "patch",
        "delete",
        "list users",
        "no policy 403",
    )
    for step in steps:
        assert result.stdout.count(f"ok   {step:<14} ") == 2, f"{step}: {output}"
    assert "ok   untrusted" in result.stdout  # the machine's own CA variables alone are refused
    assert "\nFAIL " not in result.stdout
    assert "clients check passed" in result.stdout
