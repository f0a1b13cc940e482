"""What a held meeting leaves behind, as typed models: transcripts, recordings, their content, the
attendance of all of a meeting's sessions, and which application permission reads each kind.

Pure data and parsing (no I/O, no httpx): the registration and validation code imports the
permission table from here without loading the Graph client.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from meetgate.graph.models import AttendanceReport, GraphModel, IdentitySet

ArtifactKind = Literal["attendance", "transcripts", "recordings"]
#: every kind, in the order they are shown
ARTIFACT_KINDS: tuple[ArtifactKind, ...] = ("attendance", "transcripts", "recordings")
#: the application permission that reads each kind (least privilege: one per kind)
ARTIFACT_PERMISSIONS: dict[str, str] = {
    "attendance": "OnlineMeetingArtifact.Read.All",
    "transcripts": "OnlineMeetingTranscript.Read.All",
    "recordings": "OnlineMeetingRecording.Read.All",
}
#: Graph returns at most this many attendance reports of a meeting (the most recent)
ATTENDANCE_REPORT_LIMIT = 50


def artifact_permissions(kinds: Sequence[str]) -> tuple[str, ...]:
    """The application permissions ``kinds`` need, in the table's order; an unknown kind is a ValueError."""
    unknown = [kind for kind in kinds if kind not in ARTIFACT_PERMISSIONS]
    if unknown:
        raise ValueError(
            f"unknown artifact kind(s) {', '.join(map(repr, unknown))}: use {', '.join(ARTIFACT_KINDS)}"
        )
    return tuple(ARTIFACT_PERMISSIONS[kind] for kind in ARTIFACT_KINDS if kind in kinds)


class _Artifact(GraphModel):
    id: str
    meeting_id: str | None = None
    call_id: str | None = None
    content_correlation_id: str | None = None
    created_date_time: dt.datetime | None = None
    end_date_time: dt.datetime | None = None
    meeting_organizer: IdentitySet | None = None


class Transcript(_Artifact):
    """A ``callTranscript``: metadata of one session's transcript."""

    transcript_content_url: str | None = None


class Recording(_Artifact):
    """A ``callRecording``: metadata of one session's recording."""

    recording_content_url: str | None = None


@dataclass(frozen=True)
class TranscriptCue:
    """One cue of a WebVTT transcript; ``speaker`` is None when the tenant strips attribution."""

    start: str
    end: str
    text: str
    speaker: str | None = None


_TIMING = re.compile(r"^\s*(-?[\d:.]+)\s+-->\s+(-?[\d:.]+)")
_VOICE = re.compile(r"<v(?:\.[^ >]*)?\s+([^>]*)>(.*?)(?:</v>|$)", re.DOTALL)
_TAG = re.compile(r"</?[^>]+>")


def parse_vtt(vtt: str) -> list[TranscriptCue]:
    """The cues of a WebVTT transcript: times as written (``00:00:05.320`` or ``0:0:5.32``), the
    speaker from ``<v Name>`` when there is one, the text without tags."""
    cues: list[TranscriptCue] = []
    blocks = re.split(r"\r?\n\s*\r?\n", vtt.replace("\ufeff", ""))
    for block in blocks:
        lines = [line for line in block.splitlines() if line.strip()]
        for index, line in enumerate(lines):
            timing = _TIMING.match(line)
            if timing is None:
                continue
            body = "\n".join(lines[index + 1 :])
            voice = _VOICE.search(body)
            speaker = voice.group(1).strip() or None if voice else None
            text = _TAG.sub("", voice.group(2) if voice else body).strip()
            cues.append(TranscriptCue(timing.group(1), timing.group(2), text, speaker))
            break
    return cues


def transcript_text(cues: Sequence[TranscriptCue]) -> str:
    """Plain text: one line per cue, ``Speaker: text`` (consecutive cues of one speaker joined)."""
    lines: list[tuple[str | None, str]] = []
    for cue in cues:
        if lines and lines[-1][0] == cue.speaker and cue.speaker is not None:
            lines[-1] = (cue.speaker, f"{lines[-1][1]} {cue.text}")
        else:
            lines.append((cue.speaker, cue.text))
    return "".join(f"{speaker}: {text}\n" if speaker else f"{text}\n" for speaker, text in lines)


@dataclass(frozen=True)
class TranscriptContent:
    """A transcript's content: the WebVTT as Graph sent it and its parsed cues."""

    transcript: Transcript
    vtt: str
    cues: list[TranscriptCue]

    @property
    def text(self) -> str:
        return transcript_text(self.cues)

    @property
    def speakers(self) -> list[str]:
        seen: dict[str, None] = {}
        for cue in self.cues:
            if cue.speaker:
                seen.setdefault(cue.speaker)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "transcript": self.transcript.to_graph(),
            "speakers": self.speakers,
            "cues": [
                {"start": c.start, "end": c.end, "speaker": c.speaker, "text": c.text} for c in self.cues
            ],
        }


@dataclass(frozen=True)
class MeetingAttendance:
    """Every attendance report of a meeting (one per session; a series' occurrences share one
    onlineMeeting, so all of them), records and intervals included, newest first."""

    meeting_id: str
    reports: list[AttendanceReport]
    #: the calendar event the meeting was found through, when it was
    event_id: str | None = None

    @property
    def limit_reached(self) -> bool:
        """True when Graph returned its maximum: older reports exist that it does not return."""
        return len(self.reports) >= ATTENDANCE_REPORT_LIMIT

    @property
    def warning(self) -> str | None:
        if not self.limit_reached:
            return None
        return (
            f"Graph returns only the {ATTENDANCE_REPORT_LIMIT} most recent attendance reports of a meeting; "
            "older sessions are not listed. Read the reports after each session (or subscribe to them) "
            "and keep them, or give long series a new meeting per term."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "meetingId": self.meeting_id,
            "eventId": self.event_id,
            "limitReached": self.limit_reached,
            "reports": [report.to_graph() for report in self.reports],
        }


@dataclass(frozen=True)
class DownloadResult:
    """A recording written to ``path``; ``sha256`` is recorded beside it in ``checksum_path``."""

    recording: Recording
    path: Path
    size: int
    sha256: str
    checksum_path: Path
    #: bytes that were already on disk from an earlier, interrupted download
    resumed_from: int = 0
    #: the file was complete already (nothing was downloaded)
    already_complete: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "recordingId": self.recording.id,
            "path": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "checksumFile": str(self.checksum_path),
            "resumedFrom": self.resumed_from,
            "alreadyComplete": self.already_complete,
        }


#: the columns of :func:`attendance_csv`
CSV_COLUMNS = (
    "reportId",
    "meetingStartDateTime",
    "meetingEndDateTime",
    "emailAddress",
    "displayName",
    "role",
    "totalAttendanceInSeconds",
    "joinDateTime",
    "leaveDateTime",
    "durationInSeconds",
)


def attendance_csv(attendance: MeetingAttendance) -> str:
    """One row per attendance interval (a participant who rejoined has several)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for report in attendance.reports:
        head = [
            report.id,
            _csv_time(report.meeting_start_date_time),
            _csv_time(report.meeting_end_date_time),
        ]
        for record in report.attendance_records:
            person = [
                record.email_address or "",
                (record.identity.display_name if record.identity else None) or "",
                record.role or "",
                record.total_attendance_in_seconds or 0,
            ]
            intervals: list[Any] = list(record.attendance_intervals) or [None]
            for interval in intervals:
                times = (
                    [
                        _csv_time(interval.join_date_time),
                        _csv_time(interval.leave_date_time),
                        interval.duration_in_seconds,
                    ]
                    if interval is not None
                    else ["", "", ""]
                )
                writer.writerow([*head, *person, *times])
    return buffer.getvalue()


def _csv_time(value: dt.datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else ""
