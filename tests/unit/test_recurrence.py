"""RRULE ↔ Graph patternedRecurrence: every documented pattern and range maps, and what Graph cannot
express is refused with a message that names the part and a remedy."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from meetgate.graph.errors import MeetingRuleError
from meetgate.graph.recurrence import parse_rrule, to_rrule

#: Monday 4 September 2017, 18:00 UTC (11:00 in Los Angeles): the docs' weekly example starts then
START = dt.datetime(2017, 9, 4, 18, 0, tzinfo=dt.UTC)


def graph(rule: str, *, start: dt.datetime = START, time_zone: str = "UTC") -> dict[str, Any]:
    return parse_rrule(rule, start=start, time_zone=time_zone).to_graph()


def test_the_docs_weekly_example_maps_to_the_documented_recurrence() -> None:
    # user-post-events.md, example 3: every Monday from 2017-09-04 to 2017-12-31, Pacific time
    body = graph("RRULE:FREQ=WEEKLY;BYDAY=MO;WKST=SU;UNTIL=20171231", time_zone="America/Los_Angeles")
    assert body == {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": ["monday"],
            "firstDayOfWeek": "sunday",
        },
        "range": {
            "type": "endDate",
            "startDate": "2017-09-04",
            "endDate": "2017-12-31",
            "recurrenceTimeZone": "America/Los_Angeles",
        },
    }


@pytest.mark.parametrize(
    ("rule", "pattern"),
    [
        ("FREQ=DAILY", {"type": "daily", "interval": 1}),
        ("FREQ=DAILY;INTERVAL=3", {"type": "daily", "interval": 3}),
        (
            "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
            {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "firstDayOfWeek": "monday",
            },
        ),
        (
            "FREQ=WEEKLY",
            {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "monday"},
        ),
        (
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TU",
            {
                "type": "weekly",
                "interval": 2,
                "daysOfWeek": ["monday", "tuesday"],
                "firstDayOfWeek": "monday",
            },
        ),
        ("FREQ=MONTHLY", {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 4}),
        (
            "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=15",
            {"type": "absoluteMonthly", "interval": 3, "dayOfMonth": 15},
        ),
        (
            "FREQ=MONTHLY;BYDAY=2TH",
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["thursday"], "index": "second"},
        ),
        (
            "FREQ=MONTHLY;BYDAY=-1FR",
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
        ),
        (
            "FREQ=MONTHLY;INTERVAL=3;BYDAY=TH,FR;BYSETPOS=2",
            {
                "type": "relativeMonthly",
                "interval": 3,
                "daysOfWeek": ["thursday", "friday"],
                "index": "second",
            },
        ),
        ("FREQ=YEARLY", {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 4, "month": 9}),
        (
            "FREQ=YEARLY;INTERVAL=3;BYMONTH=3;BYMONTHDAY=15",
            {"type": "absoluteYearly", "interval": 3, "dayOfMonth": 15, "month": 3},
        ),
        (
            "FREQ=YEARLY;INTERVAL=3;BYMONTH=11;BYDAY=2TH",
            {
                "type": "relativeYearly",
                "interval": 3,
                "month": 11,
                "daysOfWeek": ["thursday"],
                "index": "second",
            },
        ),
    ],
)
def test_each_documented_pattern_type(rule: str, pattern: dict[str, Any]) -> None:
    assert graph(rule)["pattern"] == pattern


def test_ranges_count_until_and_no_end() -> None:
    assert graph("FREQ=DAILY;COUNT=10")["range"] == {
        "type": "numbered",
        "numberOfOccurrences": 10,
        "startDate": "2017-09-04",
        "recurrenceTimeZone": "UTC",
    }
    assert graph("FREQ=DAILY")["range"]["type"] == "noEnd"
    assert graph("FREQ=DAILY;UNTIL=20171001T000000Z")["range"]["endDate"] == "2017-10-01"


def test_dates_are_read_in_the_recurrence_time_zone() -> None:
    # 02:00 UTC on Tuesday is still Monday evening in Los Angeles: the series starts on Monday
    late = dt.datetime(2017, 9, 5, 2, 0, tzinfo=dt.UTC)
    body = graph("FREQ=WEEKLY;UNTIL=20171002T050000Z", start=late, time_zone="America/Los_Angeles")
    assert body["pattern"]["daysOfWeek"] == ["monday"]
    assert body["range"]["startDate"] == "2017-09-04"
    assert body["range"]["endDate"] == "2017-10-01"  # 05:00 UTC on 2 October is 1 October there


def test_prefix_case_and_spacing_are_tolerated() -> None:
    assert graph("rrule:freq=weekly;byday=mo ; count=2") == graph("RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2")


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("", "empty"),
        ("FREQ=HOURLY", "more often than daily"),
        ("FREQ=WEEKLY;BYHOUR=9,15", "BYHOUR"),
        ("FREQ=YEARLY;BYYEARDAY=100", "day-of-year"),
        ("FREQ=YEARLY;BYWEEKNO=20", "week-number"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20271231", "both COUNT and UNTIL"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,15", "several values"),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", "outside 1..31"),
        ("FREQ=MONTHLY;BYDAY=5MO", "ordinal 5"),
        ("FREQ=MONTHLY;BYDAY=-2MO", "ordinal -2"),
        ("FREQ=MONTHLY;BYDAY=1MO,3MO", "several ordinal days"),
        ("FREQ=MONTHLY;BYDAY=MO", "needs an ordinal"),
        ("FREQ=MONTHLY;BYDAY=2MO;BYMONTHDAY=3", "BYMONTHDAY and BYDAY"),
        ("FREQ=WEEKLY;BYDAY=2MO", "ordinal days"),
        ("FREQ=WEEKLY;BYMONTH=3", "BYMONTH with FREQ=WEEKLY"),
        ("FREQ=YEARLY;BYMONTH=1,7", "several values"),
        ("FREQ=DAILY;INTERVAL=2;BYDAY=MO", "FREQ=DAILY with BYDAY"),
        ("FREQ=DAILY;INTERVAL=0", "positive whole number"),
        ("FREQ=DAILY;COUNT=ten", "positive whole number"),
        ("FREQ=DAILY;UNTIL=2027-12-31", "not an RFC 5545 date"),
        ("FREQ=DAILY;UNTIL=20270231", "not a real date"),
        ("FREQ=DAILY;UNTIL=20170101", "before the first meeting"),
        ("FREQ=DAILY;FREQ=WEEKLY", "given twice"),
        ("FREQ=WEEKLY;BYDAY=MO,XX", "not a weekday"),
        ("FREQ=WEEKLY;BYDAY=MO,MO", "names a day twice"),
        ("FREQ=WEEKLY;COLOR=RED", "not an RFC 5545 RRULE part"),
        ("INTERVAL=2", "no FREQ"),
        ("FREQ=DAILY;;COUNT=2", "not NAME=VALUE"),
        ("FREQ=DAILY\nEXDATE:20170905", "more than one line"),
        ("FREQ=MONTHLY;BYSETPOS=1", "BYSETPOS without BYDAY"),
        ("FREQ=MONTHLY;BYDAY=2MO;BYSETPOS=1", "BYSETPOS with ordinal days"),
    ],
)
def test_what_graph_cannot_express_is_refused_with_a_remedy(rule: str, words: str) -> None:
    with pytest.raises(MeetingRuleError) as caught:
        parse_rrule(rule, start=START)
    assert words in str(caught.value)
    assert caught.value.field == "recurrence"
    assert caught.value.remedy


def test_a_start_without_a_time_zone_or_an_unknown_zone_is_refused() -> None:
    with pytest.raises(MeetingRuleError) as naive:
        parse_rrule("FREQ=DAILY", start=START.replace(tzinfo=None))
    assert naive.value.field == "start"
    with pytest.raises(MeetingRuleError) as unknown:
        parse_rrule("FREQ=DAILY", start=START, time_zone="Mars/Olympus")
    assert unknown.value.field == "timeZone"


@pytest.mark.parametrize(
    "rule",
    [
        "RRULE:FREQ=DAILY;INTERVAL=3;COUNT=5",
        "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TU;WKST=SU;UNTIL=20171231",
        "RRULE:FREQ=MONTHLY;BYMONTHDAY=15",
        "RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=12",
        "RRULE:FREQ=MONTHLY;INTERVAL=3;BYDAY=TH,FR;BYSETPOS=2",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=15",
        "RRULE:FREQ=YEARLY;INTERVAL=3;BYMONTH=11;BYDAY=2TH",
    ],
)
def test_graph_recurrence_maps_back_to_the_same_rule(rule: str) -> None:
    body = graph(rule)
    assert to_rrule(body) == rule
    assert graph(to_rrule(body)) == body


def test_an_undocumented_pattern_type_is_refused_on_the_way_back() -> None:
    with pytest.raises(MeetingRuleError):
        to_rrule({"pattern": {"type": "hourly"}, "range": {"type": "noEnd"}})
