"""``/v1/meetings/{id}/attendance``, ``/transcripts[/{tid}]``, ``/recordings[/{rid}[/content]]``: what
one of the consumer's meetings produced (see :mod:`meetgate.gateway.artifacts`).

The endpoints carry comments, not docstrings: FastAPI would publish a docstring as the operation's
``description`` in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import StreamingResponse

from meetgate.gateway.artifacts import ArtifactList, ArtifactOut, AttendanceOut
from meetgate.gateway.deps import Context, CurrentConsumer, MeetingId, Service
from meetgate.gateway.schemas import PROBLEM_RESPONSES
from meetgate.graph.artifact_models import attendance_csv

router = APIRouter(prefix="/v1/meetings", tags=["artifacts"], responses=PROBLEM_RESPONSES)

#: a transcript's or recording's id, as the lists give it (Graph's opaque, base64-like id)
ArtifactId = Annotated[str, Path(pattern=r"^[A-Za-z0-9=+_\-]{1,1024}$", description="The id a list returned")]


@router.get(
    "/{meeting_id}/attendance",
    response_model=AttendanceOut,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
    summary="Who attended the meeting's sessions, when (a series: every occurrence held)",
)
async def meeting_attendance(
    consumer: CurrentConsumer,
    meeting_id: MeetingId,
    service: Service,
    ctx: Context,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response | AttendanceOut:
    # Every attendance report with its records and intervals; ``format=csv``: one row per interval.
    found = await service.artifacts.attendance(consumer, meeting_id, ctx)
    if format == "csv":
        return Response(
            attendance_csv(found),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{meeting_id}-attendance.csv"'},
        )
    return AttendanceOut(
        meeting_id=meeting_id,
        limit_reached=found.limit_reached,
        warning=found.warning,
        reports=[report.to_graph() for report in found.reports],
    )


@router.get(
    "/{meeting_id}/transcripts",
    response_model=ArtifactList,
    summary="The meeting's transcripts (calendar meetings)",
)
async def list_transcripts(
    consumer: CurrentConsumer, meeting_id: MeetingId, service: Service, ctx: Context
) -> ArtifactList:
    # One transcript per session in which transcription was started; empty until Graph has them.
    return await service.artifacts.transcripts(consumer, meeting_id, ctx)


@router.get(
    "/{meeting_id}/transcripts/{transcript_id}",
    response_model=ArtifactOut,
    responses={
        200: {
            "content": {"text/vtt": {}, "text/plain": {}},
            "description": "Metadata (JSON), the WebVTT (Accept: text/vtt) or speaker lines (text/plain)",
        }
    },
    summary="A transcript: metadata, WebVTT or plain text with speakers",
)
async def get_transcript(
    consumer: CurrentConsumer,
    meeting_id: MeetingId,
    transcript_id: ArtifactId,
    service: Service,
    ctx: Context,
    accept: Annotated[str | None, Header()] = None,
    speakers: Annotated[bool, Query(description="false: without speaker names")] = True,
) -> Response | ArtifactOut:
    # ``Accept: text/vtt``: the WebVTT; ``text/plain``: one ``Speaker: text`` line per turn; else JSON.
    wanted = _preferred(accept)
    if wanted is None:
        return await service.artifacts.transcript(consumer, meeting_id, transcript_id, ctx)
    content = await service.artifacts.transcript_content(consumer, meeting_id, transcript_id, speakers, ctx)
    if wanted == "text/vtt":
        return Response(content.vtt, media_type="text/vtt; charset=utf-8")
    return Response(content.text, media_type="text/plain; charset=utf-8")


def _preferred(accept: str | None) -> str | None:
    """``text/vtt`` or ``text/plain`` when the Accept header asks for one before JSON (None: JSON)."""
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("text/vtt", "text/plain"):
            return media
        if media in ("application/json", "application/*", "*/*"):
            return None
    return None


@router.get(
    "/{meeting_id}/recordings",
    response_model=ArtifactList,
    summary="The meeting's recordings (calendar meetings)",
)
async def list_recordings(
    consumer: CurrentConsumer, meeting_id: MeetingId, service: Service, ctx: Context
) -> ArtifactList:
    # One recording per session in which recording was started; empty until Graph has them.
    return await service.artifacts.recordings(consumer, meeting_id, ctx)


@router.get(
    "/{meeting_id}/recordings/{recording_id}",
    response_model=ArtifactOut,
    summary="A recording's metadata",
)
async def get_recording(
    consumer: CurrentConsumer,
    meeting_id: MeetingId,
    recording_id: ArtifactId,
    service: Service,
    ctx: Context,
) -> ArtifactOut:
    # The recording's metadata; its content is at ``content``.
    return await service.artifacts.recording(consumer, meeting_id, recording_id, ctx)


@router.get(
    "/{meeting_id}/recordings/{recording_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "The recording, streamed from Graph"},
        206: {"content": {"video/mp4": {}}, "description": "The range asked for, with Content-Range"},
        416: {"description": "The range lies beyond the end (Content-Range: bytes */size)"},
    },
    summary="A recording's content, streamed (Range supported)",
)
async def recording_content(
    consumer: CurrentConsumer,
    meeting_id: MeetingId,
    recording_id: ArtifactId,
    service: Service,
    ctx: Context,
    range: Annotated[
        str | None,
        Header(max_length=200, description="e.g. bytes=1048576- to resume a download"),
    ] = None,
) -> StreamingResponse:
    # The recording's bytes as Graph sends them; a Range is passed to Graph (206, or 416).
    stream = await service.artifacts.recording_content(consumer, meeting_id, recording_id, range, ctx)
    return StreamingResponse(
        stream.body,
        status_code=stream.status,
        headers=stream.headers,
        media_type=stream.headers.get("content-type", "video/mp4"),
    )
