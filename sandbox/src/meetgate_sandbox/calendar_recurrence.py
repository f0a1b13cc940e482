"""Expanding a Graph ``patternedRecurrence`` into occurrence dates, as Exchange does for ``/instances``
and ``calendarView``.

Pure functions over dates in the recurrence's own time zone. The pattern types and their required
properties are those of the ``recurrencePattern`` resource; ranges those of ``recurrenceRange``
(``endDate`` inclusive, ``numbered``, ``noEnd``). A pattern that lacks a required property, or has one
of the wrong type, is a :class:`RecurrenceInvalid` (the API turns it into Graph's 400).

Where Graph's documentation is silent the sandbox chooses, and says so:

- ``absoluteMonthly`` / ``absoluteYearly`` on a ``dayOfMonth`` the month lacks (the 31st in April)
  falls on the month's last day, as Outlook schedules it;
- a ``noEnd`` series is expanded at most :data:`MAX_OCCURRENCES` times (far beyond any window asked).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any, Final

__all__ = [
    "DAY_NAMES",
    "MAX_OCCURRENCES",
    "PATTERN_TYPES",
    "RANGE_TYPES",
    "RecurrenceInvalid",
    "check_recurrence",
    "occurrence_dates",
]

DAY_NAMES: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PATTERN_TYPES: Final = (
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
)
RANGE_TYPES: Final = ("endDate", "noEnd", "numbered")
INDEXES: Final = ("first", "second", "third", "fourth", "last")
#: required pattern properties by type, besides ``type`` and ``interval`` (recurrencePattern's table)
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "daily": (),
    "weekly": ("daysOfWeek",),
    "absoluteMonthly": ("dayOfMonth",),
    "relativeMonthly": ("daysOfWeek",),
    "absoluteYearly": ("dayOfMonth", "month"),
    "relativeYearly": ("daysOfWeek", "month"),
}
MAX_OCCURRENCES: Final = 3000


class RecurrenceInvalid(ValueError):
    """The recurrence cannot be used as given; the message says which property and why."""


def _int(pattern: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = pattern.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RecurrenceInvalid(f"recurrence.pattern.{name} must be a whole number from {low} to {high}.")
    return value


def _date(span: Mapping[str, Any], name: str) -> dt.date:
    value = span.get(name)
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise RecurrenceInvalid(f"recurrence.range.{name} must be a date such as 2027-01-31.") from None


def check_recurrence(recurrence: object) -> dict[str, Any]:
    """``recurrence`` normalised (defaults filled as Graph returns them), or :class:`RecurrenceInvalid`."""
    if not isinstance(recurrence, Mapping):
        raise RecurrenceInvalid("recurrence must be an object with pattern and range.")
    pattern, span = recurrence.get("pattern"), recurrence.get("range")
    if not isinstance(pattern, Mapping) or not isinstance(span, Mapping):
        raise RecurrenceInvalid("recurrence must have a pattern and a range.")
    kind = pattern.get("type")
    if kind not in PATTERN_TYPES:
        raise RecurrenceInvalid(f"recurrence.pattern.type must be one of {', '.join(PATTERN_TYPES)}.")
    for name in REQUIRED[kind]:
        if pattern.get(name) in (None, []):
            raise RecurrenceInvalid(f"recurrence.pattern.{name} is required for a {kind} pattern.")
    days = pattern.get("daysOfWeek") or []
    if not isinstance(days, list) or any(day not in DAY_NAMES for day in days):
        raise RecurrenceInvalid("recurrence.pattern.daysOfWeek must list days such as monday, tuesday.")
    first = pattern.get("firstDayOfWeek") or "sunday"
    index = pattern.get("index") or "first"
    if first not in DAY_NAMES:
        raise RecurrenceInvalid("recurrence.pattern.firstDayOfWeek must be a day such as sunday.")
    if index not in INDEXES:
        raise RecurrenceInvalid(f"recurrence.pattern.index must be one of {', '.join(INDEXES)}.")
    normal_pattern = {
        "type": kind,
        "interval": _int(pattern, "interval", 1, 999),
        "month": _int(pattern, "month", 1, 12) if pattern.get("month") is not None else 0,
        "dayOfMonth": _int(pattern, "dayOfMonth", 1, 31) if pattern.get("dayOfMonth") is not None else 0,
        "daysOfWeek": list(days),
        "firstDayOfWeek": first,
        "index": index,
    }
    range_kind = span.get("type")
    if range_kind not in RANGE_TYPES:
        raise RecurrenceInvalid(f"recurrence.range.type must be one of {', '.join(RANGE_TYPES)}.")
    start = _date(span, "startDate")
    normal_range: dict[str, Any] = {
        "type": range_kind,
        "startDate": start.isoformat(),
        "endDate": "0001-01-01",
        "recurrenceTimeZone": span.get("recurrenceTimeZone") or "UTC",
        "numberOfOccurrences": 0,
    }
    if range_kind == "endDate":
        end = _date(span, "endDate")
        if end < start:
            raise RecurrenceInvalid("recurrence.range.endDate must not be before startDate.")
        normal_range["endDate"] = end.isoformat()
    elif range_kind == "numbered":
        normal_range["numberOfOccurrences"] = _int(span, "numberOfOccurrences", 1, 999)
    return {"pattern": normal_pattern, "range": normal_range}


def _months(start: dt.date, interval: int) -> Iterator[tuple[int, int]]:
    year, month = start.year, start.month
    while True:
        yield year, month
        month += interval
        year, month = year + (month - 1) // 12, (month - 1) % 12 + 1


def _day_in(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _relative_day(year: int, month: int, days: list[str], index: str) -> dt.date:
    wanted = {DAY_NAMES.index(day) for day in days}
    matching = [
        dt.date(year, month, number)
        for number in range(1, calendar.monthrange(year, month)[1] + 1)
        if dt.date(year, month, number).weekday() in wanted
    ]
    return matching[-1] if index == "last" else matching[INDEXES.index(index)]


def _candidates(pattern: Mapping[str, Any], start: dt.date) -> Iterator[dt.date]:
    kind, interval = pattern["type"], pattern["interval"]
    if kind == "daily":
        day = start
        while True:
            yield day
            day += dt.timedelta(days=interval)
    elif kind == "weekly":
        first = DAY_NAMES.index(pattern["firstDayOfWeek"])
        week = start - dt.timedelta(days=(start.weekday() - first) % 7)
        offsets = sorted((DAY_NAMES.index(day) - first) % 7 for day in pattern["daysOfWeek"])
        while True:
            for offset in offsets:
                yield week + dt.timedelta(days=offset)
            week += dt.timedelta(weeks=interval)
    elif kind in ("absoluteMonthly", "relativeMonthly"):
        for year, month in _months(start, interval):
            if kind == "absoluteMonthly":
                yield _day_in(year, month, pattern["dayOfMonth"])
            else:
                yield _relative_day(year, month, pattern["daysOfWeek"], pattern["index"])
    else:
        year = start.year
        while True:
            if kind == "absoluteYearly":
                yield _day_in(year, pattern["month"], pattern["dayOfMonth"])
            else:
                yield _relative_day(year, pattern["month"], pattern["daysOfWeek"], pattern["index"])
            year += interval


def occurrence_dates(recurrence: Mapping[str, Any], *, until: dt.date | None = None) -> list[dt.date]:
    """The dates of every occurrence of a (checked) recurrence, in order, up to ``until`` (inclusive)
    when given; a ``noEnd`` series without ``until`` stops at :data:`MAX_OCCURRENCES`."""
    pattern, span = recurrence["pattern"], recurrence["range"]
    start = dt.date.fromisoformat(span["startDate"])
    last = dt.date.fromisoformat(span["endDate"]) if span["type"] == "endDate" else None
    if until is not None:
        last = until if last is None else min(last, until)
    count = span["numberOfOccurrences"] if span["type"] == "numbered" else MAX_OCCURRENCES
    dates: list[dt.date] = []
    for day in _candidates(pattern, start):
        if day < start:
            continue
        if (last is not None and day > last) or len(dates) >= count:
            break
        dates.append(day)
    return dates
