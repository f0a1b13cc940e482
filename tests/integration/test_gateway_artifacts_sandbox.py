"""What a meeting produced, read through the gateway: the real Graph client against the sandbox, a
calendar meeting held there, its attendance (JSON and CSV), transcripts (metadata, WebVTT, text) and
recording (metadata, content streamed, ranges), only by the consumer that made it, each read audited,
and the refusals with their remedies."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from fastapi.testclient import TestClient

from meetgate.composition import graph_settings_from_profile
from meetgate.gateway.app import create_app
from meetgate.gateway.consumers import ConsumerAdmin
from meetgate.gateway.graph_transport import ObservedGraphTransport
from meetgate.gateway.metrics import GatewayMetrics
from meetgate.gateway.problems import TYPE_BASE
from meetgate.gateway.settings import GatewaySettings
from meetgate.graph.artifact_models import ARTIFACT_PERMISSIONS
from meetgate.graph.client import AsyncGraphClient, GraphClient
from meetgate.store import Store
from meetgate_sandbox.gateway_scope import ControlApiPolicyScope

START = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
BASE_ROLES = ["OnlineMeetings.ReadWrite.All", "User.Read.All"]
KINDS = ("attendance", "transcripts", "recordings")


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _problem(resp, slug, status):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["type"] == TYPE_BASE + slug and body["remedy"], body
    return body


def _auth(key: str, idem: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return headers


def _gateway(sandbox_app, sandbox, tmp_path, kinds=KINDS, roles=None):
    sandbox_app.control.update_app(
        sandbox_app.tenant_id,
        sandbox_app.client_id,
        roles=roles if roles is not None else [*BASE_ROLES, *ARTIFACT_PERMISSIONS.values()],
    )
    scope = ControlApiPolicyScope(
        sandbox.info.control_url, sandbox_app.tenant_id, sandbox_app.client_id, sandbox_app.ca_bundle
    )
    settings = GatewaySettings(
        store_url=f"sqlite:///{tmp_path}/gw.db", policy_cache_seconds=0, artifacts=tuple(kinds)
    )
    store = Store.open(settings.store_url)
    graph_settings = graph_settings_from_profile(sandbox_app.profile())
    transport = ObservedGraphTransport.for_graph(GatewayMetrics(), ca_bundle=graph_settings.ca_bundle)
    client = AsyncGraphClient(graph_settings, transport=transport)
    admin = ConsumerAdmin(store, scope)
    pilot = sandbox_app.pilot_users[0].upn
    keys = {
        "school": admin.add("school", organizers=[pilot], placement="calendar").api_key,
        "crm": admin.add("crm", organizers=[pilot]).api_key,
    }
    app = create_app(
        settings,
        meetings=client.meetings,
        events=client.events,
        artifacts=client.artifacts,
        scope=scope,
        store=store,
        on_shutdown=client.aclose,
    )
    return app, store, keys


@pytest.fixture
def gateway(sandbox_app, sandbox, tmp_path):
    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no policy engine")
    sandbox_app.scope_calendars(sandbox_app.pilot_users[:1])
    app, store, keys = _gateway(sandbox_app, sandbox, tmp_path)
    with TestClient(app) as http:
        yield http, store, keys, sandbox_app
    store.close()


def _meeting(http, app, key, idem, placement="calendar"):
    body = {
        "organizer": app.pilot_users[0].upn,
        "placement": placement,
        "subject": "Admissions interview",
        "start": _iso(START),
        "end": _iso(START + dt.timedelta(minutes=30)),
    }
    created = http.post("/v1/meetings", json=body, headers=_auth(key, idem))
    assert created.status_code == 201, created.text
    return created.json()


def _online_meeting_id(app, meeting) -> str:
    if meeting["placement"] != "calendar":
        return str(meeting["graph_meeting_id"])
    with GraphClient(graph_settings_from_profile(app.profile(), environ={})) as graph:
        organizer = app.pilot_users[0].upn
        behind = graph.events.online_meeting(
            organizer, graph.events.get(organizer, meeting["graph_event_id"])
        )
    assert behind is not None
    return behind.id


def _hold(app, online_id: str, **options):
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
        app.tenant_id, online_id, participants, start=-3600, end=1800, transcript_lines=lines, **options
    )


def test_a_held_meeting_read_back_through_the_gateway(gateway):
    http, store, keys, app = gateway
    organizer, student = app.pilot_users[0], app.other_users[0]
    meeting = _meeting(http, app, keys["school"], "art-1")
    held = _hold(app, _online_meeting_id(app, meeting))
    base = f"/v1/meetings/{meeting['id']}"
    auth = _auth(keys["school"])

    attendance = http.get(f"{base}/attendance", headers=auth)
    assert attendance.status_code == 200, attendance.text
    body = attendance.json()
    assert body["meeting_id"] == meeting["id"] and body["limit_reached"] is False
    [report] = body["reports"]
    assert report["id"] == held["attendanceReportId"]
    record = next(r for r in report["attendanceRecords"] if r["emailAddress"] == student.upn)
    assert [i["durationInSeconds"] for i in record["attendanceIntervals"]] == [540, 1000]
    as_csv = http.get(f"{base}/attendance", params={"format": "csv"}, headers=auth)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["durationInSeconds"] for r in rows if r["emailAddress"] == student.upn] == ["540", "1000"]

    transcripts = http.get(f"{base}/transcripts", headers=auth)
    assert transcripts.status_code == 200, transcripts.text
    [transcript] = transcripts.json()["value"]
    assert transcript["id"] == held["transcriptId"]
    assert transcript["content"] == f"{base}/transcripts/{held['transcriptId']}"
    metadata = http.get(transcript["content"], headers=auth)
    assert metadata.status_code == 200 and metadata.json()["id"] == held["transcriptId"]
    vtt = http.get(transcript["content"], headers={**auth, "Accept": "text/vtt"})
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT") and f"<v {organizer.display_name}>" in vtt.text
    text = http.get(transcript["content"], headers={**auth, "Accept": "text/plain"})
    assert text.text == f"{organizer.display_name}: Good morning.\n{student.display_name}: Morning!\n"

    recordings = http.get(f"{base}/recordings", headers=auth)
    assert recordings.status_code == 200, recordings.text
    [recording] = recordings.json()["value"]
    assert recording["id"] == held["recordingId"]
    got = http.get(f"{base}/recordings/{held['recordingId']}", headers=auth)
    assert got.status_code == 200 and got.json()["content"] == recording["content"]
    with http.stream("GET", recording["content"], headers=auth) as whole:
        assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-disposition"].startswith("attachment")
        content = b"".join(whole.iter_bytes())
    assert len(content) == int(whole.headers["content-length"]) and content[4:8] == b"ftyp"
    part = http.get(recording["content"], headers={**auth, "Range": "bytes=1000-"})
    assert part.status_code == 206 and part.content == content[1000:]
    assert part.headers["content-range"] == f"bytes 1000-{len(content) - 1}/{len(content)}"
    beyond = http.get(recording["content"], headers={**auth, "Range": f"bytes={len(content) + 10}-"})
    _problem(beyond, "range-not-satisfiable", 416)
    assert beyond.headers["content-range"] == f"bytes */{len(content)}"

    http.app.state.audit.drain()
    actions = {a.action for a in store.audit(limit=100) if a.meeting_id == meeting["id"]}
    assert {
        "meeting.attendance",
        "meeting.transcripts.list",
        "meeting.transcript.get",
        "meeting.transcript.content",
        "meeting.recordings.list",
        "meeting.recording.get",
        "meeting.recording.content",
    } <= actions


def test_only_the_consumer_that_made_the_meeting_reads_it(gateway):
    http, _store, keys, app = gateway
    meeting = _meeting(http, app, keys["school"], "art-2")
    held = _hold(app, _online_meeting_id(app, meeting))
    base = f"/v1/meetings/{meeting['id']}"
    other = _auth(keys["crm"])
    for path in (
        "/attendance",
        "/transcripts",
        f"/transcripts/{held['transcriptId']}",
        "/recordings",
        f"/recordings/{held['recordingId']}",
        f"/recordings/{held['recordingId']}/content",
    ):
        _problem(http.get(base + path, headers=other), "not-found", 404)


def test_refusals_name_their_remedy(gateway):
    http, _store, keys, app = gateway
    auth = _auth(keys["crm"])
    standalone = _meeting(http, app, keys["crm"], "art-3", placement="standalone")
    _hold(app, _online_meeting_id(app, standalone))
    base = f"/v1/meetings/{standalone['id']}"
    assert len(http.get(f"{base}/attendance", headers=auth).json()["reports"]) == 1
    for kind in ("transcripts", "recordings"):
        refused = _problem(http.get(f"{base}/{kind}", headers=auth), "calendar-meeting-required", 409)
        assert '"placement": "calendar"' in refused["remedy"]

    meeting = _meeting(http, app, keys["school"], "art-4")
    base = f"/v1/meetings/{meeting['id']}"
    auth = _auth(keys["school"])
    assert http.get(f"{base}/transcripts", headers=auth).json() == {"value": []}  # not held yet
    held = _hold(app, _online_meeting_id(app, meeting), artifact_delay_seconds=3600)
    not_ready = _problem(
        http.get(f"{base}/transcripts/{held['transcriptId']}", headers=auth), "artifact-not-ready", 404
    )
    assert int(http.get(f"{base}/recordings/{held['recordingId']}", headers=auth).headers["retry-after"]) > 0
    assert "retry" in not_ready["remedy"]

    _hold(app, _online_meeting_id(app, meeting))
    app.control.set_artifact_settings(app.tenant_id, graphTranscriptAccess=False)
    try:
        disabled = _problem(http.get(f"{base}/transcripts", headers=auth), "transcripts-disabled", 403)
        assert "EnableGraphTranscriptAccess" in disabled["remedy"]
        assert len(http.get(f"{base}/recordings", headers=auth).json()["value"]) == 1
    finally:
        app.control.set_artifact_settings(app.tenant_id, graphTranscriptAccess=True)

    app.control.set_artifact_settings(app.tenant_id, speakerAttribution=False, speakerAttributionOff="refuse")
    try:
        [first] = http.get(f"{base}/transcripts", headers=auth).json()["value"]  # the other is not ready
        vtt = {**auth, "Accept": "text/vtt"}
        refused = _problem(http.get(first["content"], headers=vtt), "speaker-attribution-disabled", 403)
        assert "speakers=false" in refused["remedy"]
        plain = http.get(
            first["content"], params={"speakers": "false"}, headers={**auth, "Accept": "text/plain"}
        )
        assert plain.status_code == 200 and plain.text == "Good morning.\nMorning!\n"
    finally:
        app.control.set_artifact_settings(app.tenant_id, speakerAttribution=True)


def test_a_kind_the_profile_does_not_enable_and_a_missing_permission(sandbox_app, sandbox, tmp_path):
    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no policy engine")
    sandbox_app.scope_calendars(sandbox_app.pilot_users[:1])
    app, store, keys = _gateway(
        sandbox_app,
        sandbox,
        tmp_path,
        kinds=("attendance", "transcripts"),
        roles=[*BASE_ROLES, ARTIFACT_PERMISSIONS["attendance"]],
    )
    with TestClient(app) as http:
        meeting = _meeting(http, sandbox_app, keys["school"], "art-5")
        base = f"/v1/meetings/{meeting['id']}"
        auth = _auth(keys["school"])
        disabled = _problem(http.get(f"{base}/recordings", headers=auth), "artifact-kind-disabled", 403)
        assert '"recordings"' in disabled["remedy"] and "artifacts" in disabled["remedy"]
        missing = _problem(http.get(f"{base}/transcripts", headers=auth), "artifact-permission-missing", 403)
        assert missing["missingRoles"] == [ARTIFACT_PERMISSIONS["transcripts"]]
    store.close()
