import datetime as dt

import pytest
from pydantic import ValidationError

from meetgate.graph.ics import fold, meeting_cancellation_ics, meeting_invitation_ics
from meetgate.graph.models import (
    Attendee,
    GraphOnlineMeeting,
    LobbyBypassScope,
    MeetingRequest,
    MeetingUpdate,
    OnlineMeeting,
)

GRAPH_JSON = {
    "id": "MSo1N2Y5ZGFjYy03MWJmLTQ3NDMtYjQxMy01M2EdFGkdRWHJlQ",
    "creationDateTime": "2026-06-11T09:00:00.1234567Z",
    "startDateTime": "2026-06-11T10:00:00Z",
    "endDateTime": "2026-06-11T11:00:00Z",
    "joinWebUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_X%40thread.v2/0?context=%7b%7d",
    "joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_X%40thread.v2/0?context=%7b%7d",
    "subject": "Advising; week 3, room \\ A",
    "externalId": "booking-42",
    "chatInfo": {"threadId": "19:meeting_X@thread.v2", "messageId": "0"},
    "joinMeetingIdSettings": {
        "joinMeetingId": "123456789012",
        "passcode": "Xy7Pq2",
        "isPasscodeRequired": True,
    },
    "audioConferencing": {
        "conferenceId": "987654",
        "tollNumber": "+1 555 0100",
        "tollFreeNumbers": ["+1 800 555 0100"],
        "dialinUrl": "https://dialin.teams.microsoft.com/x",
    },
    "participants": {
        "organizer": {
            "identity": {"user": {"id": "org-id"}},
            "upn": "alice@contoso.com",
            "role": "presenter",
        },
        "attendees": [
            {
                "identity": {"user": {"id": "b-id", "displayName": "Bob"}},
                "upn": "bob@fabrikam.com",
                "role": "coorganizer",
            },
            {"identity": {"phone": {"id": "+1555"}}, "role": "attendee"},
            {"upn": "eve@x.com", "role": "someNewRole2030"},
        ],
    },
    "lobbyBypassSettings": {"scope": "invited", "isDialInBypassEnabled": True},
    "allowedPresenters": "unknownFutureValue",
    "allowMeetingChat": "somethingNew",
    "allowedLobbyAdmitters": "organizerAndCoOrganizers",
    "brandNewField": {"x": 1},
}


def test_full_meeting_parses_with_unknown_enums_and_fields():
    meeting = OnlineMeeting.from_graph(GRAPH_JSON)
    assert meeting.organizer_id == "org-id" and meeting.organizer_upn == "alice@contoso.com"
    assert meeting.lobby_bypass_scope == LobbyBypassScope.INVITED
    assert isinstance(meeting.lobby_bypass_scope, LobbyBypassScope)
    assert meeting.allowed_presenters == "unknownFutureValue"
    assert meeting.allow_meeting_chat == "somethingNew"  # unknown value kept, no failure
    assert [(a.upn, a.role) for a in meeting.attendees] == [
        ("bob@fabrikam.com", "coorganizer"),
        ("eve@x.com", "someNewRole2030"),
    ]
    assert meeting.dial_in.toll_free_number == "+1 800 555 0100"
    assert meeting.created.microsecond == 123456
    assert meeting.details.model_extra["brandNewField"] == {"x": 1}
    dumped = meeting.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert "raw" not in dumped and dumped["joinWebUrl"].startswith("https://")


@pytest.mark.parametrize("scope", [s.value for s in LobbyBypassScope])
def test_every_documented_lobby_scope_is_known(scope):
    parsed = GraphOnlineMeeting.model_validate({"lobbyBypassSettings": {"scope": scope}})
    assert isinstance(parsed.lobby_bypass_settings.scope, LobbyBypassScope)


def test_attendees_always_carry_a_upn():
    assert Attendee(upn="a@b.c").to_graph() == {"upn": "a@b.c", "role": "attendee"}
    assert Attendee(upn="a@b.c", id="1", role="presenter").to_graph() == {
        "upn": "a@b.c",
        "role": "presenter",
        "identity": {"user": {"id": "1"}},
    }
    with pytest.raises(ValidationError):
        Attendee(upn="not-an-address")
    assert MeetingRequest(attendees=["x@y.z"]).attendees[0].upn == "x@y.z"


def test_update_attendees_default_to_unchanged():
    assert MeetingUpdate(subject="s").attendees is None
    assert MeetingUpdate(attendees=[]).attendees == []
    assert MeetingUpdate().is_empty()
    assert not MeetingUpdate(attendees=[]).is_empty()


def test_invitation_ics():
    meeting = OnlineMeeting.from_graph(GRAPH_JSON)
    stamp = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    text = meeting_invitation_ics(meeting, "alice@contoso.com", organizer_name="Alice", now=stamp)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    unfolded = text.replace("\r\n ", "")
    assert "METHOD:REQUEST" in unfolded
    assert "UID:booking-42@meetgate" in unfolded
    assert "DTSTART:20260611T100000Z" in unfolded and "DTEND:20260611T110000Z" in unfolded
    assert "SUMMARY:Advising\\; week 3\\, room \\\\ A" in unfolded
    assert 'ORGANIZER;CN="Alice":mailto:alice@contoso.com' in unfolded
    assert "mailto:bob@fabrikam.com" in unfolded and "mailto:eve@x.com" in unfolded
    assert "Meeting ID: 123 456 789 012" in unfolded and "Passcode: Xy7Pq2" in unfolded
    assert "Dial in: +1 555 0100\\,\\,987654#" in unfolded
    assert f"X-MICROSOFT-SKYPETEAMSMEETINGURL:{GRAPH_JSON['joinWebUrl']}" in unfolded
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    cancel = meeting_cancellation_ics(meeting, "alice@contoso.com", ["bob@fabrikam.com"], now=stamp)
    assert "METHOD:CANCEL" in cancel and "STATUS:CANCELLED" in cancel and "SEQUENCE:1" in cancel
    assert "UID:booking-42@meetgate" in cancel


def test_invitation_ics_never_carries_a_control_character():
    """RFC 5545 allows no control character but tab in a content line; a meeting changed outside
    meetgate (in Teams, by another app) can have them in its subject or attendee names."""
    meeting = OnlineMeeting.from_graph(
        {**GRAPH_JSON, "subject": "Interview\x00 with\x1b[31m red\x07\x7f, line\nbreak\ttab"}
    )
    for text in (
        meeting_invitation_ics(meeting, "alice@contoso.com", organizer_name="Al\x00ice\x1b"),
        meeting_cancellation_ics(meeting, "alice@contoso.com"),
    ):
        raw = text.replace("\r\n", "")
        assert not [ch for ch in raw if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F]
        unfolded = text.replace("\r\n ", "")
        assert "SUMMARY:Interview with[31m red\\, line\\nbreak\ttab" in unfolded


def test_fold_never_splits_a_multibyte_character():
    line = "SUMMARY:" + "é" * 100
    folded = fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
