"""Calendar-backed meetings as callers use them: an Exchange event with its Teams meeting.

:class:`CalendarMeeting` is the flat view of Graph's ``event`` (v1.0), built by
:meth:`CalendarMeeting.from_graph` from the JSON Graph answers, which it keeps in ``raw``. Reading is
tolerant: times in any documented form (``2030-07-01T07:00:00.0000000`` with a Windows or IANA zone,
or with an offset), unknown properties kept, the recurrence turned back into an RRULE when it is one
Graph documents (else left out, never guessed).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from pydantic import Field

from meetgate.graph.errors import MeetingRuleError
from meetgate.graph.models import FlatModel, OnlineMeeting
from meetgate.graph.recurrence import to_rrule

__all__ = [
    "EXTERNAL_ID_PROPERTY",
    "CalendarMeeting",
    "CreateOrGetEventResult",
    "EventAttendee",
    "parse_event_time",
]

#: the single-value extended property that holds meetgate's external id on an event (its own GUID, so
#: it never collides with another app's properties)
EXTERNAL_ID_PROPERTY = "String {8d3f2a61-5b7c-4e0a-9c1d-6e4b2f7a9c30} Name meetgateExternalId"
#: Windows zone names Exchange may answer with when a request asked for no particular zone
_UTC_NAMES = frozenset({"utc", "coordinated universal time", "tzone://microsoft/utc"})


def parse_event_time(value: Any) -> dt.datetime | None:
    """A ``dateTimeTimeZone`` as an aware datetime (None when absent or unreadable)."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        return None
    text = value["dateTime"].strip().removesuffix("Z")
    if "." in text:
        head, fraction = text.split(".", 1)
        text = f"{head}.{fraction[:6]}"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        return moment
    zone_name = str(value.get("timeZone") or "UTC")
    if zone_name.lower() in _UTC_NAMES:
        return moment.replace(tzinfo=dt.UTC)
    try:
        return moment.replace(tzinfo=zoneinfo.ZoneInfo(zone_name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None  # a Windows zone name: meetgate asks Graph for UTC, so this is not expected


class EventAttendee(FlatModel):
    """An attendee of a calendar meeting, as Exchange reports it."""

    address: str
    name: str | None = None
    #: required, optional or resource
    type: str = "required"
    #: none, organizer, tentativelyAccepted, accepted, declined, notResponded
    response: str | None = None


class CalendarMeeting(FlatModel):
    """A calendar-backed Teams meeting (an Exchange event). ``raw`` is Graph's JSON (not in JSON output)."""

    id: str
    #: singleInstance, seriesMaster, occurrence or exception
    kind: str = "singleInstance"
    ical_uid: str | None = None
    subject: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    time_zone: str | None = None
    is_cancelled: bool = False
    is_organizer: bool = True
    series_master_id: str | None = None
    web_link: str | None = None
    join_web_url: str | None = None
    conference_id: str | None = None
    organizer: str | None = None
    attendees: list[EventAttendee] = Field(default_factory=list)
    #: the series' rule as an RFC 5545 RRULE (series masters only)
    recurrence: str | None = None
    external_id: str | None = None
    transaction_id: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    @classmethod
    def from_graph(cls, data: dict[str, Any]) -> CalendarMeeting:
        """The view of an event as Graph returns it."""
        online_value = data.get("onlineMeeting")
        online: dict[str, Any] = online_value if isinstance(online_value, dict) else {}
        organizer = ((data.get("organizer") or {}).get("emailAddress") or {}).get("address")
        attendees = []
        for item in data.get("attendees") or []:
            email = item.get("emailAddress") or {}
            if isinstance(email.get("address"), str):
                attendees.append(
                    EventAttendee(
                        address=email["address"],
                        name=email.get("name"),
                        type=str(item.get("type") or "required"),
                        response=(item.get("status") or {}).get("response"),
                    )
                )
        rule = None
        if isinstance(data.get("recurrence"), dict):
            try:
                rule = to_rrule(data["recurrence"])
            except MeetingRuleError:
                rule = None
        external_id = next(
            (
                prop.get("value")
                for prop in data.get("singleValueExtendedProperties") or []
                if str(prop.get("id", "")).lower() == EXTERNAL_ID_PROPERTY.lower()
            ),
            None,
        )
        return cls(
            id=str(data["id"]),
            kind=str(data.get("type") or "singleInstance"),
            ical_uid=data.get("iCalUId"),
            subject=data.get("subject"),
            start=parse_event_time(data.get("start")),
            end=parse_event_time(data.get("end")),
            time_zone=data.get("originalStartTimeZone"),
            is_cancelled=bool(data.get("isCancelled")),
            is_organizer=data.get("isOrganizer", True) is not False,
            series_master_id=data.get("seriesMasterId"),
            web_link=data.get("webLink"),
            join_web_url=online.get("joinUrl") or online.get("joinWebUrl"),
            conference_id=online.get("conferenceId"),
            organizer=organizer,
            attendees=attendees,
            recurrence=rule,
            external_id=external_id,
            transaction_id=data.get("transactionId"),
            raw=data,
        )


class CreateOrGetEventResult(FlatModel):
    """A calendar meeting created now (``created``) or found from an earlier attempt with the same
    external id; ``meeting`` is the Teams meeting behind it when its options were set."""

    event: CalendarMeeting
    created: bool
    meeting: OnlineMeeting | None = None
