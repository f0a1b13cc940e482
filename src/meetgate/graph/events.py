"""Calendar-backed Teams meetings (Exchange events with ``isOnlineMeeting``), sync and async.

Rules this service keeps so callers cannot get them wrong:

- ``create`` never makes a second event for one external id. Each event carries meetgate's external
  id in a single-value extended property (:data:`EXTERNAL_ID_PROPERTY`) and a ``transactionId``
  derived from it; before every POST the organizer's calendar is searched for that property, and a
  POST whose answer was lost (a dropped connection, a 500/502/504) is never repeated blindly: the
  search runs again first. Exchange's own ``transactionId`` dedupe window is undocumented, so it is
  a second line, not the first.
- Times are sent in the meeting's time zone (UTC unless ``time_zone`` names an IANA zone), so a
  weekly series keeps its local time across daylight-saving changes; a recurrence is an RFC 5545
  RRULE mapped by :mod:`~meetgate.graph.recurrence` (what Graph cannot express is refused first).
- Lobby, presenter and chat options live on the onlineMeeting behind the event: it is found by the
  event's join URL and patched, which needs the Teams application access policy as a standalone
  meeting does. Both planes must hold for an organizer.
- Calendar access comes from Exchange RBAC for Applications (scoped) or an Entra grant (every
  mailbox): a token's roles do not show RBAC grants, so refusals are read from Exchange's answer
  (:class:`~meetgate.graph.errors.MailboxAccessDenied`), never guessed from the token.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from meetgate.graph.directory import UserIdCache, resolve_user_id_op
from meetgate.graph.errors import MeetingRuleError, OrganizerNotFound, ServiceError, TransportError
from meetgate.graph.event_models import EXTERNAL_ID_PROPERTY, CalendarMeeting, CreateOrGetEventResult
from meetgate.graph.http import GraphCallContext
from meetgate.graph.meeting_rules import check_meeting
from meetgate.graph.meetings import MeetingOps, check_external_id, new_external_id, settings_body
from meetgate.graph.models import Attendee, MeetingRequest, MeetingUpdate, OnlineMeeting
from meetgate.graph.ops import Op, Operation, run_async, run_sync
from meetgate.graph.recurrence import parse_rrule, zone_of

if TYPE_CHECKING:
    from meetgate.graph.http import AsyncGraphHttp, GraphHttp

__all__ = [
    "CALENDAR_ROLE",
    "AsyncCalendarEventsService",
    "CalendarEventsService",
    "EventOps",
    "event_body",
    "transaction_id_for",
]

CALENDAR_ROLE = "Calendars.ReadWrite"
#: times in answers: UTC, whatever zone the event was made in
PREFER_UTC = {"Prefer": 'outlook.timezone="UTC"'}
#: how many times a create whose answer was lost is looked up and tried again
CREATE_ATTEMPTS = 3
_TRANSACTION_NAMESPACE = uuid.UUID("5f0b2c1e-8a4d-4c3b-9e7f-2d6a1b8c0e94")
_DEFAULT_DURATION = dt.timedelta(hours=1)


def transaction_id_for(organizer_id: str, external_id: str) -> str:
    """The ``transactionId`` of an event: the same for every attempt at one meeting."""
    return str(uuid.uuid5(_TRANSACTION_NAMESPACE, f"{organizer_id.lower()}\n{external_id}")).upper()


def _time_zone(request: MeetingRequest) -> str:
    return request.time_zone or "UTC"


def _local(moment: dt.datetime, zone_name: str) -> dict[str, str]:
    local = moment.astimezone(zone_of(zone_name)).replace(tzinfo=None)
    return {"dateTime": local.isoformat(timespec="seconds"), "timeZone": zone_name}


def _attendees(attendees: Sequence[Attendee]) -> list[dict[str, Any]]:
    result = []
    for attendee in attendees:
        email: dict[str, Any] = {"address": attendee.upn}
        if attendee.display_name:
            email["name"] = attendee.display_name
        result.append({"emailAddress": email, "type": "optional" if attendee.optional else "required"})
    return result


def _item_body(text: str) -> dict[str, str]:
    looks_html = text.lstrip().startswith("<")
    return {"contentType": "HTML" if looks_html else "text", "content": text}


def event_body(
    request: MeetingRequest,
    organizer_id: str,
    external_id: str,
    *,
    allow_past: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The ``POST /users/{id}/events`` body of a calendar meeting, after checking the meeting rules."""
    check_meeting(
        subject=request.subject, start=request.start, end=request.end, allow_past=allow_past, now=now
    )
    if request.start is None:
        raise MeetingRuleError(
            "a calendar meeting needs a start",
            field="start",
            remedy="Give the start (ISO 8601 with a timezone) of the meeting.",
        )
    zone = _time_zone(request)
    end = request.end or request.start + _DEFAULT_DURATION
    body: dict[str, Any] = {
        "subject": request.subject or "",
        "start": _local(request.start, zone),
        "end": _local(end, zone),
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
        "transactionId": transaction_id_for(organizer_id, external_id),
        "singleValueExtendedProperties": [{"id": EXTERNAL_ID_PROPERTY, "value": external_id}],
    }
    if request.body is not None:
        body["body"] = _item_body(request.body)
    if request.location is not None:
        body["location"] = {"displayName": request.location}
    if request.attendees:
        body["attendees"] = _attendees(request.attendees)
    if request.recurrence is not None:
        body["recurrence"] = parse_rrule(request.recurrence, start=request.start, time_zone=zone).to_graph()
    return body


def event_update_body(
    changes: MeetingUpdate, *, allow_past: bool = False, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The ``PATCH`` body of a calendar meeting (or one occurrence) for ``changes``."""
    if changes.is_empty():
        raise MeetingRuleError("nothing to change", remedy="Give at least one field to update.")
    check_meeting(
        subject=changes.subject,
        start=changes.start,
        end=changes.end,
        update=True,
        allow_past=allow_past,
        now=now,
    )
    zone = _time_zone(changes)
    body: dict[str, Any] = {}
    if changes.subject is not None:
        body["subject"] = changes.subject
    if changes.start is not None and changes.end is not None:
        body["start"] = _local(changes.start, zone)
        body["end"] = _local(changes.end, zone)
    if changes.attendees is not None:
        body["attendees"] = _attendees(changes.attendees)
    if changes.body is not None:
        body["body"] = _item_body(changes.body)
    if changes.location is not None:
        body["location"] = {"displayName": changes.location}
    if changes.recurrence is not None:
        if changes.start is None:
            raise MeetingRuleError(
                "a new recurrence needs the series' start",
                field="start",
                remedy="Give start and end with the recurrence.",
            )
        body["recurrence"] = parse_rrule(changes.recurrence, start=changes.start, time_zone=zone).to_graph()
    return body


def _events_path(organizer_id: str, event_id: str | None = None, suffix: str = "") -> str:
    path = f"/users/{quote(organizer_id, safe='')}/events"
    if event_id is not None:
        if not event_id.strip():
            raise MeetingRuleError("the event id is empty", remedy="Give the calendar meeting's id.")
        path += f"/{quote(event_id, safe='=')}"
    return path + suffix


def _window_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventOps:
    """Each public operation as a generator of :class:`~meetgate.graph.ops.Op` (see ``ops.py``)."""

    def __init__(self, cache: UserIdCache) -> None:
        self.cache = cache
        self.meetings = MeetingOps(cache)

    def _organizer_id(self, organizer: str) -> Operation[str]:
        return (yield from resolve_user_id_op(self.cache, organizer, as_organizer=True))

    def _ctx(self, operation: str, organizer: str, event_id: str | None = None) -> GraphCallContext:
        # no required roles: Exchange RBAC grants do not show in the token, so a 403 is read from the answer
        return GraphCallContext(operation=operation, organizer=organizer, meeting_id=event_id)

    def _call(self, organizer: str, op: Op, organizer_id: str) -> Operation[Any]:
        try:
            return (yield op)
        except OrganizerNotFound:
            if organizer != organizer_id:
                self.cache.forget(organizer)
            raise

    def _find(self, organizer: str, organizer_id: str, external_id: str) -> Operation[CalendarMeeting | None]:
        value = external_id.replace("'", "''")
        query = f"singleValueExtendedProperties/Any(ep: ep/id eq '{EXTERNAL_ID_PROPERTY}' and ep/value eq '{value}')"
        data = yield from self._call(
            organizer,
            Op(
                "GET",
                _events_path(organizer_id),
                params={
                    "$filter": query,
                    "$expand": f"singleValueExtendedProperties($filter=id eq '{EXTERNAL_ID_PROPERTY}')",
                },
                headers=PREFER_UTC,
                context=self._ctx("look for the calendar meeting", organizer),
            ),
            organizer_id,
        )
        items = data.get("value", []) if isinstance(data, dict) else []
        found = [CalendarMeeting.from_graph(item) for item in items if isinstance(item, dict)]
        live = [item for item in found if not item.is_cancelled]
        return live[0] if live else None

    def find_by_external_id(self, organizer: str, external_id: str) -> Operation[CalendarMeeting | None]:
        check_external_id(external_id)
        organizer_id = yield from self._organizer_id(organizer)
        return (yield from self._find(organizer, organizer_id, external_id))

    def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest, allow_past: bool = False
    ) -> Operation[CreateOrGetEventResult]:
        check_external_id(external_id)
        organizer_id = yield from self._organizer_id(organizer)
        body = event_body(request, organizer_id, external_id, allow_past=allow_past)
        created = False
        event: CalendarMeeting | None = None
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            event = yield from self._find(organizer, organizer_id, external_id)
            if event is not None:
                break
            try:
                data = yield from self._call(
                    organizer,
                    Op(
                        "POST",
                        _events_path(organizer_id),
                        json=body,
                        headers=PREFER_UTC,
                        safe=False,  # repeated only after the search above finds nothing
                        context=self._ctx("create a calendar meeting", organizer),
                    ),
                    organizer_id,
                )
            except (TransportError, ServiceError) as exc:
                if not exc.maybe_applied or attempt == CREATE_ATTEMPTS:
                    raise
                continue  # the event may exist: search again before another POST
            event = CalendarMeeting.from_graph(data).model_copy(update={"external_id": external_id})
            created = True
            break
        assert event is not None
        meeting = yield from self._apply_options(organizer, organizer_id, event, request)
        return CreateOrGetEventResult(event=event, created=created, meeting=meeting)

    def _apply_options(
        self, organizer: str, organizer_id: str, event: CalendarMeeting, request: MeetingRequest
    ) -> Operation[OnlineMeeting | None]:
        settings = settings_body(request)
        if not settings:
            return None
        meeting = yield from self.online_meeting(organizer, event)
        if meeting is None:
            raise MeetingRuleError(
                f"the Teams meeting of calendar meeting {event.id} was not found by its join URL",
                remedy="Retry in a minute: Exchange may still be creating it.",
            )
        wanted = settings_body(request, meeting)
        if not wanted:
            return meeting
        data = yield Op(
            "PATCH",
            f"/users/{quote(organizer_id, safe='')}/onlineMeetings/{quote(meeting.id, safe='=')}",
            json=wanted,
            context=GraphCallContext(
                operation="apply the meeting options", organizer=organizer, meeting_id=meeting.id
            ),
        )
        return OnlineMeeting.from_graph(data) if isinstance(data, dict) else meeting

    def online_meeting(self, organizer: str, event: CalendarMeeting) -> Operation[OnlineMeeting | None]:
        """The onlineMeeting behind ``event`` (by its join URL; needs the Teams access policy)."""
        if not event.join_web_url:
            return None
        return (yield from self.meetings.find_by_join_url(organizer, event.join_web_url))

    def create(
        self, organizer: str, request: MeetingRequest, external_id: str | None, allow_past: bool = False
    ) -> Operation[CalendarMeeting]:
        result = yield from self.create_or_get(
            organizer, external_id or new_external_id(), request, allow_past
        )
        return result.event

    def get(self, organizer: str, event_id: str) -> Operation[CalendarMeeting]:
        organizer_id = yield from self._organizer_id(organizer)
        data = yield from self._call(
            organizer,
            Op(
                "GET",
                _events_path(organizer_id, event_id),
                params={"$expand": f"singleValueExtendedProperties($filter=id eq '{EXTERNAL_ID_PROPERTY}')"},
                headers=PREFER_UTC,
                context=self._ctx(f"get calendar meeting {event_id}", organizer, event_id),
            ),
            organizer_id,
        )
        return CalendarMeeting.from_graph(data)

    def update(
        self, organizer: str, event_id: str, changes: MeetingUpdate, allow_past: bool = False
    ) -> Operation[CalendarMeeting]:
        body = event_update_body(changes, allow_past=allow_past)
        organizer_id = yield from self._organizer_id(organizer)
        event = CalendarMeeting(id=event_id)
        if body:
            data = yield from self._call(
                organizer,
                Op(
                    "PATCH",
                    _events_path(organizer_id, event_id),
                    json=body,
                    headers=PREFER_UTC,
                    context=self._ctx(f"change calendar meeting {event_id}", organizer, event_id),
                ),
                organizer_id,
            )
            event = CalendarMeeting.from_graph(data)
        if settings_body(changes):
            if not event.join_web_url:
                event = yield from self.get(organizer, event_id)
            yield from self._apply_options(organizer, organizer_id, event, changes)
        return event

    def cancel(self, organizer: str, event_id: str, message: str | None) -> Operation[None]:
        """Cancel the meeting (or one occurrence) with a message to the attendees (organizer only)."""
        if message is not None and len(message) > 4000:
            raise MeetingRuleError(
                "the cancellation message is longer than 4,000 characters",
                field="message",
                remedy="Shorten the message.",
            )
        organizer_id = yield from self._organizer_id(organizer)
        yield from self._call(
            organizer,
            Op(
                "POST",
                _events_path(organizer_id, event_id, "/cancel"),
                json={"comment": message or ""},
                safe=True,  # cancelling twice leaves it cancelled (a repeat answers 404)
                context=self._ctx(f"cancel calendar meeting {event_id}", organizer, event_id),
            ),
            organizer_id,
        )

    def delete(self, organizer: str, event_id: str) -> Operation[None]:
        organizer_id = yield from self._organizer_id(organizer)
        yield from self._call(
            organizer,
            Op(
                "DELETE",
                _events_path(organizer_id, event_id),
                context=self._ctx(f"delete calendar meeting {event_id}", organizer, event_id),
            ),
            organizer_id,
        )

    def occurrences(
        self, organizer: str, event_id: str, start: dt.datetime, end: dt.datetime
    ) -> Operation[list[CalendarMeeting]]:
        """The occurrences (and exceptions) of a series in [start, end), every page."""
        if start.tzinfo is None or end.tzinfo is None or end <= start:
            raise MeetingRuleError(
                "the window needs a start before its end, both with a timezone",
                field="start",
                remedy="Give --from and --to as ISO 8601 times with Z or an offset.",
            )
        organizer_id = yield from self._organizer_id(organizer)
        url: str | None = _events_path(organizer_id, event_id, "/instances")
        params: dict[str, Any] | None = {
            "startDateTime": _window_time(start),
            "endDateTime": _window_time(end),
            "$top": "100",
        }
        found: list[CalendarMeeting] = []
        while url:
            page = yield from self._call(
                organizer,
                Op(
                    "GET",
                    url,
                    params=params,
                    headers=PREFER_UTC,
                    context=self._ctx(f"list the occurrences of {event_id}", organizer, event_id),
                ),
                organizer_id,
            )
            items = page.get("value", []) if isinstance(page, dict) else []
            found.extend(CalendarMeeting.from_graph(item) for item in items if isinstance(item, dict))
            url = page.get("@odata.nextLink") if isinstance(page, dict) else None
            params = None
        return found


class CalendarEventsService:
    """Calendar-backed meetings of approved organizers, synchronously. Organizer: object id or UPN."""

    def __init__(self, http: GraphHttp, cache: UserIdCache | None = None) -> None:
        self._http = http
        self._ops = EventOps(cache if cache is not None else UserIdCache())

    def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest, *, allow_past: bool = False
    ) -> CreateOrGetEventResult:
        """The calendar meeting keyed by ``external_id``: created now, or the one an earlier attempt made."""
        return run_sync(self._http, self._ops.create_or_get(organizer, external_id, request, allow_past))

    def create(
        self,
        organizer: str,
        request: MeetingRequest,
        *,
        external_id: str | None = None,
        allow_past: bool = False,
    ) -> CalendarMeeting:
        """Create a calendar meeting, safely (see the module docstring)."""
        return run_sync(self._http, self._ops.create(organizer, request, external_id, allow_past))

    def get(self, organizer: str, event_id: str) -> CalendarMeeting:
        return run_sync(self._http, self._ops.get(organizer, event_id))

    def find_by_external_id(self, organizer: str, external_id: str) -> CalendarMeeting | None:
        return run_sync(self._http, self._ops.find_by_external_id(organizer, external_id))

    def online_meeting(self, organizer: str, event: CalendarMeeting) -> OnlineMeeting | None:
        """The Teams meeting behind a calendar meeting (needs the Teams access policy)."""
        return run_sync(self._http, self._ops.online_meeting(organizer, event))

    def update(
        self, organizer: str, event_id: str, changes: MeetingUpdate, *, allow_past: bool = False
    ) -> CalendarMeeting:
        """Change the meeting, a series (its master's id) or one occurrence (its id); attendees are notified."""
        return run_sync(self._http, self._ops.update(organizer, event_id, changes, allow_past))

    def cancel(self, organizer: str, event_id: str, *, message: str | None = None) -> None:
        """Cancel with a message to the attendees (organizer only); an occurrence id cancels that one."""
        run_sync(self._http, self._ops.cancel(organizer, event_id, message))

    def delete(self, organizer: str, event_id: str) -> None:
        run_sync(self._http, self._ops.delete(organizer, event_id))

    def occurrences(
        self, organizer: str, event_id: str, start: dt.datetime, end: dt.datetime
    ) -> list[CalendarMeeting]:
        return run_sync(self._http, self._ops.occurrences(organizer, event_id, start, end))


class AsyncCalendarEventsService:
    """Calendar-backed meetings of approved organizers, asynchronously (same operations)."""

    def __init__(self, http: AsyncGraphHttp, cache: UserIdCache | None = None) -> None:
        self._http = http
        self._ops = EventOps(cache if cache is not None else UserIdCache())

    async def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest, *, allow_past: bool = False
    ) -> CreateOrGetEventResult:
        return await run_async(
            self._http, self._ops.create_or_get(organizer, external_id, request, allow_past)
        )

    async def create(
        self,
        organizer: str,
        request: MeetingRequest,
        *,
        external_id: str | None = None,
        allow_past: bool = False,
    ) -> CalendarMeeting:
        return await run_async(self._http, self._ops.create(organizer, request, external_id, allow_past))

    async def get(self, organizer: str, event_id: str) -> CalendarMeeting:
        return await run_async(self._http, self._ops.get(organizer, event_id))

    async def find_by_external_id(self, organizer: str, external_id: str) -> CalendarMeeting | None:
        return await run_async(self._http, self._ops.find_by_external_id(organizer, external_id))

    async def update(
        self, organizer: str, event_id: str, changes: MeetingUpdate, *, allow_past: bool = False
    ) -> CalendarMeeting:
        return await run_async(self._http, self._ops.update(organizer, event_id, changes, allow_past))

    async def cancel(self, organizer: str, event_id: str, *, message: str | None = None) -> None:
        await run_async(self._http, self._ops.cancel(organizer, event_id, message))

    async def delete(self, organizer: str, event_id: str) -> None:
        await run_async(self._http, self._ops.delete(organizer, event_id))

    async def occurrences(
        self, organizer: str, event_id: str, start: dt.datetime, end: dt.datetime
    ) -> list[CalendarMeeting]:
        return await run_async(self._http, self._ops.occurrences(organizer, event_id, start, end))
