"""Which onlineMeeting properties a request may carry, per operation, as Graph v1.0 documents them.

Sources (learn.microsoft.com, graph-rest-1.0): the ``onlineMeeting`` and ``onlineMeetingBase``
resource pages (every property, which are read-only), "Create onlineMeeting", "Create or get
onlineMeeting" and "Update onlineMeeting" (the request-body tables).

- a name the resource does not have → 400, ``The property '{name}' does not exist on type
  'microsoft.graph.onlineMeeting'...`` (OData's message);
- a read-only property (``id``, ``joinWebUrl``, ``audioConferencing``, ``expiryDateTime``...) → 400
  naming it;
- a property that can only be given at creation (``externalId``, ``meetingTemplateId``) → 400 on
  PATCH when the value differs from the meeting's.

Names are matched exactly (Graph's JSON reader is case-sensitive on property names).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meetgate_sandbox.meetings_model import BOOL_PROPERTIES, MeetingError, bad_request

ENTITY = "microsoft.graph.onlineMeeting"

#: settable on the resource (create and, unless listed in CREATE_ONLY, PATCH)
WRITABLE = frozenset(
    {
        *BOOL_PROPERTIES,
        "allowCopyingAndSharingMeetingContent",
        "isEndToEndEncryptionEnabled",
        "subject",
        "startDateTime",
        "endDateTime",
        "participants",
        "lobbyBypassSettings",
        "allowedPresenters",
        "allowMeetingChat",
        "allowLiveShare",
        "allowedLobbyAdmitters",
        "shareMeetingChatHistoryDefault",
        "joinMeetingIdSettings",
        "anonymizeIdentityForRoles",
        "watermarkProtection",
        "chatRestrictions",
        "meetingSpokenLanguageTag",
        "sensitivityLabelAssignment",
        "externalId",
        "meetingTemplateId",
        # deprecated (Teams live events): accepted, not acted on
        "isBroadcast",
        "broadcastSettings",
    }
)
#: given at creation only; a PATCH may repeat the value but not change it
CREATE_ONLY = frozenset({"externalId", "meetingTemplateId", "isBroadcast"})
#: documented as read-only (or computed by the service): refused in any request body
READ_ONLY = frozenset(
    {
        "id",
        "creationDateTime",
        "joinWebUrl",
        "joinUrl",
        "joinInformation",
        "audioConferencing",
        "chatInfo",
        "videoTeleconferenceId",
        "cloudVideoInteropInfo",
        "expiryDateTime",
        "meetingOptionsWebUrl",
        "meetingType",
        "meetingInfo",
        "attendeeReport",
        "autoAdmittedUsers",
        "outerMeetingAutoAdmittedUsers",
        "capabilities",
        "alternativeRecording",
        "recording",
    }
)
#: what ``POST .../createOrGet`` documents (the rest of WRITABLE is accepted too, as the service does)
CREATE_OR_GET = frozenset({"endDateTime", "externalId", "participants", "startDateTime", "subject"})

#: deprecated ``autoAdmittedUsers`` as the service derives it from ``lobbyBypassSettings.scope``
AUTO_ADMITTED: dict[str, str] = {
    "organizer": "organizer",
    "organization": "everyoneInCompany",
    "organizationAndFederated": "everyoneInSameAndFederatedCompany",
    "everyone": "everyone",
    "invited": "invitedUsersInCompany",
    "organizationExcludingGuests": "everyoneInCompany",
}


def _unknown(name: str) -> MeetingError:
    return bad_request(
        f"The property '{name}' does not exist on type '{ENTITY}'. Make sure to only use property names "
        "that are defined by the type or mark the type as open type."
    )


def check_request_properties(body: Mapping[str, Any]) -> None:
    """Create / createOrGet: every key is writable, or an ``@odata.*`` annotation."""
    for key in body:
        if key.startswith("@odata."):
            continue
        if key in READ_ONLY:
            raise bad_request(f"The property '{key}' is read-only on type '{ENTITY}' and cannot be set.")
        if key not in WRITABLE:
            raise _unknown(key)


def check_patch_properties(body: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """PATCH: as :func:`check_request_properties`, and creation-only values must stay as they are."""
    check_request_properties(body)
    for key in CREATE_ONLY:
        if key in body and body[key] != current.get(key):
            raise bad_request(
                f"The property '{key}' of an online meeting can only be set when the meeting is created "
                "(create a new meeting to change it)."
            )


def check_language_tag(value: object) -> str | None:
    """``meetingSpokenLanguageTag``: a BCP 47 tag such as ``en-US`` (or null)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 35 or " " in value:
        raise bad_request(
            f"Cannot convert the literal '{value}' to the expected type 'Edm.String' (meetingSpokenLanguageTag): "
            "send a language tag such as en-US."
        )
    return value


def check_sensitivity_label(value: object) -> dict[str, Any] | None:
    """``sensitivityLabelAssignment``: ``{"sensitivityLabelId": "<id>"}`` (or null)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise bad_request("sensitivityLabelAssignment must be a JSON object.")
    for key in value:
        if not key.startswith("@odata.") and key != "sensitivityLabelId":
            raise bad_request(
                f"The property '{key}' does not exist on type "
                "'microsoft.graph.onlineMeetingSensitivityLabelAssignment'."
            )
    label = value.get("sensitivityLabelId")
    if label is not None and not isinstance(label, str):
        raise bad_request("sensitivityLabelAssignment.sensitivityLabelId must be a string.")
    return {"sensitivityLabelId": label}


def check_template_id(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise bad_request("meetingTemplateId must be a string.")
    return value
