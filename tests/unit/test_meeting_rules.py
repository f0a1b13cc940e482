"""The one set of meeting rules (``meetgate.graph.meeting_rules``) and the library applying them."""

from __future__ import annotations

import datetime as dt

import pytest
from graph_fakes import FakeCloud, settings

from meetgate.graph import meeting_rules as rules
from meetgate.graph.client import GraphClient
from meetgate.graph.errors import MeetingRuleError
from meetgate.graph.meetings import create_body, update_body
from meetgate.graph.models import MeetingRequest, MeetingUpdate
from meetgate.graph.retry import RetryPolicy, no_jitter

NOW = dt.datetime(2030, 6, 11, 10, 0, tzinfo=dt.UTC)
ORGANIZER = "alice@contoso.test"


def refusal(call, *args, **kwargs) -> MeetingRuleError:
    with pytest.raises(MeetingRuleError) as caught:
        call(*args, **kwargs)
    assert isinstance(caught.value, ValueError)
    return caught.value


def test_subject_rules_name_the_field():
    assert rules.check_subject(None) is None
    assert rules.check_subject("Interview\twith tab") == "Interview\twith tab"
    assert rules.check_subject("x" * 255) == "x" * 255
    too_long = refusal(rules.check_subject, "x" * 100_000)
    assert too_long.field == "subject" and "100,000 characters, more than 255" in too_long.message
    for text, shown in (
        ("a\x00b", "U+0000"),
        ("a\x1b[31mred", "U+001B"),
        ("a\nb", "U+000A"),
        ("a\x7f", "U+007F"),
    ):
        error = refusal(rules.check_subject, text)
        assert error.field == "subject" and shown in error.message and "tab" in error.remedy
    assert refusal(rules.check_subject, "   ").field == "subject"


def test_times_need_a_timezone_with_the_advice():
    error = refusal(rules.parse_time, "2030-06-11T10:00:00", "start")
    assert error.field == "start" and "no timezone" in error.message
    assert "Add Z (UTC) or an offset such as +02:00" in error.remedy
    error = refusal(rules.parse_time, "tomorrow", "end")
    assert error.field == "end" and "ISO 8601" in error.message
    assert rules.parse_time("2030-06-11T10:00:00Z", "start") == NOW


def test_end_after_start_and_pairs():
    later = NOW + dt.timedelta(hours=1)
    assert refusal(rules.check_times, later, NOW, now=NOW).field == "end"
    assert refusal(rules.check_times, None, later, now=NOW).field == "end"
    assert refusal(rules.check_times, NOW, None, update=True, now=NOW).field == "end"
    assert refusal(rules.check_times, None, later, update=True, now=NOW).field == "start"
    rules.check_times(NOW, later, now=NOW)
    rules.check_times(NOW, None, now=NOW)  # Graph gives a new meeting an end of its own


def test_a_start_in_the_past_is_refused_unless_allowed():
    past = NOW - dt.timedelta(days=1)
    error = refusal(rules.check_times, past, past + dt.timedelta(hours=1), now=NOW)
    assert error.field == "start" and "in the past" in error.message and "allow_past" in error.remedy
    rules.check_times(past, past + dt.timedelta(hours=1), allow_past=True, now=NOW)
    # a few minutes of clock skew between caller and server are no reason to refuse
    rules.check_times(NOW - dt.timedelta(minutes=4), None, now=NOW)
    assert refusal(rules.check_times, NOW - dt.timedelta(minutes=6), None, now=NOW).field == "start"


def test_library_bodies_apply_every_rule():
    past = NOW - dt.timedelta(days=30)
    error = refusal(create_body, MeetingRequest(subject="x" * 100_000), "k", now=NOW)
    assert error.field == "subject"
    error = refusal(create_body, MeetingRequest(subject="ok", start=past), "k", now=NOW)
    assert error.field == "start"
    body = create_body(MeetingRequest(subject="ok", start=past), "k", allow_past=True, now=NOW)
    assert body["startDateTime"] == "2030-05-12T10:00:00Z"
    error = refusal(update_body, MeetingUpdate(subject="bad\x00"), now=NOW)
    assert error.field == "subject"
    error = refusal(update_body, MeetingUpdate(start=past, end=past + dt.timedelta(hours=1)), now=NOW)
    assert error.field == "start"
    assert error.to_dict()["field"] == "start"


def test_the_client_sends_nothing_for_a_past_start_unless_allowed():
    cloud = FakeCloud()
    cloud.add_user(ORGANIZER)
    with GraphClient(
        settings(), transport=cloud.transport(), retry=RetryPolicy(jitter=no_jitter), sleep=lambda s: None
    ) as graph:
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        request = MeetingRequest(subject="Last week's", start=start, end=start + dt.timedelta(hours=1))
        error = refusal(graph.meetings.create, ORGANIZER, request)
        assert error.field == "start"
        assert not [r for r in cloud.requests if r.url.host == "graph.test"]
        meeting = graph.meetings.create(ORGANIZER, request, allow_past=True)
        assert meeting.start is not None and abs(meeting.start - start) < dt.timedelta(seconds=1)
        error = refusal(graph.meetings.reschedule, ORGANIZER, meeting.id, start - dt.timedelta(days=1))
        assert error.field == "start"
        moved = graph.meetings.reschedule(
            ORGANIZER, meeting.id, start - dt.timedelta(days=1), allow_past=True
        )
        assert moved.id == meeting.id
