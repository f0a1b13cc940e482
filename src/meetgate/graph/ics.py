"""iCalendar (RFC 5545) invitations for online meetings.

Meetings made through the onlineMeetings API are standalone: they appear on nobody's calendar, so
attendees learn of them only from the calling application. :func:`meeting_invitation_ics` gives that
application a ready ``.ics`` (METHOD:REQUEST) with organizer, attendees, join URL, meeting ID and
passcode, and dial-in when present; :func:`meeting_cancellation_ics` the matching METHOD:CANCEL (same
UID, higher SEQUENCE), so calendars drop the event when the meeting is cancelled.

This is meetgate's only iCalendar writer (the gateway's ``invite.ics`` comes from here too). Text is
escaped as RFC 5545 says (backslash, ``;``, ``,`` and line breaks), and no control character but tab
ever reaches the file: RFC 5545 forbids them in content lines, and a meeting changed outside meetgate
(in Teams, or by another app) can carry them in its subject.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from meetgate.graph.errors import MeetingRuleError
from meetgate.graph.models import Attendee, OnlineMeeting

PRODID = "-//meetgate//Teams online meetings//EN"


#: control characters RFC 5545 allows in no content line: C0 but tab (line breaks are escaped first
#: where text may have them), and DEL
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def strip_controls(value: str) -> str:
    """``value`` without the control characters RFC 5545 forbids (tab is kept)."""
    return _CONTROL.sub("", value)


def escape_text(value: str) -> str:
    """RFC 5545 TEXT: backslash, ``;`` and ``,`` escaped, line breaks as ``\\n``, other control
    characters (C0 but tab, and DEL) removed."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )
    return strip_controls(escaped)


def fold(line: str) -> str:
    """Fold a content line at 75 octets without splitting a UTF-8 character."""
    out: list[str] = []
    current = ""
    size = 0
    limit = 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            out.append(current)
            current, size, limit = " ", 1, 75
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _param(value: str) -> str:
    """A parameter value (CN=...): quoted, without characters that cannot be quoted."""
    return '"' + strip_controls(value.replace('"', "'").replace("\r", " ").replace("\n", " ")) + '"'


def format_meeting_id(digits: str) -> str:
    """``123456789012`` -> ``123 456 789 012`` as Teams prints it."""
    return " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))


def _attendee_emails(attendees: Sequence[str | Attendee]) -> list[tuple[str, str | None]]:
    result = []
    for item in attendees:
        if isinstance(item, Attendee):
            result.append((item.upn, item.display_name))
        else:
            result.append((str(item), None))
    return result


def join_text(meeting: OnlineMeeting) -> str:
    """The plain-text join block used in DESCRIPTION."""
    lines = ["Microsoft Teams meeting"]
    if meeting.join_web_url:
        lines.append(f"Join: {meeting.join_web_url}")
    if meeting.join_meeting_id:
        lines.append(f"Meeting ID: {format_meeting_id(meeting.join_meeting_id)}")
    if meeting.passcode:
        lines.append(f"Passcode: {meeting.passcode}")
    dial = meeting.dial_in
    if dial is not None:
        if dial.toll_number:
            suffix = f",,{dial.conference_id}#" if dial.conference_id else ""
            lines.append(f"Dial in: {dial.toll_number}{suffix}")
        if dial.toll_free_number:
            lines.append(f"Toll-free: {dial.toll_free_number}")
        if dial.conference_id:
            lines.append(f"Phone conference ID: {dial.conference_id}#")
        if dial.dialin_url:
            lines.append(f"Local numbers: {dial.dialin_url}")
    return "\n".join(lines)


def _calendar(
    meeting: OnlineMeeting,
    organizer_email: str,
    attendees: Sequence[str | Attendee] | None,
    *,
    method: str,
    status: str,
    sequence: int,
    organizer_name: str | None,
    description: str | None,
    now: dt.datetime | None,
    uid: str | None,
) -> str:
    if meeting.start is None or meeting.end is None:
        raise MeetingRuleError(
            f"meeting {meeting.id} has no start/end",
            remedy="Only scheduled meetings can be put on calendars.",
        )
    if "@" not in organizer_email:
        raise MeetingRuleError(
            f"organizer e-mail {organizer_email!r} is not an address",
            remedy="Give the organizer's e-mail address (usually the UPN).",
        )
    people = _attendee_emails(meeting.attendees if attendees is None else attendees)
    stamp = now or dt.datetime.now(dt.UTC)
    body = join_text(meeting)
    if description:
        body = f"{description}\n\n{body}"
    organizer_cn = f";CN={_param(organizer_name)}" if organizer_name else ""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{escape_text(uid or f'{meeting.external_id or meeting.id}@meetgate')}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{_utc(stamp)}",
        f"DTSTART:{_utc(meeting.start)}",
        f"DTEND:{_utc(meeting.end)}",
        f"SUMMARY:{escape_text(meeting.subject or 'Microsoft Teams meeting')}",
        "LOCATION:Microsoft Teams Meeting",
        f"STATUS:{status}",
        f"ORGANIZER{organizer_cn}:mailto:{organizer_email}",
    ]
    for email, name in people:
        cn = f";CN={_param(name)}" if name else ""
        lines.append(f"ATTENDEE{cn};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{email}")
    lines.append(f"DESCRIPTION:{escape_text(body)}")
    if meeting.join_web_url:
        lines.append(f"URL:{meeting.join_web_url}")
        lines.append(f"X-MICROSOFT-SKYPETEAMSMEETINGURL:{meeting.join_web_url}")
    lines += ["TRANSP:OPAQUE", "END:VEVENT", "END:VCALENDAR"]
    # every value above is escaped or quoted; addresses and URLs are not TEXT, and lose here any
    # control character they came with (none may reach the file)
    return "\r\n".join(fold(strip_controls(line)) for line in lines) + "\r\n"


def meeting_invitation_ics(
    meeting: OnlineMeeting,
    organizer_email: str,
    attendees: Sequence[str | Attendee] | None = None,
    *,
    organizer_name: str | None = None,
    description: str | None = None,
    sequence: int = 0,
    now: dt.datetime | None = None,
    uid: str | None = None,
) -> str:
    """A METHOD:REQUEST invitation; ``attendees`` defaults to the meeting's own attendees.
    Send it again with a higher ``sequence`` after a reschedule. ``uid`` (default
    ``<externalId or id>@meetgate``) must stay the same for every version of the invitation."""
    return _calendar(
        meeting,
        organizer_email,
        attendees,
        method="REQUEST",
        status="CONFIRMED",
        sequence=sequence,
        organizer_name=organizer_name,
        description=description,
        now=now,
        uid=uid,
    )


def meeting_cancellation_ics(
    meeting: OnlineMeeting,
    organizer_email: str,
    attendees: Sequence[str | Attendee] | None = None,
    *,
    organizer_name: str | None = None,
    sequence: int = 1,
    now: dt.datetime | None = None,
    uid: str | None = None,
) -> str:
    """A METHOD:CANCEL for an invitation sent earlier (same UID, higher SEQUENCE)."""
    return _calendar(
        meeting,
        organizer_email,
        attendees,
        method="CANCEL",
        status="CANCELLED",
        sequence=sequence,
        organizer_name=organizer_name,
        description=None,
        now=now,
        uid=uid,
    )
