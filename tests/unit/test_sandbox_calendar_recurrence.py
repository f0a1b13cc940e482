"""The sandbox's expansion of Graph recurrences into occurrence dates, for every documented pattern."""

from __future__ import annotations

import datetime as dt

import pytest

from meetgate_sandbox.calendar_recurrence import RecurrenceInvalid, check_recurrence, occurrence_dates


def dates(pattern: dict, range_: dict, until: dt.date | None = None) -> list[str]:
    checked = check_recurrence({"pattern": pattern, "range": range_})
    return [day.isoformat() for day in occurrence_dates(checked, until=until)]


def numbered(start: str, count: int) -> dict:
    return {"type": "numbered", "startDate": start, "numberOfOccurrences": count}


def test_daily_every_third_day() -> None:
    assert dates({"type": "daily", "interval": 3}, numbered("2030-01-30", 3)) == [
        "2030-01-30",
        "2030-02-02",
        "2030-02-05",
    ]


def test_weekly_every_other_week_on_two_days_from_the_first_day_of_the_week() -> None:
    pattern = {
        "type": "weekly",
        "interval": 2,
        "daysOfWeek": ["monday", "thursday"],
        "firstDayOfWeek": "sunday",
    }
    # starts on a Thursday: that week's Monday is before the start and does not count
    assert dates(pattern, numbered("2030-01-03", 4)) == [
        "2030-01-03",
        "2030-01-14",
        "2030-01-17",
        "2030-01-28",
    ]


def test_absolute_monthly_on_the_31st_falls_on_shorter_months_last_day() -> None:
    pattern = {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31}
    assert dates(pattern, numbered("2030-01-31", 3)) == ["2030-01-31", "2030-02-28", "2030-03-31"]


def test_relative_monthly_second_thursday_or_friday_and_the_last_friday() -> None:
    second = {
        "type": "relativeMonthly",
        "interval": 3,
        "daysOfWeek": ["thursday", "friday"],
        "index": "second",
    }
    assert dates(second, numbered("2030-01-01", 2)) == ["2030-01-04", "2030-04-05"]
    last = {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"}
    assert dates(last, numbered("2030-01-01", 2)) == ["2030-01-25", "2030-02-22"]


def test_yearly_patterns_and_an_end_date() -> None:
    absolute = {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 15, "month": 3}
    assert dates(absolute, {"type": "endDate", "startDate": "2030-03-15", "endDate": "2032-03-15"}) == [
        "2030-03-15",
        "2031-03-15",
        "2032-03-15",
    ]
    relative = {
        "type": "relativeYearly",
        "interval": 3,
        "daysOfWeek": ["thursday"],
        "index": "fourth",
        "month": 11,
    }
    assert dates(relative, numbered("2030-01-01", 2)) == ["2030-11-28", "2033-11-24"]


def test_no_end_stops_at_the_window() -> None:
    got = dates(
        {"type": "daily", "interval": 1},
        {"type": "noEnd", "startDate": "2030-01-01"},
        until=dt.date(2030, 1, 3),
    )
    assert got == ["2030-01-01", "2030-01-02", "2030-01-03"]


@pytest.mark.parametrize(
    ("recurrence", "words"),
    [
        ({"pattern": {"type": "hourly", "interval": 1}, "range": numbered("2030-01-01", 1)}, "pattern.type"),
        (
            {"pattern": {"type": "weekly", "interval": 1}, "range": numbered("2030-01-01", 1)},
            "daysOfWeek is required",
        ),
        ({"pattern": {"type": "daily", "interval": 0}, "range": numbered("2030-01-01", 1)}, "interval"),
        (
            {
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "endDate", "startDate": "2030-01-02", "endDate": "2030-01-01"},
            },
            "endDate",
        ),
        (
            {
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "numbered", "startDate": "2030-01-01"},
            },
            "numberOfOccurrences",
        ),
        (
            {"pattern": {"type": "daily", "interval": 1}, "range": {"type": "noEnd", "startDate": "soon"}},
            "startDate",
        ),
        (
            {
                "pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["funday"]},
                "range": numbered("2030-01-01", 1),
            },
            "daysOfWeek",
        ),
        ("weekly", "object"),
    ],
)
def test_what_graph_refuses(recurrence: object, words: str) -> None:
    with pytest.raises(RecurrenceInvalid, match=words):
        check_recurrence(recurrence)
