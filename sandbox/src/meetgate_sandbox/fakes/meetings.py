"""An in-memory stand-in for the gateway's meetings port (unit tests, the fuzz run, benchmarks).

:class:`InMemoryMeetings` behaves like Graph's onlineMeetings for one tenant: createOrGet keyed by
(organizer, externalId), organizers must be in the policy scope, ids are opaque. It raises the Graph
client's own errors (``meetgate.graph.errors``), with request ids, as the real client does.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any, Literal

from meetgate.gateway.ports import (
    Attendee,
    CreateOrGetResult,
    MeetingRequest,
    MeetingUpdate,
    OnlineMeeting,
    PolicyScope,
)
from meetgate.graph.errors import (
    AccessPolicyMissing,
    BadRequestError,
    GraphError,
    MeetingNotFound,
    OrganizerNotFound,
)
from meetgate.graph.meeting_rules import check_meeting


def _ids() -> dict[str, Any]:
    return {"request_id": str(uuid.uuid4()), "client_request_id": str(uuid.uuid4())}


class InMemoryMeetings:
    """A fake ``AsyncMeetingsService`` with Graph's createOrGet semantics."""

    def __init__(
        self,
        *,
        scope: PolicyScope | None = None,
        users: set[str] | None = None,
        latency_seconds: float = 0.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.scope = scope
        self.users = {u.lower() for u in users} if users is not None else None
        self.latency = latency_seconds
        self.clock = clock
        self.meetings: dict[str, tuple[str, OnlineMeeting]] = {}  # id -> (organizer, meeting)
        self.by_external: dict[tuple[str, str], str] = {}
        self.fail_next: GraphError | None = None
        self.calls: list[str] = []

    async def _enter(self, name: str, organizer: str) -> str:
        self.calls.append(name)
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        org = organizer.lower()
        if self.users is not None and org not in self.users:
            raise OrganizerNotFound(
                f"User '{organizer}' was not found", status=404, code="NotFound", **_ids()
            )
        if self.scope is not None and not self.scope.contains(org):
            raise AccessPolicyMissing(
                "No application access policy found for this app", status=403, code="Forbidden", **_ids()
            )
        return org

    def _find(self, org: str, meeting_id: str) -> OnlineMeeting:
        found = self.meetings.get(meeting_id)
        if found is None or found[0] != org:
            raise MeetingNotFound(
                "The requested meeting was not found", status=404, code="NotFound", **_ids()
            )
        return found[1]

    async def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest, *, allow_past: bool = False
    ) -> CreateOrGetResult:
        # the library checks the meeting rules before anything is sent: so does its stand-in
        check_meeting(
            subject=request.subject,
            start=request.start,
            end=request.end,
            allow_past=allow_past,
            now=self.clock(),
        )
        org = await self._enter("create_or_get", organizer)
        existing = self.by_external.get((org, external_id))
        if existing is not None:
            return CreateOrGetResult(meeting=self.meetings[existing][1], created=False)
        start = request.start or self.clock()
        end = request.end or start + dt.timedelta(hours=1)
        if end <= start:
            raise BadRequestError(
                "endDateTime must be after startDateTime", status=400, code="BadRequest", **_ids()
            )
        meeting_id = base64.b64encode(f"1*{org}*0**19:meeting_{uuid.uuid4().hex}".encode()).decode()
        number = str(uuid.uuid4().int)[:12]
        meeting = OnlineMeeting(
            id=meeting_id,
            join_web_url=f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{uuid.uuid4().hex}%40thread.v2/0",
            subject=request.subject,
            start=start,
            end=end,
            created=self.clock(),
            external_id=external_id,
            join_meeting_id=number,
            passcode="pa55" + number[:2],
            organizer_id=org,
            attendees=[Attendee(upn=a.upn, role=a.role) for a in request.attendees],
            lobby_bypass_scope=request.lobby_bypass_scope or "organization",
            allowed_presenters=request.allowed_presenters or "everyone",
            allow_meeting_chat=request.allow_meeting_chat or "enabled",
        )
        self.meetings[meeting_id] = (org, meeting)
        self.by_external[(org, external_id)] = meeting_id
        return CreateOrGetResult(meeting=meeting, created=True)

    async def get(self, organizer: str, meeting_id: str) -> OnlineMeeting:
        org = await self._enter("get", organizer)
        return self._find(org, meeting_id)

    async def update(
        self, organizer: str, meeting_id: str, changes: MeetingUpdate, *, allow_past: bool = False
    ) -> OnlineMeeting:
        check_meeting(
            subject=changes.subject,
            start=changes.start,
            end=changes.end,
            update=True,
            allow_past=allow_past,
            now=self.clock(),
        )
        org = await self._enter("update", organizer)
        meeting = self._find(org, meeting_id)
        patch = {k: v for k, v in changes.model_dump(exclude_none=True).items()}
        if ("start" in patch) != ("end" in patch):
            raise BadRequestError(
                "startDateTime and endDateTime must be changed together",
                status=400,
                code="BadRequest",
                **_ids(),
            )
        updated = meeting.model_copy(update={k: v for k, v in patch.items() if k != "attendees"})
        if changes.attendees is not None:
            updated.attendees = [Attendee(upn=a.upn, role=a.role) for a in changes.attendees]
        self.meetings[meeting_id] = (org, updated)
        return updated

    async def cancel(
        self, organizer: str, meeting_id: str, *, mode: Literal["delete", "lock"] = "delete"
    ) -> OnlineMeeting | None:
        org = await self._enter("cancel", organizer)
        meeting = self._find(org, meeting_id)
        if mode == "delete":
            del self.meetings[meeting_id]
            self.by_external = {k: v for k, v in self.by_external.items() if v != meeting_id}
            return None
        locked = meeting.model_copy(
            update={"lobby_bypass_scope": "organizer", "allowed_presenters": "organizer"}
        )
        self.meetings[meeting_id] = (org, locked)
        return locked
