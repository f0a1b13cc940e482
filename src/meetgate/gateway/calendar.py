"""Calendar-backed meetings in the gateway: Exchange events with a Teams meeting, and recurring series.

A meeting's placement is chosen at creation (the request's ``placement``, else the consumer's default,
else standalone) and recorded with its reservation, so every retry and every replica taking over a
creation makes the same kind of meeting. Creation keeps the standalone design: consumer + Idempotency-Key
reserve one row, and the external id derived from them is what the Graph client looks for in the
organizer's calendar (an extended property) before every POST, so a lost answer never makes a second
event. :class:`CalendarMeetings` holds the use cases the standalone placement does not have
(occurrences, their changes and cancellations, cancellation with a message); the helpers turn the
gateway's documents into the client's models and Graph's events into stored snapshots.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from meetgate.gateway.ports import AsyncEventsPort, Attendee, CalendarMeeting, MeetingRequest, MeetingUpdate
from meetgate.gateway.problems import Problem
from meetgate.gateway.schemas import (
    CALENDAR_FIELDS,
    MeetingCreate,
    MeetingOut,
    MeetingPatch,
    OccurrenceList,
    OccurrenceOut,
    OccurrencePatch,
)
from meetgate.graph.models import OnlineMeeting
from meetgate.store import ConsumerRecord, MeetingRecord

if TYPE_CHECKING:
    from meetgate.gateway.service import CallContext, GatewayService

#: the widest window of one occurrences request
MAX_WINDOW = dt.timedelta(days=731)
#: the window when none is given: from now, this long
DEFAULT_WINDOW = dt.timedelta(days=90)
_OPTIONS = ("lobby_bypass_scope", "allowed_presenters", "allow_meeting_chat")


def placement_of(body: MeetingCreate, consumer: ConsumerRecord) -> str:
    """The placement a creation asks for: the request's, else the consumer's default, else standalone."""
    return body.placement or consumer.default_placement or "standalone"


def _invalid(errors: list[tuple[tuple[str | int, ...], str]], remedy: str) -> Problem:
    cleaned = [{"loc": ["body", *loc], "msg": msg, "type": "placement"} for loc, msg in errors]
    where = ".".join(str(part) for part in errors[0][0])
    return Problem("invalid-request", f"{where}: {errors[0][1]}", remedy=remedy, extra={"errors": cleaned})


def check_placement_fields(body: MeetingCreate | MeetingPatch, placement: str) -> None:
    """Refuse, field by field, what the placement cannot hold: calendar-only fields (and optional
    attendees) on a standalone meeting; a calendar meeting without a start, and Teams roles on a
    calendar meeting's attendees (Exchange invites attendees as required or optional)."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    attendees = body.attendees or []
    if placement == "standalone":
        errors += [
            ((name,), f"{name} is for calendar meetings only (this meeting is standalone)")
            for name in CALENDAR_FIELDS
            if getattr(body, name) is not None
        ]
        errors += [
            (("attendees", i, "optional"), "optional attendees are for calendar meetings only")
            for i, a in enumerate(attendees)
            if a.optional
        ]
        if errors:
            raise _invalid(
                errors,
                'send "placement": "calendar" for a calendar meeting (recurrence, time zone, body, location, '
                "optional attendees), or leave those fields out",
            )
        return
    if isinstance(body, MeetingCreate) and body.start is None:
        raise _invalid(
            [(("start",), "a calendar meeting needs a start")],
            "give start and end (ISO 8601 with a timezone); a calendar event has a time on the calendar",
        )
    errors += [
        (("attendees", i, "role"), f"role {a.role} cannot be given to a calendar meeting's attendee")
        for i, a in enumerate(attendees)
        if a.role != "attendee"
    ]
    if errors:
        raise _invalid(
            errors,
            'leave the role out (Exchange invites attendees as required or optional: "optional": true); '
            'choose who presents with "allowed_presenters", or create a standalone meeting for roles',
        )


def event_request(body: MeetingCreate) -> MeetingRequest:
    """The Graph client's request for a calendar meeting."""
    return MeetingRequest(
        placement="calendar",
        subject=body.subject,
        start=body.start,
        end=body.end,
        attendees=[Attendee(upn=a.upn, optional=a.optional) for a in body.attendees],
        lobby_bypass_scope=body.lobby_bypass_scope,
        dial_in_bypass=body.dial_in_bypass,
        allowed_presenters=body.allowed_presenters,
        allow_meeting_chat=body.allow_meeting_chat,
        recurrence=body.recurrence,
        time_zone=body.time_zone,
        body=body.body,
        location=body.location,
    )


def event_update(patch: MeetingPatch) -> MeetingUpdate:
    """The Graph client's changes to a calendar meeting or series (only the fields given)."""
    given = patch.model_fields_set - {"allow_past"}
    values: dict[str, Any] = {name: getattr(patch, name) for name in given}
    if patch.attendees is not None:
        values["attendees"] = [Attendee(upn=a.upn, optional=a.optional) for a in patch.attendees]
    return MeetingUpdate(**values)


def event_snapshot(
    event: CalendarMeeting, meeting: OnlineMeeting | None, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the store keeps of a calendar meeting: the event's fields, and the Teams options (from the
    onlineMeeting when it was read, else as stored before)."""
    old = previous or {}
    location = (event.raw.get("location") or {}).get("displayName") if event.raw else None
    snap: dict[str, Any] = {
        "subject": event.subject,
        "organizer_upn": event.organizer,
        "start": event.start.isoformat() if event.start else None,
        "end": event.end.isoformat() if event.end else None,
        "attendees": [
            {"upn": a.address, "role": "attendee", "optional": a.type == "optional"} for a in event.attendees
        ],
        "kind": event.kind,
        "recurrence": event.recurrence,
        "time_zone": event.time_zone or old.get("time_zone"),
        "location": location or None,
        "web_link": event.web_link,
        "ical_uid": event.ical_uid,
        "join_meeting_id": meeting.join_meeting_id if meeting else old.get("join_meeting_id"),
        "passcode": meeting.passcode if meeting else old.get("passcode"),
    }
    for name in _OPTIONS:
        value = getattr(meeting, name) if meeting is not None else old.get(name)
        snap[name] = str(value) if value is not None else None
    return snap


def occurrence_out(event: CalendarMeeting, *, cancelled: bool = False) -> OccurrenceOut:
    location = (event.raw.get("location") or {}).get("displayName") if event.raw else None
    return OccurrenceOut(
        id=event.id,
        kind=event.kind,
        subject=event.subject,
        start=event.start,
        end=event.end,
        location=location or None,
        join_url=event.join_web_url,
        web_link=event.web_link,
        cancelled=cancelled or event.is_cancelled,
    )


def window(
    start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The occurrences window: ``start`` (default now) to ``end`` (default 90 days on), at most two years."""
    begin = start or now
    finish = end or begin + DEFAULT_WINDOW
    problems = []
    for name, value in (("start", begin), ("end", finish)):
        if value.tzinfo is None:
            problems.append(((name,), f"{name} has no time zone"))
    if not problems and finish <= begin:
        problems.append((("end",), "end is not after start"))
    if not problems and finish - begin > MAX_WINDOW:
        problems.append((("end",), "the window is longer than two years"))
    if problems:
        cleaned = [{"loc": ["query", *loc], "msg": msg, "type": "window"} for loc, msg in problems]
        raise Problem(
            "invalid-request",
            f"{problems[0][0][0]}: {problems[0][1]}",
            remedy="give start and end as ISO 8601 times with Z or an offset, end after start, at most two "
            "years apart (page through longer spans window by window)",
            extra={"errors": cleaned},
        )
    return begin, finish


class CalendarMeetings:
    """The calendar placement's own use cases, on the gateway service's governance and store."""

    def __init__(self, service: GatewayService, events: AsyncEventsPort | None) -> None:
        self.service = service
        self.events = events

    def port(self) -> AsyncEventsPort:
        """The events service, or the refusal of a gateway built for standalone meetings only."""
        if self.events is None:
            raise Problem(
                "not-for-placement",
                "this gateway serves standalone meetings only",
                remedy='leave "placement" out or send "standalone"; the operator can enable calendar meetings',
            )
        return self.events

    async def create(
        self, body: MeetingCreate, org: str, external_id: str, record: MeetingRecord, ctx: CallContext
    ) -> tuple[MeetingRecord, bool]:
        """Create (or find) the calendar meeting of a reservation: the client looks for the external id
        in the organizer's calendar before every POST, so this request, a retry, or another replica's
        takeover make one event. Returns the saved record and whether the event was made now."""
        request = event_request(body)
        port = self.port()
        result = await self.service._graph(
            "event_create_or_get",
            ctx,
            lambda: port.create_or_get(org, external_id, request, allow_past=body.allow_past),
        )
        saved = await self.service._db(
            self.service.store.save_meeting,
            meeting_id=record.id,
            state="active",
            snapshot=event_snapshot(result.event, result.meeting),
            graph_meeting_id=result.meeting.id if result.meeting else None,
            graph_event_id=result.event.id,
            join_url=result.event.join_web_url,
        )
        return saved, result.created

    async def refresh(
        self, consumer: ConsumerRecord, record: MeetingRecord, ctx: CallContext
    ) -> MeetingRecord:
        """The meeting as Exchange holds it now (stored as the new snapshot)."""
        if record.state in ("pending", "failed", "cancelled") or record.graph_event_id is None:
            return record
        org = await self.service._organizer(consumer, record.organizer, ctx)
        event_id, port = record.graph_event_id, self.port()
        event = await self.service._graph("event_get", ctx, lambda: port.get(org, event_id))
        return await self.service._db(
            self.service.store.save_meeting,
            meeting_id=record.id,
            state=record.state,
            snapshot=event_snapshot(event, None, record.snapshot),
            join_url=event.join_web_url,
        )

    async def update(
        self, consumer: ConsumerRecord, record: MeetingRecord, patch: MeetingPatch, ctx: CallContext
    ) -> MeetingOut:
        """Change a calendar meeting, or a series as a whole; Exchange notifies the attendees."""
        from meetgate.gateway.meeting_shapes import meeting_out

        if record.graph_event_id is None:
            raise Problem("not-found", "the meeting is still being created; retry its creation first")
        org = await self.service._organizer(consumer, record.organizer, ctx)
        changes = event_update(patch)
        event_id, port = record.graph_event_id, self.port()
        event = await self.service._graph(
            "event_update", ctx, lambda: port.update(org, event_id, changes, allow_past=patch.allow_past)
        )
        if not event.raw:  # only the Teams options changed: the event itself is as it was
            event = await self.service._graph("event_get", ctx, lambda: port.get(org, event_id))
        snapshot = event_snapshot(event, None, record.snapshot)
        snapshot.update({name: getattr(patch, name) for name in _OPTIONS if getattr(patch, name) is not None})
        saved = await self.service._db(
            self.service.store.save_meeting,
            meeting_id=record.id,
            state=record.state,
            snapshot=snapshot,
            join_url=event.join_web_url,
            revise=True,
        )
        return meeting_out(saved)

    async def _series(
        self, consumer: ConsumerRecord, meeting_id: str, ctx: CallContext
    ) -> tuple[MeetingRecord, str, str]:
        """The consumer's calendar series (record, organizer, master's event id), governed as any call."""
        record = await self.service._owned(consumer, meeting_id, ctx)
        if record.placement != "calendar":
            raise Problem(
                "not-for-placement",
                "a standalone meeting has no occurrences",
                remedy='create the meeting with "placement": "calendar" and a "recurrence" for a series',
            )
        if record.state == "cancelled":
            raise Problem("meeting-gone", "the series was cancelled")
        if record.graph_event_id is None:
            raise Problem("not-found", "the meeting is still being created; retry its creation first")
        if (record.snapshot or {}).get("kind") not in (None, "seriesMaster"):
            raise Problem(
                "not-for-placement",
                "this calendar meeting does not recur: it has no occurrences",
                remedy=f"read the meeting itself with GET /v1/meetings/{record.id}, or give it a recurrence",
            )
        org = await self.service._organizer(consumer, record.organizer, ctx)
        return record, org, record.graph_event_id

    async def occurrences(
        self,
        consumer: ConsumerRecord,
        meeting_id: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
        limit: int,
        skip: int,
        ctx: CallContext,
    ) -> OccurrenceList:
        """The series' occurrences (and exceptions) overlapping the window, ``limit`` from ``skip``."""
        ctx.action = "meeting.occurrences"
        begin, finish = window(start, end, self.service.clock())
        _record, org, event_id = await self._series(consumer, meeting_id, ctx)
        port = self.port()
        found = await self.service._graph(
            "event_occurrences", ctx, lambda: port.occurrences(org, event_id, begin, finish)
        )
        page = found[skip : skip + limit]
        following = None
        if skip + limit < len(found):
            query = urlencode(
                {"start": begin.isoformat(), "end": finish.isoformat(), "limit": limit, "skip": skip + limit}
            )
            following = f"/v1/meetings/{meeting_id}/occurrences?{query}"
        return OccurrenceList(value=[occurrence_out(e) for e in page], next=following)

    async def _occurrence(
        self, org: str, event_id: str, occurrence_id: str, ctx: CallContext
    ) -> CalendarMeeting:
        """One occurrence of this series, read from Graph: an id of another event is not found here."""
        port = self.port()
        ctx.notes["occurrence_id"] = occurrence_id
        try:
            event = await self.service._graph("event_get", ctx, lambda: port.get(org, occurrence_id))
        except Problem as problem:
            if problem.slug != "not-found" and problem.slug != "graph-bad-request":
                raise
            event = None
        if (
            event is None
            or event.series_master_id != event_id
            or event.kind not in ("occurrence", "exception")
        ):
            raise Problem("not-found", "this series has no occurrence with that id")
        return event

    async def update_occurrence(
        self,
        consumer: ConsumerRecord,
        meeting_id: str,
        occurrence_id: str,
        patch: OccurrencePatch,
        ctx: CallContext,
    ) -> OccurrenceOut:
        """Change one occurrence (it becomes an exception); Exchange notifies the attendees."""
        ctx.action = "meeting.occurrence.update"
        _record, org, event_id = await self._series(consumer, meeting_id, ctx)
        await self._occurrence(org, event_id, occurrence_id, ctx)
        given = patch.model_fields_set - {"allow_past"}
        changes = MeetingUpdate(**{name: getattr(patch, name) for name in given})
        port = self.port()
        event = await self.service._graph(
            "event_update",
            ctx,
            lambda: port.update(org, occurrence_id, changes, allow_past=patch.allow_past),
        )
        return occurrence_out(event)

    async def cancel_occurrence(
        self,
        consumer: ConsumerRecord,
        meeting_id: str,
        occurrence_id: str,
        message: str | None,
        ctx: CallContext,
    ) -> OccurrenceOut:
        """Cancel one occurrence with a message to the attendees; the series goes on."""
        ctx.action = "meeting.occurrence.cancel"
        _record, org, event_id = await self._series(consumer, meeting_id, ctx)
        occurrence = await self._occurrence(org, event_id, occurrence_id, ctx)
        port = self.port()
        await self.service._graph(
            "event_cancel", ctx, lambda: port.cancel(org, occurrence_id, message=message)
        )
        return occurrence_out(occurrence, cancelled=True)

    async def cancel(
        self, record: MeetingRecord, org: str, message: str | None, ctx: CallContext
    ) -> MeetingOut:
        """Cancel a calendar meeting or a whole series, with a message to the attendees (organizer only).
        An event gone already (cancelled in Outlook, or an answer lost on the way) counts as cancelled."""
        from meetgate.gateway.meeting_shapes import meeting_out

        assert record.graph_event_id is not None
        event_id = record.graph_event_id
        port = self.port()
        try:
            await self.service._graph(
                "event_cancel", ctx, lambda: port.cancel(org, event_id, message=message)
            )
        except Problem:
            if ctx.notes.get("graph_error") not in ("MeetingNotFound", "NotFoundError"):
                raise
        saved = await self.service._db(
            self.service.store.save_meeting,
            meeting_id=record.id,
            state="cancelled",
            snapshot=record.snapshot,
            revise=True,
        )
        return meeting_out(saved)
