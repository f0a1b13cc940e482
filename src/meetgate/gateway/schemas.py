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


class MeetingCreate(_Times):
    """A meeting to create; the organizer must be one of the consumer's organizers."""

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
                }
            ]
        },
    )
    organizer: Organizer
    subject: Subject | None = None
    attendees: Annotated[list[AttendeeIn], Field(max_length=250)] = Field(default_factory=list)
    lobby_bypass_scope: LobbyBypass | None = None
    dial_in_bypass: bool | None = None
    allowed_presenters: Presenters | None = None
    allow_meeting_chat: Chat | None = None


class MeetingPatch(_Times):
    """Changes to a meeting: omitted fields stay; a reschedule gives both start and end."""

    model_config = ConfigDict(extra="forbid")
    subject: Subject | None = None
    attendees: Annotated[list[AttendeeIn], Field(max_length=250)] | None = None
    lobby_bypass_scope: LobbyBypass | None = None
    dial_in_bypass: bool | None = None
    allowed_presenters: Presenters | None = None
    allow_meeting_chat: Chat | None = None

    time_change: ClassVar[bool] = True


class AttendeeOut(BaseModel):
    upn: str
    role: str


class MeetingOut(BaseModel):
    id: str = Field(description="The gateway's meeting id (use it in the other endpoints)")
    state: Literal["pending", "active", "locked", "cancelled"]
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
    external_id: str
    created_at: dt.datetime


class MeetingList(BaseModel):
    value: list[MeetingOut]


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
        403: "Organizer not allowed, or outside the application access policy",
        404: "No such meeting for this consumer",
        409: "Idempotency-Key reused with another request, or meeting cancelled",
        422: "Invalid request",
        429: "Rate limit or daily quota reached",
        502: "Microsoft Graph failed",
        503: "Microsoft Graph throttling, or the store unavailable",
    }.items()
}
