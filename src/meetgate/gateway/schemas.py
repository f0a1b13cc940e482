"""The REST API's input and output documents (separate from the Graph models and the store rows)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

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
Subject = Annotated[str, StringConstraints(max_length=255)]
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
Time = Annotated[AwareDatetime, Field(description="ISO 8601 with a UTC offset")]

_MIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_MAX = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


class AttendeeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    upn: Upn
    role: Role = "attendee"


class _Times(BaseModel):
    start: Time | None = None
    end: Time | None = None

    @model_validator(mode="after")
    def _check_times(self) -> Any:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and not (_MIN <= value <= _MAX):
                raise ValueError(f"{name} must lie between 2000 and 2100")
        if self.end is not None and self.start is None:
            raise ValueError("an end needs a start")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class MeetingCreate(_Times):
    """A meeting to create; the organizer must be one of the consumer's organizers."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "organizer": "advisor1@contoso.com",
                    "subject": "Admissions interview",
                    "start": "2026-12-01T09:00:00Z",
                    "end": "2026-12-01T09:30:00Z",
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

    @model_validator(mode="after")
    def _both_times(self) -> Any:
        if (self.start is None) != (self.end is None):
            raise ValueError("a reschedule needs both start and end")
        return self


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
