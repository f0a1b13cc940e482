"""``/v1/meetings``: create (idempotent; standalone or calendar-backed, a calendar meeting may recur),
find by join URL, read, change, cancel (with a message to a calendar meeting's attendees) or lock, the
iCalendar invitation of a standalone meeting, and a series' occurrences (list, change or cancel one). Every operation needs the consumer's API key (:data:`~meetgate.gateway.deps.CurrentConsumer`).

The endpoints carry comments, not docstrings: FastAPI would publish a docstring as the operation's
``description`` in ``/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Response

from meetgate.gateway.deps import Context, CurrentConsumer, MeetingId, Service
from meetgate.gateway.problems import Problem
from meetgate.gateway.schemas import (
    PROBLEM_RESPONSES,
    CancelRequest,
    MeetingCreate,
    MeetingList,
    MeetingOut,
    MeetingPatch,
    OccurrenceList,
    OccurrenceOut,
    OccurrencePatch,
)

router = APIRouter(prefix="/v1/meetings", tags=["meetings"], responses=PROBLEM_RESPONSES)

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Unique per meeting; resend it unchanged on retries",
    ),
]


#: an occurrence's id, as the occurrences list gives it (Graph's event id of the occurrence)
OccurrenceId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9=+_\-]{1,512}$", description="The occurrence's id (from /occurrences)")
]
WindowTime = Annotated[dt.datetime | None, Query(description="ISO 8601 with a timezone (Z or an offset)")]


@router.post("", status_code=201, response_model=MeetingOut, summary="Create a meeting (idempotent)")
async def create_meeting(
    response: Response,
    body: MeetingCreate,
    consumer: CurrentConsumer,
    idempotency_key: IdempotencyKey,
    service: Service,
    ctx: Context,
) -> MeetingOut:
    # Create a meeting; a retry with the same Idempotency-Key answers 200 with the same meeting.
    result = await service.create(consumer, body, idempotency_key, ctx)
    response.headers["Location"] = f"/v1/meetings/{result.meeting.id}"
    if not result.created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return result.meeting


@router.get("", response_model=MeetingList, summary="Find a meeting by its join URL")
async def find_meeting(
    consumer: CurrentConsumer,
    join_url: Annotated[str, Query(min_length=10, max_length=2048)],
    service: Service,
    ctx: Context,
) -> MeetingList:
    # The consumer's meeting with that join URL, or an empty list.
    try:
        found = await service.find_by_join_url(consumer, join_url, ctx)
    except Problem as problem:
        if problem.slug != "not-found":
            raise
        return MeetingList(value=[])
    return MeetingList(value=[found])


@router.get("/{meeting_id}", response_model=MeetingOut, summary="Read a meeting")
async def get_meeting(
    consumer: CurrentConsumer, meeting_id: MeetingId, service: Service, ctx: Context
) -> MeetingOut:
    # One of the consumer's meetings.
    return await service.get(consumer, meeting_id, ctx)


@router.patch("/{meeting_id}", response_model=MeetingOut, summary="Reschedule or change a meeting")
async def patch_meeting(
    consumer: CurrentConsumer, meeting_id: MeetingId, body: MeetingPatch, service: Service, ctx: Context
) -> MeetingOut:
    # Change the fields given in the body.
    return await service.update(consumer, meeting_id, body, ctx)


@router.delete("/{meeting_id}", response_model=MeetingOut, summary="Cancel (delete) or lock a meeting")
async def delete_meeting(
    consumer: CurrentConsumer,
    meeting_id: MeetingId,
    service: Service,
    ctx: Context,
    mode: Annotated[Literal["delete", "lock"], Query()] = "delete",
) -> MeetingOut:
    # Cancel the meeting (``mode=delete``) or lock it (``mode=lock``, standalone meetings only).
    return await service.cancel(consumer, meeting_id, mode, ctx)


@router.post(
    "/{meeting_id}/cancel",
    response_model=MeetingOut,
    summary="Cancel a meeting or a whole series, with a message to the attendees",
)
async def cancel_meeting(
    consumer: CurrentConsumer,
    meeting_id: MeetingId,
    service: Service,
    ctx: Context,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> MeetingOut:
    # Cancel; Exchange sends a calendar meeting's attendees the cancellation with the message.
    message = body.message if body is not None else None
    return await service.cancel(consumer, meeting_id, "delete", ctx, message=message)


@router.get(
    "/{meeting_id}/occurrences",
    response_model=OccurrenceList,
    summary="The occurrences of a recurring calendar meeting in a window",
)
async def list_occurrences(
    consumer: CurrentConsumer,
    meeting_id: MeetingId,
    service: Service,
    ctx: Context,
    start: WindowTime = None,
    end: WindowTime = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    skip: Annotated[int, Query(ge=0, le=10000)] = 0,
) -> OccurrenceList:
    # Occurrences and exceptions overlapping [start, end) (default: now to 90 days on, at most two
    # years), ``limit`` at a time; ``next`` is the following page.
    return await service.calendar.occurrences(consumer, meeting_id, start, end, limit, skip, ctx)


@router.patch(
    "/{meeting_id}/occurrences/{occurrence_id}",
    response_model=OccurrenceOut,
    summary="Reschedule or change one occurrence of a series",
)
async def patch_occurrence(
    consumer: CurrentConsumer,
    meeting_id: MeetingId,
    occurrence_id: OccurrenceId,
    body: OccurrencePatch,
    service: Service,
    ctx: Context,
) -> OccurrenceOut:
    # Change one occurrence (it becomes an exception); the rest of the series stays.
    changed = await service.calendar.update_occurrence(consumer, meeting_id, occurrence_id, body, ctx)
    await service.occurrence_changed(consumer, meeting_id, changed)
    return changed


@router.post(
    "/{meeting_id}/occurrences/{occurrence_id}/cancel",
    response_model=OccurrenceOut,
    summary="Cancel one occurrence of a series, with a message to the attendees",
)
async def cancel_occurrence(
    consumer: CurrentConsumer,
    meeting_id: MeetingId,
    occurrence_id: OccurrenceId,
    service: Service,
    ctx: Context,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> OccurrenceOut:
    # Cancel one occurrence; the series goes on.
    message = body.message if body is not None else None
    cancelled = await service.calendar.cancel_occurrence(consumer, meeting_id, occurrence_id, message, ctx)
    await service.occurrence_changed(consumer, meeting_id, cancelled)
    return cancelled


@router.get(
    "/{meeting_id}/invite.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "iCalendar invitation"}},
    summary="An iCalendar invitation to send to attendees (standalone meetings)",
)
async def meeting_invite(
    consumer: CurrentConsumer, meeting_id: MeetingId, service: Service, ctx: Context
) -> Response:
    # The meeting as an iCalendar file (``text/calendar``).
    text = await service.invite(consumer, meeting_id, ctx)
    return Response(
        text,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{meeting_id}.ics"'},
    )
