import asyncio
import datetime as dt
import json

import httpx
import pytest
from graph_fakes import FakeCloud, settings

from meetgate.graph.client import AsyncGraphClient, GraphClient
from meetgate.graph.errors import (
    AccessPolicyMissing,
    MeetingNotFound,
    MeetingRuleError,
    MissingRolesError,
    OrganizerIdRequired,
    OrganizerNotFound,
)
from meetgate.graph.models import MeetingRequest, MeetingUpdate
from meetgate.graph.retry import RetryPolicy, no_jitter

START = dt.datetime(2030, 6, 11, 10, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(minutes=45)
ORGANIZER = "alice@contoso.test"


@pytest.fixture
def cloud() -> FakeCloud:
    fake = FakeCloud()
    fake.add_user(ORGANIZER)
    return fake


@pytest.fixture
def graph(cloud):
    with GraphClient(
        settings(), transport=cloud.transport(), retry=RetryPolicy(jitter=no_jitter), sleep=lambda s: None
    ) as client:
        yield client


def sent(cloud: FakeCloud, method: str, suffix: str = "") -> list[httpx.Request]:
    return [
        r
        for r in cloud.requests
        if r.method == method and r.url.path.endswith(suffix) and r.url.host == "graph.test"
    ]


def request(**kw) -> MeetingRequest:
    base = {"subject": "Interview", "start": START, "end": END, "attendees": ["bob@fabrikam.test"]}
    base.update(kw)
    return MeetingRequest(**base)


def test_create_uses_create_or_get_with_generated_external_id_and_upn_attendees(cloud, graph):
    meeting = graph.meetings.create(ORGANIZER, request())
    assert meeting.subject == "Interview" and meeting.start == START and meeting.end == END
    assert meeting.external_id.startswith("meetgate-")
    assert meeting.join_web_url and meeting.join_meeting_id and meeting.passcode
    assert [a.upn for a in meeting.attendees] == ["bob@fabrikam.test"]
    posts = sent(cloud, "POST")
    assert len(posts) == 1 and posts[0].url.path.endswith("/onlineMeetings/createOrGet")
    body = json.loads(posts[0].content)
    assert body["participants"]["attendees"] == [{"upn": "bob@fabrikam.test", "role": "attendee"}]
    assert body["startDateTime"] == "2030-06-11T10:00:00Z"
    assert posts[0].headers["Prefer"] == "include-unknown-enum-members"


def test_create_retried_after_a_lost_response_returns_the_same_meeting(cloud, graph):
    def lose_response(req: httpx.Request) -> httpx.Response:
        cloud._graph(req, req.url.path, {})  # the meeting is created...
        raise httpx.ReadError("connection reset", request=req)  # ...but the answer is lost

    cloud.faults = [lose_response]
    organizer_id = cloud.users[ORGANIZER]  # by id: the first Graph request is the createOrGet
    meeting = graph.meetings.create(organizer_id, request(), external_id="booking-1")
    assert len(cloud.meetings) == 1
    assert meeting.id in cloud.meetings
    assert len(sent(cloud, "POST", "createOrGet")) == 2


def test_create_or_get_reports_created_then_existing(cloud, graph):
    first = graph.meetings.create_or_get(ORGANIZER, "booking-7", request())
    again = graph.meetings.create_or_get(ORGANIZER, "booking-7", request(subject="other"))
    assert first.created and not again.created
    assert again.meeting.id == first.meeting.id
    assert again.meeting.subject == "Interview"


def test_meeting_options_are_applied_after_create(cloud, graph):
    meeting = graph.meetings.create(
        ORGANIZER,
        request(lobby_bypass_scope="organizer", allowed_presenters="organizer", allow_meeting_chat="limited"),
    )
    assert meeting.lobby_bypass_scope == "organizer"
    assert meeting.allowed_presenters == "organizer" and meeting.allow_meeting_chat == "limited"
    patch = json.loads(sent(cloud, "PATCH")[0].content)
    assert patch["lobbyBypassSettings"] == {"scope": "organizer", "isDialInBypassEnabled": False}


def test_upns_are_resolved_once_and_cached(cloud, graph):
    graph.meetings.create(ORGANIZER, request())
    graph.meetings.create("ALICE@contoso.test", request())
    lookups = [
        r
        for r in cloud.requests
        if r.url.path.endswith("/users/alice@contoso.test")
        or r.url.path.endswith("/users/ALICE@contoso.test")
    ]
    assert len(lookups) == 1
    assert "$select=id" in str(lookups[0].url).replace("%24", "$")


def test_get_find_update_reschedule_cancel(cloud, graph):
    meeting = graph.meetings.create(ORGANIZER, request())
    assert graph.meetings.get(ORGANIZER, meeting.id).id == meeting.id
    assert graph.meetings.find_by_join_url(ORGANIZER, meeting.join_web_url).id == meeting.id
    spaced = " ".join(meeting.join_meeting_id[i : i + 3] for i in range(0, len(meeting.join_meeting_id), 3))
    assert graph.meetings.find_by_meeting_id(ORGANIZER, spaced).id == meeting.id
    assert graph.meetings.find_by_join_url(ORGANIZER, "https://teams.test/l/none") is None

    later = START + dt.timedelta(days=1)
    moved = graph.meetings.update(
        ORGANIZER, meeting.id, MeetingUpdate(start=later, end=later + dt.timedelta(hours=1), subject="Moved")
    )
    assert moved.start == later and moved.subject == "Moved"
    kept = graph.meetings.reschedule(ORGANIZER, meeting.id, later + dt.timedelta(hours=2))
    assert kept.end - kept.start == dt.timedelta(hours=1)

    replaced = graph.meetings.update(ORGANIZER, meeting.id, MeetingUpdate(attendees=["carol@fabrikam.test"]))
    assert [a.upn for a in replaced.attendees] == ["carol@fabrikam.test"]

    locked = graph.meetings.cancel(ORGANIZER, meeting.id, mode="lock")
    assert locked.lobby_bypass_scope == "organizer" and locked.allow_meeting_chat == "disabled"
    assert locked.dial_in_bypass is False and locked.allowed_presenters == "organizer"

    assert graph.meetings.cancel(ORGANIZER, meeting.id) is None
    assert meeting.id not in cloud.meetings
    with pytest.raises(MeetingNotFound):
        graph.meetings.get(ORGANIZER, meeting.id)


def test_half_given_lobby_keeps_the_current_other_half(cloud, graph):
    meeting = graph.meetings.create(ORGANIZER, request())
    updated = graph.meetings.update(ORGANIZER, meeting.id, MeetingUpdate(dial_in_bypass=True))
    assert updated.lobby_bypass_scope == "organization" and updated.dial_in_bypass is True


def test_delete_retried_after_lost_answer_is_not_an_error(cloud, graph):
    meeting = graph.meetings.create(ORGANIZER, request())

    def lose_response(req: httpx.Request) -> httpx.Response:
        cloud._graph(req, req.url.path, {})
        raise httpx.ReadError("reset", request=req)

    cloud.faults = [lose_response]
    graph.meetings.delete(ORGANIZER, meeting.id)
    assert not cloud.meetings


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (MeetingUpdate(), "nothing to change"),
        (MeetingUpdate(start=START), "both start and end"),
        (MeetingUpdate(start=END, end=START), "not after start"),
        (MeetingUpdate(start=START.replace(tzinfo=None), end=END), "no timezone"),
    ],
)
def test_patch_rules_are_enforced_before_sending(cloud, graph, changes, message):
    with pytest.raises(MeetingRuleError, match=message):
        graph.meetings.update(ORGANIZER, "some-id", changes)
    assert not sent(cloud, "PATCH")


def test_create_rules():
    from meetgate.graph.meetings import check_external_id, create_body

    with pytest.raises(MeetingRuleError, match="end without a start"):
        create_body(MeetingRequest(end=END), "x")
    with pytest.raises(MeetingRuleError):
        check_external_id("has space")
    assert create_body(MeetingRequest(), "x") == {"externalId": "x"}


def test_unknown_organizer_is_organizer_not_found(cloud, graph):
    with pytest.raises(OrganizerNotFound) as caught:
        graph.meetings.create("nobody@contoso.test", request())
    assert caught.value.organizer == "nobody@contoso.test"
    assert "not a user of this tenant" in caught.value.remedy
    with pytest.raises(OrganizerNotFound):
        graph.meetings.get("00000000-0000-0000-0000-000000000001", "m")


def test_organizer_without_policy_gets_the_remedy(cloud, graph):
    cloud.add_user("zoe@contoso.test", allowed=False)
    with pytest.raises(AccessPolicyMissing) as caught:
        graph.meetings.create("zoe@contoso.test", request())
    assert '-Identity "zoe@contoso.test"' in caught.value.remedy


def test_missing_role_is_diagnosed_from_the_token(cloud):
    cloud.roles = ["User.Read.All"]
    with GraphClient(settings(), transport=cloud.transport()) as graph:
        assert graph.missing_roles() == ["OnlineMeetings.ReadWrite.All"]
        with pytest.raises(MissingRolesError) as caught:
            graph.meetings.create(ORGANIZER, request())
    assert caught.value.missing_roles == ["OnlineMeetings.ReadWrite.All"]
    assert "admin consent" in caught.value.remedy


def test_upn_in_a_meetings_path_is_named(cloud, graph):
    with pytest.raises(OrganizerIdRequired) as caught:
        graph.http.get("/users/alice@contoso.test/onlineMeetings/x")
    assert "object id" in caught.value.remedy


def test_attendance_reports(cloud, graph):
    meeting = graph.meetings.create(ORGANIZER, request())
    assert [r.id for r in graph.meetings.attendance_reports(ORGANIZER, meeting.id)] == ["r1"]
    detailed = graph.meetings.attendance_reports(ORGANIZER, meeting.id, with_records=True)
    assert detailed[0].attendance_records[0].email_address == "a@x.test"


def test_async_meetings_share_the_same_operations(cloud):
    async def main():
        async with AsyncGraphClient(
            settings(), transport=cloud.transport(), token_transport=cloud.transport()
        ) as graph:
            meeting = await graph.meetings.create(ORGANIZER, request(), external_id="async-1")
            again = await graph.meetings.create_or_get(ORGANIZER, "async-1", request())
            moved = await graph.meetings.reschedule(ORGANIZER, meeting.id, START + dt.timedelta(hours=3))
            await graph.meetings.cancel(ORGANIZER, meeting.id)
            return meeting, again, moved

    meeting, again, moved = asyncio.run(main())
    assert not again.created and again.meeting.id == meeting.id
    assert moved.start == START + dt.timedelta(hours=3)
    assert not cloud.meetings
