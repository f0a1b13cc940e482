"""`meetgate validate --export DIR`: the runbook's manual tests for a sandbox tenant, run the way an
administrator runs them — the Postman collection with newman, the PowerShell script under the pwsh
stand-in — and the files' privacy (0600 environment in a 0700 folder, no key material anywhere)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetgate.admin import manual_tests as mt
from meetgate.cli.main import app as cli
from meetgate.graph.credentials import CertificateCredential

REPO = Path(__file__).resolve().parents[2]


def _newman() -> str:
    found = os.environ.get("MEETGATE_NEWMAN") or str(REPO / "tools/newman/node_modules/.bin/newman")
    if Path(found).is_file():
        return found
    if os.environ.get("MEETGATE_TEST_SERVICES") == "1":
        pytest.fail("newman is not installed: `make pytest` installs it with npm (tools/newman)")
    pytest.skip("newman is not installed (needs Node.js and npm: `make pytest` installs it)")


def _export(env: dict[str, str], out: Path, app, *extra: str):
    pilot, negative = app.pilot_users[0], app.other_users[0]
    args = [
        "validate",
        "--export",
        str(out),
        "--pilot",
        pilot.upn,
        "--negative",
        negative.upn,
        "--json",
        *extra,
    ]
    return CliRunner().invoke(cli, args, env=env)


def _run_newman(out: Path, app, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        _newman(),
        "run",
        str(out / mt.COLLECTION_FILE),
        "-e",
        str(out / mt.ENVIRONMENT_FILE),
        "--ssl-extra-ca-certs",
        str(app.ca_bundle),
        "--reporters",
        "cli,json",
        "--reporter-json-export",
        str(report),
        "--color",
        "off",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _assertions(report: Path) -> tuple[list[str], list[str]]:
    """(passed, failed) assertion names from newman's JSON report."""
    run = json.loads(report.read_text())["run"]
    passed, failed = [], []
    for execution in run["executions"]:
        for a in execution.get("assertions", []):
            (failed if a.get("error") else passed).append(a["assertion"])
    failed_messages = [f["error"]["message"] for f in run["failures"]]
    return passed, failed + failed_messages


@pytest.fixture
def granted(sandbox_app):
    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no policy engine")
    return sandbox_app


def test_export_writes_a_private_kit_and_newman_passes_every_assertion(sandbox_cli_env, granted, tmp_path):
    out = tmp_path / "step6"
    result = _export(sandbox_cli_env, out, granted)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    names = {f["name"] for f in data["files"]}
    assert names == {mt.COLLECTION_FILE, mt.ENVIRONMENT_FILE, mt.POWERSHELL_FILE, mt.README_FILE}
    assert data["credential"] == "assertion" and data["assertion_expires_at"]
    assert data["pilot"]["id"] == granted.pilot_users[0].id  # object ids in the path, not UPNs
    assert oct(out.stat().st_mode & 0o777) == "0o700"
    assert oct((out / mt.ENVIRONMENT_FILE).stat().st_mode & 0o777) == "0o600"
    key_text = granted.private_key_path.read_text()
    for path in out.iterdir():
        text = path.read_text()
        assert "PRIVATE KEY" not in text and key_text.splitlines()[1] not in text
    env = json.loads((out / mt.ENVIRONMENT_FILE).read_text())
    assertion = next(v for v in env["values"] if v["key"] == "clientAssertion")
    assert assertion["type"] == "secret" and "valid until" in env["description"]

    report = tmp_path / "newman.json"
    run = _run_newman(out, granted, report)
    passed, failed = _assertions(report)
    assert run.returncode == 0 and not failed, run.stdout[-3000:]
    assert len(passed) == 7, passed  # 2 token, 2 positive, 1 negative, 1 get, 1 delete
    assert any("policy 403" in name for name in passed)
    # the collection deleted the meeting it created, and the negative create created nothing
    log = granted.control.request_log(granted.tenant_id)
    meetings = [(e["method"], e["status"]) for e in log if "/onlineMeetings" in e["path"]]
    assert meetings == [("POST", 201), ("POST", 403), ("GET", 200), ("DELETE", 204)], meetings


def test_an_expired_assertion_fails_the_run_with_the_documented_AADSTS_error(
    sandbox_cli_env, granted, tmp_path
):
    out = tmp_path / "step6"
    result = _export(sandbox_cli_env, out, granted, "--assertion-minutes", "1")
    assert result.exit_code == 0, result.output
    # the same assertion as the export signs, made two hours ago: what the file holds once it is stale
    credential = CertificateCredential.from_pem_files(granted.private_key_path, granted.certificate_path)
    token_url = f"{granted.authority_url}/{granted.tenant_id}/oauth2/v2.0/token"
    stale = credential.client_assertion(
        token_url, granted.client_id, lifetime_seconds=60, now=time.time() - 7200
    )
    env_file = out / mt.ENVIRONMENT_FILE
    env = json.loads(env_file.read_text())
    for value in env["values"]:
        if value["key"] == "clientAssertion":
            value["value"] = stale
    env_file.write_text(json.dumps(env))
    report = tmp_path / "newman.json"
    run = _run_newman(out, granted, report)
    passed, failed = _assertions(report)
    assert run.returncode != 0
    assert any("AADSTS700024" in f and "meetgate validate --export" in f for f in failed), failed
    assert not any(p.startswith("positive") for p in passed)  # the run stopped at the token
    assert not [e for e in granted.control.request_log(granted.tenant_id) if "/onlineMeetings" in e["path"]]


def _pwsh_env(app, store: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEETGATE_")}
    env.update(
        MEETGATE_SANDBOX_CONTROL_URL=app.control.control_url,
        MEETGATE_SANDBOX_CA_BUNDLE=str(app.ca_bundle),
        MEETGATE_SANDBOX_AUTHORITY_URL=app.authority_url,
        MEETGATE_SANDBOX_GRAPH_URL=app.graph_url,
    )
    if store is not None:
        env["MEETGATE_PWSH_CERT_STORE"] = str(store)
    return env


def _run_script(out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "meetgate_sandbox.pwsh",
        "-NoProfile",
        "-File",
        str(out / mt.POWERSHELL_FILE),
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_the_powershell_script_passes_each_runbook_step_in_order(sandbox_cli_env, granted, tmp_path):
    out = tmp_path / "step6"
    assert _export(sandbox_cli_env, out, granted).exit_code == 0
    store = tmp_path / "cert-store"  # the stand-in's Cert:\CurrentUser\My
    store.mkdir()
    shutil.copy(granted.certificate_path, store / "app.pem")
    shutil.copy(granted.private_key_path, store / "app.key.pem")
    run = _run_script(out, _pwsh_env(granted, store))
    lines = [line for line in run.stdout.splitlines() if line.startswith(("PASS", "FAIL", "SKIP"))]
    assert run.returncode == 0, run.stdout + run.stderr
    assert [line.split()[1] for line in lines[:4]] == ["1", "2", "3", "4"], lines
    assert all(line.startswith("PASS") for line in lines), lines
    assert "Connect-MgGraph" in lines[0] and "Connect-MicrosoftTeams" in lines[1]
    assert "refused with 403" in lines[3]


def test_the_powershell_script_reports_a_missing_certificate_as_failed_steps(
    sandbox_cli_env, granted, tmp_path
):
    out = tmp_path / "step6"
    assert _export(sandbox_cli_env, out, granted).exit_code == 0
    run = _run_script(out, _pwsh_env(granted, tmp_path / "empty-store"))
    assert run.returncode >= 2, run.stdout + run.stderr
    assert "FAIL  1 Connect-MgGraph: no certificate with thumbprint" in run.stdout
    assert "FAIL  runbook step 6" in run.stdout


def test_export_refuses_a_folder_others_can_read_and_an_earlier_export(sandbox_cli_env, granted, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    result = _export(sandbox_cli_env, shared, granted)
    assert result.exit_code == 2
    assert "can be read by other users (mode 0755)" in result.output and "chmod 700" in result.output
    out = tmp_path / "step6"
    assert _export(sandbox_cli_env, out, granted).exit_code == 0
    again = _export(sandbox_cli_env, out, granted)
    assert again.exit_code == 2 and "--force" in again.output
    assert _export(sandbox_cli_env, out, granted, "--force").exit_code == 0
