"""What a meeting produced, read through the library (sync and async) against the sandbox: a weekly
series held twice (its occurrences share one onlineMeeting), attendance with records and intervals,
transcripts as WebVTT and text with speakers, a recording streamed to disk and resumed from a partial
file, and Graph's refusals with their remedies."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from calendar_scope import scope_calendars

from meetgate.composition import graph_settings_from_profile
from meetgate.graph.artifact_models import ARTIFACT_PERMISSIONS, parse_vtt, transcript_text
from meetgate.graph.client import AsyncGraphClient, GraphClient
from meetgate.graph.errors import (
    ArtifactNotReady,
    CalendarMeetingRequired,
    MissingRolesError,
    SpeakerAttributionDisabled,
    TranscriptAccessDisabled,
)
from meetgate.graph.models import MeetingRequest

START = (dt.datetime.now(dt.UTC) - dt.timedelta(days=14)).replace(microsecond=0, second=0)
BASE_ROLES = ["OnlineMeetings.ReadWrite.All", "User.Read.All"]


def _client(sandbox_app, roles: list[str]) -> GraphClient:
    sandbox_app.control.update_app(sandbox_app.tenant_id, sandbox_app.client_id, roles=roles)
    return GraphClient(graph_settings_from_profile(sandbox_app.profile(), environ={}))


@pytest.fixture
def app(sandbox_app):
    scope_calendars(sandbox_app)
    return sandbox_app


@pytest.fixture
def graph(app):
    with _client(app, [*BASE_ROLES, *ARTIFACT_PERMISSIONS.values()]) as client:
        yield client


def _series(app, graph: GraphClient) -> tuple[str, str]:
    """A weekly calendar series of the first pilot; its event id and the onlineMeeting behind it."""
    organizer = app.pilot_users[0]
    event = graph.events.create(
        organizer.upn,
        MeetingRequest(
            placement="calendar",
            subject="Algebra 1",
            start=START,
            end=START + dt.timedelta(minutes=45),
            recurrence="RRULE:FREQ=WEEKLY;COUNT=4",
        ),
        allow_past=True,
    )
    behind = graph.events.online_meeting(organizer.upn, event)
    assert behind is not None
    return event.id, behind.id


def _hold(app, meeting_id: str, start: float, **options):
    organizer, student = app.pilot_users[0], app.other_users[0]
    participants = [
        {"user": organizer.id, "join": 0, "leave": 1800},
        {"user": student.upn, "intervals": [{"join": 60, "leave": 600}, {"join": 700, "leave": 1700}]},
    ]
    lines = [
        {"speaker": organizer.display_name, "text": "Good morning."},
        {"speaker": student.display_name, "text": "Morning!"},
    ]
    return app.control.hold_meeting(
        app.tenant_id, meeting_id, participants, start=start, end=1800, transcript_lines=lines, **options
    )


def test_a_series_held_twice_attendance_transcripts_and_a_resumed_recording(app, graph, tmp_path):
    organizer, student = app.pilot_users[0], app.other_users[0]
    event_id, meeting_id = _series(app, graph)
    first = _hold(app, meeting_id, -14 * 86400)
    second = _hold(app, meeting_id, -7 * 86400)

    attendance = graph.artifacts.attendance(organizer.upn, event_id)  # found through the event
    assert attendance.meeting_id == meeting_id and attendance.event_id == event_id
    assert {r.id for r in attendance.reports} == {first["attendanceReportId"], second["attendanceReportId"]}
    assert not attendance.limit_reached and attendance.warning is None
    record = next(r for r in attendance.reports[0].attendance_records if r.email_address == student.upn)
    assert [i.duration_in_seconds for i in record.attendance_intervals] == [540, 1000]
    assert record.total_attendance_in_seconds == 1540
    assert graph.artifacts.attendance(organizer.upn, meeting_id).to_dict()["reports"]  # the id itself

    transcripts = graph.artifacts.transcripts(organizer.upn, event_id)
    assert {t.id for t in transcripts} == {first["transcriptId"], second["transcriptId"]}
    [content, _] = graph.artifacts.transcript_contents(organizer.upn, event_id)
    assert content.vtt.startswith("WEBVTT")
    assert content.speakers == [organizer.display_name, student.display_name]
    assert content.text == f"{organizer.display_name}: Good morning.\n{student.display_name}: Morning!\n"

    recordings = graph.artifacts.recordings(organizer.upn, event_id)
    assert {r.id for r in recordings} == {first["recordingId"], second["recordingId"]}
    rid = first["recordingId"]
    seen: list[tuple[int, int | None]] = []
    whole = graph.artifacts.download_recording(
        organizer.upn, event_id, rid, tmp_path / "a", progress=lambda n, total: seen.append((n, total))
    )
    data = whole.path.read_bytes()
    assert whole.size == len(data) == 65536 and whole.sha256 == hashlib.sha256(data).hexdigest()
    assert whole.checksum_path.read_text() == f"{whole.sha256}  {whole.path.name}\n"
    assert seen[-1] == (65536, 65536) and whole.resumed_from == 0

    # an interrupted download left 10000 bytes: the next run asks for the rest only
    target = tmp_path / "b" / whole.path.name
    target.parent.mkdir()
    target.with_name(target.name + ".part").write_bytes(data[:10000])
    resumed = graph.artifacts.download_recording(organizer.upn, meeting_id, rid, tmp_path / "b")
    assert resumed.resumed_from == 10000 and resumed.path.read_bytes() == data
    assert resumed.sha256 == whole.sha256 and not target.with_name(target.name + ".part").exists()
    log = app.control.request_log(app.tenant_id, app_id=app.client_id, limit=50)
    assert any("/content" in e.get("path", "") for e in log)
    again = graph.artifacts.download_recording(organizer.upn, meeting_id, rid, tmp_path / "b")
    assert again.already_complete and again.sha256 == whole.sha256

    # a partial file that is already whole: Graph answers 416, the file is finished as it is
    full_part = tmp_path / "c" / whole.path.name
    full_part.parent.mkdir()
    full_part.with_name(full_part.name + ".part").write_bytes(data)
    finished = graph.artifacts.download_recording(organizer.upn, meeting_id, rid, tmp_path / "c")
    assert finished.sha256 == whole.sha256 and finished.resumed_from == 65536


def test_async_reads_the_same(app, graph, tmp_path):
    organizer = app.pilot_users[0]
    event_id, meeting_id = _series(app, graph)
    held = _hold(app, meeting_id, -3600)

    async def read():
        async with AsyncGraphClient(graph.settings) as client:
            attendance = await client.artifacts.attendance(organizer.upn, event_id)
            [content] = await client.artifacts.transcript_contents(organizer.upn, event_id)
            saved = await client.artifacts.download_recording(
                organizer.upn, event_id, held["recordingId"], tmp_path
            )
            assert await client.artifacts.probe(organizer.upn, "recordings") == 1
            return attendance, content, saved

    attendance, content, saved = asyncio.run(read())
    assert [r.id for r in attendance.reports] == [held["attendanceReportId"]]
    assert len(content.cues) == 2 and saved.size == 65536


def test_refusals_name_their_remedy(app, graph, tmp_path):
    organizer = app.pilot_users[0]
    standalone = graph.meetings.create(
        organizer.upn,
        MeetingRequest(subject="Walk-in", start=START, end=START + dt.timedelta(minutes=30)),
        allow_past=True,
    )
    _hold(app, standalone.id, -3600)
    assert len(graph.artifacts.attendance(organizer.upn, standalone.id).reports) == 1
    with pytest.raises(CalendarMeetingRequired) as standalone_refused:
        graph.artifacts.transcripts(organizer.upn, standalone.id)
    assert "meetgate meetings create --calendar" in standalone_refused.value.remedy
    with pytest.raises(CalendarMeetingRequired):
        graph.artifacts.recordings(organizer.upn, standalone.id)

    event_id, meeting_id = _series(app, graph)
    assert graph.artifacts.transcripts(organizer.upn, event_id) == []  # not held yet
    app.control.set_artifact_settings(app.tenant_id, notReady="notFound")
    assert graph.artifacts.recordings(organizer.upn, event_id) == []  # a 404 list of a known meeting
    held = _hold(app, meeting_id, -3600, artifact_delay_seconds=3600)
    with pytest.raises(ArtifactNotReady) as not_ready:
        graph.artifacts.transcript(organizer.upn, event_id, held["transcriptId"])
    assert "retry later" in not_ready.value.remedy

    _hold(app, meeting_id, -7200)
    app.control.set_artifact_settings(app.tenant_id, graphTranscriptAccess=False)
    with pytest.raises(TranscriptAccessDisabled) as disabled:
        graph.artifacts.transcript_contents(organizer.upn, event_id)
    assert disabled.value.inner_code == "GraphAccessToTranscriptsDisabled"
    assert "EnableGraphTranscriptAccess" in disabled.value.remedy
    assert len(graph.artifacts.recordings(organizer.upn, event_id)) == 1  # recordings are not governed

    app.control.set_artifact_settings(
        app.tenant_id, graphTranscriptAccess=True, speakerAttribution=False, speakerAttributionOff="refuse"
    )
    with pytest.raises(SpeakerAttributionDisabled):
        graph.artifacts.transcript_contents(organizer.upn, event_id)
    [plain] = graph.artifacts.transcript_contents(organizer.upn, event_id, speakers=False)
    assert plain.speakers == [] and plain.text == "Good morning.\nMorning!\n"


def test_each_kind_needs_its_own_permission(app):
    organizer = app.pilot_users[0]
    with _client(app, [*BASE_ROLES, ARTIFACT_PERMISSIONS["attendance"]]) as narrow:
        event_id, meeting_id = _series(app, narrow)
        _hold(app, meeting_id, -3600)
        assert narrow.artifacts.attendance(organizer.upn, event_id).reports
        with pytest.raises(MissingRolesError) as missing:
            narrow.artifacts.transcripts(organizer.upn, event_id)
        assert missing.value.missing_roles == ["OnlineMeetingTranscript.Read.All"]
        assert "admin consent" in missing.value.remedy
        with pytest.raises(MissingRolesError):
            narrow.artifacts.recordings(organizer.upn, event_id)


def test_vtt_parsing_reads_both_time_forms_and_cues_without_speakers():
    vtt = (
        "WEBVTT\n\n0:0:0.0 --> 0:0:5.320\n<v User Name>This is a transcript test.</v>\n\n"
        "00:00:05.320 --> 00:00:07.000\n<v User Name>Second line.</v>\n\n"
        "00:00:07.000 --> 00:00:08.000\nNobody attributed.\n"
    )
    cues = parse_vtt(vtt)
    assert [(c.start, c.speaker) for c in cues] == [
        ("0:0:0.0", "User Name"),
        ("00:00:05.320", "User Name"),
        ("00:00:07.000", None),
    ]
    assert transcript_text(cues) == "User Name: This is a transcript test. Second line.\nNobody attributed.\n"


def test_file_names_are_stable(tmp_path: Path):
    from meetgate.graph.artifact_models import artifact_permissions

    assert artifact_permissions(["recordings", "attendance"]) == (
        "OnlineMeetingArtifact.Read.All",
        "OnlineMeetingRecording.Read.All",
    )
    with pytest.raises(ValueError, match="unknown artifact kind"):
        artifact_permissions(["chat"])
