"""Calendar-backed meetings through the real client (MSAL + httpx over TLS) against the sandbox: the
calendar plane scoped by Exchange RBAC for Applications, the Teams plane by the access policy, a
weekly series, and a create whose answer is lost making one event, not two."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from meetgate.composition import graph_settings_from_profile
from meetgate.graph.client import GraphClient
from meetgate.graph.errors import MailboxAccessDenied, MailboxNotEnabled, MeetingRuleError
from meetgate.graph.models import LobbyBypassScope, MeetingRequest, MeetingUpdate
from meetgate.graph.retry import RetryPolicy, no_jitter

START = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
END = START + dt.timedelta(minutes=30)
EXCHANGE = "/tenants/{tid}/exchange"


@pytest.fixture
def scoped_app(sandbox_app):
    """sandbox_app plus Exchange RBAC: Calendars.ReadWrite on the pilot users' mailboxes only."""
    sandbox_app.scope_calendars()
    return sandbox_app


@pytest.fixture
def graph(scoped_app) -> Iterator[GraphClient]:
    settings = graph_settings_from_profile(scoped_app.profile(), environ={})
    with GraphClient(settings, retry=RetryPolicy(jitter=no_jitter), sleep=lambda _: None) as client:
        yield client


@pytest.fixture
def faults(sandbox_control):
    sandbox_control.clear_faults()
    yield sandbox_control
    sandbox_control.clear_faults()


def _request(**kw) -> MeetingRequest:
    values = {"placement": "calendar", "subject": "Admissions interview", "start": START, "end": END}
    values.update(kw)
    return MeetingRequest(**values)


def test_a_calendar_meeting_with_attendees_and_options(scoped_app, graph):
    organizer, attendee = scoped_app.pilot_users[0], scoped_app.other_users[0]
    result = graph.events.create_or_get(
        organizer.upn,
        "booking-1001",
        _request(
            attendees=[attendee.upn, {"upn": "parent@example.org", "optional": True}],
            body="<p>Bring your portfolio.</p>",
            location="Room 4",
            lobby_bypass_scope="organization",
        ),
    )
    event = result.event
    assert result.created and event.kind == "singleInstance"
    assert event.start == START and event.end == END
    assert event.join_web_url and event.join_web_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    assert [(a.address, a.type) for a in event.attendees] == [
        (attendee.upn, "required"),
        ("parent@example.org", "optional"),
    ]
    # the options went to the Teams meeting behind the event (the Teams policy holds for the pilot user)
    assert result.meeting is not None and result.meeting.lobby_bypass_scope == LobbyBypassScope.ORGANIZATION
    assert result.meeting.join_web_url == event.join_web_url

    again = graph.events.create_or_get(organizer.upn, "booking-1001", _request())
    assert not again.created and again.event.id == event.id and again.event.external_id == "booking-1001"
    assert graph.events.find_by_external_id(organizer.id, "booking-1001").id == event.id


def test_a_lost_answer_makes_one_event_not_two(scoped_app, graph, faults):
    organizer = scoped_app.pilot_users[0]
    faults.set_faults(lost_answer_rate=1.0)  # every write is carried out, then answered 500/504
    try:
        result = graph.events.create_or_get(organizer.id, "booking-lost", _request())
    finally:
        faults.clear_faults()
    assert result.event.external_id == "booking-lost"
    log = scoped_app.control.request_log(scoped_app.tenant_id, app_id=scoped_app.client_id)
    posts = [entry for entry in log if entry["method"] == "POST" and entry["path"].endswith("/events")]
    assert len(posts) == 1 and posts[0]["fault"]
    found = graph.events.find_by_external_id(organizer.id, "booking-lost")
    assert found is not None and found.id == result.event.id


def test_a_weekly_series_one_occurrence_moved_one_cancelled(scoped_app, graph):
    organizer, attendee = scoped_app.pilot_users[0], scoped_app.other_users[1]
    series = graph.events.create(
        organizer.upn,
        _request(attendees=[attendee.upn], recurrence="RRULE:FREQ=WEEKLY;COUNT=4", time_zone="Europe/Berlin"),
        external_id="class-101",
    )
    assert series.kind == "seriesMaster"
    assert series.recurrence is not None and series.recurrence.startswith("RRULE:FREQ=WEEKLY")
    window = (START - dt.timedelta(days=1), START + dt.timedelta(days=40))
    occurrences = graph.events.occurrences(organizer.upn, series.id, *window)
    assert [o.start for o in occurrences] == [START + dt.timedelta(weeks=n) for n in range(4)]
    moved_start = occurrences[1].start + dt.timedelta(hours=2)  # type: ignore[operator]
    moved = graph.events.update(
        organizer.upn,
        occurrences[1].id,
        MeetingUpdate(start=moved_start, end=moved_start + dt.timedelta(minutes=30)),
    )
    assert moved.kind == "exception" and moved.start == moved_start
    graph.events.cancel(organizer.upn, occurrences[2].id, message="No class this week")
    after = graph.events.occurrences(organizer.upn, series.id, *window)
    assert [o.start for o in after] == [occurrences[0].start, moved_start, occurrences[3].start]


def test_the_second_plane_refuses_an_organizer_outside_the_scope(scoped_app, graph):
    outside = scoped_app.other_users[2]
    with pytest.raises(MailboxAccessDenied) as caught:
        graph.events.create(outside.upn, _request())
    assert "Application Calendars.ReadWrite" in (caught.value.remedy or "")
    assert caught.value.code == "ErrorAccessDenied"


def test_an_organizer_without_a_mailbox(scoped_app, graph):
    organizer = scoped_app.pilot_users[1]
    scoped_app.control.request(
        "PATCH",
        f"{EXCHANGE.format(tid=scoped_app.tenant_id)}/mailboxes/{organizer.id}",
        json={"mailboxEnabled": False},
    )
    with pytest.raises(MailboxNotEnabled) as caught:
        graph.events.create(organizer.upn, _request())
    assert "standalone" in (caught.value.remedy or "")


def test_cancel_with_a_message_then_the_event_is_gone(scoped_app, graph):
    organizer = scoped_app.pilot_users[0]
    event = graph.events.create(organizer.upn, _request(), external_id="booking-cancel")
    graph.events.cancel(organizer.upn, event.id, message="The candidate withdrew")
    assert graph.events.find_by_external_id(organizer.upn, "booking-cancel") is None


def test_calendar_only_fields_are_refused_for_a_standalone_meeting(scoped_app, graph):
    organizer = scoped_app.pilot_users[0]
    with pytest.raises(MeetingRuleError) as caught:
        graph.meetings.create(organizer.upn, _request(placement="standalone", recurrence="RRULE:FREQ=DAILY"))
    assert caught.value.field == "recurrence"
    with pytest.raises(MeetingRuleError) as bad_rule:
        graph.events.create(organizer.upn, _request(recurrence="RRULE:FREQ=HOURLY"))
    assert bad_rule.value.field == "recurrence"
