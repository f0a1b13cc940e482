"""The control call that holds a meeting, and what it publishes.

``POST /_sandbox/tenants/{tid}/meetings/{meetingId}/sessions`` holds the meeting once: participants
(tenant users or external names and addresses, with roles) join and leave at given times, then the
meeting ends. From that the sandbox makes the session's attendance report and, for a calendar-backed
meeting only, a WebVTT transcript and a small recording (each skippable). Artifacts appear
``artifactDelaySeconds`` after the end (0 by default). Each step is published on the runtime's
notification bus: the call started, its roster, the call ended, then, when they appear, the attendance
report, the transcript and the recording.

Times are absolute (ISO 8601) or relative: a session ``start`` as a number is seconds from now (negative:
in the past); a participant's ``join``/``leave`` and the session's ``end`` as numbers are seconds after
the start. A session may still be running (an end ahead of now, at most a day): its joins, leaves
and end are published when their time comes, and its artifacts appear after its end.

``GET …/sessions`` lists a meeting's sessions; ``GET``/``PATCH /_sandbox/tenants/{tid}/meeting-artifacts/settings``
reads and sets the tenant's artifact switches.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox.calendar_api import CALENDAR_EXTENSION
from meetgate_sandbox.calendar_store import CalendarStore
from meetgate_sandbox.control_api import bad_request, json_body, tenant_of
from meetgate_sandbox.http import GraphErrorResponse
from meetgate_sandbox.meeting_artifacts import (
    ARTIFACTS_EXTENSION,
    ArtifactStore,
    Interval,
    MeetingSession,
    SessionParticipant,
    render_recording,
    render_report,
    render_transcript,
)
from meetgate_sandbox.meetings import Meeting, MeetingError, MeetingStore, join_web_url, parse_datetime
from meetgate_sandbox.meetings_backend import MEETINGS_EXTENSION
from meetgate_sandbox.meetings_model import format_datetime
from meetgate_sandbox.notification_bus import Change
from meetgate_sandbox.runtime import SandboxRuntime, runtime_of
from meetgate_sandbox.state import Tenant

__all__ = ["artifact_store", "hold", "is_calendar_backed", "organizer_of_meeting", "routes", "sandbox_now"]

ROLES = ("None", "Attendee", "Presenter", "Organizer")
DEFAULT_SECONDS = 1800
MAX_ARTIFACT_DELAY = 86_400
#: how far ahead a live session may end
MAX_AHEAD = 86_400


def sandbox_now(runtime: SandboxRuntime) -> dt.datetime:
    """The sandbox's clock (real time plus ``clockOffsetSeconds``) as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(runtime.now(), dt.UTC)


def artifact_store(tenant: Tenant) -> ArtifactStore:
    store = tenant.extensions[ARTIFACTS_EXTENSION]
    assert isinstance(store, ArtifactStore)
    return store


def organizer_of_meeting(meeting_id: str) -> str | None:
    """The organizer's object id inside an ``MSo…`` meeting id (base64 of ``1*{oid}*0**19:…``)."""
    try:
        raw = base64.b64decode(meeting_id + "=" * (-len(meeting_id) % 4), validate=False).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    parts = raw.split("*")
    return parts[1] if len(parts) > 2 and parts[0] == "1" else None


def is_calendar_backed(tenant: Tenant, meeting_id: str) -> bool:
    """True when an event of the organizer's calendar links the meeting (Exchange made it)."""
    calendars = tenant.extensions.get(CALENDAR_EXTENSION)
    if not isinstance(calendars, CalendarStore):
        return False
    return any(not event.cancelled for event in calendars.by_online_meeting([meeting_id]))


def _meeting(tenant: Tenant, meeting_id: str) -> Meeting:
    store = tenant.extensions[MEETINGS_EXTENSION]
    assert isinstance(store, MeetingStore)
    organizer = organizer_of_meeting(meeting_id)
    try:
        if organizer is None:
            raise MeetingError(404, "NotFound", "")
        return store.get(organizer, meeting_id)
    except MeetingError:
        raise GraphErrorResponse(
            404, "NotFound", f"no online meeting {meeting_id!r} in tenant {tenant.id}"
        ) from None


# ---- the body ---------------------------------------------------------------------------------------


def _moment(name: str, value: object, origin: dt.datetime) -> dt.datetime:
    if isinstance(value, bool):
        raise bad_request(f"{name} must be an ISO 8601 time or a number of seconds")
    if isinstance(value, int | float):
        return origin + dt.timedelta(seconds=float(value))
    try:
        return parse_datetime(name, value)
    except MeetingError:
        raise bad_request(f"{name} must be an ISO 8601 time or a number of seconds, not {value!r}") from None


def _latest_offset(participants: list[Any]) -> float | None:
    offsets: list[float] = []
    for item in participants:
        if not isinstance(item, dict):
            continue
        intervals = item.get("intervals") or [item]
        for interval in intervals if isinstance(intervals, list) else []:
            leave = interval.get("leave") if isinstance(interval, dict) else None
            if isinstance(leave, int | float) and not isinstance(leave, bool):
                offsets.append(float(leave))
    return max(offsets) if offsets else None


def _window(body: dict[str, Any], now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    participants = body.get("participants") or []
    end_value = body.get("end")
    if "start" in body:
        start = _moment("start", body["start"], now)
    elif isinstance(end_value, str):
        raise bad_request("start is required when end is an absolute time")
    else:
        length = end_value if isinstance(end_value, int | float) else _latest_offset(participants)
        start = now - dt.timedelta(seconds=float(length or DEFAULT_SECONDS))
    if end_value is None:
        end = start + dt.timedelta(seconds=_latest_offset(participants) or DEFAULT_SECONDS)
    else:
        end = _moment("end", end_value, start)
    if end <= start:
        raise bad_request("a session must end after it starts")
    if end > now + dt.timedelta(seconds=MAX_AHEAD):
        raise bad_request("a session may run at most a day ahead of now")
    return start, end


def _participant(
    tenant: Tenant, meeting: Meeting, item: object, index: int, start: dt.datetime, end: dt.datetime
) -> SessionParticipant:
    name = f"participants[{index}]"
    if not isinstance(item, dict):
        raise bad_request(f"{name} must be a JSON object")
    user_key = item.get("user")
    email: str | None
    user_id: str | None
    tenant_id: str | None
    if user_key is not None:
        user = tenant.find_user(str(user_key))
        if user is None:
            raise bad_request(f"{name}.user: no user {user_key!r} in tenant {tenant.id}")
        display: str
        display, email, user_id, tenant_id = (
            user.display_name or user.user_principal_name,
            user.user_principal_name,
            user.id,
            tenant.id,
        )
        default_role = "Organizer" if user.id == meeting.organizer_id else "Attendee"
    else:
        given = item.get("displayName")
        if not isinstance(given, str) or not given.strip():
            raise bad_request(f"{name} needs a user (object id or UPN) or a displayName")
        display = given
        email = item.get("email") if isinstance(item.get("email"), str) else None
        user_id = item.get("id") if isinstance(item.get("id"), str) else None
        tenant_id = item.get("tenantId") if isinstance(item.get("tenantId"), str) else None
        default_role = "Attendee"
    role = item.get("role", default_role)
    if role not in ROLES:
        raise bad_request(f"{name}.role must be one of {', '.join(ROLES)}")
    raw = item.get("intervals")
    if raw is None:
        raw = [{"join": item.get("join", 0), "leave": item.get("leave")}]
    if not isinstance(raw, list) or not raw:
        raise bad_request(f"{name}.intervals must be a non-empty JSON array")
    intervals: list[Interval] = []
    for n, interval in enumerate(raw):
        if not isinstance(interval, dict):
            raise bad_request(f"{name}.intervals[{n}] must be a JSON object")
        join = _moment(f"{name}.join", interval.get("join", 0), start)
        leave_value = interval.get("leave")
        leave = end if leave_value is None else _moment(f"{name}.leave", leave_value, start)
        if not start <= join < leave <= end:
            raise bad_request(f"{name}: each interval must lie within the session and end after it starts")
        intervals.append(Interval(join, leave))
    return SessionParticipant(display.strip(), email, user_id, tenant_id, role, tuple(intervals))


def _lines(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(i, dict) and isinstance(i.get("speaker"), str) and isinstance(i.get("text"), str)
        for i in value
    ):
        raise bad_request('transcriptLines must be a JSON array of {"speaker","text"}')
    return tuple((i["speaker"], i["text"]) for i in value)


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, True)
    if not isinstance(value, bool):
        raise bad_request(f"{key} must be true or false")
    return value


def session_from_body(
    tenant: Tenant, meeting: Meeting, body: dict[str, Any], now: dt.datetime
) -> MeetingSession:
    """The session a control call describes (validated; 400 with the reason otherwise)."""
    start, end = _window(body, now)
    participants = body.get("participants") or []
    if not isinstance(participants, list):
        raise bad_request("participants must be a JSON array")
    delay = body.get("artifactDelaySeconds", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= MAX_ARTIFACT_DELAY:
        raise bad_request(f"artifactDelaySeconds must be a number of seconds from 0 to {MAX_ARTIFACT_DELAY}")
    backed = is_calendar_backed(tenant, meeting.id)
    session_id = str(uuid.uuid4())
    return MeetingSession(
        id=session_id,
        meeting_id=meeting.id,
        organizer_id=meeting.organizer_id,
        start=start,
        end=end,
        participants=tuple(
            _participant(tenant, meeting, item, n, start, end) for n, item in enumerate(participants)
        ),
        transcript=backed and _flag(body, "transcript"),
        recording=backed and _flag(body, "recording"),
        available=max(end, now) + dt.timedelta(seconds=float(delay)),
        calendar_backed=backed,
        call_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"call:{session_id}")),
        correlation_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"correlation:{session_id}")),
        lines=_lines(body.get("transcriptLines")),
    )


# ---- publishing -------------------------------------------------------------------------------------


def _call_events(
    tenant: Tenant, meeting: Meeting, session: MeetingSession
) -> list[tuple[dt.datetime, Change]]:
    """The call's events in time order: started, a roster update at each join and leave, ended."""
    url = join_web_url(tenant.id, meeting.organizer_id, meeting.thread_key)
    topics = (
        f"communications/onlineMeetings/?$filter=JoinWebUrl eq '{url}'",
        f"communications/onlineMeetings?$filter=JoinWebUrl eq '{url}'",
        f"communications/onlineMeetings/{meeting.id}/meetingCallEvents",
    )
    resource = f"communications/onlineMeetings/?$filter=JoinWebUrl eq '{url}'"

    def identity(p: SessionParticipant) -> dict[str, Any]:
        user = {"id": p.user_id, "displayName": p.display_name, "tenantId": p.tenant_id}
        return {"identity": {"user": user}}

    timeline: list[tuple[dt.datetime, int, str, dict[str, Any]]] = [
        (session.start, 0, "Microsoft.Communication.CallStarted", {})
    ]
    for p in session.participants:
        for interval in p.intervals:
            timeline.append(
                (
                    interval.join,
                    1,
                    "Microsoft.Communication.CallRosterUpdate",
                    {"activeParticipants@joined": [identity(p)]},
                )
            )
            timeline.append(
                (
                    interval.leave,
                    1,
                    "Microsoft.Communication.CallRosterUpdate",
                    {"activeParticipants@exited": [identity(p)]},
                )
            )
    timeline.append((session.end, 2, "Microsoft.Communication.CallEnded", {}))
    timeline.sort(key=lambda item: (item[0], item[1]))
    changes = []
    for when, _, event, extra in timeline:
        data = {
            "@odata.type": "#microsoft.graph.onlineMeeting",
            "@odata.id": resource,
            "id": meeting.id,
            "eventType": event,
            "eventDateTime": format_datetime(when),
            "callId": session.call_id,
            **extra,
        }
        change = Change(
            tenant.id,
            "updated",
            resource,
            "#microsoft.graph.onlineMeeting",
            data,
            topics,
            organizer_id=meeting.organizer_id,
            meeting_id=meeting.id,
            extra={"eventType": event, "joinWebUrl": url, "sessionId": session.id},
        )
        changes.append((when, change))
    return changes


def _artifact_changes(tenant: Tenant, session: MeetingSession) -> list[Change]:
    mid, org = session.meeting_id, session.organizer_id
    relative = f"users/{org}/onlineMeetings/{mid}"
    report = render_report(session)
    changes = [
        Change(
            tenant.id,
            "created",
            f"users('{org}')/onlineMeetings('{mid}')/attendanceReports('{session.id}')",
            "#microsoft.graph.meetingAttendanceReport",
            {k: v for k, v in report.items() if k != "attendanceRecords"},
            (
                f"users/{org}/onlineMeetings/{mid}/attendanceReports",
                f"communications/onlineMeetings/{mid}/attendanceReports",
            ),
            organizer_id=org,
            meeting_id=mid,
            extra={"kind": "attendanceReport", "sessionId": session.id},
        )
    ]
    for wanted, kind, artifact_id, render, odata in (
        (session.transcript, "transcripts", session.transcript_id, render_transcript, "callTranscript"),
        (session.recording, "recordings", session.recording_id, render_recording, "callRecording"),
    ):
        if not wanted:
            continue
        every = "getAllTranscripts" if kind == "transcripts" else "getAllRecordings"
        changes.append(
            Change(
                tenant.id,
                "created",
                f"communications/onlineMeetings('{mid}')/{kind}('{artifact_id}')",
                f"#Microsoft.Graph.{odata}",
                render(session, tenant.id, relative),
                (
                    f"communications/onlineMeetings/{every}",
                    f"users/{org}/onlineMeetings/{every}",
                    f"communications/onlineMeetings/{mid}/{kind}",
                ),
                organizer_id=org,
                meeting_id=mid,
                extra={"kind": kind[:-1], "sessionId": session.id},
            )
        )
    return changes


Later = Callable[[float, Callable[[], None]], object]


def hold(
    runtime: SandboxRuntime,
    tenant: Tenant,
    meeting: Meeting,
    session: MeetingSession,
    *,
    later: Later | None = None,
) -> None:
    """Store the session and publish its changes: what has happened at once, in order; what is still
    ahead (a live session's joins, leaves and end; artifacts after their delay) through ``later``."""
    artifact_store(tenant).add(session)
    runtime.state.changed()
    bus = runtime.notifications
    timeline = _call_events(tenant, meeting, session)
    timeline += [(session.available, change) for change in _artifact_changes(tenant, session)]
    now = sandbox_now(runtime)
    due = [change for when, change in timeline if when <= now or later is None]
    ahead: dict[dt.datetime, list[Change]] = {}
    for when, change in timeline:
        if when > now and later is not None:
            ahead.setdefault(when, []).append(change)
    for change in due:
        bus.publish(change)
    for when, changes in sorted(ahead.items()):

        def publish(changes: list[Change] = changes) -> None:
            for change in changes:
                bus.publish(change)

        assert later is not None
        later((when - now).total_seconds(), publish)


# ---- routes -----------------------------------------------------------------------------------------


def _session_view(session: MeetingSession) -> dict[str, Any]:
    return {
        "sessionId": session.id,
        "meetingId": session.meeting_id,
        "attendanceReportId": session.id,
        "transcriptId": session.transcript_id if session.transcript else None,
        "recordingId": session.recording_id if session.recording else None,
        "startDateTime": format_datetime(session.start),
        "endDateTime": format_datetime(session.end),
        "availableDateTime": format_datetime(session.available),
        "calendarBacked": session.calendar_backed,
        "callId": session.call_id,
        "participants": len(session.participants),
    }


async def hold_session(request: Request) -> Response:
    tenant = tenant_of(request)
    runtime = runtime_of(request)
    meeting = _meeting(tenant, request.path_params["meetingId"])
    body = await json_body(request)
    session = session_from_body(tenant, meeting, body, sandbox_now(runtime))
    loop = asyncio.get_running_loop()
    hold(runtime, tenant, meeting, session, later=lambda wait, fn: loop.call_later(wait, fn))
    return JSONResponse(_session_view(session), status_code=201)


async def list_sessions(request: Request) -> Response:
    tenant = tenant_of(request)
    meeting = _meeting(tenant, request.path_params["meetingId"])
    sessions = artifact_store(tenant).sessions(meeting.id)
    return JSONResponse({"value": [_session_view(s) for s in sessions]})


async def get_settings(request: Request) -> Response:
    return JSONResponse(artifact_store(tenant_of(request)).settings.to_json())


async def patch_settings(request: Request) -> Response:
    tenant = tenant_of(request)
    body = await json_body(request)
    settings = artifact_store(tenant).settings
    try:
        settings.update(body)
    except ValueError as error:
        raise bad_request(str(error)) from None
    runtime_of(request).state.changed()
    return JSONResponse(settings.to_json())


def routes() -> list[BaseRoute]:
    t = "/_sandbox/tenants/{tid}"
    return [
        Route(f"{t}/meetings/{{meetingId}}/sessions", hold_session, methods=["POST"]),
        Route(f"{t}/meetings/{{meetingId}}/sessions", list_sessions, methods=["GET"]),
        Route(f"{t}/meeting-artifacts/settings", get_settings, methods=["GET"]),
        Route(f"{t}/meeting-artifacts/settings", patch_settings, methods=["PATCH"]),
    ]
