"""The Exchange calendars of one sandbox tenant: events, series, invitations and cancellations.

An organizer's event lives in the organizer's mailbox; every attendee who is a user of the tenant sees
it in their own calendar under their own id (an *attendee view*), as Exchange delivers invitations.
A recurring event is a series master whose occurrences are computed from its recurrence
(:mod:`~meetgate_sandbox.calendar_recurrence`); changing one occurrence makes it an *exception*,
cancelling one removes it. Cancelling (or deleting) the organizer's event removes it from the
organizer's calendar and marks every attendee's copy cancelled ("Canceled: …").

Ids: events ``AAMkAD…AAA=``, an occurrence ``{event or view id without '='}OCC{yyyymmdd}=`` (opaque to
clients, as Graph's are). All methods take and return plain data; the routes in
:mod:`~meetgate_sandbox.calendar_api` render them.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meetgate_sandbox.calendar_recurrence import RecurrenceInvalid, check_recurrence, occurrence_dates
from meetgate_sandbox.calendar_time import zone_of

__all__ = ["CalendarEvent", "CalendarStore", "EventView", "Mailbox"]

_OCCURRENCE_ID = re.compile(r"^(?P<base>[A-Za-z0-9]+)OCC(?P<day>\d{8})=$")


@dataclass(frozen=True)
class Mailbox:
    """A user's mailbox: object id, SMTP address (the UPN in the sandbox) and display name."""

    id: str
    address: str
    name: str | None = None


@dataclass
class CalendarEvent:
    """An organizer's event (a single instance or a series master), as Exchange keeps it."""

    id: str
    mailbox_id: str
    organizer: dict[str, Any]
    ical_uid: str
    change_key: str
    created: dt.datetime
    modified: dt.datetime
    start: dt.datetime
    end: dt.datetime
    start_zone: str
    end_zone: str
    #: writable properties as last sent (subject, body, attendees, location …)
    props: dict[str, Any] = field(default_factory=dict)
    recurrence: dict[str, Any] | None = None
    transaction_id: str | None = None
    #: single-value extended properties: id as sent → value
    extended: dict[str, str] = field(default_factory=dict)
    is_online_meeting: bool = False
    online_meeting_provider: str = "unknown"
    #: ``onlineMeeting`` (joinUrl, conferenceId, tollNumber) and the sandbox meeting behind it
    online_meeting: dict[str, Any] | None = None
    online_meeting_id: str | None = None
    #: the organizer cancelled or deleted it: gone from the organizer's calendar
    cancelled: bool = False
    #: occurrence date (ISO) → changed properties (subject, start, end … as for ``props``)
    exceptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    cancelled_dates: set[str] = field(default_factory=set)
    #: attendee mailbox id → the id of that attendee's copy
    invited: dict[str, str] = field(default_factory=dict)
    #: attendee mailbox ids whose copy was removed by the attendee
    removed_by_attendee: set[str] = field(default_factory=set)
    #: attendee mailbox ids invited now (a copy whose attendee was taken off shows cancelled)
    attending: set[str] = field(default_factory=set)

    @property
    def is_series(self) -> bool:
        return self.recurrence is not None

    def attendee_addresses(self) -> list[str]:
        """Lower-cased addresses of the attendees as last sent."""
        addresses = []
        for attendee in self.props.get("attendees") or []:
            address = ((attendee.get("emailAddress") or {}).get("address") or "").strip().lower()
            if address:
                addresses.append(address)
        return addresses

    def occurrence_start(self, day: dt.date) -> dt.datetime:
        """The start of the occurrence on ``day`` (the master's local start time on that date)."""
        assert self.recurrence is not None
        zone = zone_of(self.recurrence["range"]["recurrenceTimeZone"] or self.start_zone)
        local = self.start.astimezone(zone)
        moment = dt.datetime.combine(day, local.time()).replace(tzinfo=zone)
        return moment.astimezone(dt.UTC)


@dataclass(frozen=True)
class EventView:
    """What one mailbox sees: the organizer's event or an attendee's copy, whole or one occurrence."""

    event: CalendarEvent
    mailbox_id: str
    id: str
    is_organizer: bool
    occurrence: dt.date | None = None

    @property
    def kind(self) -> str:
        """Graph's ``type``: singleInstance, seriesMaster, occurrence or exception."""
        if self.occurrence is not None:
            return "exception" if self.occurrence.isoformat() in self.event.exceptions else "occurrence"
        return "seriesMaster" if self.event.is_series else "singleInstance"

    @property
    def cancelled(self) -> bool:
        """An attendee's copy of a cancelled meeting, or one they were removed from."""
        if self.is_organizer:
            return False
        return self.event.cancelled or self.mailbox_id not in self.event.attending

    def overrides(self) -> dict[str, Any]:
        if self.occurrence is None:
            return {}
        return self.event.exceptions.get(self.occurrence.isoformat(), {})

    def start_end(self) -> tuple[dt.datetime, dt.datetime]:
        """This view's start and end (an occurrence's own, an exception's as changed)."""
        event = self.event
        if self.occurrence is None:
            return event.start, event.end
        changed = self.overrides()
        if "start" in changed:
            return dt.datetime.fromisoformat(changed["start"]), dt.datetime.fromisoformat(changed["end"])
        start = event.occurrence_start(self.occurrence)
        return start, start + (event.end - event.start)


class CalendarStore:
    """Every mailbox's calendar in one tenant. Thread-safe; ids from a seeded RNG for reproducible tests."""

    def __init__(self, tenant_id: str, *, seed: int | None = None) -> None:
        self.tenant_id = tenant_id
        self._rng = random.Random(seed)  # noqa: S311 - synthetic ids, not secrets
        self._lock = threading.RLock()
        self._events: dict[str, CalendarEvent] = {}
        #: attendee copy id → (event id, attendee mailbox id)
        self._views: dict[str, tuple[str, str]] = {}
        self._by_transaction: dict[tuple[str, str], str] = {}
        #: (mailbox id, extended property id in lower case, value) → event ids: Exchange's filter is indexed
        self._by_extended: dict[tuple[str, str, str], set[str]] = {}
        #: users without an Exchange Online mailbox (Graph: MailboxNotEnabledForRESTAPI)
        self.without_mailbox: set[str] = set()

    def __len__(self) -> int:
        return len(self._events)

    # -- ids

    def _new_id(self) -> str:
        alphabet = string.ascii_letters + string.digits
        while True:
            value = "AAMkAD" + "".join(self._rng.choice(alphabet) for _ in range(42)) + "AAA="
            if value not in self._events and value not in self._views:
                return value

    def _new_ical_uid(self) -> str:
        return "040000008200E00074C5B7101A82E008" + "".join(
            self._rng.choice("0123456789ABCDEF") for _ in range(80)
        )

    def _new_change_key(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(self._rng.choice(alphabet) for _ in range(26)) + "AA=="

    # -- writes

    def create(
        self,
        mailbox: Mailbox,
        *,
        start: tuple[dt.datetime, str],
        end: tuple[dt.datetime, str],
        props: Mapping[str, Any],
        recurrence: Mapping[str, Any] | None,
        transaction_id: str | None,
        extended: Mapping[str, str],
        online: tuple[bool, str],
        now: dt.datetime,
        dedupe_transactions: bool,
        attendee_mailboxes: Mapping[str, Mailbox],
    ) -> tuple[CalendarEvent, bool]:
        """(the event, created). With ``dedupe_transactions`` a repeated ``transactionId`` in the same
        mailbox returns the first event (created False). Raises :class:`RecurrenceInvalid`."""
        with self._lock:
            if transaction_id and dedupe_transactions:
                existing = self._by_transaction.get((mailbox.id, transaction_id))
                if existing is not None and not self._events[existing].cancelled:
                    return self._events[existing], False
            checked = check_recurrence(recurrence) if recurrence is not None else None
            if (
                checked is not None
                and checked["range"]["startDate"]
                != start[0]
                .astimezone(zone_of(checked["range"]["recurrenceTimeZone"] or start[1]))
                .date()
                .isoformat()
            ):
                raise RecurrenceInvalid("recurrence.range.startDate must be the date of the event's start.")
            event = CalendarEvent(
                id=self._new_id(),
                mailbox_id=mailbox.id,
                organizer={
                    "emailAddress": {"name": mailbox.name or mailbox.address, "address": mailbox.address}
                },
                ical_uid=self._new_ical_uid(),
                change_key=self._new_change_key(),
                created=now,
                modified=now,
                start=start[0],
                end=end[0],
                start_zone=start[1],
                end_zone=end[1],
                props=dict(props),
                recurrence=checked,
                transaction_id=transaction_id,
                extended=dict(extended),
                is_online_meeting=online[0],
                online_meeting_provider=online[1],
            )
            self._events[event.id] = event
            if transaction_id:
                self._by_transaction[(mailbox.id, transaction_id)] = event.id
            self._index_extended(event)
            self._deliver(event, attendee_mailboxes)
            return event, True

    def _index_extended(self, event: CalendarEvent) -> None:
        for key, value in event.extended.items():
            self._by_extended.setdefault((event.mailbox_id, key.lower(), value), set()).add(event.id)

    def _unindex_extended(self, event: CalendarEvent) -> None:
        for key, value in event.extended.items():
            self._by_extended.get((event.mailbox_id, key.lower(), value), set()).discard(event.id)

    def _deliver(self, event: CalendarEvent, attendee_mailboxes: Mapping[str, Mailbox]) -> None:
        """Invitations: each attendee with a mailbox in the tenant gets (or keeps) their copy."""
        current = set()
        for address in event.attendee_addresses():
            mailbox = attendee_mailboxes.get(address)
            if mailbox is None or mailbox.id == event.mailbox_id or mailbox.id in self.without_mailbox:
                continue
            current.add(mailbox.id)
            if mailbox.id not in event.invited:
                view_id = self._new_id()
                event.invited[mailbox.id] = view_id
                self._views[view_id] = (event.id, mailbox.id)
                event.removed_by_attendee.discard(mailbox.id)
        event.attending = current

    def set_online_meeting(self, event: CalendarEvent, info: dict[str, Any], meeting_id: str) -> None:
        """Record the Teams meeting Exchange made for the event."""
        with self._lock:
            event.online_meeting = info
            event.online_meeting_id = meeting_id

    def update(
        self,
        view: EventView,
        changes: Mapping[str, Any],
        *,
        start: tuple[dt.datetime, str] | None,
        end: tuple[dt.datetime, str] | None,
        recurrence: Mapping[str, Any] | None,
        extended: Mapping[str, str],
        now: dt.datetime,
        attendee_mailboxes: Mapping[str, Mailbox],
    ) -> None:
        """PATCH of the organizer's event, or of one occurrence (which becomes an exception)."""
        with self._lock:
            event = view.event
            if view.occurrence is not None:
                day = view.occurrence.isoformat()
                overrides = dict(event.exceptions.get(day, {}))
                overrides.update(changes)
                if start is not None or end is not None:
                    old_start, old_end = view.start_end()
                    new_start = start[0] if start else old_start
                    new_end = end[0] if end else new_start + (old_end - old_start)
                    overrides["start"], overrides["end"] = new_start.isoformat(), new_end.isoformat()
                event.exceptions[day] = overrides
            else:
                event.props.update(changes)
                if start is not None:
                    event.start, event.start_zone = start
                if end is not None:
                    event.end, event.end_zone = end
                if recurrence is not None:
                    event.recurrence = check_recurrence(recurrence)
                    event.exceptions.clear()
                    event.cancelled_dates.clear()
                self._unindex_extended(event)
                event.extended.update(extended)
                self._index_extended(event)
                self._deliver(event, attendee_mailboxes)
            event.modified = now
            event.change_key = self._new_change_key()

    def cancel(self, view: EventView, now: dt.datetime) -> None:
        """The organizer cancels the event or one occurrence; attendees' copies show it cancelled."""
        with self._lock:
            event = view.event
            if view.occurrence is not None:
                event.cancelled_dates.add(view.occurrence.isoformat())
            else:
                event.cancelled = True
            event.modified = now
            event.change_key = self._new_change_key()

    def remove_attendee_copy(self, view: EventView) -> None:
        """An attendee deletes their copy (or one occurrence of it, which the sandbox treats alike)."""
        with self._lock:
            view.event.removed_by_attendee.add(view.mailbox_id)

    # -- reads

    def find(self, mailbox_id: str, event_id: str) -> EventView | None:
        """What ``mailbox_id`` sees under ``event_id`` (an event, a copy or an occurrence), or None."""
        occurrence: dt.date | None = None
        base_id = event_id
        match = _OCCURRENCE_ID.match(event_id)
        if match is not None:
            try:
                occurrence = dt.datetime.strptime(match.group("day"), "%Y%m%d").date()
            except ValueError:
                return None
            base_id = match.group("base") + "="
        view = self._whole(mailbox_id, base_id)
        if view is None:
            return None
        if occurrence is None:
            return view
        if not view.event.is_series or not self._occurs(view.event, occurrence):
            return None
        return EventView(view.event, mailbox_id, event_id, view.is_organizer, occurrence)

    def _whole(self, mailbox_id: str, event_id: str) -> EventView | None:
        event = self._events.get(event_id)
        if event is not None and event.mailbox_id == mailbox_id and not event.cancelled:
            return EventView(event, mailbox_id, event_id, True)
        linked = self._views.get(event_id)
        if linked is None or linked[1] != mailbox_id:
            return None
        event = self._events[linked[0]]
        if mailbox_id in event.removed_by_attendee:
            return None
        return EventView(event, mailbox_id, event_id, False)

    def _occurs(self, event: CalendarEvent, day: dt.date) -> bool:
        assert event.recurrence is not None
        if day.isoformat() in event.cancelled_dates:
            return False
        return day in occurrence_dates(event.recurrence, until=day)

    def events(self, mailbox_id: str) -> list[EventView]:
        """Every event and copy in a mailbox (series as their masters), oldest first."""
        with self._lock:
            views = [
                EventView(event, mailbox_id, event.id, True)
                for event in self._events.values()
                if event.mailbox_id == mailbox_id and not event.cancelled
            ]
            for view_id, (event_id, attendee) in self._views.items():
                event = self._events[event_id]
                if attendee == mailbox_id and mailbox_id not in event.removed_by_attendee:
                    views.append(EventView(event, mailbox_id, view_id, False))
            return views

    def occurrences(self, view: EventView, start: dt.datetime, end: dt.datetime) -> list[EventView]:
        """The occurrences and exceptions of a series that overlap [start, end), cancelled ones left out."""
        event = view.event
        if not event.is_series:
            return []
        assert event.recurrence is not None
        base = view.id.removesuffix("=")
        results = []
        last_day = (end + dt.timedelta(days=1)).date()
        for day in occurrence_dates(event.recurrence, until=last_day):
            if day.isoformat() in event.cancelled_dates:
                continue
            occurrence = EventView(event, view.mailbox_id, f"{base}OCC{day:%Y%m%d}=", view.is_organizer, day)
            occ_start, occ_end = occurrence.start_end()
            if occ_start < end and occ_end > start:
                results.append(occurrence)
        return results

    def calendar_view(self, mailbox_id: str, start: dt.datetime, end: dt.datetime) -> list[EventView]:
        """Single events, occurrences and exceptions overlapping [start, end), by start time."""
        results: list[EventView] = []
        for view in self.events(mailbox_id):
            if view.event.is_series:
                results.extend(self.occurrences(view, start, end))
            elif view.event.start < end and view.event.end > start:
                results.append(view)
        return sorted(results, key=lambda item: item.start_end()[0])

    def find_by_extended(self, mailbox_id: str, prop_id: str, value: str) -> list[EventView]:
        """Events in a mailbox whose single-value extended property ``prop_id`` (case-insensitive) is ``value``."""
        with self._lock:
            ids = sorted(self._by_extended.get((mailbox_id, prop_id.lower(), value), ()))
            events = [self._events[event_id] for event_id in ids]
        return [
            EventView(event, mailbox_id, event.id, True)
            for event in sorted(events, key=lambda item: item.created)
            if not event.cancelled
        ]

    def by_online_meeting(self, meeting_ids: Iterable[str]) -> list[CalendarEvent]:
        """The events whose Teams meeting is one of ``meeting_ids``."""
        wanted = set(meeting_ids)
        return [event for event in self._events.values() if event.online_meeting_id in wanted]

    # -- persistence

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "events": [_event_row(event) for event in self._events.values()],
                "withoutMailbox": sorted(self.without_mailbox),
            }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        with self._lock:
            self.without_mailbox = set(data.get("withoutMailbox") or [])
            for row in data.get("events") or []:
                event = _event_from_row(row)
                self._events[event.id] = event
                for attendee, view_id in event.invited.items():
                    self._views[view_id] = (event.id, attendee)
                if event.transaction_id:
                    self._by_transaction[(event.mailbox_id, event.transaction_id)] = event.id
                self._index_extended(event)


_TIMES = ("created", "modified", "start", "end")


def _event_row(event: CalendarEvent) -> dict[str, Any]:
    row = dict(event.__dict__)
    for name in _TIMES:
        row[name] = getattr(event, name).isoformat()
    row["cancelled_dates"] = sorted(event.cancelled_dates)
    row["removed_by_attendee"] = sorted(event.removed_by_attendee)
    row["attending"] = sorted(event.attending)
    return row


def _event_from_row(row: Mapping[str, Any]) -> CalendarEvent:
    values = dict(row)
    for name in _TIMES:
        values[name] = dt.datetime.fromisoformat(values[name])
    values["cancelled_dates"] = set(values.get("cancelled_dates") or [])
    values["removed_by_attendee"] = set(values.get("removed_by_attendee") or [])
    values["attending"] = set(values.get("attending") or [])
    return CalendarEvent(**values)
