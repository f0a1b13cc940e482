"""What a meeting produced, read back (app-only), sync and async: attendance reports with their records
and intervals, transcripts (metadata, WebVTT, plain text with speakers) and recordings (metadata,
content streamed to a file, resumable, with a SHA-256 checksum beside it).

A meeting is given by the id the caller has: a standalone meeting's onlineMeeting id, or a calendar
meeting's event id (a single meeting, a series master or one occurrence), whose onlineMeeting is found
through its join URL. A series' occurrences share one onlineMeeting, so its reports, transcripts and
recordings are those of every occurrence held. Graph's rules, with the errors that name them:

- every kind needs its own application permission (``ARTIFACT_PERMISSIONS``; ``MissingRolesError``)
  and the organizer's Teams application access policy (``AccessPolicyMissing``);
- transcripts and recordings exist only for calendar-backed meetings (``CalendarMeetingRequired``),
  and not for channel meetings (``ChannelMeetingUnsupported``);
- transcripts are refused while the tenant turns "Graph API access to transcripts" off
  (``TranscriptAccessDisabled``);
- an artifact appears some time after its session ends: lists are then empty (or 404, which a list
  of a meeting known to exist reads as empty), a read by id is ``ArtifactNotReady``;
- Graph returns at most the 50 most recent attendance reports (``MeetingAttendance.limit_reached``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from meetgate.graph.artifact_models import (
    ARTIFACT_PERMISSIONS,
    DownloadResult,
    MeetingAttendance,
    Recording,
    Transcript,
    TranscriptContent,
    parse_vtt,
)
from meetgate.graph.directory import UserIdCache
from meetgate.graph.errors import ArtifactNotReady, GraphError, MeetingNotFound, NotFoundError
from meetgate.graph.events import EventOps
from meetgate.graph.http import GraphCallContext
from meetgate.graph.identifiers import meeting_id_shape
from meetgate.graph.ops import Op, Operation, run_async, run_sync

if TYPE_CHECKING:
    from meetgate.graph.http import AsyncGraphHttp, GraphHttp, GraphResponse

#: ``Accept`` of the transcript content without speakers (what a tenant without attribution serves)
UNATTRIBUTED_TRANSCRIPT = "application/vnd.microsoft.graph.transcript+text"
#: called with (bytes written so far, total bytes or None) while a recording downloads
Progress = Callable[[int, int | None], None]
CHUNK = 1 << 16


@dataclass(frozen=True)
class MeetingRef:
    """The onlineMeeting behind the id a caller gave, with its organizer's object id."""

    organizer: str
    organizer_id: str
    meeting_id: str
    #: the calendar event it was found through (None: a standalone meeting's id was given)
    event_id: str | None = None

    def path(self, suffix: str = "") -> str:
        return (
            f"/users/{quote(self.organizer_id, safe='')}/onlineMeetings/{quote(self.meeting_id, safe='=')}"
            + suffix
        )


def _segment(value: str) -> str:
    if not value or not value.strip():
        raise NotFoundError("the artifact id is empty", remedy="Give the id a list returned.")
    return quote(value, safe="=")


def recording_filename(recording: Recording) -> str:
    """A stable file name for a recording: its start time and a digest of its (opaque) id."""
    digest = hashlib.sha256(recording.id.encode()).hexdigest()[:12]
    when = recording.created_date_time or recording.end_date_time
    stamp = when.strftime("%Y%m%dT%H%M%SZ") if when is not None else "recording"
    return f"{stamp}-{digest}.mp4"


class ArtifactOps:
    """Each public operation as a generator of :class:`~meetgate.graph.ops.Op` (see ``ops.py``)."""

    def __init__(self, cache: UserIdCache) -> None:
        self.events = EventOps(cache)
        self.meetings = self.events.meetings

    def _ctx(self, kind: str, what: str, ref: MeetingRef) -> GraphCallContext:
        return GraphCallContext(
            operation=what,
            organizer=ref.organizer,
            meeting_id=ref.meeting_id,
            required_roles=(ARTIFACT_PERMISSIONS[kind],),
        )

    def resolve(self, organizer: str, meeting_id: str, placement: str | None = None) -> Operation[MeetingRef]:
        """The onlineMeeting of ``meeting_id``: itself (standalone) or the one behind a calendar event
        (``placement`` ``calendar``/``standalone``; default: told from the id's shape)."""
        placement = placement or meeting_id_shape(meeting_id) or "standalone"
        organizer_id = yield from self.meetings._organizer_id(organizer)
        if placement != "calendar":
            return MeetingRef(organizer, organizer_id, meeting_id)
        event = yield from self.events.get(organizer, meeting_id)
        behind = yield from self.events.online_meeting(organizer, event)
        if behind is None:
            raise MeetingNotFound(
                f"calendar meeting {meeting_id} has no Teams meeting behind it (or none with its join URL)",
                remedy="Check that the event is an online meeting (`meetgate meetings get ID -o ORGANIZER`); "
                "the Teams application access policy must be granted to the organizer.",
            )
        return MeetingRef(organizer, organizer_id, behind.id, event.id)

    def attendance(
        self, organizer: str, meeting_id: str, placement: str | None = None
    ) -> Operation[MeetingAttendance]:
        ref = yield from self.resolve(organizer, meeting_id, placement)
        reports = yield from self.meetings.attendance_reports(organizer, ref.meeting_id, True)
        return MeetingAttendance(ref.meeting_id, reports, ref.event_id)

    def _list(self, ref: MeetingRef, kind: str, collection: str) -> Operation[list[dict[str, Any]]]:
        ctx = self._ctx(kind, f"list the {kind} of meeting {ref.meeting_id}", ref)
        items: list[dict[str, Any]] = []
        url: str | None = ref.path(f"/{collection}")
        try:
            while url:
                page = yield Op("GET", url, context=ctx)
                if not isinstance(page, dict):
                    break
                items.extend(item for item in page.get("value", []) if isinstance(item, dict))
                url = page.get("@odata.nextLink")
        except NotFoundError:
            if ref.event_id is None:
                raise
            return []  # the meeting was just found: a 404 list is "nothing available yet"
        return items

    def _one(self, ref: MeetingRef, kind: str, collection: str, item_id: str) -> Operation[dict[str, Any]]:
        what = kind.rstrip("s")
        ctx = self._ctx(kind, f"read {what} {item_id} of meeting {ref.meeting_id}", ref)
        try:
            data = yield Op("GET", ref.path(f"/{collection}/{_segment(item_id)}"), context=ctx)
        except MeetingNotFound as exc:
            raise _not_ready(exc, what, item_id, ref) from None
        return data if isinstance(data, dict) else {}

    def transcripts(
        self, organizer: str, meeting_id: str, placement: str | None = None
    ) -> Operation[tuple[MeetingRef, list[Transcript]]]:
        ref = yield from self.resolve(organizer, meeting_id, placement)
        items = yield from self._list(ref, "transcripts", "transcripts")
        return ref, [Transcript.model_validate(item) for item in items]

    def transcript(self, ref: MeetingRef, transcript_id: str) -> Operation[Transcript]:
        return Transcript.model_validate(
            (yield from self._one(ref, "transcripts", "transcripts", transcript_id))
        )

    def transcript_content(
        self, ref: MeetingRef, transcript: Transcript, speakers: bool = True
    ) -> Operation[TranscriptContent]:
        ctx = self._ctx("transcripts", f"read the content of transcript {transcript.id}", ref)
        path = ref.path(f"/transcripts/{_segment(transcript.id)}/content")
        if speakers:
            op = Op("GET", path, params={"$format": "text/vtt"}, headers={"Accept": "text/vtt"}, context=ctx)
        else:
            op = Op("GET", path, headers={"Accept": UNATTRIBUTED_TRANSCRIPT}, context=ctx)
        try:
            body = yield op
        except MeetingNotFound as exc:
            raise _not_ready(exc, "transcript", transcript.id, ref) from None
        vtt = body if isinstance(body, str) else ""
        return TranscriptContent(transcript, vtt, parse_vtt(vtt))

    def recordings(
        self, organizer: str, meeting_id: str, placement: str | None = None
    ) -> Operation[tuple[MeetingRef, list[Recording]]]:
        ref = yield from self.resolve(organizer, meeting_id, placement)
        items = yield from self._list(ref, "recordings", "recordings")
        return ref, [Recording.model_validate(item) for item in items]

    def recording(self, ref: MeetingRef, recording_id: str) -> Operation[Recording]:
        return Recording.model_validate((yield from self._one(ref, "recordings", "recordings", recording_id)))

    def probe(self, organizer: str, kind: str, now: dt.datetime) -> Operation[int]:
        """One read of ``kind`` for ``organizer`` that needs no meeting, through the permission and
        the Teams application access policy (``meetgate validate``): the organizer's transcripts or
        recordings of the last day (``getAllTranscripts`` / ``getAllRecordings``), or the attendance
        of a meeting id of this organizer that cannot exist (404 once both let the read through)."""
        organizer_id = yield from self.meetings._organizer_id(organizer)
        if kind == "attendance":
            probe_id = base64.b64encode(
                f"1*{organizer_id}*0**19:meetgate-validate-probe@thread.v2".encode()
            ).decode()
            ref = MeetingRef(organizer, organizer_id, probe_id)
            try:
                yield Op(
                    "GET", ref.path("/attendanceReports"), context=self._ctx(kind, "read attendance", ref)
                )
            except MeetingNotFound:
                return 0
            return 0
        function = {"transcripts": "getAllTranscripts", "recordings": "getAllRecordings"}[kind]
        start, end = now - dt.timedelta(days=1), now + dt.timedelta(minutes=5)  # clock skew
        path = (
            f"/users/{quote(organizer_id, safe='')}/onlineMeetings/{function}("
            f"meetingOrganizerUserId='{organizer_id}',startDateTime={_graph_time(start)},"
            f"endDateTime={_graph_time(end)})"
        )
        ctx = GraphCallContext(
            operation=f"list the {kind} of organizer {organizer}",
            organizer=organizer,
            required_roles=(ARTIFACT_PERMISSIONS[kind],),
        )
        page = yield Op("GET", path, params={"$top": "1"}, context=ctx)
        return len(page.get("value", [])) if isinstance(page, dict) else 0

    def content_call(self, ref: MeetingRef, recording: Recording) -> tuple[str, GraphCallContext]:
        ctx = self._ctx("recordings", f"download recording {recording.id}", ref)
        return ref.path(f"/recordings/{_segment(recording.id)}/content"), ctx


def _graph_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _not_ready(exc: GraphError, what: str, item_id: str, ref: MeetingRef) -> ArtifactNotReady:
    return ArtifactNotReady(
        f"{what} {item_id} of meeting {ref.meeting_id} was not found (or is not available yet): {exc.message}",
        kind=what,
        status=exc.status,
        code=exc.code,
        request_id=exc.request_id,
        client_request_id=exc.client_request_id,
        method=exc.method,
        path=exc.path,
    )


# --- a recording streamed to a file ---------------------------------------------------------------

_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _hash_file(path: Path) -> tuple[Any, int]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(chunk)
            size += len(chunk)
    return hasher, size


class RecordingDownload:
    """One recording into ``target``: bytes go to ``target.part`` first (an interrupted download
    resumes from it with ``Range``), then the file is renamed and ``target.sha256`` written (the
    ``sha256sum`` format, so ``sha256sum -c`` checks it)."""

    def __init__(self, recording: Recording, target: Path, progress: Progress | None = None) -> None:
        self.recording = recording
        self.target = target
        self.part = target.with_name(target.name + ".part")
        self.progress = progress
        self.hasher: Any = hashlib.sha256()
        self.offset = 0
        self.resumed_from = 0
        self.written = 0
        self.total: int | None = None
        self._handle: Any = None

    def complete(self) -> DownloadResult | None:
        """The earlier download's result when the target and its matching checksum are on disk."""
        sums = checksum_path(self.target)
        if not (self.target.is_file() and sums.is_file()):
            return None
        recorded = sums.read_text(encoding="utf-8").split()[:1]
        hasher, size = _hash_file(self.target)
        if recorded != [hasher.hexdigest()]:
            return None
        return DownloadResult(
            self.recording, self.target, size, hasher.hexdigest(), sums, 0, already_complete=True
        )

    def prepare(self) -> dict[str, str]:
        """The request headers: ``Range`` from the partial file's end, when there is one."""
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.hasher, self.offset = hashlib.sha256(), 0
        if self.part.is_file():
            self.hasher, self.offset = _hash_file(self.part)
        self.resumed_from = self.offset
        return {"Accept": "*/*", **({"Range": f"bytes={self.offset}-"} if self.offset else {})}

    def start(self, status: int, headers: Mapping[str, str]) -> None:
        """Graph's answer, before its body: 206 appends at the offset, 200 starts the file over."""
        if status == 416:
            return
        match = _CONTENT_RANGE.match(headers.get("content-range", ""))
        ours = match is not None and match.group(1) is not None and int(match.group(1)) == self.offset
        if status == 206 and not ours:
            raise GraphError(
                f"Graph answered a range that does not start at byte {self.offset}: "
                f"{headers.get('content-range')!r}",
                status=status,
                remedy=f"Delete {self.part} and download again.",
            )
        if status == 206 and match is not None:
            self.total = int(match.group(3)) if match.group(3) != "*" else None
            mode = "ab"
        else:  # the whole body (Range ignored, or a range that is not ours): start over
            self.hasher, self.offset, self.resumed_from = hashlib.sha256(), 0, 0
            length = headers.get("content-length")
            self.total = int(length) if length and length.isdigit() else None
            mode = "wb"
        self.written = self.offset
        self._handle = self.part.open(mode)
        self._report()

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)
        self.hasher.update(chunk)
        self.written += len(chunk)
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.written, self.total)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def unsatisfiable(self, headers: Mapping[str, str]) -> bool:
        """A 416 to our ``Range``: True when the partial file already holds every byte (it is
        finished as it is), else it is dropped so the next attempt starts over."""
        match = _CONTENT_RANGE.match(headers.get("content-range", ""))
        total = int(match.group(3)) if match and match.group(3) != "*" else None
        if total is not None and total == self.offset:
            self.total = self.written = total
            return True
        self.part.unlink(missing_ok=True)
        return False

    def finish(self) -> DownloadResult:
        self.close()
        if not self.part.exists():
            self.part.touch()
        os.replace(self.part, self.target)
        digest = self.hasher.hexdigest()
        sums = checksum_path(self.target)
        sums.write_text(f"{digest}  {self.target.name}\n", encoding="utf-8")
        size = self.target.stat().st_size
        return DownloadResult(self.recording, self.target, size, digest, sums, self.resumed_from)


def _download_target(recording: Recording, directory: Path, filename: str | None) -> Path:
    return Path(directory) / (filename or recording_filename(recording))


class ArtifactsService:
    """Attendance, transcripts and recordings of approved organizers' meetings, synchronously.
    Organizer: object id or UPN; meeting: a standalone meeting's id or a calendar event's id."""

    def __init__(self, http: GraphHttp, cache: UserIdCache | None = None) -> None:
        self._http = http
        self._ops = ArtifactOps(cache if cache is not None else UserIdCache())

    def resolve(self, organizer: str, meeting_id: str, *, placement: str | None = None) -> MeetingRef:
        """The onlineMeeting behind ``meeting_id`` (a calendar event's is found by its join URL)."""
        return run_sync(self._http, self._ops.resolve(organizer, meeting_id, placement))

    def attendance(
        self, organizer: str, meeting_id: str, *, placement: str | None = None
    ) -> MeetingAttendance:
        """Every attendance report (up to Graph's 50 most recent) with records and intervals."""
        return run_sync(self._http, self._ops.attendance(organizer, meeting_id, placement))

    def transcripts(
        self, organizer: str, meeting_id: str, *, placement: str | None = None
    ) -> list[Transcript]:
        """The meeting's transcripts (one per transcribed session), metadata only."""
        return run_sync(self._http, self._ops.transcripts(organizer, meeting_id, placement))[1]

    def transcript(
        self, organizer: str, meeting_id: str, transcript_id: str, *, placement: str | None = None
    ) -> Transcript:
        ref = self.resolve(organizer, meeting_id, placement=placement)
        return run_sync(self._http, self._ops.transcript(ref, transcript_id))

    def transcript_contents(
        self, organizer: str, meeting_id: str, *, placement: str | None = None, speakers: bool = True
    ) -> list[TranscriptContent]:
        """Every transcript with its content: WebVTT, cues and plain text (``speakers=False``: the
        unattributed form, which a tenant without speaker attribution still serves)."""
        ref, transcripts = run_sync(self._http, self._ops.transcripts(organizer, meeting_id, placement))
        return [run_sync(self._http, self._ops.transcript_content(ref, t, speakers)) for t in transcripts]

    def transcript_content(
        self,
        organizer: str,
        meeting_id: str,
        transcript_id: str,
        *,
        placement: str | None = None,
        speakers: bool = True,
    ) -> TranscriptContent:
        ref = self.resolve(organizer, meeting_id, placement=placement)
        transcript = run_sync(self._http, self._ops.transcript(ref, transcript_id))
        return run_sync(self._http, self._ops.transcript_content(ref, transcript, speakers))

    def recordings(self, organizer: str, meeting_id: str, *, placement: str | None = None) -> list[Recording]:
        """The meeting's recordings (one per recorded session), metadata only."""
        return run_sync(self._http, self._ops.recordings(organizer, meeting_id, placement))[1]

    def recording(
        self, organizer: str, meeting_id: str, recording_id: str, *, placement: str | None = None
    ) -> Recording:
        ref = self.resolve(organizer, meeting_id, placement=placement)
        return run_sync(self._http, self._ops.recording(ref, recording_id))

    def probe(self, organizer: str, kind: str, now: dt.datetime | None = None) -> int:
        """A read of ``kind`` that needs no meeting (see :meth:`ArtifactOps.probe`); raises what Graph
        refused (missing permission, policy, transcripts turned off)."""
        return run_sync(self._http, self._ops.probe(organizer, kind, now or dt.datetime.now(dt.UTC)))

    def download_recording(
        self,
        organizer: str,
        meeting_id: str,
        recording_id: str,
        directory: Path,
        *,
        placement: str | None = None,
        filename: str | None = None,
        progress: Progress | None = None,
    ) -> DownloadResult:
        """Stream a recording to ``directory`` (resuming a ``.part`` left by an interrupted run) and
        record its SHA-256 beside it; a file already complete with its checksum is not fetched again."""
        ref = self.resolve(organizer, meeting_id, placement=placement)
        recording = run_sync(self._http, self._ops.recording(ref, recording_id))
        job = RecordingDownload(recording, _download_target(recording, directory, filename), progress)
        done = job.complete()
        if done is not None:
            return done
        path, ctx = self._ops.content_call(ref, recording)
        for _ in range(2):
            try:
                response: GraphResponse = self._http.stream(
                    path, job.write, headers=job.prepare(), context=ctx, on_response=job.start
                )
            finally:
                job.close()
            if response.status != 416 or job.unsatisfiable(response.headers):
                break
        return job.finish()


class AsyncArtifactsService:
    """The same operations, awaited."""

    def __init__(self, http: AsyncGraphHttp, cache: UserIdCache | None = None) -> None:
        self._http = http
        self._ops = ArtifactOps(cache if cache is not None else UserIdCache())

    async def resolve(self, organizer: str, meeting_id: str, *, placement: str | None = None) -> MeetingRef:
        return await run_async(self._http, self._ops.resolve(organizer, meeting_id, placement))

    async def attendance(
        self, organizer: str, meeting_id: str, *, placement: str | None = None
    ) -> MeetingAttendance:
        return await run_async(self._http, self._ops.attendance(organizer, meeting_id, placement))

    async def transcripts(
        self, organizer: str, meeting_id: str, *, placement: str | None = None
    ) -> list[Transcript]:
        return (await run_async(self._http, self._ops.transcripts(organizer, meeting_id, placement)))[1]

    async def transcript(
        self, organizer: str, meeting_id: str, transcript_id: str, *, placement: str | None = None
    ) -> Transcript:
        ref = await self.resolve(organizer, meeting_id, placement=placement)
        return await run_async(self._http, self._ops.transcript(ref, transcript_id))

    async def transcript_contents(
        self, organizer: str, meeting_id: str, *, placement: str | None = None, speakers: bool = True
    ) -> list[TranscriptContent]:
        ref, transcripts = await run_async(
            self._http, self._ops.transcripts(organizer, meeting_id, placement)
        )
        return [
            await run_async(self._http, self._ops.transcript_content(ref, t, speakers)) for t in transcripts
        ]

    async def transcript_content(
        self,
        organizer: str,
        meeting_id: str,
        transcript_id: str,
        *,
        placement: str | None = None,
        speakers: bool = True,
    ) -> TranscriptContent:
        ref = await self.resolve(organizer, meeting_id, placement=placement)
        transcript = await run_async(self._http, self._ops.transcript(ref, transcript_id))
        return await run_async(self._http, self._ops.transcript_content(ref, transcript, speakers))

    async def recordings(
        self, organizer: str, meeting_id: str, *, placement: str | None = None
    ) -> list[Recording]:
        return (await run_async(self._http, self._ops.recordings(organizer, meeting_id, placement)))[1]

    async def recording(
        self, organizer: str, meeting_id: str, recording_id: str, *, placement: str | None = None
    ) -> Recording:
        ref = await self.resolve(organizer, meeting_id, placement=placement)
        return await run_async(self._http, self._ops.recording(ref, recording_id))

    async def probe(self, organizer: str, kind: str, now: dt.datetime | None = None) -> int:
        return await run_async(self._http, self._ops.probe(organizer, kind, now or dt.datetime.now(dt.UTC)))

    async def stream_recording(
        self,
        organizer: str,
        meeting_id: str,
        recording_id: str,
        sink: Callable[[bytes], Awaitable[None]],
        *,
        placement: str | None = None,
        range: str | None = None,
        on_response: Callable[[int, Mapping[str, str]], None] | None = None,
    ) -> Recording:
        """A recording's content to ``sink`` chunk by chunk as Graph sends it (each chunk is awaited
        before the next is read: nothing is held but the chunk in hand), with ``range`` (a ``Range``
        header value) passed to Graph; ``on_response`` gets Graph's status and headers before the first
        chunk (206 with ``Content-Range``; 416 with ``Content-Range: bytes */total`` sends none)."""
        ref = await self.resolve(organizer, meeting_id, placement=placement)
        recording = await run_async(self._http, self._ops.recording(ref, recording_id))
        path, ctx = self._ops.content_call(ref, recording)
        headers = {"Accept": "*/*", **({"Range": range} if range else {})}
        await self._http.stream(path, sink, headers=headers, context=ctx, on_response=on_response)
        return recording

    async def download_recording(
        self,
        organizer: str,
        meeting_id: str,
        recording_id: str,
        directory: Path,
        *,
        placement: str | None = None,
        filename: str | None = None,
        progress: Progress | None = None,
    ) -> DownloadResult:
        ref = await self.resolve(organizer, meeting_id, placement=placement)
        recording = await run_async(self._http, self._ops.recording(ref, recording_id))
        job = RecordingDownload(recording, _download_target(recording, directory, filename), progress)
        done = job.complete()
        if done is not None:
            return done
        path, ctx = self._ops.content_call(ref, recording)
        for _ in range(2):
            try:
                response = await self._http.stream(
                    path, job.write, headers=job.prepare(), context=ctx, on_response=job.start
                )
            finally:
                job.close()
            if response.status != 416 or job.unsatisfiable(response.headers):
                break
        return job.finish()
