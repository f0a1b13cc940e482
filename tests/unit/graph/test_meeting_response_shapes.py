"""meetgate reads every onlineMeeting shape Graph's documentation shows, whatever the key casing."""

from __future__ import annotations

from typing import Any

from meetgate.graph.models import AudioConferencing, GraphOnlineMeeting, OnlineMeeting

#: the response of "Get onlineMeeting, example 1" (GET /communications/onlineMeetings?$filter=...)
DOC_EXAMPLE_1: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.onlineMeeting",
    "autoAdmittedUsers": "everyone",
    "audioConferencing": {
        "tollNumber": "5552478",
        "tollFreeNumber": "5550588",
        "ConferenceId": "9999999",
        "dialinUrl": "https://dialin.teams.microsoft.com/6787A136-B9B8-4D39-846C-C0F1FF937F10?id=xxxxxxx",
    },
    "chatInfo": {
        "@odata.type": "#microsoft.graph.chatInfo",
        "threadId": "19:cbee7c1c860e465cebf7bee0d@thread.skype",
        "messageId": "153367081",
    },
    "creationDateTime": "2018-05-30T00:12:19.0726086Z",
    "endDateTime": "2018-05-30T01:00:00Z",
    "expiryDateTime": "2026-04-12T23:57:47.6388574Z",
    "id": "112f7296-5fa4-42ca-bae8-6a692b15d4b8_19:cbee7c1c860e465f8258e3cebf7bee0d@thread.skype",
    "joinWebUrl": "https://teams.microsoft.com/l/meetup-join/19%3a:meeting_NTg0@thread.v2/0",
    "participants": {
        "@odata.type": "#microsoft.graph.meetingParticipants",
        "attendees": [
            {
                "@odata.type": "#microsoft.graph.identitySet",
                "identity": {
                    "user": {
                        "@odata.type": "#microsoft.graph.identity",
                        "id": "a1",
                        "displayName": "Tyler Stein",
                    }
                },
                "upn": "tyler@contoso.com",
            }
        ],
        "organizer": {
            "@odata.type": "#microsoft.graph.identitySet",
            "identity": {
                "user": {
                    "@odata.type": "#microsoft.graph.identity",
                    "id": "o1",
                    "displayName": "Jasmine Miller",
                }
            },
            "upn": "jasmine@contoso.com",
        },
    },
    "sensitivityLabelAssignment": {"sensitivityLabelId": "c7f2d7a7-6a36-4a41-9a6b-0d2761a9f4f0"},
    "meetingOptionsWebUrl": "https://teams.microsoft.com/meetingOptions/?meetingId=abc123",
    "meetingSpokenLanguageTag": "en-US",
    "meetingType": "scheduled",
    "cloudVideoInteropInfo": {
        "tenantKey": "94f39e13-d027-4cfa-bcd3-4b8b0c2017ef",
        "videoTeleconferenceId": "123456789",
        "moreInfoWebUrl": "https://cvi.vendor.com/join-instructions",
    },
    "startDateTime": "2018-05-30T00:30:00Z",
    "subject": "Test Meeting.",
    "videoTeleconferenceId": "123456789",
    "lobbyBypassSettings": {"scope": "everyone", "isDialInBypassEnabled": True},
    "joinMeetingIdSettings": {"isPasscodeRequired": False, "joinMeetingId": "1234567890", "passcode": None},
    "isEntryExitAnnounced": True,
    "allowedPresenters": "everyone",
}


def test_conference_id_is_read_in_the_documented_pascal_case() -> None:
    meeting = OnlineMeeting.from_graph(DOC_EXAMPLE_1)
    assert meeting.dial_in is not None
    assert meeting.dial_in.conference_id == "9999999"
    assert meeting.dial_in.toll_number == "5552478"
    assert meeting.dial_in.toll_free_number == "5550588"


def test_conference_id_is_read_in_camel_case() -> None:
    audio = AudioConferencing.model_validate({"conferenceId": "123", "tollNumbers": ["+1 555"]})
    assert audio.conference_id == "123"
    assert audio.toll_numbers == ["+1 555"]


def test_exact_casing_wins_when_both_casings_are_sent() -> None:
    audio = AudioConferencing.model_validate({"ConferenceId": "pascal", "conferenceId": "camel"})
    assert audio.conference_id == "camel"


def test_other_keys_are_case_folded_too() -> None:
    meeting = OnlineMeeting.from_graph(
        {"Id": "m1", "JoinWebUrl": "https://teams.microsoft.com/l/x", "Subject": "s"}
    )
    assert (meeting.id, meeting.join_web_url, meeting.subject) == (
        "m1",
        "https://teams.microsoft.com/l/x",
        "s",
    )


def test_every_documented_v1_property_is_typed() -> None:
    graph = GraphOnlineMeeting.model_validate(DOC_EXAMPLE_1)
    assert graph.expiry_date_time is not None and graph.expiry_date_time.year == 2026
    assert graph.meeting_spoken_language_tag == "en-US"
    assert graph.meeting_type == "scheduled"
    assert graph.auto_admitted_users == "everyone"
    assert graph.sensitivity_label_assignment is not None
    assert graph.sensitivity_label_assignment.sensitivity_label_id == "c7f2d7a7-6a36-4a41-9a6b-0d2761a9f4f0"
    assert graph.cloud_video_interop_info is not None
    assert graph.cloud_video_interop_info.tenant_key == "94f39e13-d027-4cfa-bcd3-4b8b0c2017ef"
    meeting = OnlineMeeting.from_graph(DOC_EXAMPLE_1)
    assert meeting.organizer_upn == "jasmine@contoso.com"
    assert [a.upn for a in meeting.attendees] == ["tyler@contoso.com"]
    assert meeting.join_meeting_id == "1234567890"
    assert meeting.meeting_options_url == "https://teams.microsoft.com/meetingOptions/?meetingId=abc123"


def test_the_patch_example_responses_are_read() -> None:
    # "Update onlineMeeting", example 1: deprecated tollNumber/tollFreeNumber only, no collections
    meeting = OnlineMeeting.from_graph(
        {
            "id": "MSpkYzE3",
            "autoAdmittedUsers": "EveryoneInCompany",
            "isEndToEndEncryptionEnabled": True,
            "audioConferencing": {
                "conferenceId": "id",
                "tollNumber": "+1-900-555-0100",
                "tollFreeNumber": "+1-800-555-0100",
                "dialinUrl": "url",
            },
        }
    )
    assert meeting.dial_in is not None and meeting.dial_in.conference_id == "id"
    assert meeting.details.is_end_to_end_encryption_enabled is True
