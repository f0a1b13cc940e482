"""A stored meeting as Graph's JSON: the ``onlineMeeting`` resource and the synthetic attendance report.

Shapes follow what the real service returns (see docs/sandbox.md and :mod:`meetgate_sandbox.meetings`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import string
import uuid
from typing import Any

from meetgate_sandbox.meetings_model import (
    DIALIN_HOST,
    EXPIRY_DAYS,
    LOBBY_SCOPES_EVOLVED,
    ROLES_EVOLVED,
    TOLL_NUMBER,
    UNKNOWN,
    Meeting,
    format_datetime,
    join_web_url,
    thread_id_of,
)
from meetgate_sandbox.meetings_schema import AUTO_ADMITTED

#: the identitySet members other than ``user`` of a meeting's organizer: the service writes them out,
#: null (the update page's example shows them so)
NULL_IDENTITIES: dict[str, None] = {
    "azureApplicationInstance": None,
    "applicationInstance": None,
    "application": None,
    "device": None,
}

#: ``@odata.type`` of an onlineMeeting (Graph puts it on collection items of /communications lookups)
ODATA_TYPE = "#microsoft.graph.onlineMeeting"

# ---- rendering --------------------------------------------------------------------------------------


#: ``urllib.parse.quote`` as a translation table (C speed; the invitation is rendered on every read)
_PERCENT_ENCODE = {
    i: f"%{i:02X}" for i in range(128) if chr(i) not in string.ascii_letters + string.digits + "_.-~/"
}


def _join_information(meeting: Meeting, url: str) -> dict[str, str]:
    lines = [
        "<div>Microsoft Teams meeting</div>",
        f'<div><a href="{url}">Join the meeting now</a></div>',
        f"<div>Meeting ID: {' '.join(meeting.join_meeting_id[i : i + 3] for i in range(0, 12, 3))}</div>",
    ]
    if meeting.passcode:
        lines.append(f"<div>Passcode: {meeting.passcode}</div>")
    lines.append(f"<div>Dial in by phone: {TOLL_NUMBER},,{meeting.conference_id}#</div>")
    lines.append(f"<div>Phone conference ID: {meeting.conference_id}#</div>")
    return {"content": "data:text/html," + "".join(lines).translate(_PERCENT_ENCODE), "contentType": "html"}


def _meeting_options_url(meeting: Meeting, tenant_id: str) -> str:
    return (
        f"https://teams.microsoft.com/meetingOptions/?organizerId={meeting.organizer_id}&tenantId={tenant_id}"
        f"&threadId=19_meeting_{meeting.thread_key}@thread.v2&messageId=0&language=en-US"
    )


def _role(role: str | None, include_unknown_enums: bool) -> str:
    if role in ROLES_EVOLVED and not include_unknown_enums:
        return UNKNOWN
    return role or "attendee"


def _participants(meeting: Meeting, tenant_id: str, include_unknown_enums: bool) -> dict[str, Any]:
    attendees = []
    for attendee in meeting.attendees:
        info = attendee.to_json(tenant_id)
        info["role"] = _role(attendee.role, include_unknown_enums)
        attendees.append(info)
    return {
        "organizer": {
            "upn": meeting.organizer_upn,
            "role": "presenter",
            "identity": {
                **NULL_IDENTITIES,
                "user": {
                    "id": meeting.organizer_id,
                    "displayName": meeting.organizer_name,
                    "tenantId": tenant_id,
                    "identityProvider": "AAD",
                },
            },
        },
        "attendees": attendees,
        # Teams live events (deprecated): the service still sends them, empty
        "producers": [],
        "contributors": [],
    }


def render_meeting(
    meeting: Meeting,
    tenant_id: str,
    *,
    context_url: str | None = None,
    include_unknown_enums: bool = False,
    odata_type: bool = False,
) -> dict[str, Any]:
    """The ``onlineMeeting`` JSON Graph returns for ``meeting``.

    Members of evolvable enums after ``unknownFutureValue`` (lobby scope ``invited`` /
    ``organizationExcludingGuests``, roles ``producer`` / ``coorganizer``) read back as
    ``unknownFutureValue`` unless the caller sent ``Prefer: include-unknown-enum-members``.
    """
    url = join_web_url(tenant_id, meeting.organizer_id, meeting.thread_key)
    lobby = dict(
        meeting.option("lobbyBypassSettings") or {"scope": "organization", "isDialInBypassEnabled": False}
    )
    auto_admitted = AUTO_ADMITTED.get(lobby.get("scope") or "", "everyoneInCompany")
    if lobby.get("scope") in LOBBY_SCOPES_EVOLVED and not include_unknown_enums:
        lobby["scope"] = UNKNOWN
    body: dict[str, Any] = {}
    if context_url:
        body["@odata.context"] = context_url
    if odata_type:
        body["@odata.type"] = ODATA_TYPE
    body.update(
        {
            "id": meeting.id,
            "creationDateTime": format_datetime(meeting.created),
            "startDateTime": format_datetime(meeting.start),
            "endDateTime": format_datetime(meeting.end),
            "joinUrl": url,
            "joinWebUrl": url,
            "subject": meeting.subject,
            "isBroadcast": False,
            "isEntryExitAnnounced": meeting.option("isEntryExitAnnounced"),
            "allowedPresenters": meeting.option("allowedPresenters"),
            "allowMeetingChat": meeting.option("allowMeetingChat"),
            "shareMeetingChatHistoryDefault": meeting.option("shareMeetingChatHistoryDefault"),
            "allowTeamworkReactions": meeting.option("allowTeamworkReactions"),
            "allowAttendeeToEnableMic": meeting.option("allowAttendeeToEnableMic"),
            "allowAttendeeToEnableCamera": meeting.option("allowAttendeeToEnableCamera"),
            "allowParticipantsToChangeName": meeting.option("allowParticipantsToChangeName"),
            "allowRecording": meeting.option("allowRecording"),
            "allowTranscription": meeting.option("allowTranscription"),
            "allowBreakoutRooms": meeting.option("allowBreakoutRooms"),
            "allowLiveShare": meeting.option("allowLiveShare"),
            "allowPowerPointSharing": meeting.option("allowPowerPointSharing"),
            "allowWhiteboard": meeting.option("allowWhiteboard"),
            "allowedLobbyAdmitters": meeting.option("allowedLobbyAdmitters"),
            "recordAutomatically": meeting.option("recordAutomatically"),
            "allowCopyingAndSharingMeetingContent": meeting.option("allowCopyingAndSharingMeetingContent"),
            "isEndToEndEncryptionEnabled": meeting.option("isEndToEndEncryptionEnabled"),
            "expiryDateTime": format_datetime(meeting.end + dt.timedelta(days=EXPIRY_DAYS)),
            "meetingOptionsWebUrl": _meeting_options_url(meeting, tenant_id),
            "meetingSpokenLanguageTag": meeting.option("meetingSpokenLanguageTag"),
            "meetingType": "scheduled",
            "sensitivityLabelAssignment": meeting.option("sensitivityLabelAssignment"),
            "autoAdmittedUsers": auto_admitted,
            # the service sends it, always null (Teams live events' outer meeting; not on the v1.0 page)
            "outerMeetingAutoAdmittedUsers": None,
            "anonymizeIdentityForRoles": list(meeting.option("anonymizeIdentityForRoles") or []),
            "watermarkProtection": meeting.option("watermarkProtection"),
            "chatRestrictions": meeting.option("chatRestrictions"),
            "videoTeleconferenceId": meeting.vtc_id,
            "externalId": meeting.external_id,
            "broadcastSettings": None,
            "meetingInfo": None,
            "meetingTemplateId": meeting.option("meetingTemplateId"),
            "cloudVideoInteropInfo": None,
            "joinMeetingIdSettings": {
                "isPasscodeRequired": meeting.passcode is not None,
                "joinMeetingId": meeting.join_meeting_id,
                "passcode": meeting.passcode,
            },
            "lobbyBypassSettings": lobby,
            "audioConferencing": {
                "conferenceId": meeting.conference_id,
                "tollNumber": TOLL_NUMBER,
                "tollFreeNumber": None,
                "tollNumbers": [TOLL_NUMBER],
                "tollFreeNumbers": [],
                "dialinUrl": f"{DIALIN_HOST}/{tenant_id}?id={meeting.conference_id}",
            },
            "chatInfo": {
                "threadId": thread_id_of(meeting.thread_key),
                "messageId": "0",
                "replyChainMessageId": None,
            },
            "joinInformation": _join_information(meeting, url),
            "participants": _participants(meeting, tenant_id, include_unknown_enums),
        }
    )
    return body


def attendance_report(tenant_id: str, meeting: Meeting, now: dt.datetime) -> dict[str, Any]:
    """A deterministic synthetic report: who joined, when, for how long (only after the start)."""
    report_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"attendance:{meeting.id}"))
    end = min(meeting.end, now)
    span = max(int((end - meeting.start).total_seconds()), 60)
    people: list[tuple[str, str | None, str | None, str]] = [
        (meeting.organizer_upn, meeting.organizer_id, meeting.organizer_name, "Organizer")
    ]
    people += [
        (a.upn, a.user_id, a.display_name, (a.role or "attendee").capitalize()) for a in meeting.attendees
    ]
    records = []
    for upn, user_id, name, role in people:
        seed = int.from_bytes(hashlib.sha256(f"{meeting.id}|{upn}".encode()).digest()[:8], "big")
        rng = random.Random(seed)  # noqa: S311 - synthetic data
        joined = meeting.start + dt.timedelta(seconds=rng.randrange(0, max(span // 10, 1)))
        left = end - dt.timedelta(seconds=rng.randrange(0, max(span // 10, 1)))
        if left <= joined:
            left = joined + dt.timedelta(seconds=30)
        duration = int((left - joined).total_seconds())
        records.append(
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"record:{meeting.id}:{upn}")),
                "emailAddress": upn,
                "totalAttendanceInSeconds": duration,
                "role": role,
                "registrationId": None,
                "identity": {
                    "id": user_id,
                    "displayName": name or upn,
                    "tenantId": tenant_id if user_id else None,
                },
                "attendanceIntervals": [
                    {
                        "joinDateTime": format_datetime(joined),
                        "leaveDateTime": format_datetime(left),
                        "durationInSeconds": duration,
                    }
                ],
            }
        )
    return {
        "id": report_id,
        "totalParticipantCount": len(records),
        "meetingStartDateTime": format_datetime(meeting.start),
        "meetingEndDateTime": format_datetime(end),
        "attendanceRecords": records,
    }
