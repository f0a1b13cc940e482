"""What a held Teams meeting leaves behind: sessions, attendance reports, transcripts, recordings.

Pure logic, no HTTP. A :class:`MeetingSession` is one time the meeting was held (a series' shared
onlineMeeting has one session per occurrence held); it carries who joined and left when, and whether
a transcript and a recording were made. :class:`ArtifactStore` (the tenant extension
``meetingArtifacts``) keeps the sessions and the tenant's artifact switches, and renders what Graph
answers: ``meetingAttendanceReport`` with ``attendanceRecords`` and ``attendanceIntervals``,
``callTranscript`` (WebVTT content and ``metadataContent``) and ``callRecording`` (deterministic
bytes). Artifacts appear ``delay`` seconds after the session's end (``available``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meetgate_sandbox.meetings_model import format_datetime

__all__ = [
    "ARTIFACTS_EXTENSION",
    "MAX_REPORTS",
    "MP4_CONTENT_TYPE",
    "NOT_READY_VARIANTS",
    "SPEAKER_ATTRIBUTION_OFF",
    "STANDALONE_ERRORS",
    "STANDALONE_MESSAGE",
    "VTT_TIMESTAMPS",
    "ArtifactSettings",
    "ArtifactStore",
    "Interval",
    "MeetingSession",
    "SessionParticipant",
    "artifacts_extension",
    "recording_bytes",
    "render_recording",
    "render_report",
    "render_transcript",
    "transcript_metadata",
    "transcript_vtt",
]

ARTIFACTS_EXTENSION = "meetingArtifacts"
#: "only returns up to 50 of the most recent reports" (meetingattendancereport-list)
MAX_REPORTS = 50
#: the answer to transcripts/recordings of a meeting no calendar event links (status, code); the
#: message is documented, the status and code are not
STANDALONE_ERRORS: dict[str, tuple[int, str]] = {
    "preconditionFailed": (412, "PreconditionFailed"),
    "badRequest": (400, "BadRequest"),
    "forbidden": (403, "Forbidden"),
    "notFound": (404, "NotFound"),
}
STANDALONE_MESSAGE = (
    "No iCalUid found for the meeting. This API is supported only for calendar backed OnlineMeeting."
)
#: an artifact not made yet: left out of lists (and 404 by id), or a list that answers 404 too
NOT_READY_VARIANTS = ("empty", "notFound")
#: how WebVTT cue times are written: zero-padded, or unpadded as in the docs' example
VTT_TIMESTAMPS = ("padded", "short")
#: what an attributed transcript request gets while speaker attribution is off
SPEAKER_ATTRIBUTION_OFF = ("strip", "refuse")
TEAMWORK_USER_TYPE = "#Microsoft.Teams.GraphSvc.teamworkUserIdentity"
MP4_CONTENT_TYPE = "video/mp4"
#: size of a sandbox recording: small, and more than one Range chunk of a typical client
RECORDING_SIZE = 64 * 1024


@dataclass(frozen=True)
class Interval:
    join: dt.datetime
    leave: dt.datetime

    @property
    def seconds(self) -> int:
        return max(int((self.leave - self.join).total_seconds()), 0)


@dataclass(frozen=True)
class SessionParticipant:
    """One attendee of a session: a tenant user (``user_id``) or an external name and address."""

    display_name: str
    email: str | None
    user_id: str | None
    tenant_id: str | None
    role: str
    intervals: tuple[Interval, ...]

    @property
    def key(self) -> str:
        return (self.user_id or self.email or self.display_name).lower()


@dataclass(frozen=True)
class MeetingSession:
    """One time the meeting was held, and which artifacts it made."""

    id: str
    meeting_id: str
    organizer_id: str
    start: dt.datetime
    end: dt.datetime
    participants: tuple[SessionParticipant, ...]
    transcript: bool
    recording: bool
    available: dt.datetime
    calendar_backed: bool
    call_id: str
    correlation_id: str
    #: (speaker display name, text) in order; made from the participants when not given
    lines: tuple[tuple[str, str], ...] = ()

    @property
    def transcript_id(self) -> str:
        return _artifact_id("transcript", self)

    @property
    def recording_id(self) -> str:
        return _artifact_id("recording", self)


def _artifact_id(kind: str, session: MeetingSession) -> str:
    """An opaque base64 id like Graph's ``VjIjIz…`` transcript ids (stable for the session)."""
    raw = f"V2##{session.organizer_id}{session.call_id}##{kind}-{session.id}"
    return base64.b64encode(raw.encode()).decode()


@dataclass
class ArtifactSettings:
    """A tenant's artifact switches (``PATCH /_sandbox/tenants/{tid}/meeting-artifacts/settings``)."""

    #: Teams' tenant setting "Graph API access to transcripts" (meeting settings of the Teams admin center)
    graph_transcript_access: bool = True
    #: speaker attribution in transcripts: off strips the ``<v Name>`` speakers
    speaker_attribution: bool = True
    standalone_error: str = "preconditionFailed"
    not_ready: str = "empty"
    #: with speaker attribution off, an attributed (``text/vtt``) request is answered without the
    #: speakers (``strip``) or refused with 403 ``SpeakerAttributionNotAllowed`` (``refuse``)
    speaker_attribution_off: str = "strip"
    #: cue times ``00:00:05.320`` (what Teams files carry) or ``0:0:5.320`` (the docs' example)
    vtt_timestamps: str = "padded"

    def update(self, data: Mapping[str, Any]) -> None:
        for key, attribute in (
            ("graphTranscriptAccess", "graph_transcript_access"),
            ("speakerAttribution", "speaker_attribution"),
        ):
            if key in data:
                if not isinstance(data[key], bool):
                    raise ValueError(f"{key} must be true or false")
                setattr(self, attribute, data[key])
        for key, attribute, allowed in (
            ("standaloneError", "standalone_error", tuple(STANDALONE_ERRORS)),
            ("notReady", "not_ready", NOT_READY_VARIANTS),
            ("vttTimestamps", "vtt_timestamps", VTT_TIMESTAMPS),
            ("speakerAttributionOff", "speaker_attribution_off", SPEAKER_ATTRIBUTION_OFF),
        ):
            if key in data:
                if data[key] not in allowed:
                    raise ValueError(f"{key} must be one of {', '.join(allowed)}, not {data[key]!r}")
                setattr(self, attribute, data[key])

    def to_json(self) -> dict[str, Any]:
        return {
            "graphTranscriptAccess": self.graph_transcript_access,
            "speakerAttribution": self.speaker_attribution,
            "standaloneError": self.standalone_error,
            "notReady": self.not_ready,
            "vttTimestamps": self.vtt_timestamps,
            "speakerAttributionOff": self.speaker_attribution_off,
        }


class ArtifactStore:
    """The held sessions of a tenant's meetings, and the tenant's artifact switches (thread-safe)."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.settings = ArtifactSettings()
        self._lock = threading.Lock()
        self._sessions: dict[str, list[MeetingSession]] = {}

    def add(self, session: MeetingSession) -> None:
        with self._lock:
            self._sessions.setdefault(session.meeting_id, []).append(session)

    def held(self, meeting_id: str) -> bool:
        """True once the control API has held the meeting at least once."""
        return bool(self._sessions.get(meeting_id))

    def sessions(self, meeting_id: str) -> list[MeetingSession]:
        """Every held session of the meeting, by end time."""
        with self._lock:
            return sorted(self._sessions.get(meeting_id, []), key=lambda s: s.end)

    def pending(self, meeting_id: str, now: dt.datetime) -> bool:
        return any(s.available > now for s in self.sessions(meeting_id))

    def available(self, meeting_id: str, now: dt.datetime) -> list[MeetingSession]:
        return [s for s in self.sessions(meeting_id) if s.available <= now]

    def reports(self, meeting_id: str, now: dt.datetime) -> list[MeetingSession]:
        """The sessions whose report is out: the 50 most recent, newest first."""
        return list(reversed(self.available(meeting_id, now)))[:MAX_REPORTS]

    def of_organizer(self, organizer_id: str, now: dt.datetime) -> list[MeetingSession]:
        with self._lock:
            every = [s for sessions in self._sessions.values() for s in sessions]
        return sorted(
            (s for s in every if s.organizer_id == organizer_id and s.available <= now), key=lambda s: s.end
        )

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            sessions = [_session_row(s) for items in self._sessions.values() for s in items]
        return {"settings": self.settings.to_json(), "sessions": sessions}

    def load_dict(self, data: Mapping[str, Any]) -> None:
        self.settings.update(data.get("settings") or {})
        for row in data.get("sessions") or []:
            self.add(_session_from_row(row))


def artifacts_extension(tenant: Any, saved: dict[str, Any] | None) -> ArtifactStore:
    """The tenant's held sessions (a tenant extension, persisted with it)."""
    store = ArtifactStore(tenant.id)
    if saved:
        store.load_dict(saved)
    return store


# ---- persistence ------------------------------------------------------------------------------------


def _session_row(s: MeetingSession) -> dict[str, Any]:
    return {
        "id": s.id,
        "meetingId": s.meeting_id,
        "organizerId": s.organizer_id,
        "start": s.start.isoformat(),
        "end": s.end.isoformat(),
        "available": s.available.isoformat(),
        "transcript": s.transcript,
        "recording": s.recording,
        "calendarBacked": s.calendar_backed,
        "callId": s.call_id,
        "correlationId": s.correlation_id,
        "lines": [list(line) for line in s.lines],
        "participants": [
            {
                "displayName": p.display_name,
                "email": p.email,
                "userId": p.user_id,
                "tenantId": p.tenant_id,
                "role": p.role,
                "intervals": [[i.join.isoformat(), i.leave.isoformat()] for i in p.intervals],
            }
            for p in s.participants
        ],
    }


def _session_from_row(row: Mapping[str, Any]) -> MeetingSession:
    when = dt.datetime.fromisoformat
    return MeetingSession(
        id=row["id"],
        meeting_id=row["meetingId"],
        organizer_id=row["organizerId"],
        start=when(row["start"]),
        end=when(row["end"]),
        available=when(row["available"]),
        transcript=bool(row["transcript"]),
        recording=bool(row["recording"]),
        calendar_backed=bool(row["calendarBacked"]),
        call_id=row["callId"],
        correlation_id=row["correlationId"],
        lines=tuple((str(a), str(b)) for a, b in row.get("lines") or []),
        participants=tuple(
            SessionParticipant(
                p["displayName"],
                p.get("email"),
                p.get("userId"),
                p.get("tenantId"),
                p["role"],
                tuple(Interval(when(a), when(b)) for a, b in p["intervals"]),
            )
            for p in row["participants"]
        ),
    )


# ---- Graph's JSON -----------------------------------------------------------------------------------


def _record(session: MeetingSession, p: SessionParticipant) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"record:{session.id}:{p.key}")),
        "emailAddress": p.email,
        "totalAttendanceInSeconds": sum(i.seconds for i in p.intervals),
        "role": p.role,
        "registrationId": None,
        "identity": {"id": p.user_id, "displayName": p.display_name, "tenantId": p.tenant_id},
        "attendanceIntervals": [
            {
                "joinDateTime": format_datetime(i.join),
                "leaveDateTime": format_datetime(i.leave),
                "durationInSeconds": i.seconds,
            }
            for i in p.intervals
        ],
        "externalRegistrationInformation": None,
    }


def render_report(session: MeetingSession) -> dict[str, Any]:
    """The session's ``meetingAttendanceReport`` with its ``attendanceRecords``."""
    return {
        "id": session.id,
        "totalParticipantCount": len(session.participants),
        "meetingStartDateTime": format_datetime(session.start),
        "meetingEndDateTime": format_datetime(session.end),
        "attendanceRecords": [_record(session, p) for p in session.participants],
    }


def _organizer(session: MeetingSession, tenant_id: str) -> dict[str, Any]:
    return {
        "application": None,
        "device": None,
        "user": {
            "@odata.type": TEAMWORK_USER_TYPE,
            "id": session.organizer_id,
            "displayName": None,
            "userIdentityType": "aadUser",
            "tenantId": tenant_id,
        },
    }


def _artifact(session: MeetingSession, tenant_id: str, artifact_id: str) -> dict[str, Any]:
    return {
        "id": artifact_id,
        "meetingId": session.meeting_id,
        "callId": session.call_id,
        "contentCorrelationId": session.correlation_id,
        "createdDateTime": format_datetime(session.available),
        "endDateTime": format_datetime(session.end),
        "meetingOrganizer": _organizer(session, tenant_id),
    }


def render_transcript(session: MeetingSession, tenant_id: str, base_url: str) -> dict[str, Any]:
    """The ``callTranscript``; ``base_url`` is the meeting's URL (absolute, or relative for a notification)."""
    body = _artifact(session, tenant_id, session.transcript_id)
    body["transcriptContentUrl"] = f"{base_url}/transcripts/{session.transcript_id}/content"
    return body


def render_recording(session: MeetingSession, tenant_id: str, base_url: str) -> dict[str, Any]:
    body = _artifact(session, tenant_id, session.recording_id)
    body["recordingContentUrl"] = f"{base_url}/recordings/{session.recording_id}/content"
    return body


# ---- content ----------------------------------------------------------------------------------------

_PHRASES = (
    "Thanks everyone for joining.",
    "Let's go through the agenda.",
    "I have a question about the timeline.",
    "That sounds good to me.",
    "I'll follow up by email after the call.",
    "Let's wrap up here.",
)


def _lines(session: MeetingSession) -> list[tuple[str, str]]:
    if session.lines:
        return list(session.lines)
    speakers = [p.display_name for p in session.participants] or ["Unknown"]
    return [(speakers[n % len(speakers)], phrase) for n, phrase in enumerate(_PHRASES)]


def _cues(session: MeetingSession) -> list[tuple[float, float, str, str]]:
    """(start, end) offsets in seconds from the session's start, speaker and text, spread over it."""
    lines = _lines(session)
    span = max((session.end - session.start).total_seconds(), float(len(lines)))
    step = span / len(lines)
    return [(n * step, n * step + min(step, 5.0), speaker, text) for n, (speaker, text) in enumerate(lines)]


def _stamp(seconds: float, short: bool = False) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    if short:
        fraction = f"{rest % 1000:03d}".rstrip("0") or "0"
        return f"{hours}:{minutes}:{rest // 1000}.{fraction}"
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def transcript_vtt(session: MeetingSession, *, speakers: bool = True, short_times: bool = False) -> str:
    """WebVTT with one ``<v Speaker>`` cue per utterance (speakers stripped when attribution is off;
    ``short_times``: ``0:0:5.32`` cue times as the docs' example writes them)."""
    out = ["WEBVTT", ""]
    for start, end, speaker, text in _cues(session):
        out.append(f"{_stamp(start, short_times)} --> {_stamp(end, short_times)}")
        out.append(f"<v {speaker}>{text}</v>" if speakers else text)
        out.append("")
    return "\n".join(out)


def _offset_time(value: dt.datetime) -> str:
    """``2023-03-08T08:22:30.0461639+00:00``, as the metadataContent example writes its times."""
    return format_datetime(value)[:-1] + "+00:00"


def transcript_metadata(session: MeetingSession, *, speakers: bool = True) -> str:
    """``metadataContent``: WebVTT whose cues are one-line JSON (time-aligned utterance metadata)."""
    out = ["WEBVTT", ""]
    for start, end, speaker, text in _cues(session):
        item = {
            "startDateTime": _offset_time(session.start + dt.timedelta(seconds=start)),
            "endDateTime": _offset_time(session.start + dt.timedelta(seconds=end)),
            "speakerName": speaker if speakers else None,
            "spokenText": text,
            "spokenLanguage": "en-us",
        }
        out.append(f"{_stamp(start)} --> {_stamp(end)}")
        out.append(json.dumps(item, separators=(",", ":")))
        out.append("")
    return "\n".join(out)


def recording_bytes(session: MeetingSession) -> bytes:
    """A small deterministic MP4-shaped stream (an ``ftyp`` box, then a ``mdat`` of hash bytes)."""
    ftyp = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    seed = f"recording:{session.id}".encode()
    chunks: list[bytes] = []
    size = RECORDING_SIZE - len(ftyp) - 8
    counter = 0
    while sum(len(c) for c in chunks) < size:
        chunks.append(hashlib.sha256(seed + counter.to_bytes(4, "big")).digest())
        counter += 1
    data = b"".join(chunks)[:size]
    return ftyp + (size + 8).to_bytes(4, "big") + b"mdat" + data
