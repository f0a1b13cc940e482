"""What an online meeting is in the sandbox: Graph's enums and defaults, :class:`MeetingError`, times,
ids and join URLs, the stored :class:`Meeting` and its compact row (``state.json``).

Pure data, no HTTP; :mod:`meetgate_sandbox.meetings` validates bodies and keeps the meetings,
:mod:`meetgate_sandbox.meetings_render` renders them as Graph's JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

# ---- enums (Graph v1.0 onlineMeeting resource) -------------------------------------------------------

UNKNOWN = "unknownFutureValue"
PRESENTERS = ("everyone", "organization", "roleIsPresenter", "organizer")
CHAT_MODES = ("enabled", "disabled", "limited")
CHAT_HISTORY = ("all", "none")
LOBBY_SCOPES = ("organizer", "organization", "organizationAndFederated", "everyone")
#: members after ``unknownFutureValue``: read back as it unless ``Prefer: include-unknown-enum-members``
LOBBY_SCOPES_EVOLVED = ("invited", "organizationExcludingGuests")
#: ``onlineMeetingRole`` members after ``unknownFutureValue`` (meetingParticipantInfo page; in ROLES)
ROLES_EVOLVED = ("producer", "coorganizer")
LOBBY_ADMITTERS = ("organizerAndCoOrganizersAndPresenters", "organizerAndCoOrganizers")
LIVE_SHARE = ("enabled", "disabled")
ROLES = ("attendee", "presenter", "producer", "coorganizer")
ANONYMIZE_ROLES = ("attendee",)

TOLL_NUMBER = "+1 323-555-0147"
DIALIN_HOST = "https://dialin.teams.microsoft.com"

BOOL_PROPERTIES = (
    "allowAttendeeToEnableCamera",
    "allowAttendeeToEnableMic",
    "allowParticipantsToChangeName",
    "allowTeamworkReactions",
    "allowRecording",
    "allowTranscription",
    "allowBreakoutRooms",
    "allowPowerPointSharing",
    "allowWhiteboard",
    "isEntryExitAnnounced",
    "recordAutomatically",
    "allowCopyingAndSharingMeetingContent",
    "isEndToEndEncryptionEnabled",
)
DEFAULTS: dict[str, Any] = {
    "allowAttendeeToEnableCamera": True,
    "allowAttendeeToEnableMic": True,
    "allowParticipantsToChangeName": False,
    "allowTeamworkReactions": True,
    "allowRecording": True,
    "allowTranscription": True,
    "allowBreakoutRooms": True,
    "allowLiveShare": "enabled",
    "allowPowerPointSharing": True,
    "allowWhiteboard": True,
    "isEntryExitAnnounced": False,
    "recordAutomatically": False,
    "allowedPresenters": "everyone",
    "allowMeetingChat": "enabled",
    "allowedLobbyAdmitters": "organizerAndCoOrganizersAndPresenters",
    "shareMeetingChatHistoryDefault": "none",
    "allowCopyingAndSharingMeetingContent": True,
    "isEndToEndEncryptionEnabled": False,
}
#: how long after its end a meeting resource lives (the onlineMeeting page: 60 days)
EXPIRY_DAYS = 60


class MeetingError(Exception):
    """Graph's answer to a bad request: status, service code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def bad_request(message: str) -> MeetingError:
    return MeetingError(400, "BadRequest", message)


def not_found(message: str = "The specified online meeting was not found.") -> MeetingError:
    return MeetingError(404, "NotFound", message)


# ---- time -------------------------------------------------------------------------------------------


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_datetime(name: str, value: object) -> dt.datetime:
    """ISO 8601 with any offset (or none: UTC) → aware UTC datetime; Graph's 400 otherwise."""
    if not isinstance(value, str):
        raise bad_request(
            f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset' ({name})."
        )
    text = value.strip()
    # Python accepts at most 6 fractional digits reliably; Graph sends 7
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(
            f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset' ({name})."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def format_datetime(value: dt.datetime) -> str:
    """``2026-06-11T10:00:00.1234560Z``: UTC, seven fractional digits, like Graph."""
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "0Z"


# ---- ids and URLs -----------------------------------------------------------------------------------


def thread_id_of(thread_key: str) -> str:
    return f"19:meeting_{thread_key}@thread.v2"


def meeting_id_of(organizer_id: str, thread_key: str) -> str:
    raw = f"1*{organizer_id}*0**{thread_id_of(thread_key)}"
    return base64.b64encode(raw.encode()).decode()


def join_web_url(tenant_id: str, organizer_id: str, thread_key: str) -> str:
    # Teams writes the escapes in lower case (%3a, %7b), the GUIDs are lower case already
    context = f"%7b%22Tid%22%3a%22{tenant_id}%22%2c%22Oid%22%3a%22{organizer_id}%22%7d"
    return (
        f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread_key}%40thread.v2/0?context={context}"
    )


_THREAD_IN_URL = re.compile(r"19:meeting_([A-Za-z0-9+/=_-]+)@thread\.v2")


def thread_key_from_join_url(url: str) -> str | None:
    """The ``{b64}`` of ``19:meeting_{b64}@thread.v2`` in a join URL, however often it was encoded."""
    text = url
    for _ in range(4):
        match = _THREAD_IN_URL.search(text)
        if match:
            return match.group(1)
        decoded = urllib.parse.unquote(text)
        if decoded == text:
            break
        text = decoded
    return None


# ---- the stored meeting -----------------------------------------------------------------------------


@dataclass(slots=True)
class Attendee:
    upn: str
    user_id: str | None
    role: str | None
    display_name: str | None = None

    def to_json(self, tenant_id: str) -> dict[str, Any]:
        identity: dict[str, Any] = {
            "user": {
                "id": self.user_id,
                "displayName": self.display_name,
                "tenantId": tenant_id if self.user_id else None,
                "identityProvider": "AAD",
            }
        }
        return {"upn": self.upn, "role": self.role or "attendee", "identity": identity}


@dataclass(slots=True)
class Meeting:
    id: str
    organizer_id: str
    organizer_upn: str
    organizer_name: str | None
    thread_key: str
    created: dt.datetime
    start: dt.datetime
    end: dt.datetime
    subject: str | None
    join_meeting_id: str
    passcode: str | None
    conference_id: str
    vtc_id: str
    external_id: str | None = None
    attendees: list[Attendee] = field(default_factory=list)
    #: writable settings that differ from :data:`DEFAULTS` (kept sparse to save memory)
    options: dict[str, Any] | None = None

    def option(self, name: str) -> Any:
        if self.options and name in self.options:
            return self.options[name]
        return DEFAULTS.get(name)


@dataclass(frozen=True)
class Organizer:
    id: str
    user_principal_name: str
    display_name: str | None = None


# ---- the stored meeting as a row (state.json) -------------------------------------------------------


def _meeting_row(m: Meeting) -> list[Any]:
    return [
        m.id,
        m.organizer_id,
        m.organizer_upn,
        m.organizer_name,
        m.thread_key,
        m.created.timestamp(),
        m.start.timestamp(),
        m.end.timestamp(),
        m.subject,
        m.join_meeting_id,
        m.passcode,
        m.conference_id,
        m.vtc_id,
        m.external_id,
        [[a.upn, a.user_id, a.role, a.display_name] for a in m.attendees],
        m.options,
    ]


def _meeting_from_row(row: list[Any]) -> Meeting:
    def when(value: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(value, dt.UTC)

    (mid, organizer_id, upn, name, thread_key, created, start, end, subject) = row[:9]
    (join_id, passcode, conference_id, vtc_id, external_id, attendees, options) = row[9:16]
    return Meeting(
        id=mid,
        organizer_id=organizer_id,
        organizer_upn=upn,
        organizer_name=name,
        thread_key=thread_key,
        created=when(created),
        start=when(start),
        end=when(end),
        subject=subject,
        join_meeting_id=join_id,
        passcode=passcode,
        conference_id=conference_id,
        vtc_id=vtc_id,
        external_id=external_id,
        attendees=[Attendee(*a) for a in attendees],
        options=options,
    )
