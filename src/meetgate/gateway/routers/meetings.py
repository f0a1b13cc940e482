"""``/v1/meetings``: create (idempotent), find by join URL, read, change, cancel or lock, and the
iCalendar invitation. Every operation needs the consumer's API key (:data:`~meetgate.gateway.deps.CurrentConsumer`).

The endpoints carry comments, not docstrings: FastAPI would publish a docstring as the operation's
``description`` in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response

from meetgate.gateway.deps import Context, CurrentConsumer, MeetingId, Service
from meetgate.gateway.problems import Problem
from meetgate.gateway.schemas import PROBLEM_RESPONSES, MeetingCreate, MeetingList, MeetingOut, MeetingPatch

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
    # Cancel the meeting (``mode=delete``) or lock it (``mode=lock``).
    return await service.cancel(consumer, meeting_id, mode, ctx)


@router.get(
    "/{meeting_id}/invite.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "iCalendar invitation"}},
    summary="An iCalendar invitation to send to attendees",
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
