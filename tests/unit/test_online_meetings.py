"""The sandbox's online-meeting domain: shapes, createOrGet, PATCH rules, lookups, attendance."""

import base64
import datetime as dt
import re
import urllib.parse

import pytest

from meetgate_sandbox.meetings import (
    MeetingError,
    MeetingStore,
    Organizer,
    format_datetime,
    render_meeting,
    thread_key_from_join_url,
)

TENANT = "7d1e2c3b-0000-4000-8000-000000000001"
ALICE = Organizer("aaaaaaaa-0000-4000-8000-000000000001", "alice@contoso.test", "Alice")
BOB = Organizer("aaaaaaaa-0000-4000-8000-000000000002", "bob@contoso.test", "Bob")
NOW = dt.datetime(2026, 6, 11, 10, 0, tzinfo=dt.UTC)
ATTENDEE = {"upn": "carol@contoso.test", "identity": {"user": {"id": "aaaaaaaa-0000-4000-8000-000000000003"}}}


@pytest.fixture
def store():
    return MeetingStore(TENANT, seed=1)


def test_meeting_shape_is_realistic(store):
    meeting = store.create(
        ALICE,
        {
            "subject": "Interview",
            "startDateTime": "2026-06-12T09:00:00+02:00",
            "endDateTime": "2026-06-12T09:30:00.1234567+02:00",
            "participants": {"attendees": [ATTENDEE]},
        },
        now=NOW,
    )
    body = render_meeting(
        meeting, TENANT, context_url="https://x/v1.0/$metadata#users('a')/onlineMeetings/$entity"
    )
    assert body["@odata.context"].endswith("/onlineMeetings/$entity")
    raw = base64.b64decode(body["id"]).decode()
    assert re.fullmatch(rf"1\*{ALICE.id}\*0\*\*19:meeting_[A-Za-z0-9+/=]+@thread\.v2", raw)
    assert body["chatInfo"]["threadId"] == raw.split("**", 1)[1]
    key = raw.split("19:meeting_", 1)[1].split("@", 1)[0]
    assert body["joinWebUrl"] == (
        f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{key}%40thread.v2/0?context="
        f"%7b%22Tid%22%3a%22{TENANT}%22%2c%22Oid%22%3a%22{ALICE.id}%22%7d"
    )
    assert body["joinUrl"] == body["joinWebUrl"]
    assert body["startDateTime"] == "2026-06-12T07:00:00.0000000Z"
    assert body["endDateTime"] == "2026-06-12T07:30:00.1234560Z"
    settings = body["joinMeetingIdSettings"]
    assert settings["joinMeetingId"].isdigit()
    assert settings["isPasscodeRequired"] is True
    assert len(settings["passcode"]) == 6
    audio = body["audioConferencing"]
    assert audio["tollNumber"] and audio["conferenceId"].isdigit()
    assert audio["dialinUrl"].startswith("https://dialin.teams.microsoft.com/")
    organizer = body["participants"]["organizer"]
    assert organizer["identity"]["user"]["id"] == ALICE.id
    assert organizer["upn"] == ALICE.user_principal_name
    assert body["participants"]["attendees"][0]["upn"] == "carol@contoso.test"
    assert body["lobbyBypassSettings"] == {"scope": "organization", "isDialInBypassEnabled": False}
    assert body["allowedPresenters"] == "everyone"
    assert body["allowMeetingChat"] == "enabled"
    assert "Dial in by phone" in urllib.parse.unquote(body["joinInformation"]["content"])


def test_join_meeting_ids_are_unique_in_the_tenant(store):
    ids = {store.create(ALICE, {}, now=NOW).join_meeting_id for _ in range(200)}
    assert len(ids) == 200


def test_create_without_times_starts_now_for_an_hour(store):
    meeting = store.create(ALICE, {}, now=NOW)
    assert (meeting.start, meeting.end) == (NOW, NOW + dt.timedelta(hours=1))


@pytest.mark.parametrize(
    "body",
    [
        {"endDateTime": "2026-06-12T09:00:00Z"},
        {"startDateTime": "2026-06-12T09:00:00Z", "endDateTime": "2026-06-12T08:00:00Z"},
        {"startDateTime": "tomorrow"},
        {"allowedPresenters": "nobody"},
        {"allowedPresenters": "unknownFutureValue"},
        {"allowMeetingChat": True},
        {"lobbyBypassSettings": {"scope": "anyone"}},
        {"participants": {"attendees": [{"upn": "x@y", "role": "boss"}]}},
        {"noSuchProperty": 1},
        {"subject": 5},
    ],
)
def test_invalid_bodies_are_400(store, body):
    with pytest.raises(MeetingError) as error:
        store.create(ALICE, body, now=NOW)
    assert error.value.status == 400
    assert error.value.code == "BadRequest"


def test_attendee_without_upn_is_500_like_the_real_service(store):
    with pytest.raises(MeetingError) as error:
        store.create(ALICE, {"participants": {"attendees": [{"identity": {"user": {"id": "x"}}}]}}, now=NOW)
    assert error.value.status == 500
    meeting = store.create(
        ALICE,
        {"participants": {"attendees": [{"identity": {"user": {"id": "x"}}}]}},
        now=NOW,
        upn_required=False,
    )
    assert meeting.attendees[0].user_id == "x"


def test_create_or_get_is_idempotent_per_organizer(store):
    first, created = store.create_or_get(ALICE, {"externalId": "booking-1", "subject": "A"}, now=NOW)
    assert created
    again, created = store.create_or_get(ALICE, {"externalId": "booking-1", "subject": "changed"}, now=NOW)
    assert not created
    assert again.id == first.id
    assert again.subject == "A"  # the stored meeting comes back unchanged
    other, created = store.create_or_get(BOB, {"externalId": "booking-1"}, now=NOW)
    assert created
    assert other.id != first.id


def test_create_or_get_needs_external_id(store):
    with pytest.raises(MeetingError) as error:
        store.create_or_get(ALICE, {"subject": "x"}, now=NOW)
    assert error.value.status == 400


def test_create_or_get_times(store):
    start = "2026-06-12T09:00:00Z"
    meeting, _ = store.create_or_get(ALICE, {"externalId": "e1", "startDateTime": start}, now=NOW)
    assert format_datetime(meeting.end) == "2026-06-12T10:00:00.0000000Z"
    with pytest.raises(MeetingError):
        store.create_or_get(ALICE, {"externalId": "e2", "endDateTime": start}, now=NOW)


def test_get_is_scoped_to_the_organizer(store):
    meeting = store.create(ALICE, {}, now=NOW)
    assert store.get(ALICE.id, meeting.id) is meeting
    with pytest.raises(MeetingError) as error:
        store.get(BOB.id, meeting.id)
    assert error.value.status == 404


def test_find_by_join_url_in_any_encoding(store):
    meeting = store.create(ALICE, {}, now=NOW)
    url = render_meeting(meeting, TENANT)["joinWebUrl"]
    for form in (url, urllib.parse.unquote(url), urllib.parse.quote(url, safe="")):
        assert thread_key_from_join_url(form) == meeting.thread_key
        assert store.find_by_join_url(ALICE.id, form) == [meeting]
    assert store.find_by_join_url(BOB.id, url) == []
    assert store.find_by_join_url(ALICE.id, "https://example.com") == []


def test_find_by_join_meeting_id(store):
    meeting = store.create(ALICE, {}, now=NOW)
    assert store.find_by_join_meeting_id(ALICE.id, meeting.join_meeting_id) == [meeting]
    assert store.find_by_join_meeting_id(ALICE.id, "0") == []


def test_patch_rules(store):
    meeting = store.create(
        ALICE,
        {"participants": {"attendees": [ATTENDEE]}, "anonymizeIdentityForRoles": ["attendee"]},
        now=NOW,
    )
    # a time change needs both ends
    for half in ({"startDateTime": "2026-06-13T09:00:00Z"}, {"endDateTime": "2026-06-13T09:00:00Z"}):
        with pytest.raises(MeetingError, match="both startDateTime and endDateTime"):
            store.update(ALICE.id, meeting.id, half)
    store.update(
        ALICE.id, meeting.id, {"startDateTime": "2026-06-13T09:00:00Z", "endDateTime": "2026-06-13T10:00:00Z"}
    )
    assert format_datetime(meeting.start) == "2026-06-13T09:00:00.0000000Z"
    # the organizer cannot change
    with pytest.raises(MeetingError, match="organizer"):
        store.update(
            ALICE.id, meeting.id, {"participants": {"organizer": {"identity": {"user": {"id": BOB.id}}}}}
        )
    # attendees are replaced as a whole list
    store.update(ALICE.id, meeting.id, {"participants": {"attendees": [{"upn": "dave@contoso.test"}]}})
    assert [a.upn for a in meeting.attendees] == ["dave@contoso.test"]
    # joinMeetingIdSettings are immutable
    with pytest.raises(MeetingError, match="joinMeetingIdSettings"):
        store.update(ALICE.id, meeting.id, {"joinMeetingIdSettings": {"isPasscodeRequired": False}})
    # anonymizeIdentityForRoles cannot be removed
    with pytest.raises(MeetingError, match="anonymizeIdentityForRoles"):
        store.update(ALICE.id, meeting.id, {"anonymizeIdentityForRoles": []})
    # a failed PATCH changes nothing; a good one changes only what it names
    store.update(ALICE.id, meeting.id, {"subject": "renamed", "allowMeetingChat": "limited"})
    body = render_meeting(meeting, TENANT)
    assert (body["subject"], body["allowMeetingChat"]) == ("renamed", "limited")
    assert [a["upn"] for a in body["participants"]["attendees"]] == ["dave@contoso.test"]


def test_evolvable_lobby_scopes_read_back_as_unknown_future_value(store):
    meeting = store.create(ALICE, {"lobbyBypassSettings": {"scope": "invited"}}, now=NOW)
    assert render_meeting(meeting, TENANT)["lobbyBypassSettings"]["scope"] == "unknownFutureValue"
    assert (
        render_meeting(meeting, TENANT, include_unknown_enums=True)["lobbyBypassSettings"]["scope"]
        == "invited"
    )


def test_delete(store):
    meeting = store.create(ALICE, {}, now=NOW)
    store.delete(ALICE.id, meeting.id)
    with pytest.raises(MeetingError):
        store.get(ALICE.id, meeting.id)
    assert store.find_by_join_meeting_id(ALICE.id, meeting.join_meeting_id) == []


def test_attendance_reports_appear_once_the_meeting_started(store):
    meeting = store.create(
        ALICE,
        {
            "startDateTime": "2026-06-11T11:00:00Z",
            "endDateTime": "2026-06-11T12:00:00Z",
            "participants": {"attendees": [ATTENDEE]},
        },
        now=NOW,
    )
    assert store.attendance_reports(ALICE.id, meeting.id, now=NOW) == []
    later = NOW + dt.timedelta(hours=3)
    [report] = store.attendance_reports(ALICE.id, meeting.id, now=later)
    assert report["totalParticipantCount"] == 2
    assert report["meetingStartDateTime"] == "2026-06-11T11:00:00.0000000Z"
    emails = [r["emailAddress"] for r in report["attendanceRecords"]]
    assert emails == [ALICE.user_principal_name, "carol@contoso.test"]
    for record in report["attendanceRecords"]:
        interval = record["attendanceIntervals"][0]
        assert record["totalAttendanceInSeconds"] == interval["durationInSeconds"] > 0
    assert store.attendance_report(ALICE.id, meeting.id, report["id"], now=later) == report


def test_persistence_round_trip(store):
    meeting, _ = store.create_or_get(
        ALICE,
        {"externalId": "e", "participants": {"attendees": [ATTENDEE]}, "allowMeetingChat": "disabled"},
        now=NOW,
    )
    copy = MeetingStore(TENANT)
    copy.load_dict(store.to_dict())
    restored = copy.get(ALICE.id, meeting.id)
    assert render_meeting(restored, TENANT) == render_meeting(meeting, TENANT)
    again, created = copy.create_or_get(ALICE, {"externalId": "e"}, now=NOW)
    assert (again.id, created) == (meeting.id, False)
