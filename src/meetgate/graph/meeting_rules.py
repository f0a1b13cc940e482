"""The rules of a meeting request, in one place: library, CLI, bulk jobs and gateway all check these.

Pure functions, no I/O. Each refusal is a :class:`MeetingRuleError` (a ``ValueError``) whose
``field`` names what to fix (``subject``, ``start``, ``end``) and whose ``remedy`` says how:

- ``subject``: when given, not empty, at most :data:`SUBJECT_MAX_LENGTH` characters (what Graph and
  calendars keep), and no control characters (C0 but tab, and DEL): they break invitations and logs;
- ``start`` / ``end``: ISO 8601 with a timezone ("add Z (UTC) or an offset such as +02:00"): a time
  without one would be read in whatever zone the server runs in;
- ``end`` after ``start``; no ``end`` without a ``start``; a change of times gives both;
- a ``start`` in the past is refused unless the caller asks for it (``allow_past=True``): it is
  almost always a wrong year, month or timezone. :data:`PAST_GRACE` allows for clock skew.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from meetgate.graph.errors import MeetingRuleError

__all__ = [
    "PAST_GRACE",
    "PAST_REMEDY",
    "SUBJECT_MAX_LENGTH",
    "TIMEZONE_ADVICE",
    "MeetingRuleError",
    "check_meeting",
    "check_subject",
    "check_time",
    "check_times",
    "control_characters",
    "parse_time",
]

SUBJECT_MAX_LENGTH = 255
#: how far in the past a start may lie without ``allow_past`` (clocks of caller and server differ)
PAST_GRACE = dt.timedelta(minutes=5)
TIMEZONE_ADVICE = "add Z (UTC) or an offset such as +02:00"
PAST_REMEDY = (
    "Give a start in the future (check the year, the date and the timezone), or allow a past start "
    'explicitly: allow_past=True in the library, --allow-past in the CLI, "allowPast": true at the '
    "gateway, an allow_past column of true in a bulk file."
)


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def control_characters(text: str) -> list[str]:
    """The control characters of ``text`` that meetings refuse (C0 but tab, and DEL), as ``U+XXXX``."""
    found = sorted({ch for ch in text if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F})
    return [f"U+{ord(ch):04X}" for ch in found]


def check_subject(subject: str | None) -> str | None:
    """``subject`` unchanged when it follows the rules (None: no subject given, which is allowed)."""
    if subject is None:
        return None
    if not isinstance(subject, str):
        raise MeetingRuleError(
            "subject must be text", field="subject", remedy="Give the subject as a string."
        )
    if not subject.strip():
        raise MeetingRuleError(
            "subject is empty",
            field="subject",
            remedy="Give a subject, or leave the field out for Teams' default.",
        )
    if len(subject) > SUBJECT_MAX_LENGTH:
        raise MeetingRuleError(
            f"subject has {len(subject):,} characters, more than {SUBJECT_MAX_LENGTH}",
            field="subject",
            remedy=f"Shorten the subject to at most {SUBJECT_MAX_LENGTH} characters.",
        )
    bad = control_characters(subject)
    if bad:
        raise MeetingRuleError(
            f"subject contains control characters ({', '.join(bad)})",
            field="subject",
            remedy="Remove control characters (such as NUL, ESC or line breaks) from the subject; "
            "only tab is allowed.",
        )
    return subject


def check_time(value: dt.datetime | None, field: str) -> dt.datetime | None:
    """``value`` unchanged when it carries a timezone (None passes)."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise MeetingRuleError(
            f"{field} {value.isoformat()} has no timezone",
            field=field,
            remedy=f"Add Z (UTC) or an offset such as +02:00 to {field}, so the meeting lands where you mean.",
        )
    return value


def parse_time(value: Any, field: str) -> dt.datetime:
    """An ISO 8601 text (or a datetime) as a timezone-aware datetime, or a :class:`MeetingRuleError`."""
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        try:
            parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise MeetingRuleError(
                f"{field} {text!r} is not an ISO 8601 date and time",
                field=field,
                remedy=f"Write {field} like 2030-09-01T09:00:00+02:00 or 2030-09-01T07:00:00Z.",
            ) from None
    checked = check_time(parsed, field)
    assert checked is not None
    return checked


def check_times(
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    update: bool = False,
    allow_past: bool = False,
    now: dt.datetime | None = None,
) -> None:
    """Start and end of a new meeting (``update=False``) or of a change of times (``update=True``:
    both or neither, as Graph changes them only as a pair). ``now`` defaults to the clock."""
    check_time(start, "start")
    check_time(end, "end")
    if update and (start is None) != (end is None):
        missing = "end" if end is None else "start"
        raise MeetingRuleError(
            f"a time change needs both start and end ({missing} is missing; Graph rejects a PATCH "
            "with only one)",
            field=missing,
            remedy="Give both start and end (the library's reschedule() keeps the duration).",
        )
    if start is None and end is not None:
        raise MeetingRuleError(
            "an end without a start is not allowed", field="end", remedy="Give a start too (or neither)."
        )
    if start is not None and end is not None and end <= start:
        raise MeetingRuleError(
            f"end {_utc(end)} is not after start {_utc(start)}",
            field="end",
            remedy="Give an end later than the start.",
        )
    if start is not None and not allow_past:
        current = now or dt.datetime.now(dt.UTC)
        if start < current - PAST_GRACE:
            raise MeetingRuleError(
                f"start {_utc(start)} is in the past (it is {_utc(current.replace(microsecond=0))} now)",
                field="start",
                remedy=PAST_REMEDY,
            )


def check_meeting(
    *,
    subject: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    update: bool = False,
    allow_past: bool = False,
    now: dt.datetime | None = None,
) -> None:
    """Every rule above for one request: the first one broken is raised."""
    check_subject(subject)
    check_times(start, end, update=update, allow_past=allow_past, now=now)
