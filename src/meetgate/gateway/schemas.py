"""The REST API's input and output documents (separate from the Graph models and the store rows).

Meeting fields are checked by the library's meeting rules (``meetgate.graph.meeting_rules``), field
by field, so a refusal's ``errors[].loc`` names the field and its ``msg`` says what to do.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from meetgate.gateway.problems import MEDIA_TYPE
from meetgate.graph import meeting_rules
from meetgate.graph.errors import MeetingRuleError
from meetgate.graph.recurrence import parse_rrule, zone_of

Upn = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=320, pattern=r"^[^@\s/\\]+@[^@\s/\\]+\.[^@\s/\\]+$"
    ),
]
Organizer = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=3,
        max_length=320,
        pattern=r"^([^@\s/\\]+@[^@\s/\\]+\.[^@\s/\\]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$",
    ),
]
#: the length is checked by the meeting rules (one message everywhere), shown in the schema here
Subject = Annotated[
    str,
    Field(
        description="At most 255 characters, no control characters (tab allowed)",
        json_schema_extra={"maxLength": meeting_rules.SUBJECT_MAX_LENGTH},
    ),
]
Role = Literal["attendee", "presenter", "producer", "coorganizer"]
LobbyBypass = Literal[
    "organizer",
    "organization",
    "organizationAndFederated",
    "everyone",
    "invited",
    "organizationExcludingGuests",
]
Presenters = Literal["everyone", "organization", "roleIsPresenter", "organizer"]
Chat = Literal["enabled", "disabled", "limited"]
#: ``standalone``: an onlineMeeting on nobody's calendar; ``calendar``: an Exchange event with a Teams
#: meeting in the organizer's calendar (invitations, recurrence, transcripts and recordings)
Placement = Literal["standalone", "calendar"]
#: the fields only a calendar meeting has
CALENDAR_FIELDS = ("recurrence", "time_zone", "body", "location")
TimeZone = Annotated[
    str,
    Field(
        max_length=64,
        description="IANA time zone of a calendar meeting (its recurrence's dates and local time); UTC by default",
        examples=["Europe/Berlin"],
    ),
]
Rrule = Annotated[
    str,
    Field(
        max_length=500,
        description="RFC 5545 recurrence rule of a calendar meeting; Graph's patterns only (daily, weekly, "
        "monthly, yearly; COUNT, UNTIL or no end)",
        examples=["RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=10"],
    ),
]
ItemBody = Annotated[
    str,
    Field(
        max_length=32000, description="Calendar meetings: the invitation's text (HTML when it starts with <)"
    ),
]
Location = Annotated[str, Field(max_length=255, description="Calendar meetings: where, e.g. a room")]
Time = Annotated[
    dt.datetime,
    Field(description="ISO 8601 with a timezone: Z (UTC) or an offset such as +02:00"),
]

_MIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_MAX = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


_PAST_REMEDY = (
    "Give a start in the future (check the year, the date and the timezone), or send "
    '"allowPast": true to schedule it in the past anyway.'
)


def _refusal(exc: MeetingRuleError) -> PydanticCustomError:
    """A meeting rule's refusal as a validation error: message and what to do, in ``msg``."""
    remedy = _PAST_REMEDY if exc.remedy == meeting_rules.PAST_REMEDY else exc.remedy
    return PydanticCustomError(
        "meeting_rule", "{message}. {remedy}", {"message": exc.message, "remedy": remedy}
    )


class AttendeeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    upn: Upn
    role: Role = "attendee"
    optional: bool = Field(
        default=False, description="Calendar meetings: invited as optional rather than required"
    )


class _CalendarFields(BaseModel):
    """The time zone and recurrence of a calendar meeting, checked as Graph will take them: an RRULE
    Graph cannot express is refused with the reason, in ``errors[].loc`` ``recurrence``."""

    @field_validator("time_zone", check_fields=False)
    @classmethod
    def _check_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zone_of(value)
        except MeetingRuleError as exc:
            raise _refusal(exc) from None
        return value

    @field_validator("recurrence", check_fields=False)
    @classmethod
    def _check_recurrence(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if "start" not in info.data or "time_zone" not in info.data:
            return value  # the start or zone was refused already
        start = info.data["start"]
        if start is None:
            raise _refusal(
                MeetingRuleError(
                    "a recurrence needs the start of its first meeting",
                    field="start",
                    remedy="Give start and end (the first meeting's) with the recurrence.",
                )
            )
        try:
            parse_rrule(value, start=start, time_zone=info.data["time_zone"] or "UTC")
        except MeetingRuleError as exc:
            raise _refusal(exc) from None
        return value


class _Times(BaseModel):
    """Start and end, checked by the meeting rules; ``allowPast`` comes first so that the start's
    check can read it."""

    model_config = ConfigDict(populate_by_name=True)
    allow_past: bool = Field(
        default=False,
        alias="allowPast",
        description="Accept a start in the past (refused otherwise: usually a wrong date or timezone)",
    )
    start: Time | None = None
    end: Annotated[Time | None, Field(validate_default=True)] = None

    #: a change of times (PATCH) gives both start and end
    time_change: ClassVar[bool] = False

    @field_validator("subject", check_fields=False)
    @classmethod
    def _check_subject(cls, value: str | None) -> str | None:
        try:
            return meeting_rules.check_subject(value)
        except MeetingRuleError as exc:
            raise _refusal(exc) from None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return meeting_rules.parse_time(value, str(info.field_name))
        except MeetingRuleError as exc:
            raise _refusal(exc) from None

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        if value is None:
            return None
        try:
            meeting_rules.check_time(value, "start")
            if not _MIN <= value <= _MAX:
                raise MeetingRuleError(
                    f"start {value.isoformat()} is not between 2000 and 2100",
                    field="start",
                    remedy="Check the year.",
                )
            meeting_rules.check_times(value, None, allow_past=bool(info.data.get("allow_past")))
        except MeetingRuleError as exc:
            raise _refusal(exc) from None
        return value

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        if "start" not in info.data:
            return value  # the start was refused already: a second error about it says nothing new
        start = info.data["start"]
        try:
            meeting_rules.check_time(value, "end")
            if value is not None and not _MIN <= value <= _MAX:
                raise MeetingRuleError(
                    f"end {value.isoformat()} is not between 2000 and 2100",
                    field="end",
                    remedy="Check the year.",
                )
            # the start was checked above (past included): here only the pair
            meeting_rules.check_times(start, value, update=cls.time_change, allow_past=True)
        except MeetingRuleError as exc:
            raise _refusal(exc) from None
        return value


class MeetingCreate(_CalendarFields, _Times):
    """A meeting to create; the organizer must be one of the consumer's organizers. ``placement``
    left out: the consumer's default placement (standalone unless the operator set another)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "organizer": "advisor1@contoso.com",
                    "subject": "Admissions interview",
                    "start": "2030-12-01T09:00:00Z",
                    "end": "2030-12-01T09:30:00Z",
                    "attendees": [{"upn": "candidate@example.org"}],
                    "lobby_bypass_scope": "organization",
                },
                {
                    "organizer": "teacher1@contoso.com",
                    "placement": "calendar",
                    "subject": "Chemistry 101",
                    "start": "2030-09-03T08:00:00+02:00",
                    "end": "2030-09-03T09:30:00+02:00",
                    "time_zone": "Europe/Berlin",
                    "recurrence": "RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=24",
                    "attendees": [
                        {"upn": "class-7b@contoso.com"},
                        {"upn": "parent@example.org", "optional": True},
                    ],
                    "location": "Lab 2",
                },
            ]
        },
    )
    organizer: Organizer
    placement: Placement | None = Field(
        default=None, description="standalone or calendar; left out: the consumer's default placement"
    )
    subject: Subject | None = None
    attendees: Annotated[list[AttendeeIn], Field(max_length=250)] = Field(default_factory=list)
    lobby_bypass_scope: LobbyBypass | None = None
    dial_in_bypass: bool | None = None
    allowed_presenters: Presenters | None = None
    allow_meeting_chat: Chat | None = None
    time_zone: TimeZone | None = None
    recurrence: Rrule | None = None
    body: ItemBody | None = None
    location: Location | None = None


class MeetingPatch(_CalendarFields, _Times):
    """Changes to a meeting (a calendar series as a whole): omitted fields stay; a reschedule gives
    both start and end, a new recurrence the series' start and end too."""

    model_config = ConfigDict(extra="forbid")
    subject: Subject | None = None
    attendees: Annotated[list[AttendeeIn], Field(max_length=250)] | None = None
    lobby_bypass_scope: LobbyBypass | None = None
    dial_in_bypass: bool | None = None
    allowed_presenters: Presenters | None = None
    allow_meeting_chat: Chat | None = None
    time_zone: TimeZone | None = None
    recurrence: Rrule | None = None
    body: ItemBody | None = None
    location: Location | None = None

    time_change: ClassVar[bool] = True


class OccurrencePatch(_Times):
    """Changes to one occurrence of a series (it becomes an exception): omitted fields stay; a
    reschedule gives both start and end. Attendees and meeting options belong to the whole series."""

    model_config = ConfigDict(extra="forbid")
    subject: Subject | None = None
    body: ItemBody | None = None
    location: Location | None = None

    time_change: ClassVar[bool] = True


class CancelRequest(BaseModel):
    """A cancellation of a calendar meeting, a series or one occurrence, with the message the
    attendees receive in Exchange's cancellation notice."""

    model_config = ConfigDict(extra="forbid")
    message: Annotated[str, Field(max_length=4000)] | None = Field(
        default=None, description="Sent to the attendees with the cancellation"
    )


class AttendeeOut(BaseModel):
    upn: str
    role: str
    optional: bool = False


class MeetingOut(BaseModel):
    id: str = Field(description="The gateway's meeting id (use it in the other endpoints)")
    state: Literal["pending", "active", "locked", "cancelled"]
    placement: Placement = "standalone"
    organizer: str
    subject: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    join_url: str | None = None
    join_meeting_id: str | None = None
    passcode: str | None = None
    attendees: list[AttendeeOut] = Field(default_factory=list)
    lobby_bypass_scope: str | None = None
    allowed_presenters: str | None = None
    allow_meeting_chat: str | None = None
    graph_meeting_id: str | None = None
    graph_event_id: str | None = Field(default=None, description="Calendar meetings: the Exchange event's id")
    kind: str | None = Field(
        default=None, description="Calendar meetings: singleInstance, or seriesMaster for a recurring series"
    )
    recurrence: str | None = None
    time_zone: str | None = None
    location: str | None = None
    web_link: str | None = Field(
        default=None, description="Calendar meetings: the event in Outlook on the web"
    )
    ical_uid: str | None = None
    external_id: str
    created_at: dt.datetime


class MeetingList(BaseModel):
    value: list[MeetingOut]


class OccurrenceOut(BaseModel):
    """One occurrence of a calendar series (``exception`` once changed on its own)."""

    id: str = Field(description="The occurrence's id (use it in /occurrences/{occurrenceId})")
    kind: str = Field(description="occurrence, or exception when changed on its own")
    subject: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    location: str | None = None
    join_url: str | None = None
    web_link: str | None = None
    cancelled: bool = False


class OccurrenceList(BaseModel):
    value: list[OccurrenceOut]
    next: str | None = Field(default=None, description="The next page (same window), when there is one")


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    remedy: str
    requestId: str | None = None
    graphRequestId: str | None = None
    instance: str | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


#: the problem answers the ``/v1/meetings`` operations document in OpenAPI (``responses=``)
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemOut, "content": {MEDIA_TYPE: {}}, "description": text}
    for status, text in {
        400: "Idempotency-Key missing",
        401: "API key missing, unknown, revoked, rotated or expired",
        403: "Organizer not allowed, outside the application access policy or the mailbox scope, "
        "or not the meeting's organizer",
        404: "No such meeting for this consumer",
        409: "Idempotency-Key reused with another request, meeting cancelled, or an operation its "
        "placement does not have",
        422: "Invalid request",
        429: "Rate limit or daily quota reached",
        502: "Microsoft Graph failed",
        503: "Microsoft Graph throttling, or the store unavailable",
    }.items()
}
