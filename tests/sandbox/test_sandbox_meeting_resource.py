"""The sandbox's onlineMeeting is the whole documented v1.0 resource, over real TLS with real tokens.

Every key of the onlineMeeting page (and its parts: meetingParticipants, meetingParticipantInfo,
joinMeetingIdSettings, lobbyBypassSettings, audioConferencing, chatInfo, itemBody...) is present with
its JSON type; read-only and unknown properties are refused naming the property; evolvable enums
fold to ``unknownFutureValue`` unless ``Prefer: include-unknown-enum-members``; the documented
lookups (JoinWebUrl, joinMeetingId, /communications by VideoTeleconferenceId) find the meeting.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from conftest import msal_app
from meetgate.graph.models import OnlineMeeting

PREFER = {"Prefer": "include-unknown-enum-members"}
S, B, NULL = str, bool, type(None)
OPT_S = (str, NULL)

IDENTITY = {"user": {"id": OPT_S, "displayName": OPT_S, "tenantId": OPT_S, "identityProvider": S}}
PARTICIPANT = {"upn": S, "role": S, "identity": IDENTITY}
#: the organizer's identitySet also spells out its other members, null (the update page's example)
ORGANIZER = {
    **PARTICIPANT,
    "identity": {
        **IDENTITY,
        "application": NULL,
        "device": NULL,
        "applicationInstance": NULL,
        "azureApplicationInstance": NULL,
    },
}

#: every property of onlineMeeting (v1.0) with its JSON type; dicts are objects, [x] arrays of x
RESOURCE: dict[str, Any] = {
    "id": S,
    "creationDateTime": S,
    "startDateTime": S,
    "endDateTime": S,
    "expiryDateTime": S,
    "joinWebUrl": S,
    "subject": OPT_S,
    "externalId": OPT_S,
    "videoTeleconferenceId": OPT_S,
    "meetingOptionsWebUrl": S,
    "meetingSpokenLanguageTag": OPT_S,
    "meetingTemplateId": OPT_S,
    "meetingType": S,
    "isBroadcast": B,
    "isEntryExitAnnounced": B,
    "isEndToEndEncryptionEnabled": B,
    "recordAutomatically": B,
    "allowAttendeeToEnableCamera": B,
    "allowAttendeeToEnableMic": B,
    "allowBreakoutRooms": B,
    "allowCopyingAndSharingMeetingContent": B,
    "allowParticipantsToChangeName": B,
    "allowPowerPointSharing": B,
    "allowRecording": B,
    "allowTeamworkReactions": B,
    "allowTranscription": B,
    "allowWhiteboard": B,
    "allowedPresenters": S,
    "allowedLobbyAdmitters": S,
    "allowLiveShare": S,
    "allowMeetingChat": S,
    "shareMeetingChatHistoryDefault": S,
    "autoAdmittedUsers": S,
    "outerMeetingAutoAdmittedUsers": NULL,
    "anonymizeIdentityForRoles": [S],
    "watermarkProtection": ({"isEnabledForContentSharing": B, "isEnabledForVideo": B}, NULL),
    "chatRestrictions": ({"allowTextOnly": B}, NULL),
    "sensitivityLabelAssignment": ({"sensitivityLabelId": OPT_S}, NULL),
    "cloudVideoInteropInfo": (
        {"tenantKey": OPT_S, "videoTeleconferenceId": OPT_S, "moreInfoWebUrl": OPT_S},
        NULL,
    ),
    "broadcastSettings": (dict, NULL),
    "joinMeetingIdSettings": {"isPasscodeRequired": B, "joinMeetingId": S, "passcode": OPT_S},
    "lobbyBypassSettings": {"scope": S, "isDialInBypassEnabled": B},
    "audioConferencing": {
        "conferenceId": S,
        "dialinUrl": S,
        "tollNumbers": [S],
        "tollFreeNumbers": [S],
        "tollNumber": OPT_S,
        "tollFreeNumber": OPT_S,
    },
    "chatInfo": {"threadId": S, "messageId": S, "replyChainMessageId": OPT_S},
    "joinInformation": {"content": S, "contentType": S},
    "participants": {
        "organizer": ORGANIZER,
        "attendees": [PARTICIPANT],
        "producers": [PARTICIPANT],
        "contributors": [PARTICIPANT],
    },
}


def assert_shape(value: Any, spec: Any, where: str = "onlineMeeting") -> None:
    """``value`` has ``spec``'s keys (recursively) with their JSON types."""
    if isinstance(spec, tuple):
        errors = []
        for option in spec:
            try:
                assert_shape(value, option, where)
                return
            except AssertionError as error:
                errors.append(str(error))
        raise AssertionError(f"{where}: {value!r} matches none of {spec!r} ({'; '.join(errors)})")
    if isinstance(spec, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        missing = sorted(set(spec) - set(value))
        assert not missing, f"{where}: missing {missing}"
        for key, sub in spec.items():
            assert_shape(value[key], sub, f"{where}.{key}")
        return
    if isinstance(spec, list):
        assert isinstance(value, list), f"{where}: expected an array, got {value!r}"
        for index, item in enumerate(value):
            assert_shape(item, spec[0], f"{where}[{index}]")
        return
    assert isinstance(value, spec), f"{where}: expected {spec.__name__}, got {value!r}"


class Graph:
    def __init__(self, http: httpx.Client, base: str, token: str) -> None:
        self.http, self.base, self.token = http, base, token

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.http.request(method, f"{self.base}/v1.0{path}", headers=headers, **kwargs)


@pytest.fixture
def graph(sandbox, http, sandbox_app) -> Graph:
    credential = {
        "private_key": sandbox_app.private_key_path.read_text(),
        "public_certificate": sandbox_app.certificate_path.read_text(),
    }
    result = msal_app(
        sandbox, http, sandbox_app.tenant_id, sandbox_app.client_id, credential
    ).acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result.get("error_description")
    return Graph(http, sandbox.info.graph_url, str(result["access_token"]))


@pytest.fixture
def organizer(sandbox_app) -> str:
    return str(sandbox_app.pilot_users[0].id)


def _create(graph: Graph, organizer: str, **extra: Any) -> dict[str, Any]:
    body = {
        "subject": "Resource fidelity",
        "startDateTime": "2031-03-01T09:00:00Z",
        "endDateTime": "2031-03-01T10:00:00Z",
        "participants": {"attendees": [{"upn": "guest@example.com", "role": "attendee"}]},
        **extra,
    }
    response = graph("POST", f"/users/{organizer}/onlineMeetings", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _error(response: httpx.Response) -> tuple[str, str]:
    error = response.json()["error"]
    return error["code"], error["message"]


def test_create_get_and_patch_return_every_documented_property(graph, organizer):
    created = _create(graph, organizer)
    assert created["@odata.context"].endswith(f"/$metadata#users('{organizer}')/onlineMeetings/$entity")
    assert_shape(created, RESOURCE)
    path = f"/users/{organizer}/onlineMeetings/{created['id']}"
    fetched = graph("GET", path)
    assert fetched.status_code == 200, fetched.text
    assert_shape(fetched.json(), RESOURCE)
    patched = graph("PATCH", path, json={"subject": "Renamed"})
    assert patched.status_code == 200, patched.text
    assert_shape(patched.json(), RESOURCE)


def test_documented_defaults(graph, organizer):
    meeting = _create(graph, organizer)
    assert meeting["isEndToEndEncryptionEnabled"] is False
    assert meeting["allowCopyingAndSharingMeetingContent"] is True
    assert meeting["allowRecording"] is True and meeting["allowTranscription"] is True
    assert meeting["allowedPresenters"] == "everyone"
    assert meeting["allowedLobbyAdmitters"] == "organizerAndCoOrganizersAndPresenters"
    assert meeting["meetingSpokenLanguageTag"] is None
    assert meeting["sensitivityLabelAssignment"] is None
    assert meeting["meetingTemplateId"] is None
    assert meeting["meetingType"] == "scheduled"
    assert meeting["participants"]["producers"] == [] and meeting["participants"]["contributors"] == []
    end = dt.datetime.fromisoformat(meeting["endDateTime"][:26])
    expiry = dt.datetime.fromisoformat(meeting["expiryDateTime"][:26])
    assert expiry - end == dt.timedelta(days=60)
    assert meeting["meetingOptionsWebUrl"].startswith("https://teams.microsoft.com/meetingOptions/?")
    assert f"organizerId={organizer}" in meeting["meetingOptionsWebUrl"]


def test_writable_properties_are_stored_on_create_and_patch(graph, organizer):
    template = "customtemplate_3d1c9b3e-8f0e-4c5c-9a1d-2f3e4b5c6d7e"
    meeting = _create(graph, organizer, isEndToEndEncryptionEnabled=True, meetingTemplateId=template)
    assert meeting["isEndToEndEncryptionEnabled"] is True
    assert meeting["meetingTemplateId"] == template
    path = f"/users/{organizer}/onlineMeetings/{meeting['id']}"
    label = {"sensitivityLabelId": "c7f2d7a7-6a36-4a41-9a6b-0d2761a9f4f0"}
    patched = graph(
        "PATCH",
        path,
        json={
            "meetingSpokenLanguageTag": "en-US",
            "isEndToEndEncryptionEnabled": False,
            "sensitivityLabelAssignment": label,
            "allowCopyingAndSharingMeetingContent": False,
            "meetingTemplateId": template,  # the same value again is fine
        },
    )
    assert patched.status_code == 200, patched.text
    again = graph("GET", path).json()
    assert again["meetingSpokenLanguageTag"] == "en-US"
    assert again["isEndToEndEncryptionEnabled"] is False
    assert again["sensitivityLabelAssignment"] == label
    assert again["allowCopyingAndSharingMeetingContent"] is False
    assert again["meetingTemplateId"] == template


@pytest.mark.parametrize(
    "name", ["joinWebUrl", "expiryDateTime", "audioConferencing", "meetingOptionsWebUrl"]
)
def test_read_only_properties_are_refused_on_create(graph, organizer, name):
    response = graph("POST", f"/users/{organizer}/onlineMeetings", json={"subject": "x", name: "anything"})
    assert response.status_code == 400, response.text
    code, message = _error(response)
    assert code == "BadRequest"
    assert f"'{name}'" in message and "read-only" in message


def test_read_only_and_create_only_properties_are_refused_on_patch(graph, organizer):
    meeting = _create(graph, organizer, meetingTemplateId="template-a")
    path = f"/users/{organizer}/onlineMeetings/{meeting['id']}"
    response = graph("PATCH", path, json={"videoTeleconferenceId": "123"})
    assert response.status_code == 400
    assert "'videoTeleconferenceId'" in _error(response)[1]
    response = graph("PATCH", path, json={"meetingTemplateId": "template-b"})
    assert response.status_code == 400
    assert "'meetingTemplateId'" in _error(response)[1]
    assert graph("GET", path).json()["meetingTemplateId"] == "template-a"


def test_unknown_properties_are_refused_naming_them(graph, organizer):
    response = graph("POST", f"/users/{organizer}/onlineMeetings", json={"subject": "x", "colour": "red"})
    assert response.status_code == 400
    code, message = _error(response)
    assert code == "BadRequest"
    assert message.startswith("The property 'colour' does not exist on type 'microsoft.graph.onlineMeeting'")
    meeting = _create(graph, organizer)
    response = graph(
        "PATCH", f"/users/{organizer}/onlineMeetings/{meeting['id']}", json={"MeetingSpokenLanguageTag": "de"}
    )
    assert response.status_code == 400
    assert "'MeetingSpokenLanguageTag'" in _error(response)[1]


def test_evolvable_enums_fold_to_unknown_future_value_without_prefer(graph, organizer):
    meeting = _create(
        graph,
        organizer,
        lobbyBypassSettings={"scope": "organizationExcludingGuests", "isDialInBypassEnabled": False},
        participants={"attendees": [{"upn": "co@example.com", "role": "coorganizer"}]},
    )
    assert meeting["lobbyBypassSettings"]["scope"] == "unknownFutureValue"
    assert meeting["participants"]["attendees"][0]["role"] == "unknownFutureValue"
    path = f"/users/{organizer}/onlineMeetings/{meeting['id']}"
    named = graph("GET", path, headers=PREFER).json()
    assert named["lobbyBypassSettings"]["scope"] == "organizationExcludingGuests"
    assert named["participants"]["attendees"][0]["role"] == "coorganizer"
    plain = graph("GET", path).json()
    assert plain["lobbyBypassSettings"]["scope"] == "unknownFutureValue"
    assert plain["participants"]["attendees"][0]["role"] == "unknownFutureValue"
    # members before the sentinel are never folded
    assert plain["allowedPresenters"] == "everyone"


def test_lookups_by_join_url_join_meeting_id_and_video_teleconference_id(graph, organizer):
    meeting = _create(graph, organizer)
    base = f"/users/{organizer}/onlineMeetings"
    by_url = graph("GET", base, params={"$filter": f"JoinWebUrl eq '{meeting['joinWebUrl']}'"})
    assert by_url.status_code == 200, by_url.text
    assert [m["id"] for m in by_url.json()["value"]] == [meeting["id"]]
    join_id = meeting["joinMeetingIdSettings"]["joinMeetingId"]
    by_id = graph("GET", base, params={"$filter": f"joinMeetingIdSettings/joinMeetingId eq '{join_id}'"})
    assert [m["id"] for m in by_id.json()["value"]] == [meeting["id"]]
    vtc = meeting["videoTeleconferenceId"]
    tenant_wide = graph(
        "GET", "/communications/onlineMeetings/", params={"$filter": f"VideoTeleconferenceId eq '{vtc}'"}
    )
    assert tenant_wide.status_code == 200, tenant_wide.text
    body = tenant_wide.json()
    assert body["@odata.context"].endswith("/$metadata#communications/onlineMeetings")
    [found] = body["value"]
    assert found["id"] == meeting["id"]
    assert found["@odata.type"] == "#microsoft.graph.onlineMeeting"
    assert_shape(found, RESOURCE)
    nothing = graph(
        "GET", "/communications/onlineMeetings", params={"$filter": "VideoTeleconferenceId eq '000'"}
    )
    assert nothing.status_code == 200 and nothing.json()["value"] == []
    unfiltered = graph("GET", "/communications/onlineMeetings")
    assert unfiltered.status_code == 400
    assert "VideoTeleconferenceId" in _error(unfiltered)[1]


def test_the_tenant_wide_lookup_takes_application_tokens_only(sandbox, http, sandbox_app, organizer):
    """The get page: the videoTeleconferenceId scenario "only supports application token"."""
    token = sandbox_app.control.delegated_token(
        sandbox_app.tenant_id, organizer, sandbox_app.client_id, ["OnlineMeetings.ReadWrite"]
    )
    delegated = Graph(http, sandbox.info.graph_url, token)
    refused = delegated(
        "GET", "/communications/onlineMeetings", params={"$filter": "VideoTeleconferenceId eq '1'"}
    )
    assert refused.status_code == 403, refused.text
    assert "application tokens only" in _error(refused)[1]


def test_meetgate_reads_what_the_sandbox_returns(graph, organizer):
    """The client's models parse the sandbox's meeting, null identity members included."""
    created = _create(graph, organizer)
    vtc = created["videoTeleconferenceId"]
    found = graph(
        "GET", "/communications/onlineMeetings", params={"$filter": f"VideoTeleconferenceId eq '{vtc}'"}
    ).json()["value"][0]
    for body in (created, found):
        meeting = OnlineMeeting.from_graph(body)
        assert meeting.id == created["id"]
        assert meeting.join_meeting_id == created["joinMeetingIdSettings"]["joinMeetingId"]
        assert [a.upn for a in meeting.attendees] == ["guest@example.com"]
        assert meeting.organizer_upn == created["participants"]["organizer"]["upn"]
