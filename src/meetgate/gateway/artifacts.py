"""What a consumer's meeting produced, read through the gateway: attendance (JSON or CSV), transcripts
(metadata, WebVTT, plain text with speakers) and recordings (metadata, content streamed from Graph).

Each read is of the consumer's own meeting (another's is ``not-found``), of a kind the profile enables
(``GatewaySettings.artifacts``; else ``artifact-kind-disabled``), and audited under its own action.
A recording's content is passed on chunk by chunk as Graph sends it, at the reader's pace: the
gateway holds a few chunks at most, never the file; a ``Range`` goes to Graph and its 206 or 416 back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from meetgate.gateway.ports import AsyncArtifactsPort
from meetgate.gateway.problems import Problem
from meetgate.graph.artifact_models import MeetingAttendance, Recording, Transcript, TranscriptContent
from meetgate.store import ConsumerRecord, MeetingRecord

if TYPE_CHECKING:
    from meetgate.gateway.service import CallContext, GatewayService

#: chunks of a recording held between Graph and a slow reader
QUEUE_CHUNKS = 4
#: a reader that takes no chunk for this long (or never starts reading) ends the download from Graph
IDLE_SECONDS = 120.0
#: Graph's headers of a recording's content that are passed on to the consumer
PASSED_HEADERS = ("content-type", "content-length", "content-range", "accept-ranges", "etag", "last-modified")
#: Graph's checksum headers, when it sends one: passed on as they are
CHECKSUM_HEADERS = ("digest", "content-md5", "x-ms-content-sha256", "content-digest", "repr-digest")


class ArtifactOut(BaseModel):
    """A transcript or a recording of one session of the meeting (metadata)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Graph's id of the transcript or recording (opaque)")
    call_id: str | None = Field(None, description="The call (session) it was made in")
    content_correlation_id: str | None = Field(
        None, description="Shared by a session's transcript and recording"
    )
    created_date_time: dt.datetime | None = None
    end_date_time: dt.datetime | None = None
    content: str = Field(description="Where the gateway serves its content")


class ArtifactList(BaseModel):
    """Every transcript (or recording) of the meeting: one per session in which it was started."""

    value: list[ArtifactOut]


class AttendanceOut(BaseModel):
    """The attendance reports of the meeting's sessions (a series: of all its occurrences), newest
    first, with their records and each participant's join and leave intervals (Graph's shape)."""

    meeting_id: str = Field(description="The gateway's meeting id")
    limit_reached: bool = Field(
        description="Graph returned its maximum of 50 reports: older sessions are not listed"
    )
    warning: str | None = None
    reports: list[dict[str, Any]] = Field(description="Graph's meetingAttendanceReport objects")


def artifact_out(item: Transcript | Recording, content: str) -> ArtifactOut:
    return ArtifactOut(
        id=item.id,
        call_id=item.call_id,
        content_correlation_id=item.content_correlation_id,
        created_date_time=item.created_date_time,
        end_date_time=item.end_date_time,
        content=content,
    )


@dataclass(frozen=True)
class RecordingStream:
    """A recording's content on its way: Graph's status (200 or 206), the headers to answer with and
    the body, read from Graph as it is sent."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]


@dataclass(frozen=True)
class _Target:
    organizer: str
    graph_id: str
    placement: str


class MeetingArtifacts:
    """The artifact reads of :class:`~meetgate.gateway.service.GatewayService` (``service.artifacts``)."""

    def __init__(self, service: GatewayService, port: AsyncArtifactsPort | None) -> None:
        self.service = service
        self._port = port

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.service.settings.artifacts)

    def port(self, kind: str) -> AsyncArtifactsPort:
        if kind not in self.kinds or self._port is None:
            raise Problem(
                "artifact-kind-disabled",
                f"this gateway is not set up to read {kind}"
                + (f" (it reads: {', '.join(self.kinds)})" if self.kinds else " (it reads no artifacts)"),
                remedy=f'ask the gateway operator to add "{kind}" to the profile\'s `artifacts`, grant its '
                "permission (`meetgate setup app`), check it with `meetgate validate` and restart the gateway",
            )
        return self._port

    async def _target(
        self, consumer: ConsumerRecord, meeting_id: str, kind: str, ctx: CallContext
    ) -> tuple[AsyncArtifactsPort, _Target]:
        record: MeetingRecord = await self.service._owned(consumer, meeting_id, ctx)
        port = self.port(kind)
        calendar = record.placement == "calendar"
        if kind != "attendance" and not calendar:
            raise Problem(
                "calendar-meeting-required",
                f"this is a standalone meeting: Graph keeps no {kind} of it",
            )
        graph_id = record.graph_event_id if calendar else record.graph_meeting_id
        if graph_id is None:
            raise Problem(
                "not-found",
                "the meeting is still being created",
                remedy="retry its creation with the same Idempotency-Key first",
            )
        org = await self.service._organizer(consumer, record.organizer, ctx)
        return port, _Target(org, graph_id, "calendar" if calendar else "standalone")

    async def attendance(
        self, consumer: ConsumerRecord, meeting_id: str, ctx: CallContext
    ) -> MeetingAttendance:
        ctx.action = "meeting.attendance"
        port, t = await self._target(consumer, meeting_id, "attendance", ctx)
        found = await self.service._graph(
            "attendance", ctx, lambda: port.attendance(t.organizer, t.graph_id, placement=t.placement)
        )
        ctx.notes["reports"] = len(found.reports)
        return found

    async def transcripts(self, consumer: ConsumerRecord, meeting_id: str, ctx: CallContext) -> ArtifactList:
        ctx.action = "meeting.transcripts.list"
        port, t = await self._target(consumer, meeting_id, "transcripts", ctx)
        items = await self.service._graph(
            "transcripts", ctx, lambda: port.transcripts(t.organizer, t.graph_id, placement=t.placement)
        )
        base = f"/v1/meetings/{meeting_id}/transcripts/"
        return ArtifactList(value=[artifact_out(i, base + i.id) for i in items])

    async def transcript(
        self, consumer: ConsumerRecord, meeting_id: str, transcript_id: str, ctx: CallContext
    ) -> ArtifactOut:
        ctx.action = "meeting.transcript.get"
        port, t = await self._target(consumer, meeting_id, "transcripts", ctx)
        item = await self.service._graph(
            "transcript",
            ctx,
            lambda: port.transcript(t.organizer, t.graph_id, transcript_id, placement=t.placement),
        )
        return artifact_out(item, f"/v1/meetings/{meeting_id}/transcripts/{item.id}")

    async def transcript_content(
        self, consumer: ConsumerRecord, meeting_id: str, transcript_id: str, speakers: bool, ctx: CallContext
    ) -> TranscriptContent:
        ctx.action = "meeting.transcript.content"
        port, t = await self._target(consumer, meeting_id, "transcripts", ctx)
        return await self.service._graph(
            "transcript_content",
            ctx,
            lambda: port.transcript_content(
                t.organizer, t.graph_id, transcript_id, placement=t.placement, speakers=speakers
            ),
        )

    async def recordings(self, consumer: ConsumerRecord, meeting_id: str, ctx: CallContext) -> ArtifactList:
        ctx.action = "meeting.recordings.list"
        port, t = await self._target(consumer, meeting_id, "recordings", ctx)
        items = await self.service._graph(
            "recordings", ctx, lambda: port.recordings(t.organizer, t.graph_id, placement=t.placement)
        )
        base = f"/v1/meetings/{meeting_id}/recordings/"
        return ArtifactList(value=[artifact_out(i, base + i.id + "/content") for i in items])

    async def recording(
        self, consumer: ConsumerRecord, meeting_id: str, recording_id: str, ctx: CallContext
    ) -> ArtifactOut:
        ctx.action = "meeting.recording.get"
        port, t = await self._target(consumer, meeting_id, "recordings", ctx)
        item = await self.service._graph(
            "recording",
            ctx,
            lambda: port.recording(t.organizer, t.graph_id, recording_id, placement=t.placement),
        )
        return artifact_out(item, f"/v1/meetings/{meeting_id}/recordings/{item.id}/content")

    async def recording_content(
        self,
        consumer: ConsumerRecord,
        meeting_id: str,
        recording_id: str,
        range_header: str | None,
        ctx: CallContext,
    ) -> RecordingStream:
        """Start the recording's download from Graph; answers once Graph's status and headers are in
        (its errors as problems), the body follows as Graph sends it."""
        ctx.action = "meeting.recording.content"
        port, t = await self._target(consumer, meeting_id, "recordings", ctx)
        if range_header is not None:
            ctx.notes["range"] = range_header[:100]
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
        head: asyncio.Future[tuple[int, dict[str, str]]] = asyncio.get_running_loop().create_future()

        def on_response(status: int, headers: Mapping[str, str]) -> None:
            if not head.done():
                head.set_result((status, {k.lower(): v for k, v in headers.items()}))

        async def put(chunk: bytes) -> None:
            async with asyncio.timeout(IDLE_SECONDS):  # a reader gone before its body started
                await queue.put(chunk)

        async def produce() -> Recording:
            return await port.stream_recording(
                t.organizer,
                t.graph_id,
                recording_id,
                put,
                placement=t.placement,
                range=range_header,
                on_response=on_response,
            )

        task: asyncio.Task[Recording] = asyncio.create_task(produce())

        async def started() -> tuple[int, dict[str, str]]:
            waiting: set[asyncio.Future[Any]] = {head, task}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if head.done():
                return head.result()
            task.result()  # Graph refused before answering with content: raises its error
            raise RuntimeError("the recording's download ended without an answer")

        try:
            status, graph_headers = await self.service._graph("recording_content", ctx, started)
        except BaseException:
            task.cancel()
            raise
        if status == 416:
            task.cancel()
            raise Problem(
                "range-not-satisfiable",
                f"the range {range_header!r} lies beyond the recording's end",
                headers={"Content-Range": graph_headers.get("content-range", "bytes */*")},
            )
        headers = {k: graph_headers[k] for k in PASSED_HEADERS + CHECKSUM_HEADERS if k in graph_headers}
        headers.setdefault("accept-ranges", "bytes")
        digest = hashlib.sha256(recording_id.encode()).hexdigest()[:12]
        headers["content-disposition"] = f'attachment; filename="recording-{digest}.mp4"'
        ctx.notes["status"] = status
        return RecordingStream(status, headers, _relay(queue, task))


async def _relay(queue: asyncio.Queue[bytes], task: asyncio.Task[Recording]) -> AsyncIterator[bytes]:
    """The chunks ``task`` puts in ``queue``, until it ends (its error then breaks the answer off:
    the status line has gone out already). A reader that goes away cancels the download."""
    getter: asyncio.Future[bytes] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            waiting: set[asyncio.Future[Any]] = {getter, task}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
                continue
            getter.cancel()
            while not queue.empty():
                yield queue.get_nowait()
            task.result()
            return
    finally:
        if getter is not None and not getter.done():
            getter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
