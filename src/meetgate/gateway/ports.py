"""What the gateway needs from the outside world, as small protocols.

- :class:`MeetingsPort`: the Graph client's ``AsyncMeetingsService`` (``client-api.md``) satisfies it.
- :class:`PolicyScope`: "is this organizer inside the application access policy scope".

Until the Graph client's models land on ``main`` the value types are mirrored here with the same
names and fields, so ``AsyncMeetingsService`` drops in unchanged later.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


class Attendee(BaseModel):
    model_config = ConfigDict(extra="allow")
    upn: str
    role: str = "attendee"
    id: str | None = None
    display_name: str | None = None


class MeetingRequest(BaseModel):
    subject: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    attendees: list[Attendee] = Field(default_factory=list)
    lobby_bypass_scope: str | None = None
    dial_in_bypass: bool | None = None
    allowed_presenters: str | None = None
    allow_meeting_chat: str | None = None


class MeetingUpdate(MeetingRequest):
    attendees: list[Attendee] | None = None  # type: ignore[assignment]


class OnlineMeeting(BaseModel):
    model_config = ConfigDict(extra="allow")
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
    attendees: list[Attendee] = Field(default_factory=list)
    lobby_bypass_scope: str | None = None
    allowed_presenters: str | None = None
    allow_meeting_chat: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class CreateOrGetResult(BaseModel):
    meeting: OnlineMeeting
    created: bool


class MeetingsPort(Protocol):
    """The subset of ``AsyncMeetingsService`` the gateway calls. ``organizer``: object id or UPN."""

    async def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest
    ) -> CreateOrGetResult: ...

    async def get(self, organizer: str, meeting_id: str) -> OnlineMeeting: ...

    async def update(self, organizer: str, meeting_id: str, changes: MeetingUpdate) -> OnlineMeeting: ...

    async def cancel(
        self, organizer: str, meeting_id: str, *, mode: Literal["delete", "lock"] = "delete"
    ) -> OnlineMeeting | None: ...


class PolicyScope(Protocol):
    """The application access policy's reach: which organizers the app may act for."""

    def contains(self, organizer: str) -> bool:
        """True when ``organizer`` (UPN or object id) is granted the app's policy."""
        ...

    def organizers(self) -> frozenset[str]:
        """Every organizer in scope (UPNs or ids, lower case), for ``--organizers-from-policy``."""
        ...


class TokenCheck(Protocol):
    """Readiness probe for Graph: take (or reuse) an access token; raise when none can be had."""

    async def __call__(self) -> None: ...
