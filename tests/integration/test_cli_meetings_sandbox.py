"""`meetgate meetings …` in-process against the sandbox, with a real meetgate.toml profile."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from meetgate.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(sandbox_cli_env):
    """The CLI's environment: a meetgate.toml whose `sandbox` profile is the sandbox app."""
    return sandbox_cli_env


def cli(env, *args):
    return runner.invoke(app, ["meetings", *args], env=env)


def test_create_find_update_ics_cancel(sandbox_app, env, tmp_path):
    organizer = sandbox_app.pilot_users[0].upn
    attendee = sandbox_app.other_users[1].upn
    created = cli(
        env,
        "create",
        "-o",
        organizer,
        "--subject",
        "Advising",
        "--start",
        "2030-03-01T10:00:00Z",
        "--end",
        "2030-03-01T10:30:00+00:00",
        "-a",
        attendee,
        "--lobby",
        "organizer",
        "--external-id",
        "cli-1",
        "--json",
    )
    assert created.exit_code == 0, created.output
    meeting = json.loads(created.output)
    assert meeting["newlyCreated"] is True and meeting["externalId"] == "cli-1"
    assert meeting["created"].endswith("Z") or "+" in meeting["created"]  # the meeting's own timestamp
    assert meeting["lobbyBypassScope"] == "organizer"

    again = cli(env, "create", "-o", organizer, "--subject", "Advising", "--external-id", "cli-1")
    assert again.exit_code == 0 and "already existed" in again.output and meeting["id"] in again.output

    found = cli(env, "find", "-o", organizer, "--join-url", meeting["joinWebUrl"], "--json")
    assert found.exit_code == 0 and json.loads(found.output)["id"] == meeting["id"]
    by_id = cli(env, "find", "-o", organizer, "--meeting-id", meeting["joinMeetingId"])
    assert by_id.exit_code == 0 and "Advising" in by_id.output

    moved = cli(env, "update", meeting["id"], "-o", organizer, "--start", "2030-03-02T10:00:00Z", "--json")
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.output)["end"].startswith("2030-03-02T10:30")

    out = tmp_path / "invite.ics"
    ics = cli(env, "ics", meeting["id"], "-o", organizer, "--out", str(out))
    assert ics.exit_code == 0, ics.output
    raw = out.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")  # RFC 5545 line ends kept
    text = raw.decode().replace("\r\n ", "")  # unfold
    assert "METHOD:REQUEST" in text and f"mailto:{attendee}" in text
    as_json = cli(env, "ics", meeting["id"], "-o", organizer, "--cancellation", "--json")
    assert as_json.exit_code == 0, as_json.output
    described = json.loads(as_json.output)
    assert described["method"] == "CANCEL" and described["sequence"] == 1 and described["file"] is None
    assert "METHOD:CANCEL" in described["ics"]

    locked = cli(env, "cancel", meeting["id"], "-o", organizer, "--mode", "lock")
    assert locked.exit_code == 0 and "locked" in locked.output
    gone = cli(env, "cancel", meeting["id"], "-o", organizer)
    assert gone.exit_code == 0 and "deleted" in gone.output
    missing = cli(env, "get", meeting["id"], "-o", organizer)
    assert missing.exit_code == 1 and "what to do" in missing.output


def test_policy_refusal_exits_1_with_the_grant_line(sandbox_app, env):
    outsider = sandbox_app.other_users[0].upn
    result = cli(env, "create", "-o", outsider, "--subject", "x")
    assert result.exit_code == 1
    assert "Grant-CsApplicationAccessPolicy" in result.output and outsider in result.output
    as_json = cli(env, "create", "-o", outsider, "--subject", "x", "--json")
    data = json.loads(as_json.output)
    assert (
        as_json.exit_code == 1
        and data["error"] == "AccessPolicyMissing"
        and data["appId"] == sandbox_app.client_id
    )
