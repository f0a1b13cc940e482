"""What a held meeting leaves behind, over real TLS with real MSAL tokens: the control call that holds
a meeting, attendance reports, WebVTT transcripts, recordings with Range, getAllTranscripts and
getAllRecordings, the rules (permission per kind, Teams application access policy, calendar placement,
the tenant's transcript switch, availability) and the changes published on the notification bus."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conftest import Credentials, app_token
from meetgate import certificates
from meetgate_sandbox.control import SandboxControlError
from meetgate_sandbox.notification_bus import Change

ARTIFACT_ROLES = [
    "Calendars.ReadWrite",
    "OnlineMeetings.ReadWrite.All",
    "OnlineMeetingArtifact.Read.All",
    "OnlineMeetingTranscript.Read.All",
    "OnlineMeetingRecording.Read.All",
]


class Graph:
    def __init__(self, http: httpx.Client, base: str, token: str) -> None:
        self.http, self.base, self.token = http, base, token

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.http.request(method, f"{self.base}/v1.0{path}", headers=headers, **kwargs)


@dataclass
class Setup:
    graph: Graph
    creds: Credentials
    control: Any
    tenant_id: str
    organizer: dict[str, Any]
    attendee: dict[str, Any]

    def meeting_path(self, meeting_id: str) -> str:
        return f"/users/{self.organizer['id']}/onlineMeetings/{meeting_id}"


def _app(sandbox, http, sandbox_tenant, key_pair, roles: list[str]) -> tuple[Graph, Credentials]:
    app = sandbox_tenant.control.register_app(
        sandbox_tenant.tenant_id,
        "Artifact tests",
        certificate_pem=certificates.certificate_pem(key_pair.certificate),
        roles=roles,
    )
    creds = Credentials(
        sandbox_tenant.tenant_id, app["appId"], app["objectId"], app["servicePrincipalId"], key_pair
    )
    return Graph(http, sandbox.info.graph_url, app_token(sandbox, http, creds)), creds


@pytest.fixture
def setup(sandbox, http, sandbox_tenant, key_pair) -> Setup:
    graph, creds = _app(sandbox, http, sandbox_tenant, key_pair, ARTIFACT_ROLES)
    control, tid = sandbox_tenant.control, sandbox_tenant.tenant_id
    users = [u for u in control.tenant(tid)["users"] if u["accountEnabled"]]
    organizer, attendee = users[0], users[1]
    control.create_policy(tid, "Tag:Artifacts", [creds.app_id])
    control.grant_policy(tid, "Artifacts", user=organizer["id"])
    return Setup(graph, creds, control, tid, organizer, attendee)


@pytest.fixture
def changes(sandbox) -> Iterator[list[Change]]:
    """Every change the server publishes while the test runs (a listener on the bus)."""
    seen: list[Change] = []
    active = [True]

    def listener(change: Change) -> None:
        if active[0]:
            seen.append(change)

    sandbox.runtime.notifications.subscribe(listener)
    yield seen
    active[0] = False


def _calendar_meeting(s: Setup, **extra: Any) -> str:
    body = {
        "subject": "Interview",
        "start": {"dateTime": "2030-07-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-07-01T09:30:00", "timeZone": "UTC"},
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
        "attendees": [{"emailAddress": {"address": s.attendee["userPrincipalName"]}, "type": "required"}],
        **extra,
    }
    event = s.graph("POST", f"/users/{s.organizer['id']}/events", json=body)
    assert event.status_code == 201, event.text
    join_url = event.json()["onlineMeeting"]["joinUrl"]
    found = s.graph(
        "GET",
        f"/users/{s.organizer['id']}/onlineMeetings",
        params={"$filter": f"JoinWebUrl eq '{join_url}'"},
    )
    assert found.status_code == 200, found.text
    meeting_id: str = found.json()["value"][0]["id"]
    return meeting_id


def _standalone_meeting(s: Setup) -> str:
    created = s.graph("POST", f"/users/{s.organizer['id']}/onlineMeetings", json={"subject": "Ad hoc"})
    assert created.status_code == 201, created.text
    meeting_id: str = created.json()["id"]
    return meeting_id


def _hold(s: Setup, meeting_id: str, **options: Any) -> dict[str, Any]:
    participants = options.pop(
        "participants",
        [
            {"user": s.organizer["id"], "join": 0, "leave": 1500},
            {
                "user": s.attendee["userPrincipalName"],
                "intervals": [{"join": 60, "leave": 600}, {"join": 700}],
            },
            {"displayName": "Guest Candidate", "email": "guest@example.org", "join": 30, "leave": 900},
        ],
    )
    options.setdefault("start", -1800)
    options.setdefault("end", 1500)
    return dict(s.control.hold_meeting(s.tenant_id, meeting_id, participants, **options))


def _error(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ---- attendance -------------------------------------------------------------------------------------


def test_a_held_meeting_has_an_attendance_report_with_records_and_intervals(setup):
    s = setup
    meeting_id = _standalone_meeting(s)
    session = _hold(s, meeting_id)
    assert session["calendarBacked"] is False
    assert session["transcriptId"] is None and session["recordingId"] is None
    reports = s.graph("GET", f"{s.meeting_path(meeting_id)}/attendanceReports")
    assert reports.status_code == 200, reports.text
    [report] = reports.json()["value"]
    assert report["id"] == session["attendanceReportId"]
    assert report["totalParticipantCount"] == 3
    assert report["attendanceRecords"] == []  # the list never carries records
    assert report["meetingStartDateTime"].endswith("Z")

    one = s.graph(
        "GET",
        f"{s.meeting_path(meeting_id)}/attendanceReports/{report['id']}",
        params={"$expand": "attendanceRecords"},
    ).json()
    records = {r["emailAddress"]: r for r in one["attendanceRecords"]}
    organizer = records[s.organizer["userPrincipalName"]]
    assert organizer["role"] == "Organizer" and organizer["totalAttendanceInSeconds"] == 1500
    assert organizer["identity"] == {
        "id": s.organizer["id"],
        "displayName": s.organizer["displayName"],
        "tenantId": s.tenant_id,
    }
    attendee = records[s.attendee["userPrincipalName"]]
    assert attendee["role"] == "Attendee"
    assert [i["durationInSeconds"] for i in attendee["attendanceIntervals"]] == [540, 800]
    assert attendee["totalAttendanceInSeconds"] == 1340
    guest = records["guest@example.org"]
    assert guest["identity"] == {"id": None, "displayName": "Guest Candidate", "tenantId": None}
    interval = guest["attendanceIntervals"][0]
    assert set(interval) == {"joinDateTime", "leaveDateTime", "durationInSeconds"}

    listed = s.graph(
        "GET", f"{s.meeting_path(meeting_id)}/attendanceReports/{report['id']}/attendanceRecords"
    ).json()["value"]
    assert len(listed) == 3


def test_several_sessions_of_a_series_each_make_a_report_newest_first(setup):
    s = setup
    meeting_id = _calendar_meeting(
        s,
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            "range": {"type": "numbered", "startDate": "2030-07-01", "numberOfOccurrences": 4},
        },
    )
    first = _hold(s, meeting_id, start=-3 * 86400, transcript=False)
    second = _hold(s, meeting_id, start=-2 * 86400, recording=False)
    reports = s.graph("GET", f"{s.meeting_path(meeting_id)}/attendanceReports").json()["value"]
    assert [r["id"] for r in reports] == [second["attendanceReportId"], first["attendanceReportId"]]
    transcripts = s.graph("GET", f"{s.meeting_path(meeting_id)}/transcripts").json()["value"]
    recordings = s.graph("GET", f"{s.meeting_path(meeting_id)}/recordings").json()["value"]
    assert [t["id"] for t in transcripts] == [second["transcriptId"]]
    assert [r["id"] for r in recordings] == [first["recordingId"]]
    assert len(s.control.meeting_sessions(s.tenant_id, meeting_id)) == 2


def test_the_control_call_refuses_bad_sessions(setup):
    s = setup
    meeting_id = _standalone_meeting(s)
    with pytest.raises(SandboxControlError) as raised:
        _hold(s, meeting_id, start=-60, end=2 * 86400)
    assert raised.value.status == 400
    with pytest.raises(SandboxControlError) as raised:
        s.control.hold_meeting(s.tenant_id, meeting_id, [{"user": "nobody@nowhere.example"}])
    assert raised.value.status == 400
    with pytest.raises(SandboxControlError) as raised:
        s.control.hold_meeting(s.tenant_id, "MSoxKjAqKjE5", [])
    assert raised.value.status == 404


# ---- transcripts --------------------------------------------------------------------------------------


def test_a_calendar_meeting_has_a_webvtt_transcript_with_the_participants_as_speakers(setup):
    s = setup
    meeting_id = _calendar_meeting(s)
    session = _hold(
        s,
        meeting_id,
        transcript_lines=[
            {"speaker": s.organizer["displayName"], "text": "Welcome to the interview."},
            {"speaker": "Guest Candidate", "text": "Thank you for having me."},
        ],
    )
    listed = s.graph("GET", f"{s.meeting_path(meeting_id)}/transcripts")
    assert listed.status_code == 200, listed.text
    [transcript] = listed.json()["value"]
    assert transcript["id"] == session["transcriptId"]
    assert transcript["meetingId"] == meeting_id and transcript["callId"] == session["callId"]
    assert transcript["meetingOrganizer"]["user"] == {
        "@odata.type": "#Microsoft.Teams.GraphSvc.teamworkUserIdentity",
        "id": s.organizer["id"],
        "displayName": None,
        "userIdentityType": "aadUser",
        "tenantId": s.tenant_id,
    }
    content_url = transcript["transcriptContentUrl"]
    assert content_url.startswith("https://") and content_url.endswith(
        f"/transcripts/{transcript['id']}/content"
    )

    got = s.graph("GET", f"{s.meeting_path(meeting_id)}/transcripts/{transcript['id']}").json()
    assert got["contentCorrelationId"] == transcript["contentCorrelationId"]

    content = s.graph("GET", content_url.split("/v1.0", 1)[1], params={"$format": "text/vtt"})
    assert content.status_code == 200
    assert content.headers["content-type"].startswith("text/vtt")
    text = content.text
    assert text.startswith("WEBVTT\n\n")
    assert f"<v {s.organizer['displayName']}>Welcome to the interview.</v>" in text
    assert "<v Guest Candidate>Thank you for having me.</v>" in text
    assert " --> " in text
    by_accept = s.graph("GET", content_url.split("/v1.0", 1)[1], headers={"Accept": "text/vtt"})
    assert by_accept.text == text
    docx = s.graph(
        "GET",
        content_url.split("/v1.0", 1)[1],
        params={"$format": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    )
    assert docx.status_code == 400

    metadata = s.graph("GET", f"{s.meeting_path(meeting_id)}/transcripts/{transcript['id']}/metadataContent")
    assert metadata.status_code == 200
    assert '"speakerName":"Guest Candidate","spokenText":"Thank you for having me."' in metadata.text
    assert '"startDateTime":"' in metadata.text and "+00:00" in metadata.text

    # the transcript of a recording, by contentCorrelationId
    by_correlation = s.graph(
        "GET",
        f"{s.meeting_path(meeting_id)}/transcripts",
        params={"$filter": f"contentCorrelationId eq '{transcript['contentCorrelationId']}'"},
    ).json()["value"]
    assert [t["id"] for t in by_correlation] == [transcript["id"]]
    other = s.graph(
        "GET", f"{s.meeting_path(meeting_id)}/transcripts", params={"$filter": "contentCorrelationId eq 'x'"}
    )
    assert other.json()["value"] == []


def test_transcripts_and_recordings_of_a_standalone_meeting_are_refused(setup):
    s = setup
    meeting_id = _standalone_meeting(s)
    _hold(s, meeting_id)
    message = (
        "No iCalUid found for the meeting. This API is supported only for calendar backed OnlineMeeting."
    )
    for kind in ("transcripts", "recordings"):
        assert _error(s.graph("GET", f"{s.meeting_path(meeting_id)}/{kind}")) == (
            412,
            "PreconditionFailed",
            message,
        )
    s.control.set_artifact_settings(s.tenant_id, standaloneError="badRequest")
    assert _error(s.graph("GET", f"{s.meeting_path(meeting_id)}/transcripts"))[:2] == (400, "BadRequest")
    with pytest.raises(SandboxControlError):
        s.control.set_artifact_settings(s.tenant_id, standaloneError="teapot")


def test_the_tenant_switch_for_graph_access_to_transcripts(setup):
    s = setup
    meeting_id = _calendar_meeting(s)
    session = _hold(s, meeting_id)
    s.control.set_artifact_settings(s.tenant_id, graphTranscriptAccess=False)
    base = f"{s.meeting_path(meeting_id)}/transcripts"
    for path in (
        base,
        f"{base}/{session['transcriptId']}/content",
        f"{base}/{session['transcriptId']}/metadataContent",
    ):
        response = s.graph("GET", path)
        assert response.status_code == 403, path
        assert response.json()["error"]["innerError"]["code"] == "GraphAccessToTranscriptsDisabled"
    # recordings are not governed by it
    assert s.graph("GET", f"{s.meeting_path(meeting_id)}/recordings").status_code == 200
    s.control.set_artifact_settings(s.tenant_id, graphTranscriptAccess=True, speakerAttribution=False)
    text = s.graph("GET", f"{base}/{session['transcriptId']}/content").text
    assert "<v " not in text
    assert "\n00:00:00.000 --> 00:00:05.000\n" in text
    s.control.set_artifact_settings(s.tenant_id, vttTimestamps="short")
    text = s.graph("GET", f"{base}/{session['transcriptId']}/content").text
    assert "\n0:0:0.0 --> 0:0:5.0\n" in text
    s.control.set_artifact_settings(s.tenant_id, speakerAttributionOff="refuse")
    refused = s.graph("GET", f"{base}/{session['transcriptId']}/content")
    assert refused.status_code == 403
    assert refused.json()["error"]["innerError"]["code"] == "SpeakerAttributionNotAllowed"
    plain = s.graph(
        "GET",
        f"{base}/{session['transcriptId']}/content",
        headers={"Accept": "application/vnd.microsoft.graph.transcript+text"},
    )
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("application/vnd.microsoft.graph.transcript+text")
    assert "<v " not in plain.text and " --> " in plain.text


# ---- recordings ---------------------------------------------------------------------------------------


def test_a_recording_is_served_as_mp4_with_range_requests(setup):
    s = setup
    meeting_id = _calendar_meeting(s)
    session = _hold(s, meeting_id)
    [recording] = s.graph("GET", f"{s.meeting_path(meeting_id)}/recordings").json()["value"]
    assert recording["id"] == session["recordingId"]
    assert recording["meetingId"] == meeting_id and recording["createdDateTime"].endswith("Z")
    path = recording["recordingContentUrl"].split("/v1.0", 1)[1]
    whole = s.graph("GET", path)
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    data = whole.content
    assert data[4:8] == b"ftyp" and len(data) == int(whole.headers["content-length"])
    assert s.graph("GET", path).content == data  # deterministic

    part = s.graph("GET", path, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert part.content == data[100:200]
    tail = s.graph("GET", path, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    rest = s.graph("GET", path, headers={"Range": f"bytes={len(data) - 5}-"})
    assert rest.content == data[-5:]
    beyond = s.graph("GET", path, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"


# ---- permissions and policy -----------------------------------------------------------------------------


def test_each_kind_needs_its_permission_and_the_policy(sandbox, http, sandbox_tenant, key_pair, setup):
    s = setup
    meeting_id = _calendar_meeting(s)
    session = _hold(s, meeting_id)
    graph, creds = _app(
        sandbox, http, sandbox_tenant, key_pair, ["OnlineMeetings.Read.All", "OnlineMeetingArtifact.Read.All"]
    )
    s.control.update_policy(s.tenant_id, "Tag:Artifacts", addAppIds=[creds.app_id])
    path = s.meeting_path(meeting_id)
    assert graph("GET", f"{path}/attendanceReports").status_code == 200
    for kind in ("transcripts", "recordings"):
        status, code, message = _error(graph("GET", f"{path}/{kind}"))
        assert (status, code) == (403, "Forbidden")
        assert ("OnlineMeetingTranscript" if kind == "transcripts" else "OnlineMeetingRecording") in message
    assert graph("GET", f"{path}/recordings/{session['recordingId']}/content").status_code == 403

    # the organizer's policy: another organizer without it is refused first
    other = s.attendee
    response = s.graph("GET", f"/users/{other['id']}/onlineMeetings/{meeting_id}/transcripts")
    assert response.status_code == 403
    assert "application access policy" in response.json()["error"]["message"]


def test_artifacts_appear_after_the_delay_and_not_before(setup, changes):
    s = setup
    meeting_id = _calendar_meeting(s)
    session = _hold(s, meeting_id, artifact_delay_seconds=1)
    path = s.meeting_path(meeting_id)
    # right after the meeting: nothing yet (unless this machine is slower than the delay)
    early = s.graph("GET", f"{path}/transcripts").json()["value"]
    if early == []:
        assert s.graph("GET", f"{path}/transcripts/{session['transcriptId']}").status_code == 404
    _until(lambda: len(s.graph("GET", f"{path}/transcripts").json()["value"]) == 1)
    _until(lambda: any(c.odata_type == "#Microsoft.Graph.callRecording" for c in changes))
    assert len(s.graph("GET", f"{path}/attendanceReports").json()["value"]) == 1


def test_not_ready_can_answer_404(setup):
    s = setup
    meeting_id = _calendar_meeting(s)
    s.control.set_artifact_settings(s.tenant_id, notReady="notFound")
    status, code, _ = _error(s.graph("GET", f"{s.meeting_path(meeting_id)}/transcripts"))
    assert (status, code) == (404, "NotFound")


# ---- getAllTranscripts / getAllRecordings ------------------------------------------------------------------


def test_get_all_transcripts_and_recordings_of_an_organizer(setup):
    s = setup
    first, second = _calendar_meeting(s), _calendar_meeting(s)
    one = _hold(s, first, start=-7200)
    two = _hold(s, second, recording=False)
    org = s.organizer["id"]
    base = f"/users/{org}/onlineMeetings"
    response = s.graph("GET", f"{base}/getAllTranscripts(meetingOrganizerUserId='{org}')")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#Collection(callTranscript)")
    assert {t["id"] for t in body["value"]} == {one["transcriptId"], two["transcriptId"]}
    assert body["value"][0]["@odata.type"] == "#microsoft.graph.callTranscript"

    by_filter = s.graph(
        "GET", f"{base}/getAllTranscripts", params={"$filter": f"MeetingOrganizer/User/Id eq '{org}'"}
    )
    assert len(by_filter.json()["value"]) == 2
    recordings = s.graph(
        "GET",
        f"{base}/getAllRecordings(meetingOrganizerUserId='{org}',startDateTime=2020-01-01T00:00:00Z,"
        "endDateTime=2100-01-01T00:00:00Z)",
    ).json()["value"]
    assert [r["id"] for r in recordings] == [one["recordingId"]]
    none = s.graph(
        "GET", f"{base}/getAllTranscripts(meetingOrganizerUserId='{org}', startDateTime=2100-01-01T00:00:00Z)"
    )
    assert none.json()["value"] == []
    paged = s.graph("GET", f"{base}/getAllTranscripts(meetingOrganizerUserId='{org}')", params={"$top": 1})
    assert len(paged.json()["value"]) == 1 and "@odata.nextLink" in paged.json()
    assert s.graph("GET", f"{base}/getAllTranscripts").status_code == 400


# ---- the notification bus ----------------------------------------------------------------------------------


def test_holding_a_meeting_publishes_call_events_and_each_artifact(setup, changes):
    s = setup
    meeting_id = _calendar_meeting(s)
    session = _hold(s, meeting_id)
    mine = [c for c in changes if c.meeting_id == meeting_id]
    calls = [c for c in mine if c.odata_type == "#microsoft.graph.onlineMeeting"]
    events = [c.extra.get("eventType") for c in calls]
    # started, a roster update at each of the 4 joins and 4 leaves (the attendee rejoined), ended
    assert events[0] == "Microsoft.Communication.CallStarted"
    assert events[-1] == "Microsoft.Communication.CallEnded"
    assert events[1:-1] == ["Microsoft.Communication.CallRosterUpdate"] * 8
    first_roster = calls[1].resource_data
    assert first_roster["activeParticipants@joined"][0]["identity"]["user"]["id"] == s.organizer["id"]
    times = [c.resource_data["eventDateTime"] for c in calls]
    assert times == sorted(times)
    assert all(c.tenant_id == s.tenant_id and c.organizer_id == s.organizer["id"] for c in mine)
    report = next(c for c in mine if c.odata_type == "#microsoft.graph.meetingAttendanceReport")
    assert report.resource_data["id"] == session["attendanceReportId"]
    transcript = next(c for c in mine if c.odata_type == "#Microsoft.Graph.callTranscript")
    assert transcript.change_type == "created"
    assert (
        transcript.resource
        == f"communications/onlineMeetings('{meeting_id}')/transcripts('{session['transcriptId']}')"
    )
    assert "communications/onlineMeetings/getAllTranscripts" in transcript.topics
    assert f"users/{s.organizer['id']}/onlineMeetings/getAllTranscripts" in transcript.topics
    assert transcript.resource_data["transcriptContentUrl"].startswith("users/")
    recording = next(c for c in mine if c.odata_type == "#Microsoft.Graph.callRecording")
    assert "communications/onlineMeetings/getAllRecordings" in recording.topics


def test_a_standalone_meeting_publishes_no_transcript_or_recording(setup, changes):
    s = setup
    meeting_id = _standalone_meeting(s)
    _hold(s, meeting_id)
    kinds = {c.odata_type for c in changes if c.meeting_id == meeting_id}
    assert "#microsoft.graph.meetingAttendanceReport" in kinds
    assert not kinds & {"#Microsoft.Graph.callTranscript", "#Microsoft.Graph.callRecording"}


def test_a_delegated_organizer_reads_the_transcript_under_me(setup):
    s = setup
    meeting_id = _calendar_meeting(s)
    session = _hold(s, meeting_id)
    token = s.control.delegated_token(
        s.tenant_id, s.organizer["id"], s.creds.app_id, ["OnlineMeetingTranscript.Read.All"]
    )
    me = Graph(s.graph.http, s.graph.base, token)
    listed = me("GET", f"/me/onlineMeetings/{meeting_id}/transcripts")
    assert listed.status_code == 200, listed.text
    assert [t["id"] for t in listed.json()["value"]] == [session["transcriptId"]]
    # the scope is per kind: recordings need their own
    assert me("GET", f"/me/onlineMeetings/{meeting_id}/recordings").status_code == 403


def test_sessions_and_switches_are_saved_with_the_tenant():
    import datetime as dt

    from meetgate_sandbox.meeting_artifacts import ArtifactStore, Interval, MeetingSession, SessionParticipant

    start = dt.datetime(2030, 7, 1, 9, tzinfo=dt.UTC)
    end = start + dt.timedelta(minutes=30)
    session = MeetingSession(
        id="s1",
        meeting_id="m1",
        organizer_id="o1",
        start=start,
        end=end,
        participants=(
            SessionParticipant("Ann", "ann@example.org", None, None, "Presenter", (Interval(start, end),)),
        ),
        transcript=True,
        recording=False,
        available=end,
        calendar_backed=True,
        call_id="c1",
        correlation_id="k1",
        lines=(("Ann", "Hello."),),
    )
    store = ArtifactStore("t1")
    store.add(session)
    store.settings.update({"graphTranscriptAccess": False, "notReady": "notFound"})
    again = ArtifactStore("t1")
    again.load_dict(store.to_dict())
    assert again.sessions("m1") == [session]
    assert again.settings == store.settings
    assert again.reports("m1", end) == [session]
    assert again.reports("m1", end - dt.timedelta(seconds=1)) == []


def test_at_most_the_50_most_recent_reports_are_listed(setup):
    s = setup
    meeting_id = _standalone_meeting(s)
    held = [
        _hold(s, meeting_id, start=-(60 - n) * 3600, participants=[{"user": s.organizer["id"]}])
        for n in range(51)
    ]
    reports = s.graph("GET", f"{s.meeting_path(meeting_id)}/attendanceReports").json()["value"]
    assert len(reports) == 50
    assert reports[0]["id"] == held[-1]["attendanceReportId"]
    assert held[0]["attendanceReportId"] not in {r["id"] for r in reports}


def test_a_live_session_publishes_its_end_when_the_time_comes(setup, changes):
    s = setup
    meeting_id = _calendar_meeting(s)
    session = _hold(
        s,
        meeting_id,
        start=0,
        end=2,
        participants=[{"user": s.organizer["id"]}, {"displayName": "Late Guest", "join": 1}],
    )
    path = s.meeting_path(meeting_id)

    def events() -> list[str]:
        return [
            str(c.extra.get("eventType")) for c in changes if c.extra.get("sessionId") == session["sessionId"]
        ]

    assert events()[0] == "Microsoft.Communication.CallStarted"
    if "Microsoft.Communication.CallEnded" not in events():  # still running (unless this machine is slow)
        assert s.graph("GET", f"{path}/attendanceReports").json()["value"] == []
    _until(lambda: "Microsoft.Communication.CallEnded" in events())
    _until(lambda: len(s.graph("GET", f"{path}/attendanceReports").json()["value"]) == 1)
    _until(lambda: any(c.odata_type == "#Microsoft.Graph.callTranscript" for c in changes))
    assert events().index("Microsoft.Communication.CallEnded") > events().index(
        "Microsoft.Communication.CallStarted"
    )
