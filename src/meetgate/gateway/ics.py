"""An iCalendar invitation for a meeting (meetings made through Graph are on nobody's calendar)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\n", "\\n")
        .replace("\r", "")
    )


def _fold(line: str) -> str:
    raw = line.encode()
    if len(raw) <= 75:
        return line
    parts: list[str] = []
    current = b""
    for ch in line:
        b = ch.encode()
        if len(current) + len(b) > (75 if not parts else 74):
            parts.append(current.decode())
            current = b""
        current += b
    parts.append(current.decode())
    return "\r\n ".join(parts)


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def invitation_ics(
    *,
    uid: str,
    subject: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    join_url: str | None,
    organizer: str,
    attendees: Sequence[str],
    join_meeting_id: str | None = None,
    passcode: str | None = None,
    cancelled: bool = False,
    sequence: int = 0,
    now: dt.datetime | None = None,
) -> str:
    """A METHOD:REQUEST invitation (METHOD:CANCEL when ``cancelled``). ``sequence`` is the meeting's
    revision: RFC 5545 wants it raised by every significant change, and a CANCEL's at least the last
    one sent, or calendars may keep the earlier version."""
    stamp = now or dt.datetime.now(dt.UTC)
    start = start or stamp
    end = end or start + dt.timedelta(hours=1)
    description = f"Join Microsoft Teams meeting: {join_url or ''}"
    if join_meeting_id:
        description += f"\nMeeting ID: {join_meeting_id}"
    if passcode:
        description += f"\nPasscode: {passcode}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//meetgate//gateway//EN",
        f"METHOD:{'CANCEL' if cancelled else 'REQUEST'}",
        "BEGIN:VEVENT",
        f"UID:{_escape(uid)}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{_stamp(stamp)}",
        f"DTSTART:{_stamp(start)}",
        f"DTEND:{_stamp(end)}",
        f"SUMMARY:{_escape(subject or 'Microsoft Teams meeting')}",
        f"DESCRIPTION:{_escape(description)}",
        f"LOCATION:{_escape('Microsoft Teams meeting')}",
        f"ORGANIZER:mailto:{organizer}",
    ]
    if join_url:
        lines.append(f"URL:{join_url}")
    lines += [f"ATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:{a}" for a in attendees]
    lines += [f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}", "END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"
