"""`meetgate validate` with meeting artifacts enabled (`artifacts` in the profile), in-process against
the sandbox: each enabled kind's permission is in the token and a read of it for a pilot gets through
the Teams policy; a missing permission, a pilot without the policy and transcripts turned off in the
tenant each fail the check with their remedy; without `artifacts` the check is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetgate.cli.main import app as cli
from meetgate.graph.artifact_models import ARTIFACT_PERMISSIONS


def _config(app, tmp_path: Path, artifacts: str | None) -> Path:
    policy = tmp_path / "policy.toml"
    users = ", ".join(f'"{u.upn}"' for u in app.pilot_users)
    policy.write_text(
        f'[policy]\nidentity = "Tag:TeamsMeetingsIntegration"\napp_ids = ["{app.client_id}"]\n'
        f"[organizers]\nusers = [{users}]\n"
    )
    config = tmp_path / "meetgate.toml"
    config.write_text(
        'default_profile = "sandbox"\n[profiles.sandbox]\n'
        f'tenant_id = "{app.tenant_id}"\nclient_id = "{app.client_id}"\n'
        f'private_key_path = "{app.private_key_path}"\ncertificate_path = "{app.certificate_path}"\n'
        f'authority_url = "{app.authority_url}"\ngraph_url = "{app.graph_url}"\n'
        f'ca_bundle = "{app.ca_bundle}"\npolicy_file = "{policy}"\n'
        f'store_url = "sqlite:///{tmp_path / "meetgate.db"}"\n'
        + (f"artifacts = {artifacts}\n" if artifacts is not None else "")
    )
    return config


@pytest.fixture
def app(sandbox_app, monkeypatch):
    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no policy engine")
    for key in (
        "MEETGATE_CLIENT_SECRET",
        "MEETGATE_PWSH",
        "MEETGATE_PROFILE",
        "MEETGATE_CONFIG",
        "MEETGATE_ARTIFACTS",
    ):
        monkeypatch.delenv(key, raising=False)
    return sandbox_app


def _artifacts_check(config: Path, *args: str) -> dict | None:
    result = CliRunner().invoke(cli, ["--config", str(config), "validate", "--json", *args])
    assert result.stdout.lstrip().startswith("{"), result.output
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}.get("artifacts")


def _grant(app, *kinds: str) -> None:
    app.control.update_app(app.tenant_id, app.client_id, roles=[ARTIFACT_PERMISSIONS[k] for k in kinds])


def test_absent_without_artifacts_and_passing_with_every_kind(app, tmp_path):
    assert _artifacts_check(_config(app, tmp_path, None)) is None
    _grant(app, "attendance", "transcripts", "recordings")
    config = _config(app, tmp_path, '["attendance", "transcripts", "recordings"]')
    check = _artifacts_check(config)
    assert check is not None and check["status"] == "pass", check
    assert set(check["evidence"]["reads"]) == {"attendance", "transcripts", "recordings"}


def test_a_missing_permission_fails_and_an_unneeded_one_warns(app, tmp_path):
    _grant(app, "attendance", "recordings")
    check = _artifacts_check(_config(app, tmp_path, '["attendance", "transcripts"]'))
    assert check["status"] == "fail" and check["evidence"]["missing"] == ["OnlineMeetingTranscript.Read.All"]
    assert "meetgate setup app" in check["remedy"]
    result = CliRunner().invoke(
        cli, ["--config", str(_config(app, tmp_path, '["attendance"]')), "validate", "--json"]
    )
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["artifacts"]["status"] == "pass"
    assert checks["permissions"]["status"] == "warn"
    assert "OnlineMeetingRecording.Read.All" in checks["permissions"]["finding"]


def test_transcripts_turned_off_in_the_tenant_fail_with_the_switch(app, tmp_path):
    _grant(app, "transcripts")
    app.control.set_artifact_settings(app.tenant_id, graphTranscriptAccess=False)
    check = _artifacts_check(_config(app, tmp_path, '["transcripts"]'))
    assert check["status"] == "fail"
    assert check["evidence"]["reads"]["transcripts"]["error"] == "TranscriptAccessDisabled"
    assert "EnableGraphTranscriptAccess" in check["remedy"]


def test_a_pilot_without_the_policy_fails(app, tmp_path):
    _grant(app, "recordings")
    outsider = app.other_users[0]
    check = _artifacts_check(_config(app, tmp_path, '["recordings"]'), "--pilot", outsider.upn)
    assert check["status"] == "fail"
    assert check["evidence"]["reads"]["recordings"]["error"] == "AccessPolicyMissing"
