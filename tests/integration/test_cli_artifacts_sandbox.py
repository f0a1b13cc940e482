"""`meetgate meetings attendance | transcripts | recordings` in-process against the sandbox: a calendar
series held twice, read through its event id; CSV and JSON attendance, transcripts as text, WebVTT and
JSON, recordings downloaded with a checksum and resumed; the refusals with their remedies."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import pytest
from calendar_scope import scope_calendars
from typer.testing import CliRunner

from meetgate.cli.main import app
from meetgate.composition import graph_settings_from_profile
from meetgate.config import save_profile_values
from meetgate.graph.artifact_models import ARTIFACT_PERMISSIONS
from meetgate.graph.client import GraphClient
from meetgate.graph.models import MeetingRequest

runner = CliRunner()
START = (dt.datetime.now(dt.UTC) - dt.timedelta(days=7)).replace(microsecond=0, second=0)


@pytest.fixture
def env(sandbox_app, sandbox_cli_env):
    scope_calendars(sandbox_app)
    sandbox_app.control.update_app(
        sandbox_app.tenant_id, sandbox_app.client_id, roles=list(ARTIFACT_PERMISSIONS.values())
    )
    save_profile_values(
        Path(sandbox_cli_env["MEETGATE_CONFIG"]),
        "sandbox",
        {"artifacts": ["attendance", "transcripts", "recordings"]},
    )
    return sandbox_cli_env


def cli(env, *args):
    return runner.invoke(app, ["meetings", *args], env=env)


def _made(sandbox_app, placement: str) -> tuple[str, str]:
    organizer = sandbox_app.pilot_users[0]
    with GraphClient(graph_settings_from_profile(sandbox_app.profile(), environ={})) as graph:
        request = MeetingRequest(
            placement=placement,
            subject="Interview",
            start=START,
            end=START + dt.timedelta(minutes=30),
            **({"recurrence": "RRULE:FREQ=WEEKLY;COUNT=3"} if placement == "calendar" else {}),
        )
        if placement == "standalone":
            made = graph.meetings.create(organizer.upn, request, allow_past=True)
            return made.id, made.id
        event = graph.events.create(organizer.upn, request, allow_past=True)
        behind = graph.events.online_meeting(organizer.upn, event)
        assert behind is not None
        return event.id, behind.id


def _hold(sandbox_app, meeting_id: str, start: float):
    organizer, candidate = sandbox_app.pilot_users[0], sandbox_app.other_users[0]
    return sandbox_app.control.hold_meeting(
        sandbox_app.tenant_id,
        meeting_id,
        [
            {"user": organizer.id, "join": 0, "leave": 1200},
            {"user": candidate.upn, "intervals": [{"join": 30, "leave": 400}, {"join": 500, "leave": 1100}]},
        ],
        start=start,
        end=1200,
        transcript_lines=[
            {"speaker": organizer.display_name, "text": "Thanks for coming."},
            {"speaker": candidate.display_name, "text": "Glad to be here."},
        ],
    )


def test_attendance_transcripts_and_recordings_of_a_series(sandbox_app, env, tmp_path):
    organizer, candidate = sandbox_app.pilot_users[0], sandbox_app.other_users[0]
    event_id, meeting_id = _made(sandbox_app, "calendar")
    first = _hold(sandbox_app, meeting_id, -7 * 86400)
    second = _hold(sandbox_app, meeting_id, -86400)

    text = cli(env, "attendance", event_id, "-o", organizer.upn)
    assert text.exit_code == 0, text.output
    assert first["attendanceReportId"] in text.output and candidate.upn in text.output
    as_csv = cli(env, "attendance", event_id, "-o", organizer.upn, "--csv")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    mine = [r for r in rows if r["emailAddress"] == candidate.upn]
    assert len(mine) == 4  # two sessions, two intervals each
    assert sorted({r["durationInSeconds"] for r in mine}) == ["370", "600"]
    assert {r["reportId"] for r in rows} == {first["attendanceReportId"], second["attendanceReportId"]}
    as_json = json.loads(cli(env, "attendance", event_id, "-o", organizer.upn, "--json").stdout)
    assert as_json["meetingId"] == meeting_id and as_json["limitReached"] is False
    assert len(as_json["reports"]) == 2 and as_json["reports"][0]["attendanceRecords"]
    both = cli(env, "attendance", event_id, "-o", organizer.upn, "--csv", "--json")
    assert both.exit_code == 2

    plain = cli(env, "transcripts", event_id, "-o", organizer.upn)
    assert plain.exit_code == 0, plain.output
    assert f"{organizer.display_name}: Thanks for coming.\n{candidate.display_name}: Glad to be here.\n" in (
        plain.stdout
    )
    out = tmp_path / "t.vtt"
    vtt = cli(
        env,
        "transcripts",
        event_id,
        "-o",
        organizer.upn,
        "--format",
        "vtt",
        "--id",
        first["transcriptId"],
        "--out",
        str(out),
    )
    assert vtt.exit_code == 0, vtt.output
    assert out.read_text().startswith("WEBVTT") and f"<v {candidate.display_name}>" in out.read_text()
    meta = json.loads(cli(env, "transcripts", meeting_id, "-o", organizer.upn, "--format", "json").stdout)
    assert {t["transcript"]["id"] for t in meta} == {first["transcriptId"], second["transcriptId"]}
    assert meta[0]["speakers"] == [organizer.display_name, candidate.display_name]

    listed = json.loads(cli(env, "recordings", event_id, "-o", organizer.upn, "--json").stdout)
    assert {r["id"] for r in listed} == {first["recordingId"], second["recordingId"]}
    rid = first["recordingId"]
    got = cli(
        env, "recordings", event_id, "-o", organizer.upn, "--id", rid, "--download", str(tmp_path / "r")
    )
    assert got.exit_code == 0, got.output
    [saved] = (tmp_path / "r").glob("*.mp4")
    digest = hashlib.sha256(saved.read_bytes()).hexdigest()
    assert f"sha256 {digest}" in " ".join(got.stdout.split())
    assert saved.with_name(saved.name + ".sha256").read_text() == f"{digest}  {saved.name}\n"

    again = cli(
        env, "recordings", event_id, "-o", organizer.upn, "--id", rid, "--download", str(tmp_path / "r")
    )
    assert "already complete" in again.stdout
    partial = tmp_path / "p" / saved.name
    partial.parent.mkdir()
    partial.with_name(saved.name + ".part").write_bytes(saved.read_bytes()[:4096])
    resumed = cli(
        env,
        "recordings",
        event_id,
        "-o",
        organizer.upn,
        "--id",
        rid,
        "--download",
        str(tmp_path / "p"),
        "--json",
    )
    assert resumed.exit_code == 0, resumed.output
    [result] = json.loads(resumed.stdout)
    assert result["resumedFrom"] == 4096 and result["sha256"] == digest
    assert partial.read_bytes() == saved.read_bytes()


def test_refusals_and_their_remedies(sandbox_app, env):
    organizer = sandbox_app.pilot_users[0]
    standalone, _ = _made(sandbox_app, "standalone")
    _hold(sandbox_app, standalone, -3600)
    assert cli(env, "attendance", standalone, "-o", organizer.upn, "--json").exit_code == 0
    refused = cli(env, "transcripts", standalone, "-o", organizer.upn)
    assert refused.exit_code == 1
    assert "meetgate meetings create --calendar" in " ".join(refused.output.split())

    event_id, meeting_id = _made(sandbox_app, "calendar")
    empty = cli(env, "recordings", event_id, "-o", organizer.upn)
    assert empty.exit_code == 1 and "retry later" in " ".join(empty.output.split())
    _hold(sandbox_app, meeting_id, -3600)
    sandbox_app.control.set_artifact_settings(sandbox_app.tenant_id, graphTranscriptAccess=False)
    disabled = cli(env, "transcripts", event_id, "-o", organizer.upn, "--format", "json")
    assert disabled.exit_code == 1
    error = json.loads(disabled.stdout)
    assert error["error"] == "TranscriptAccessDisabled"
    assert "EnableGraphTranscriptAccess" in error["remedy"]


def test_a_kind_the_profile_does_not_enable_says_how(sandbox_app, sandbox_cli_env):
    scope_calendars(sandbox_app)
    organizer = sandbox_app.pilot_users[0]
    event_id, meeting_id = _made(sandbox_app, "calendar")
    _hold(sandbox_app, meeting_id, -3600)
    refused = cli(sandbox_cli_env, "recordings", event_id, "-o", organizer.upn)
    assert refused.exit_code == 1
    said = " ".join(refused.output.split())
    assert "OnlineMeetingRecording.Read.All" in said and "add it to `artifacts`" in said


def test_fifty_reports_are_all_graph_returns_and_the_cli_says_so(sandbox_app, env):
    organizer = sandbox_app.pilot_users[0]
    standalone, _ = _made(sandbox_app, "standalone")
    for n in range(51):
        sandbox_app.control.hold_meeting(
            sandbox_app.tenant_id, standalone, [{"user": organizer.id}], start=-(60 - n) * 3600, end=600
        )
    result = cli(env, "attendance", standalone, "-o", organizer.upn, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["reports"]) == 50 and data["limitReached"] is True
    assert "only the 50 most recent attendance reports" in " ".join(result.stderr.split())
