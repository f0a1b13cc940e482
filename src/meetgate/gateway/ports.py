"""What the gateway needs from the outside world, as small protocols.

- :class:`AsyncMeetingsPort`: the Graph client's ``AsyncMeetingsService`` (docs/library.md) satisfies it.
- :class:`AsyncEventsPort`: calendar-backed meetings; the client's ``AsyncCalendarEventsService``.
- :class:`AsyncArtifactsPort`: what meetings produced; the client's ``AsyncArtifactsService``.
- :class:`PolicyScope`: "is this organizer inside the application access policy scope".

The value types are the Graph client's own models (``meetgate.graph.models``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, Protocol

from meetgate.graph.artifact_models import MeetingAttendance, Recording, Transcript, TranscriptContent
from meetgate.graph.event_models import CalendarMeeting, CreateOrGetEventResult
from meetgate.graph.models import Attendee, CreateOrGetResult, MeetingRequest, MeetingUpdate, OnlineMeeting

__all__ = [
    "AsyncArtifactsPort",
    "AsyncEventsPort",
    "AsyncMeetingsPort",
    "Attendee",
    "CalendarMeeting",
    "CreateOrGetEventResult",
    "CreateOrGetResult",
    "MeetingRequest",
    "MeetingUpdate",
    "OnlineMeeting",
    "PolicyScope",
    "TokenCheck",
]


class AsyncMeetingsPort(Protocol):
    """The subset of ``AsyncMeetingsService`` the gateway calls. ``organizer``: object id or UPN."""

    async def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest, *, allow_past: bool = False
    ) -> CreateOrGetResult: ...

    async def get(self, organizer: str, meeting_id: str) -> OnlineMeeting: ...

    async def update(
        self, organizer: str, meeting_id: str, changes: MeetingUpdate, *, allow_past: bool = False
    ) -> OnlineMeeting: ...

    async def cancel(
        self, organizer: str, meeting_id: str, *, mode: Literal["delete", "lock"] = "delete"
    ) -> OnlineMeeting | None: ...


class AsyncEventsPort(Protocol):
    """The subset of ``AsyncCalendarEventsService`` the gateway calls (calendar placement). An event id
    is a meeting, a series' master or one occurrence."""

    async def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest, *, allow_past: bool = False
    ) -> CreateOrGetEventResult: ...

    async def get(self, organizer: str, event_id: str) -> CalendarMeeting: ...

    async def update(
        self, organizer: str, event_id: str, changes: MeetingUpdate, *, allow_past: bool = False
    ) -> CalendarMeeting: ...

    async def cancel(self, organizer: str, event_id: str, *, message: str | None = None) -> None: ...

    async def occurrences(
        self, organizer: str, event_id: str, start: dt.datetime, end: dt.datetime
    ) -> list[CalendarMeeting]: ...


class AsyncArtifactsPort(Protocol):
    """The subset of ``AsyncArtifactsService`` the gateway calls. ``meeting_id``: a standalone meeting's
    onlineMeeting id (``placement="standalone"``) or a calendar meeting's event id (``"calendar"``)."""

    async def attendance(
        self, organizer: str, meeting_id: str, *, placement: str | None = None
    ) -> MeetingAttendance: ...

    async def transcripts(
        self, organizer: str, meeting_id: str, *, placement: str | None = None
    ) -> list[Transcript]: ...

    async def transcript(
        self, organizer: str, meeting_id: str, transcript_id: str, *, placement: str | None = None
    ) -> Transcript: ...

    async def transcript_content(
        self,
        organizer: str,
        meeting_id: str,
        transcript_id: str,
        *,
        placement: str | None = None,
        speakers: bool = True,
    ) -> TranscriptContent: ...

    async def recordings(
        self, organizer: str, meeting_id: str, *, placement: str | None = None
    ) -> list[Recording]: ...

    async def recording(
        self, organizer: str, meeting_id: str, recording_id: str, *, placement: str | None = None
    ) -> Recording: ...

    async def stream_recording(
        self,
        organizer: str,
        meeting_id: str,
        recording_id: str,
        sink: Callable[[bytes], Awaitable[None]],
        *,
        placement: str | None = None,
        range: str | None = None,
        on_response: Callable[[int, Mapping[str, str]], None] | None = None,
    ) -> Recording: ...


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
