"""Graph's JSON for a calendar event, as ``GET /users/{id}/events/{id}`` answers (v1.0 ``event``).

Every property of the resource is present with Graph's defaults (``importance`` normal, ``showAs``
busy, ``reminderMinutesBeforeStart`` 15 …); ``transactionId`` only when the client set it (as
documented); ``singleValueExtendedProperties`` only when ``$expand`` asks for them; ``recurrence``
on series masters only. An attendee's copy of a cancelled meeting reads ``isCancelled: true`` and
"Canceled: <subject>".
"""

from __future__ import annotations

import datetime as dt
import html
import re
import urllib.parse
from collections.abc import Collection
from typing import Any

from meetgate_sandbox.calendar_store import EventView
from meetgate_sandbox.calendar_time import render_date_time_zone

__all__ = ["render_event", "timestamp"]

_TAGS = re.compile(r"<[^>]+>")
_NEVER = "0001-01-01T00:00:00Z"


def timestamp(moment: dt.datetime) -> str:
    """``2017-04-15T03:00:50.7579581Z``: UTC with seven fractional digits, as Exchange writes."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def _location(value: Any) -> dict[str, Any]:
    location = value if isinstance(value, dict) else {}
    return {
        "displayName": location.get("displayName", ""),
        "locationType": location.get("locationType", "default"),
        "uniqueIdType": location.get("uniqueIdType", "unknown"),
        "address": location.get("address", {}),
        "coordinates": location.get("coordinates", {}),
        **({"uniqueId": location["uniqueId"]} if "uniqueId" in location else {}),
    }


def _attendees(value: Any) -> list[dict[str, Any]]:
    result = []
    for attendee in value if isinstance(value, list) else []:
        result.append(
            {
                "type": attendee.get("type", "required"),
                "status": {"response": "none", "time": _NEVER},
                "emailAddress": dict(attendee.get("emailAddress") or {}),
            }
        )
    return result


def _preview(body: dict[str, Any]) -> str:
    content = str(body.get("content") or "")
    if body.get("contentType", "text").lower() == "html":
        content = html.unescape(_TAGS.sub(" ", content))
    return " ".join(content.split())[:255]


def _ical_uid(view: EventView) -> str:
    uid = view.event.ical_uid
    if view.occurrence is None:
        return uid
    # Exchange's iCalUId differs per occurrence: the date is written into the id
    return uid[:32] + f"{view.occurrence:%Y%m%d}" + uid[40:]


def render_event(
    view: EventView,
    *,
    base_url: str,
    zone: str,
    expand_extended: Collection[str] | None = None,
) -> dict[str, Any]:
    """The event as ``view``'s mailbox sees it; times in ``zone``; ``expand_extended``: the extended
    property ids (lower case) that ``$expand=singleValueExtendedProperties($filter=id eq '…')`` asked for."""
    event = view.event
    props = {**event.props, **{k: v for k, v in view.overrides().items() if k not in ("start", "end")}}
    start, end = view.start_end()
    body = dict(props.get("body") or {"contentType": "text", "content": ""})
    subject = props.get("subject") or ""
    cancelled = view.cancelled
    if cancelled:
        subject = f"Canceled: {subject}"
    series_master = None
    if view.occurrence is not None:
        series_master = view.id[: view.id.index("OCC")] + "="
    data: dict[str, Any] = {
        "@odata.context": (f"{base_url}/$metadata#users('{view.mailbox_id}')/events/$entity"),
        "@odata.etag": f'W/"{event.change_key}"',
        "id": view.id,
        "createdDateTime": timestamp(event.created),
        "lastModifiedDateTime": timestamp(event.modified),
        "changeKey": event.change_key,
        "categories": list(props.get("categories") or []),
        **({"transactionId": event.transaction_id} if event.transaction_id else {}),
        "originalStartTimeZone": event.start_zone,
        "originalEndTimeZone": event.end_zone,
        "iCalUId": _ical_uid(view),
        "reminderMinutesBeforeStart": props.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": props.get("isReminderOn", True),
        "hasAttachments": False,
        "subject": subject,
        "bodyPreview": _preview(body),
        "importance": props.get("importance", "normal"),
        "sensitivity": props.get("sensitivity", "normal"),
        "isAllDay": props.get("isAllDay", False),
        "isCancelled": cancelled,
        "isOrganizer": view.is_organizer,
        "responseRequested": props.get("responseRequested", True),
        "seriesMasterId": series_master,
        "showAs": props.get("showAs", "busy"),
        "type": view.kind,
        "webLink": (
            "https://outlook.office365.com/owa/?itemid="
            f"{urllib.parse.quote(view.id, safe='')}&exvsurl=1&path=/calendar/item"
        ),
        "onlineMeetingUrl": None,
        "isOnlineMeeting": event.is_online_meeting,
        "onlineMeetingProvider": event.online_meeting_provider,
        "allowNewTimeProposals": props.get("allowNewTimeProposals", True),
        "isDraft": False,
        "hideAttendees": props.get("hideAttendees", False),
        "responseStatus": {
            "response": "organizer" if view.is_organizer else "notResponded",
            "time": _NEVER,
        },
        "body": body,
        "start": render_date_time_zone(start, zone),
        "end": render_date_time_zone(end, zone),
        "location": _location(props.get("location")),
        "locations": [_location(item) for item in props.get("locations") or []],
        "recurrence": event.recurrence if view.occurrence is None else None,
        "attendees": _attendees(props.get("attendees")),
        "organizer": event.organizer,
        "onlineMeeting": event.online_meeting,
    }
    if view.occurrence is not None:
        data["originalStart"] = timestamp(event.occurrence_start(view.occurrence)).replace(".0000000Z", "Z")
    if expand_extended:
        data["singleValueExtendedProperties"] = [
            {"id": key, "value": value}
            for key, value in event.extended.items()
            if key.lower() in expand_extended
        ]
    return data
