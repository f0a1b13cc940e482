"""`meetgate setup app` asks for the meeting-artifact permissions the profile's `artifacts` enables,
and for no other: shown in the plan, granted by the run, absent for the kinds left out."""

from __future__ import annotations

import pytest
from test_cli_provisioning import Tenant

ARTIFACT_ROLES = {
    "OnlineMeetingArtifact.Read.All",
    "OnlineMeetingTranscript.Read.All",
    "OnlineMeetingRecording.Read.All",
}


@pytest.fixture
def tenant(sandbox, tmp_path):
    t = Tenant(sandbox, tmp_path)
    yield t
    t.control.close()


def test_only_the_enabled_kinds_are_requested(tenant):
    tenant.json("setup", "app")
    assert not ARTIFACT_ROLES & set(tenant.json("setup", "app", "--plan")["permissions"]["required"])
    text = " ".join(tenant.run("setup", "app", "--plan").output.split())
    assert "meeting artifacts: none enabled" in text

    with tenant.config.open("a") as handle:
        handle.write('artifacts = ["transcripts", "attendance"]\n')
    plan = tenant.json("setup", "app", "--plan")
    assert set(plan["permissions"]["missing"]) == {
        "OnlineMeetingArtifact.Read.All",
        "OnlineMeetingTranscript.Read.All",
    }
    text = " ".join(tenant.run("setup", "app", "--plan").output.split())
    assert "transcripts → OnlineMeetingTranscript.Read.All" in text
    assert "OnlineMeetingTranscript.Read.All: not granted yet (the plan grants it)" in text
    assert "OnlineMeetingRecording.Read.All" not in text

    tenant.json("setup", "app")
    tenant.json("cert", "new", "--out", str(tenant.dir / "keys"), "--use")
    tenant.json("cert", "upload")
    roles = set(tenant.token_roles())
    assert ARTIFACT_ROLES & roles == {"OnlineMeetingArtifact.Read.All", "OnlineMeetingTranscript.Read.All"}


def test_an_unknown_kind_is_refused_with_the_line(tenant):
    with tenant.config.open("a") as handle:
        handle.write('artifacts = ["chat"]\n')
    result = tenant.run("setup", "app", "--plan", code=None)
    assert result.exit_code != 0
    assert "unknown kind(s) 'chat'" in " ".join(result.output.split())
