"""Typed models of Graph's onlineMeeting, its parts, users and attendance reports (pydantic v2).

Reading is tolerant: every documented enum value is known (as a ``StrEnum`` member), and any value
Graph adds later (``unknownFutureValue`` or a new name) is kept as a plain string instead of failing.
Extra fields are kept too. Writing is strict where Graph is: attendees always carry ``upn`` (attendees
without one have produced 500s in the real service).

:class:`GraphOnlineMeeting` mirrors Graph's JSON (camelCase aliases); :class:`OnlineMeeting` is the
flat view callers use, built from it, with the original JSON in ``raw``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel


class LobbyBypassScope(StrEnum):
    ORGANIZER = "organizer"
    ORGANIZATION = "organization"
    ORGANIZATION_AND_FEDERATED = "organizationAndFederated"
    EVERYONE = "everyone"
    INVITED = "invited"
    ORGANIZATION_EXCLUDING_GUESTS = "organizationExcludingGuests"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class OnlineMeetingPresenters(StrEnum):
    EVERYONE = "everyone"
    ORGANIZATION = "organization"
    ROLE_IS_PRESENTER = "roleIsPresenter"
    ORGANIZER = "organizer"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class MeetingChatMode(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    LIMITED = "limited"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class AllowedLobbyAdmitterRoles(StrEnum):
    ORGANIZER_AND_CO_ORGANIZERS_AND_PRESENTERS = "organizerAndCoOrganizersAndPresenters"
    ORGANIZER_AND_CO_ORGANIZERS = "organizerAndCoOrganizers"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class OnlineMeetingRole(StrEnum):
    ATTENDEE = "attendee"
    PRESENTER = "presenter"
    PRODUCER = "producer"
    COORGANIZER = "coorganizer"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


def _known(enum_cls: type[StrEnum]) -> Callable[[Any], Any]:
    """A documented value becomes the enum member; anything else stays the string it was."""

    def convert(value: Any) -> Any:
        if isinstance(value, str) and not isinstance(value, enum_cls):
            try:
                return enum_cls(value)
            except ValueError:
                return value
        return value

    return convert


# A known member, or any other string Graph may send in the future.
LobbyScopeValue = Annotated[LobbyBypassScope | str, BeforeValidator(_known(LobbyBypassScope))]
PresentersValue = Annotated[OnlineMeetingPresenters | str, BeforeValidator(_known(OnlineMeetingPresenters))]
ChatModeValue = Annotated[MeetingChatMode | str, BeforeValidator(_known(MeetingChatMode))]
AdmittersValue = Annotated[
    AllowedLobbyAdmitterRoles | str, BeforeValidator(_known(AllowedLobbyAdmitterRoles))
]
RoleValue = Annotated[OnlineMeetingRole | str, BeforeValidator(_known(OnlineMeetingRole))]


class GraphModel(BaseModel):
    """Graph JSON: camelCase on the wire, snake_case in Python, unknown fields kept."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        use_enum_values=False,
        defer_build=True,
    )

    def to_graph(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class CaseTolerantGraphModel(GraphModel):
    """A Graph part whose keys the service (and its documentation) sends in more than one casing.

    Graph's own example of ``GET /communications/onlineMeetings`` shows ``audioConferencing`` with
    ``ConferenceId`` beside ``conferenceId`` elsewhere: a key that matches a field's camelCase name
    case-insensitively is read as that field (the exact spelling wins when both are present).
    """

    @model_validator(mode="before")
    @classmethod
    def _fold_key_case(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        exact, folded_names = _aliases_of(cls)
        folded: dict[str, Any] | None = None
        for key in data.keys() - exact:  # usually only keys the model does not read (``@odata.*``)
            alias = folded_names.get(key.lower()) if isinstance(key, str) else None
            if alias is not None:
                folded = folded if folded is not None else dict(data)
                folded.setdefault(alias, folded.pop(key))  # the exact spelling wins when both came
        return data if folded is None else folded


@functools.cache
def _aliases_of(model: type[BaseModel]) -> tuple[frozenset[str], dict[str, str]]:
    """``model``'s field aliases (the camelCase names Graph sends), and ``{lower-cased alias: alias}``."""
    aliases = [field.alias or to_camel(name) for name, field in model.model_fields.items()]
    return frozenset(aliases), {alias.lower(): alias for alias in aliases}


# --- the parts of an onlineMeeting ---------------------------------------------------------------


class Identity(CaseTolerantGraphModel):
    id: str | None = None
    display_name: str | None = None
    tenant_id: str | None = None


class IdentitySet(CaseTolerantGraphModel):
    user: Identity | None = None
    application: Identity | None = None
    guest: Identity | None = None
    phone: Identity | None = None


class MeetingParticipantInfo(CaseTolerantGraphModel):
    identity: IdentitySet | None = None
    upn: str | None = None
    role: RoleValue | None = None


class MeetingParticipants(CaseTolerantGraphModel):
    organizer: MeetingParticipantInfo | None = None
    attendees: list[MeetingParticipantInfo] = Field(default_factory=list)
    #: beta only (Teams live events, deprecated)
    producers: list[MeetingParticipantInfo] = Field(default_factory=list)
    contributors: list[MeetingParticipantInfo] = Field(default_factory=list)


class LobbyBypassSettings(CaseTolerantGraphModel):
    scope: LobbyScopeValue | None = None
    is_dial_in_bypass_enabled: bool | None = None


class JoinMeetingIdSettings(CaseTolerantGraphModel):
    join_meeting_id: str | None = None
    passcode: str | None = None
    is_passcode_required: bool | None = None


class ChatInfo(CaseTolerantGraphModel):
    thread_id: str | None = None
    message_id: str | None = None
    reply_chain_message_id: str | None = None


class AudioConferencing(CaseTolerantGraphModel):
    conference_id: str | None = None
    toll_number: str | None = None
    toll_free_number: str | None = None
    toll_numbers: list[str] = Field(default_factory=list)
    toll_free_numbers: list[str] = Field(default_factory=list)
    dialin_url: str | None = None


class SensitivityLabelAssignment(CaseTolerantGraphModel):
    sensitivity_label_id: str | None = None


class CloudVideoInteropInfo(CaseTolerantGraphModel):
    tenant_key: str | None = None
    video_teleconference_id: str | None = None
    more_info_web_url: str | None = None


class WatermarkProtectionValues(CaseTolerantGraphModel):
    is_enabled_for_content_sharing: bool | None = None
    is_enabled_for_video: bool | None = None


class ChatRestrictions(CaseTolerantGraphModel):
    allow_text_only: bool | None = None


class ItemBody(CaseTolerantGraphModel):
    content: str | None = None
    content_type: str | None = None


class GraphOnlineMeeting(CaseTolerantGraphModel):
    """An onlineMeeting exactly as Graph returns it."""

    id: str | None = None
    subject: str | None = None
    start_date_time: dt.datetime | None = None
    end_date_time: dt.datetime | None = None
    creation_date_time: dt.datetime | None = None
    join_web_url: str | None = None
    join_url: str | None = None
    external_id: str | None = None
    video_teleconference_id: str | None = None
    meeting_options_web_url: str | None = None
    participants: MeetingParticipants | None = None
    lobby_bypass_settings: LobbyBypassSettings | None = None
    join_meeting_id_settings: JoinMeetingIdSettings | None = None
    chat_info: ChatInfo | None = None
    audio_conferencing: AudioConferencing | None = None
    allowed_presenters: PresentersValue | None = None
    allow_meeting_chat: ChatModeValue | None = None
    allowed_lobby_admitters: AdmittersValue | None = None
    is_entry_exit_announced: bool | None = None
    record_automatically: bool | None = None
    allow_attendee_to_enable_camera: bool | None = None
    allow_attendee_to_enable_mic: bool | None = None
    allow_teamwork_reactions: bool | None = None
    allow_recording: bool | None = None
    allow_transcription: bool | None = None
    allow_breakout_rooms: bool | None = None
    allow_copying_and_sharing_meeting_content: bool | None = None
    allow_participants_to_change_name: bool | None = None
    allow_power_point_sharing: bool | None = None
    allow_whiteboard: bool | None = None
    allow_live_share: str | None = None
    share_meeting_chat_history_default: str | None = None
    anonymize_identity_for_roles: list[RoleValue] = Field(default_factory=list)
    expiry_date_time: dt.datetime | None = None
    is_end_to_end_encryption_enabled: bool | None = None
    meeting_spoken_language_tag: str | None = None
    meeting_template_id: str | None = None
    meeting_type: str | None = None
    #: deprecated (use lobbyBypassSettings.scope); the service's examples still show it
    auto_admitted_users: str | None = None
    is_broadcast: bool | None = None
    sensitivity_label_assignment: SensitivityLabelAssignment | None = None
    cloud_video_interop_info: CloudVideoInteropInfo | None = None
    watermark_protection: WatermarkProtectionValues | None = None
    chat_restrictions: ChatRestrictions | None = None
    join_information: ItemBody | None = None


# --- what callers use ------------------------------------------------------------------------------


class FlatModel(BaseModel):
    """Flat models: snake_case in Python, camelCase in JSON output."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, defer_build=True)


class Attendee(FlatModel):
    """A meeting participant. ``upn`` is always sent to Graph."""

    upn: str
    role: RoleValue = OnlineMeetingRole.ATTENDEE
    id: str | None = None
    display_name: str | None = None
    #: calendar meetings only: an optional attendee (Exchange's attendee type ``optional``)
    optional: bool = False

    @field_validator("upn")
    @classmethod
    def _upn_shape(cls, value: str) -> str:
        value = value.strip()
        if "@" not in value or value.startswith("@") or value.endswith("@") or " " in value:
            raise ValueError(f"attendee upn must look like name@domain, got {value!r}")
        return value

    def to_graph(self) -> dict[str, Any]:
        data: dict[str, Any] = {"upn": self.upn, "role": str(self.role)}
        if self.id or self.display_name:
            user: dict[str, Any] = {}
            if self.id:
                user["id"] = self.id
            if self.display_name:
                user["displayName"] = self.display_name
            data["identity"] = {"user": user}
        return data


def _attendee_list(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [Attendee(upn=item) if isinstance(item, str) else item for item in value]
    return value


#: where a meeting lives: ``standalone`` (``/onlineMeetings``, on nobody's calendar) or ``calendar``
#: (an Exchange event with a Teams meeting: invitations, recurrence, transcripts and recordings)
Placement = Literal["standalone", "calendar"]
PLACEMENTS: tuple[str, ...] = ("standalone", "calendar")


class MeetingRequest(FlatModel):
    """What to create. Times must carry a timezone; they are sent in UTC.

    ``placement="calendar"`` makes an Exchange calendar event with a Teams meeting in the organizer's
    calendar (attendees get invitations); only then may ``recurrence`` (an RFC 5545 RRULE), ``body``,
    ``location`` and ``time_zone`` (IANA, for the recurrence's dates; UTC by default) be given.
    """

    placement: Placement = "standalone"
    recurrence: str | None = None
    time_zone: str | None = None
    body: str | None = None
    location: str | None = None
    subject: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    attendees: list[Attendee] = Field(default_factory=list)
    lobby_bypass_scope: LobbyScopeValue | None = None
    dial_in_bypass: bool | None = None
    allowed_presenters: PresentersValue | None = None
    allow_meeting_chat: ChatModeValue | None = None
    allowed_lobby_admitters: AdmittersValue | None = None
    record_automatically: bool | None = None
    is_entry_exit_announced: bool | None = None

    @field_validator("attendees", mode="before")
    @classmethod
    def _attendees_from_strings(cls, value: Any) -> Any:
        return _attendee_list(value)


class MeetingUpdate(MeetingRequest):
    """What to change; every field None means "leave as is". ``attendees`` replaces the whole list
    (an empty list removes everyone), so it is None unless given."""

    attendees: list[Attendee] | None = None  # type: ignore[assignment]

    def is_empty(self) -> bool:
        return not self.model_fields_set or all(getattr(self, name) is None for name in self.model_fields_set)


class DialIn(FlatModel):
    """Phone access of a meeting (only when the organizer has an audio conferencing licence)."""

    conference_id: str | None = None
    toll_number: str | None = None
    toll_free_number: str | None = None
    dialin_url: str | None = None


class OnlineMeeting(FlatModel):
    """A meeting as callers use it. ``raw`` is Graph's JSON (not in JSON output)."""

    id: str
    join_web_url: str | None = None
    subject: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    created: dt.datetime | None = None
    external_id: str | None = None
    join_meeting_id: str | None = None
    passcode: str | None = None
    chat_thread_id: str | None = None
    organizer_id: str | None = None
    organizer_upn: str | None = None
    attendees: list[Attendee] = Field(default_factory=list)
    lobby_bypass_scope: LobbyScopeValue | None = None
    dial_in_bypass: bool | None = None
    allowed_presenters: PresentersValue | None = None
    allow_meeting_chat: ChatModeValue | None = None
    allowed_lobby_admitters: AdmittersValue | None = None
    dial_in: DialIn | None = None
    meeting_options_url: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    @classmethod
    def from_graph(cls, data: dict[str, Any]) -> OnlineMeeting:
        graph = GraphOnlineMeeting.model_validate(data)
        participants = graph.participants or MeetingParticipants()
        organizer = participants.organizer
        organizer_id = None
        if organizer and organizer.identity and organizer.identity.user:
            organizer_id = organizer.identity.user.id
        attendees = []
        for info in participants.attendees:
            user = info.identity.user if info.identity else None
            upn = info.upn or ""
            if "@" not in upn:
                continue  # a phone or guest participant without a UPN: kept in raw only
            attendees.append(
                Attendee(
                    upn=upn,
                    role=info.role or OnlineMeetingRole.ATTENDEE,
                    id=user.id if user else None,
                    display_name=user.display_name if user else None,
                )
            )
        lobby = graph.lobby_bypass_settings
        join = graph.join_meeting_id_settings
        audio = graph.audio_conferencing
        dial_in = None
        if audio and (audio.conference_id or audio.toll_number or audio.toll_free_number or audio.dialin_url):
            dial_in = DialIn(
                conference_id=audio.conference_id,
                toll_number=audio.toll_number or (audio.toll_numbers[0] if audio.toll_numbers else None),
                toll_free_number=audio.toll_free_number
                or (audio.toll_free_numbers[0] if audio.toll_free_numbers else None),
                dialin_url=audio.dialin_url,
            )
        if graph.id is None:
            raise ValueError("Graph returned an onlineMeeting without an id")
        return cls(
            id=graph.id,
            join_web_url=graph.join_web_url or graph.join_url,
            subject=graph.subject,
            start=graph.start_date_time,
            end=graph.end_date_time,
            created=graph.creation_date_time,
            external_id=graph.external_id,
            join_meeting_id=join.join_meeting_id if join else None,
            passcode=join.passcode if join else None,
            chat_thread_id=graph.chat_info.thread_id if graph.chat_info else None,
            organizer_id=organizer_id,
            organizer_upn=organizer.upn if organizer else None,
            attendees=attendees,
            lobby_bypass_scope=lobby.scope if lobby else None,
            dial_in_bypass=lobby.is_dial_in_bypass_enabled if lobby else None,
            allowed_presenters=graph.allowed_presenters,
            allow_meeting_chat=graph.allow_meeting_chat,
            allowed_lobby_admitters=graph.allowed_lobby_admitters,
            dial_in=dial_in,
            meeting_options_url=graph.meeting_options_web_url,
            raw=data,
        )

    @property
    def details(self) -> GraphOnlineMeeting:
        """Every field Graph returned, typed."""
        return GraphOnlineMeeting.model_validate(self.raw)


class CreateOrGetResult(FlatModel):
    meeting: OnlineMeeting
    #: True when Graph made a new meeting (201), False when it returned the existing one (200)
    created: bool


# --- directory -----------------------------------------------------------------------------------


class User(GraphModel):
    id: str
    display_name: str | None = None
    user_principal_name: str | None = None
    mail: str | None = None
    account_enabled: bool | None = None
    user_type: str | None = None


# --- attendance ----------------------------------------------------------------------------------


class AttendanceInterval(GraphModel):
    join_date_time: dt.datetime | None = None
    leave_date_time: dt.datetime | None = None
    duration_in_seconds: int | None = None


class AttendanceRecord(GraphModel):
    id: str | None = None
    email_address: str | None = None
    identity: Identity | None = None
    role: str | None = None
    total_attendance_in_seconds: int | None = None
    attendance_intervals: list[AttendanceInterval] = Field(default_factory=list)


class AttendanceReport(GraphModel):
    id: str
    total_participant_count: int | None = None
    meeting_start_date_time: dt.datetime | None = None
    meeting_end_date_time: dt.datetime | None = None
    attendance_records: list[AttendanceRecord] = Field(default_factory=list)
