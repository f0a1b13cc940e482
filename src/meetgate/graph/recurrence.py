"""RFC 5545 recurrence rules (``RRULE:FREQ=WEEKLY;BYDAY=MO,WE``) to Graph's ``patternedRecurrence``
and back.

Integrators already hold recurrence as an RRULE (from their calendars and ICS files); Graph's calendar
events take a ``recurrence`` of a *pattern* (``daily``, ``weekly``, ``absoluteMonthly``,
``relativeMonthly``, ``absoluteYearly``, ``relativeYearly``) and a *range* (``endDate``, ``noEnd``,
``numbered``), documented on the ``recurrencePattern`` and ``recurrenceRange`` resources.
:func:`parse_rrule` maps every rule Graph can express and refuses the rest with a
:class:`~meetgate.graph.errors.MeetingRuleError` (``field="recurrence"``) that says why and what
to send instead; nothing is approximated silently. :func:`to_rrule` maps a Graph recurrence back
(for display and round trips).

What maps (``n`` in 1..4 or -1, Graph's ``first``..``fourth`` / ``last``):

======================================================  =========================================
RRULE                                                    Graph pattern
======================================================  =========================================
``FREQ=DAILY``                                           ``daily``
``FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR`` (interval 1)        ``weekly`` on those days
``FREQ=WEEKLY[;BYDAY=MO,WE][;WKST=SU]``                  ``weekly`` (days default to the start's)
``FREQ=MONTHLY[;BYMONTHDAY=15]``                         ``absoluteMonthly``
``FREQ=MONTHLY;BYDAY=2TH`` or ``BYDAY=MO,TU;BYSETPOS=n``  ``relativeMonthly``
``FREQ=YEARLY[;BYMONTH=3][;BYMONTHDAY=15]``              ``absoluteYearly``
``FREQ=YEARLY;BYMONTH=11;BYDAY=2TH``                     ``relativeYearly``
``COUNT=10`` / ``UNTIL=20270630[T…Z]`` / neither          ``numbered`` / ``endDate`` / ``noEnd``
======================================================  =========================================

Refused: ``SECONDLY`` … ``HOURLY``, ``BYHOUR``/``BYMINUTE``/``BYSECOND``, ``BYYEARDAY``, ``BYWEEKNO``,
several months or month days, ordinals beyond the fourth or before the last, several ordinal days
in a month (RFC 5545 makes one occurrence per day, Graph one per month), ``COUNT`` with ``UNTIL``.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any, Final

from meetgate.graph.errors import MeetingRuleError

__all__ = [
    "DAYS",
    "INDEXES",
    "Recurrence",
    "parse_rrule",
    "to_rrule",
    "zone_of",
]

#: RFC 5545 weekday codes to Graph's dayOfWeek values, in RFC order
DAYS: Final[dict[str, str]] = {
    "MO": "monday",
    "TU": "tuesday",
    "WE": "wednesday",
    "TH": "thursday",
    "FR": "friday",
    "SA": "saturday",
    "SU": "sunday",
}
_CODE_OF_DAY: Final[dict[str, str]] = {name: code for code, name in DAYS.items()}
#: RFC 5545 ordinals to Graph's weekIndex values
INDEXES: Final[dict[int, str]] = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
_ORDINAL_OF_INDEX: Final[dict[str, int]] = {name: number for number, name in INDEXES.items()}

_FIELD = "recurrence"
_SUPPORTED_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_KNOWN_PARTS = frozenset(
    {
        "FREQ",
        "INTERVAL",
        "COUNT",
        "UNTIL",
        "BYDAY",
        "BYMONTHDAY",
        "BYMONTH",
        "BYSETPOS",
        "WKST",
        "BYHOUR",
        "BYMINUTE",
        "BYSECOND",
        "BYYEARDAY",
        "BYWEEKNO",
        "RSCALE",
        "SKIP",
    }
)
_UNEXPRESSIBLE_PARTS: Final[dict[str, str]] = {
    "BYHOUR": "Graph repeats a meeting at its start time only",
    "BYMINUTE": "Graph repeats a meeting at its start time only",
    "BYSECOND": "Graph repeats a meeting at its start time only",
    "BYYEARDAY": "Graph has no day-of-year pattern",
    "BYWEEKNO": "Graph has no week-number pattern",
    "RSCALE": "Graph recurrences use the Gregorian calendar only",
    "SKIP": "Graph recurrences use the Gregorian calendar only",
}
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL = re.compile(r"^(\d{8})(?:T(\d{6})(Z?))?$")
_MAX_INT = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A Graph ``patternedRecurrence``: ``pattern`` and ``range`` as Graph's JSON shows them."""

    pattern: dict[str, Any]
    range: dict[str, Any]

    def to_graph(self) -> dict[str, Any]:
        """The ``recurrence`` property of an event, ready to send."""
        return {"pattern": dict(self.pattern), "range": dict(self.range)}


def _refuse(message: str, remedy: str) -> MeetingRuleError:
    return MeetingRuleError(message, field=_FIELD, remedy=remedy)


def _split(rule: str) -> dict[str, str]:
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    if not text:
        raise _refuse("recurrence is empty", "Give an RRULE such as 'RRULE:FREQ=WEEKLY;BYDAY=MO'.")
    if "\n" in text or "\r" in text:
        raise _refuse(
            "recurrence holds more than one line",
            "Give one RRULE line only (no EXDATE, RDATE or DTSTART lines).",
        )
    parts: dict[str, str] = {}
    for item in text.split(";"):
        name, sep, value = item.partition("=")
        name = name.strip().upper()
        if not sep or not name or not value.strip():
            raise _refuse(
                f"recurrence part {item!r} is not NAME=VALUE",
                "Write the rule as RFC 5545 does: parts NAME=VALUE separated by ';'.",
            )
        if name not in _KNOWN_PARTS:
            raise _refuse(
                f"recurrence part {name} is not an RFC 5545 RRULE part",
                "Use FREQ, INTERVAL, COUNT, UNTIL, BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS or WKST.",
            )
        if name in parts:
            raise _refuse(f"recurrence part {name} is given twice", f"Give {name} once.")
        parts[name] = value.strip().upper()
    return parts


def _positive(parts: dict[str, str], name: str) -> int | None:
    raw = parts.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= _MAX_INT:
        raise _refuse(f"{name}={raw} is not a positive whole number", f"Give {name} as 1, 2, 3 …")
    return int(raw)


def _single_int(parts: dict[str, str], name: str, low: int, high: int, why: str) -> int | None:
    raw = parts.get(name)
    if raw is None:
        return None
    if "," in raw:
        raise _refuse(f"{name}={raw} lists several values: {why}", f"Give one {name} value.")
    try:
        value = int(raw)
    except ValueError:
        raise _refuse(f"{name}={raw} is not a number", f"Give {name} as a number.") from None
    if not low <= value <= high:
        raise _refuse(
            f"{name}={raw} is outside {low}..{high} that Graph can express",
            f"Give {name} between {low} and {high}.",
        )
    return value


def _days(raw: str) -> list[tuple[int | None, str]]:
    days: list[tuple[int | None, str]] = []
    for item in raw.split(","):
        match = _BYDAY.match(item.strip())
        if match is None:
            raise _refuse(
                f"BYDAY value {item!r} is not a weekday (MO … SU, optionally with an ordinal like 2TH)",
                "Write days as MO,TU,WE,TH,FR,SA,SU; an ordinal like 2TH or -1FR for the second "
                "Thursday or last Friday.",
            )
        ordinal = int(match.group(1)) if match.group(1) else None
        days.append((ordinal, DAYS[match.group(2)]))
    if len(set(days)) != len(days):
        raise _refuse(f"BYDAY={raw} names a day twice", "Name each day once.")
    return days


def _index(ordinal: int) -> str:
    index = INDEXES.get(ordinal)
    if index is None:
        raise _refuse(
            f"the ordinal {ordinal} is not one Graph can express",
            "Graph repeats on the first, second, third, fourth or last such day of the month "
            "(1, 2, 3, 4 or -1).",
        )
    return index


def zone_of(time_zone: str) -> dt.tzinfo:
    """The zone of an IANA name (or UTC); anything else is a :class:`MeetingRuleError` on ``timeZone``."""
    if time_zone.upper() == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise MeetingRuleError(
            f"time zone {time_zone!r} is not an IANA time zone name",
            field="timeZone",
            remedy="Give an IANA name such as 'Europe/Berlin' or 'America/New_York', or UTC.",
        ) from None


def _range(parts: dict[str, str], start_date: dt.date, zone: dt.tzinfo, time_zone: str) -> dict[str, Any]:
    count = _positive(parts, "COUNT")
    until = parts.get("UNTIL")
    base: dict[str, Any] = {"startDate": start_date.isoformat(), "recurrenceTimeZone": time_zone}
    if count is not None and until is not None:
        raise _refuse(
            "recurrence has both COUNT and UNTIL (RFC 5545 allows one of them)",
            "Give COUNT (how many meetings) or UNTIL (the last date), not both.",
        )
    if count is not None:
        return {"type": "numbered", "numberOfOccurrences": count, **base}
    if until is None:
        return {"type": "noEnd", **base}
    match = _UNTIL.match(until)
    if match is None:
        raise _refuse(
            f"UNTIL={until} is not an RFC 5545 date (YYYYMMDD) or UTC time (YYYYMMDDTHHMMSSZ)",
            "Write UNTIL as 20271231 or 20271231T235959Z.",
        )
    try:
        day = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
        if match.group(2) is not None:
            moment = dt.datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S")
            utc = bool(match.group(3))  # a floating UNTIL time is local already
            day = (moment.replace(tzinfo=dt.UTC).astimezone(zone) if utc else moment).date()
    except ValueError:
        raise _refuse(f"UNTIL={until} is not a real date", "Give a date that exists.") from None
    if day < start_date:
        raise _refuse(
            f"UNTIL={until} is before the first meeting ({start_date.isoformat()})",
            "Give an UNTIL on or after the start date.",
        )
    return {"type": "endDate", "endDate": day.isoformat(), **base}


def _relative(days: list[tuple[int | None, str]], setpos: int | None, what: str) -> dict[str, Any]:
    ordinals = {ordinal for ordinal, _ in days}
    if setpos is not None:
        if ordinals != {None}:
            raise _refuse(
                f"{what} combines BYSETPOS with ordinal days",
                "Give either ordinal days (BYDAY=2TH) or plain days with BYSETPOS (BYDAY=MO,TU;BYSETPOS=1).",
            )
        return {"daysOfWeek": [day for _, day in days], "index": _index(setpos)}
    if None in ordinals:
        raise _refuse(
            f"{what} with BYDAY needs an ordinal (such as 2TH) or BYSETPOS: every such weekday is "
            "not a monthly pattern Graph has",
            "Use FREQ=WEEKLY for every such weekday, or an ordinal (BYDAY=2TH, BYDAY=-1FR).",
        )
    if len(days) > 1:
        raise _refuse(
            f"{what} lists several ordinal days: RFC 5545 makes a meeting on each, Graph only one a month",
            "Give one ordinal day (BYDAY=2TH), or plain days with BYSETPOS for the first of them that "
            "occurs (BYDAY=TH,FR;BYSETPOS=2); or make one series per day.",
        )
    ordinal, day = days[0]
    assert ordinal is not None  # checked above: every day has an ordinal
    return {"daysOfWeek": [day], "index": _index(ordinal)}


def parse_rrule(rule: str, *, start: dt.datetime, time_zone: str = "UTC") -> Recurrence:
    """Graph's recurrence for ``rule`` (an RRULE, with or without ``RRULE:``) of meetings starting at
    ``start`` (timezone-aware), with dates read in ``time_zone`` (IANA name or UTC).

    Days, month days and months the rule leaves out come from ``start``, as RFC 5545 says.
    Raises :class:`MeetingRuleError` (``field="recurrence"``) for a rule Graph cannot express.
    """
    if start.tzinfo is None:
        raise MeetingRuleError(
            "the start of a recurring meeting has no time zone",
            field="start",
            remedy="Give the start with Z (UTC) or an offset such as +02:00.",
        )
    zone = zone_of(time_zone)
    local = start.astimezone(zone)
    parts = _split(rule)
    for name, why in _UNEXPRESSIBLE_PARTS.items():
        if name in parts:
            raise _refuse(
                f"recurrence uses {name}: {why}",
                "Remove it; make separate meetings if they must differ in that way.",
            )
    freq = parts.get("FREQ")
    if freq is None:
        raise _refuse("recurrence has no FREQ", "Start the rule with FREQ=DAILY, WEEKLY, MONTHLY or YEARLY.")
    if freq not in _SUPPORTED_FREQS:
        raise _refuse(
            f"FREQ={freq} repeats more often than daily, which Graph cannot express",
            "Use FREQ=DAILY, WEEKLY, MONTHLY or YEARLY.",
        )
    interval = _positive(parts, "INTERVAL") or 1
    wkst = parts.get("WKST", "MO")
    if wkst not in DAYS:
        raise _refuse(f"WKST={wkst} is not a weekday", "Give WKST as MO … SU.")
    days = _days(parts["BYDAY"]) if "BYDAY" in parts else None
    month_day = _single_int(parts, "BYMONTHDAY", 1, 31, "Graph repeats on one day of the month")
    month = _single_int(parts, "BYMONTH", 1, 12, "Graph repeats in one month of the year")
    setpos = _single_int(parts, "BYSETPOS", -1, 4, "Graph repeats on one position in the month")
    if setpos == 0:
        raise _refuse("BYSETPOS=0 is not a position", "Give 1, 2, 3, 4 or -1.")
    if month_day is not None and days is not None:
        raise _refuse(
            "recurrence combines BYMONTHDAY and BYDAY (a weekday on a month day), which Graph cannot express",
            "Give either a day of the month (BYMONTHDAY=15) or a weekday (BYDAY=2TH).",
        )
    if setpos is not None and freq not in ("MONTHLY", "YEARLY"):
        raise _refuse(f"BYSETPOS with FREQ={freq} is not a pattern Graph has", "Remove BYSETPOS.")
    if month is not None and freq != "YEARLY":
        raise _refuse(f"BYMONTH with FREQ={freq} is not a pattern Graph has", "Use FREQ=YEARLY with BYMONTH.")
    if month_day is not None and freq not in ("MONTHLY", "YEARLY"):
        raise _refuse(
            f"BYMONTHDAY with FREQ={freq} is not a pattern Graph has", "Use FREQ=MONTHLY with BYMONTHDAY."
        )
    start_day = DAYS[tuple(DAYS)[local.weekday()]]
    pattern: dict[str, Any]
    if freq == "DAILY":
        if days is None:
            pattern = {"type": "daily", "interval": interval}
        elif interval != 1 or any(ordinal is not None for ordinal, _ in days):
            raise _refuse(
                "FREQ=DAILY with BYDAY and an interval or ordinals is not a pattern Graph has",
                "Use FREQ=WEEKLY;BYDAY=… for chosen weekdays.",
            )
        else:
            pattern = {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": [day for _, day in days],
                "firstDayOfWeek": DAYS[wkst],
            }
    elif freq == "WEEKLY":
        if days is not None and any(ordinal is not None for ordinal, _ in days):
            raise _refuse(
                "FREQ=WEEKLY with ordinal days (such as 2TH) is not a pattern Graph has",
                "Use FREQ=MONTHLY;BYDAY=2TH for the second Thursday of each month.",
            )
        pattern = {
            "type": "weekly",
            "interval": interval,
            "daysOfWeek": [day for _, day in days] if days else [start_day],
            "firstDayOfWeek": DAYS[wkst],
        }
    elif freq == "MONTHLY":
        if days is not None:
            pattern = {
                "type": "relativeMonthly",
                "interval": interval,
                **_relative(days, setpos, "FREQ=MONTHLY"),
            }
        elif setpos is not None:
            raise _refuse(
                "BYSETPOS without BYDAY is not a pattern Graph has", "Add BYDAY, or remove BYSETPOS."
            )
        else:
            pattern = {"type": "absoluteMonthly", "interval": interval, "dayOfMonth": month_day or local.day}
    else:
        in_month = month or local.month
        if days is not None:
            pattern = {
                "type": "relativeYearly",
                "interval": interval,
                "month": in_month,
                **_relative(days, setpos, "FREQ=YEARLY"),
            }
        elif setpos is not None:
            raise _refuse(
                "BYSETPOS without BYDAY is not a pattern Graph has", "Add BYDAY, or remove BYSETPOS."
            )
        else:
            pattern = {
                "type": "absoluteYearly",
                "interval": interval,
                "dayOfMonth": month_day or local.day,
                "month": in_month,
            }
    return Recurrence(pattern=pattern, range=_range(parts, local.date(), zone, time_zone))


def to_rrule(recurrence: dict[str, Any]) -> str:
    """The RRULE (with ``RRULE:``) for a Graph ``recurrence`` (``{"pattern", "range"}``).

    Raises :class:`MeetingRuleError` for a pattern or range type Graph does not document.
    """
    pattern = recurrence.get("pattern") or {}
    span = recurrence.get("range") or {}
    kind = pattern.get("type")
    parts: list[str] = []
    interval = int(pattern.get("interval") or 1)
    codes = [_CODE_OF_DAY[day] for day in pattern.get("daysOfWeek") or [] if day in _CODE_OF_DAY]
    index = _ORDINAL_OF_INDEX.get(str(pattern.get("index") or "first"), 1)
    if kind == "daily":
        parts.append("FREQ=DAILY")
    elif kind == "weekly":
        parts.append("FREQ=WEEKLY")
    elif kind in ("absoluteMonthly", "relativeMonthly"):
        parts.append("FREQ=MONTHLY")
    elif kind in ("absoluteYearly", "relativeYearly"):
        parts.append("FREQ=YEARLY")
    else:
        raise _refuse(f"recurrence pattern type {kind!r} is not one Graph documents", "Check the event.")
    if interval != 1:
        parts.append(f"INTERVAL={interval}")
    if kind == "weekly":
        parts.append("BYDAY=" + ",".join(codes))
        first = pattern.get("firstDayOfWeek") or "sunday"
        parts.append(f"WKST={_CODE_OF_DAY.get(first, 'SU')}")
    if kind in ("absoluteYearly", "relativeYearly") and pattern.get("month"):
        parts.append(f"BYMONTH={int(pattern['month'])}")
    if kind in ("absoluteMonthly", "absoluteYearly") and pattern.get("dayOfMonth"):
        parts.append(f"BYMONTHDAY={int(pattern['dayOfMonth'])}")
    if kind in ("relativeMonthly", "relativeYearly"):
        if len(codes) == 1:
            parts.append(f"BYDAY={index}{codes[0]}")
        else:
            parts.append("BYDAY=" + ",".join(codes))
            parts.append(f"BYSETPOS={index}")
    span_kind = span.get("type")
    if span_kind == "numbered":
        parts.append(f"COUNT={int(span['numberOfOccurrences'])}")
    elif span_kind == "endDate":
        parts.append("UNTIL=" + str(span["endDate"]).replace("-", ""))
    elif span_kind not in ("noEnd", None):
        raise _refuse(f"recurrence range type {span_kind!r} is not one Graph documents", "Check the event.")
    return "RRULE:" + ";".join(parts)
