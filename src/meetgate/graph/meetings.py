"""Teams online meetings for an approved organizer (app-only), sync and async.

Rules this service keeps so callers cannot get them wrong:

- ``create`` never blindly POSTs: it calls ``createOrGet`` with an ``externalId`` (the caller's, or a
  generated one), so a retry after a lost response returns the same meeting instead of a second one.
  Settings createOrGet cannot carry (lobby, presenters, chat) are applied by a PATCH right after, on
  a new or a replayed meeting alike, so a retried create ends in the requested state.
- The meeting rules (``meeting_rules.py``: subject, times with a timezone, end after start, no start in
  the past unless ``allow_past=True``) and Graph's PATCH rules (a time change needs both start and
  end) are checked before anything is sent (:class:`MeetingRuleError`, naming the field).
- Organizers may be UPNs: they are resolved to object ids once through ``/users`` and cached.
- ``cancel`` either deletes the meeting, or locks it (lobby for the organizer only, no dial-in bypass,
  chat off, organizer-only presenting) so a stale link cannot revive it.
- Every request sends ``Prefer: include-unknown-enum-members`` so evolvable enums come back by name.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from meetgate.graph.auth import MEETINGS_ROLES
from meetgate.graph.directory import UserIdCache, resolve_user_id_op
from meetgate.graph.errors import MeetingRuleError, OrganizerNotFound
from meetgate.graph.http import GraphCallContext, GraphResponse
from meetgate.graph.meeting_rules import check_meeting, check_time, check_times
from meetgate.graph.models import (
    AttendanceReport,
    Attendee,
    CreateOrGetResult,
    LobbyBypassScope,
    MeetingChatMode,
    MeetingRequest,
    MeetingUpdate,
    OnlineMeeting,
    OnlineMeetingPresenters,
)
from meetgate.graph.ops import Op, Operation, run_async, run_sync

if TYPE_CHECKING:
    from meetgate.graph.http import AsyncGraphHttp, GraphHttp

READ_ROLES = ("OnlineMeetings.Read.All", "OnlineMeetings.ReadWrite.All")
WRITE_ROLES = MEETINGS_ROLES
#: what reads attendance reports: the artifact permission (least privilege), or a meeting permission
ATTENDANCE_ROLES = ("OnlineMeetingArtifact.Read.All", *READ_ROLES)
PREFER = {"Prefer": "include-unknown-enum-members"}
CancelMode = Literal["delete", "lock"]
_EXTERNAL_ID = re.compile(r"^[\x21-\x7e]{1,256}$")

#: What ``cancel(mode="lock")`` sets: nobody but the organizer gets past the lobby, no chat.
LOCKED_SETTINGS: dict[str, Any] = {
    "lobbyBypassSettings": {"scope": LobbyBypassScope.ORGANIZER.value, "isDialInBypassEnabled": False},
    "allowMeetingChat": MeetingChatMode.DISABLED.value,
    "allowedPresenters": OnlineMeetingPresenters.ORGANIZER.value,
}


# --- pure helpers: rules and bodies ----------------------------------------------------------------


def graph_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def check_external_id(external_id: str) -> str:
    if not isinstance(external_id, str) or not _EXTERNAL_ID.match(external_id):
        raise MeetingRuleError(
            f"externalId {external_id!r} must be 1–256 printable ASCII characters without spaces",
            remedy="Use your booking's own id (e.g. booking-4711) or leave it out to get a generated one.",
        )
    return external_id


def new_external_id() -> str:
    return f"meetgate-{uuid.uuid4()}"


def _attendees_body(attendees: Sequence[Attendee]) -> dict[str, Any]:
    return {"attendees": [attendee.to_graph() for attendee in attendees]}


def check_standalone(request: MeetingRequest) -> None:
    """Refuse what only a calendar meeting has (a standalone meeting is on nobody's calendar)."""
    for name in ("recurrence", "body", "location", "time_zone"):
        if getattr(request, name) is not None:
            raise MeetingRuleError(
                f"{name} needs calendar placement: a standalone meeting is on nobody's calendar",
                field=name,
                remedy='Create the meeting with placement "calendar" (meetgate meetings create --calendar).',
            )
    optional = [attendee.upn for attendee in request.attendees or [] if attendee.optional]
    if optional:
        raise MeetingRuleError(
            f"optional attendees ({', '.join(optional)}) need calendar placement",
            field="attendees",
            remedy='Create the meeting with placement "calendar", or make every attendee required.',
        )


def create_body(
    request: MeetingRequest,
    external_id: str,
    *,
    allow_past: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The createOrGet body (Graph accepts only these fields there), after checking the meeting rules."""
    check_standalone(request)
    check_meeting(
        subject=request.subject, start=request.start, end=request.end, allow_past=allow_past, now=now
    )
    body: dict[str, Any] = {"externalId": external_id}
    if request.subject is not None:
        body["subject"] = request.subject
    if request.start is not None:
        body["startDateTime"] = graph_time(request.start)
    if request.end is not None:
        body["endDateTime"] = graph_time(request.end)
    if request.attendees:
        body["participants"] = _attendees_body(request.attendees)
    return body


def settings_body(request: MeetingRequest, current: OnlineMeeting | None = None) -> dict[str, Any]:
    """Meeting options of ``request`` that ``current`` does not have yet (all of them without it)."""
    body: dict[str, Any] = {}
    scope, bypass = request.lobby_bypass_scope, request.dial_in_bypass
    if scope is not None or bypass is not None:
        want_scope = scope if scope is not None else (current.lobby_bypass_scope if current else None)
        want_bypass = bypass if bypass is not None else (current.dial_in_bypass if current else None)
        if current is None or (want_scope, want_bypass) != (
            current.lobby_bypass_scope,
            current.dial_in_bypass,
        ):
            lobby: dict[str, Any] = {}
            if want_scope is not None:
                lobby["scope"] = str(want_scope)
            if want_bypass is not None:
                lobby["isDialInBypassEnabled"] = want_bypass
            body["lobbyBypassSettings"] = lobby
    simple = {
        "allowedPresenters": ("allowed_presenters", "allowed_presenters"),
        "allowMeetingChat": ("allow_meeting_chat", "allow_meeting_chat"),
        "allowedLobbyAdmitters": ("allowed_lobby_admitters", "allowed_lobby_admitters"),
    }
    for key, (field, current_field) in simple.items():
        value = getattr(request, field)
        if value is not None and (current is None or getattr(current, current_field) != value):
            body[key] = str(value)
    for key, field in (
        ("recordAutomatically", "record_automatically"),
        ("isEntryExitAnnounced", "is_entry_exit_announced"),
    ):
        value = getattr(request, field)
        if value is not None and (current is None or current.raw.get(key) != value):
            body[key] = value
    return body


def update_body(
    changes: MeetingUpdate,
    current: OnlineMeeting | None = None,
    *,
    allow_past: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The PATCH body for ``changes`` after checking the meeting rules and Graph's."""
    if changes.is_empty():
        raise MeetingRuleError("nothing to change", remedy="Give at least one field to update.")
    check_meeting(
        subject=changes.subject,
        start=changes.start,
        end=changes.end,
        update=True,
        allow_past=allow_past,
        now=now,
    )
    body: dict[str, Any] = {}
    if changes.subject is not None:
        body["subject"] = changes.subject
    if changes.start is not None and changes.end is not None:
        body["startDateTime"] = graph_time(changes.start)
        body["endDateTime"] = graph_time(changes.end)
    if changes.attendees is not None:
        body["participants"] = _attendees_body(changes.attendees)
    body.update(settings_body(changes, current))
    return body


def lobby_needs_current(changes: MeetingRequest) -> bool:
    """Graph replaces lobbyBypassSettings as a whole: a half-given lobby needs the current values."""
    return (changes.lobby_bypass_scope is None) != (changes.dial_in_bypass is None)


def check_join_meeting_id(value: str) -> str:
    digits = re.sub(r"[\s-]", "", value or "")
    if not digits.isdigit() or not 6 <= len(digits) <= 20:
        raise MeetingRuleError(
            f"meeting ID {value!r} is not a Teams meeting ID",
            remedy="Give the numeric meeting ID shown in the invitation (e.g. 123 456 789 012).",
        )
    return digits


def check_join_url(value: str) -> str:
    text = (value or "").strip()
    if not text.startswith("https://"):
        raise MeetingRuleError(
            f"join URL {value!r} is not an https URL", remedy="Give the meeting's joinWebUrl."
        )
    return text


# --- the operations (written once, driven sync or async) ---------------------------------------------


def _meetings_path(organizer_id: str, meeting_id: str | None = None, suffix: str = "") -> str:
    path = f"/users/{quote(organizer_id, safe='')}/onlineMeetings"
    if meeting_id is not None:
        if not meeting_id or not meeting_id.strip():
            raise MeetingRuleError("the meeting id is empty", remedy="Give the meeting's id.")
        path += f"/{quote(meeting_id, safe='=')}"
    return path + suffix


class MeetingOps:
    """Each public operation as a generator of :class:`~meetgate.graph.ops.Op` (see ``ops.py``)."""

    def __init__(self, cache: UserIdCache) -> None:
        self.cache = cache

    def _organizer_id(self, organizer: str) -> Operation[str]:
        return (yield from resolve_user_id_op(self.cache, organizer, as_organizer=True))

    def _call(self, organizer: str, op: Op, organizer_id: str) -> Operation[Any]:
        try:
            return (yield op)
        except OrganizerNotFound:
            if organizer != organizer_id:
                self.cache.forget(organizer)  # a stale UPN -> id mapping must not stick
            raise

    def _ctx(
        self, operation: str, organizer: str, meeting_id: str | None = None, write: bool = True
    ) -> GraphCallContext:
        return GraphCallContext(
            operation=operation,
            organizer=organizer,
            meeting_id=meeting_id,
            required_roles=WRITE_ROLES if write else READ_ROLES,
        )

    def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest, allow_past: bool = False
    ) -> Operation[CreateOrGetResult]:
        check_external_id(external_id)
        body = create_body(request, external_id, allow_past=allow_past)
        organizer_id = yield from self._organizer_id(organizer)
        response: GraphResponse = yield from self._call(
            organizer,
            Op(
                "POST",
                _meetings_path(organizer_id, suffix="/createOrGet"),
                json=body,
                headers=PREFER,
                safe=True,  # keyed by externalId: a repeat returns the same meeting
                context=self._ctx("create a meeting", organizer),
                full=True,
            ),
            organizer_id,
        )
        meeting = OnlineMeeting.from_graph(response.body)
        settings = settings_body(request, meeting)
        if settings:
            data = yield Op(
                "PATCH",
                _meetings_path(organizer_id, meeting.id),
                json=settings,
                headers=PREFER,
                context=self._ctx("apply the meeting options", organizer, meeting.id),
            )
            if isinstance(data, dict):
                meeting = OnlineMeeting.from_graph(data)
        return CreateOrGetResult(meeting=meeting, created=response.status == 201)

    def create(
        self, organizer: str, request: MeetingRequest, external_id: str | None, allow_past: bool = False
    ) -> Operation[OnlineMeeting]:
        result = yield from self.create_or_get(
            organizer, external_id or new_external_id(), request, allow_past
        )
        return result.meeting

    def get(self, organizer: str, meeting_id: str) -> Operation[OnlineMeeting]:
        organizer_id = yield from self._organizer_id(organizer)
        data = yield from self._call(
            organizer,
            Op(
                "GET",
                _meetings_path(organizer_id, meeting_id),
                headers=PREFER,
                context=self._ctx(f"get meeting {meeting_id}", organizer, meeting_id, write=False),
            ),
            organizer_id,
        )
        return OnlineMeeting.from_graph(data)

    def _find(self, organizer: str, filter: str, what: str) -> Operation[OnlineMeeting | None]:
        organizer_id = yield from self._organizer_id(organizer)
        data = yield from self._call(
            organizer,
            Op(
                "GET",
                _meetings_path(organizer_id),
                params={"$filter": filter},
                headers=PREFER,
                context=self._ctx(f"find the meeting by {what}", organizer, write=False),
            ),
            organizer_id,
        )
        items = data.get("value", []) if isinstance(data, dict) else []
        return OnlineMeeting.from_graph(items[0]) if items else None

    def find_by_join_url(self, organizer: str, join_url: str) -> Operation[OnlineMeeting | None]:
        url = check_join_url(join_url).replace("'", "''")
        return (yield from self._find(organizer, f"JoinWebUrl eq '{url}'", "join URL"))

    def find_by_meeting_id(self, organizer: str, join_meeting_id: str) -> Operation[OnlineMeeting | None]:
        digits = check_join_meeting_id(join_meeting_id)
        return (
            yield from self._find(
                organizer, f"joinMeetingIdSettings/joinMeetingId eq '{digits}'", "meeting ID"
            )
        )

    def update(
        self, organizer: str, meeting_id: str, changes: MeetingUpdate, allow_past: bool = False
    ) -> Operation[OnlineMeeting]:
        # rules first: nothing is sent for a request Graph (or the meeting rules) would refuse
        update_body(changes, allow_past=allow_past)
        organizer_id = yield from self._organizer_id(organizer)
        current = None
        if lobby_needs_current(changes):
            current = yield from self.get(organizer, meeting_id)
        body = update_body(changes, current, allow_past=True)  # checked above, clock unread again
        if not body:
            assert current is not None
            return current
        return (yield from self._patch(organizer, organizer_id, meeting_id, body, "update"))

    def _patch(
        self, organizer: str, organizer_id: str, meeting_id: str, body: dict[str, Any], verb: str
    ) -> Operation[OnlineMeeting]:
        """PATCH a meeting and return it: from the answer, or read again when the answer has no meeting."""
        data = yield from self._call(
            organizer,
            Op(
                "PATCH",
                _meetings_path(organizer_id, meeting_id),
                json=body,
                headers=PREFER,
                context=self._ctx(f"{verb} meeting {meeting_id}", organizer, meeting_id),
            ),
            organizer_id,
        )
        if isinstance(data, dict) and data.get("id"):
            return OnlineMeeting.from_graph(data)
        return (yield from self.get(organizer, meeting_id))

    def reschedule(
        self,
        organizer: str,
        meeting_id: str,
        start: dt.datetime,
        end: dt.datetime | None,
        allow_past: bool = False,
    ) -> Operation[OnlineMeeting]:
        check_time(start, "start")
        check_times(start, None, allow_past=allow_past)  # before the read of the current times
        if end is None:
            current = yield from self.get(organizer, meeting_id)
            if current.start is None or current.end is None:
                raise MeetingRuleError(
                    "the meeting has no stored times to keep the duration of", remedy="Give an end too."
                )
            end = start + (current.end - current.start)
        changes = MeetingUpdate(start=start, end=end)
        return (yield from self.update(organizer, meeting_id, changes, allow_past))

    def delete(self, organizer: str, meeting_id: str) -> Operation[None]:
        organizer_id = yield from self._organizer_id(organizer)
        yield from self._call(
            organizer,
            Op(
                "DELETE",
                _meetings_path(organizer_id, meeting_id),
                context=self._ctx(f"delete meeting {meeting_id}", organizer, meeting_id),
            ),
            organizer_id,
        )
        return None

    def cancel(self, organizer: str, meeting_id: str, mode: str) -> Operation[OnlineMeeting | None]:
        if mode == "delete":
            yield from self.delete(organizer, meeting_id)
            return None
        if mode != "lock":
            raise MeetingRuleError(f"unknown cancel mode {mode!r}", remedy="Use 'delete' or 'lock'.")
        organizer_id = yield from self._organizer_id(organizer)
        return (yield from self._patch(organizer, organizer_id, meeting_id, LOCKED_SETTINGS, "lock"))

    def attendance_reports(
        self, organizer: str, meeting_id: str, with_records: bool
    ) -> Operation[list[AttendanceReport]]:
        organizer_id = yield from self._organizer_id(organizer)
        ctx = GraphCallContext(
            operation=f"read attendance of meeting {meeting_id}",
            organizer=organizer,
            meeting_id=meeting_id,
            required_roles=ATTENDANCE_ROLES,
        )
        data = yield from self._call(
            organizer,
            Op("GET", _meetings_path(organizer_id, meeting_id, "/attendanceReports"), context=ctx),
            organizer_id,
        )
        reports = [
            AttendanceReport.model_validate(item)
            for item in (data.get("value", []) if isinstance(data, dict) else [])
        ]
        if not with_records:
            return reports
        detailed = []
        for report in reports:
            full = yield Op(
                "GET",
                _meetings_path(organizer_id, meeting_id, f"/attendanceReports/{quote(report.id, safe='')}"),
                params={"$expand": "attendanceRecords"},
                context=ctx,
            )
            detailed.append(AttendanceReport.model_validate(full))
        return detailed


class MeetingsService:
    """Online meetings of approved organizers, synchronously. Organizer: object id or UPN."""

    def __init__(self, http: GraphHttp, cache: UserIdCache | None = None) -> None:
        self._http = http
        self._ops = MeetingOps(cache if cache is not None else UserIdCache())

    def create(
        self,
        organizer: str,
        request: MeetingRequest,
        *,
        external_id: str | None = None,
        allow_past: bool = False,
    ) -> OnlineMeeting:
        """Create a meeting, safely: createOrGet keyed by ``external_id`` (generated when None).
        A start in the past is refused (:class:`MeetingRuleError`) unless ``allow_past``."""
        return run_sync(self._http, self._ops.create(organizer, request, external_id, allow_past))

    def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest, *, allow_past: bool = False
    ) -> CreateOrGetResult:
        """The meeting keyed by ``external_id``: created (``created=True``) or the one made before."""
        return run_sync(self._http, self._ops.create_or_get(organizer, external_id, request, allow_past))

    def get(self, organizer: str, meeting_id: str) -> OnlineMeeting:
        return run_sync(self._http, self._ops.get(organizer, meeting_id))

    def find_by_join_url(self, organizer: str, join_url: str) -> OnlineMeeting | None:
        return run_sync(self._http, self._ops.find_by_join_url(organizer, join_url))

    def find_by_meeting_id(self, organizer: str, join_meeting_id: str) -> OnlineMeeting | None:
        return run_sync(self._http, self._ops.find_by_meeting_id(organizer, join_meeting_id))

    def update(
        self, organizer: str, meeting_id: str, changes: MeetingUpdate, *, allow_past: bool = False
    ) -> OnlineMeeting:
        """Change a meeting; a new start in the past is refused unless ``allow_past``."""
        return run_sync(self._http, self._ops.update(organizer, meeting_id, changes, allow_past))

    def reschedule(
        self,
        organizer: str,
        meeting_id: str,
        start: dt.datetime,
        end: dt.datetime | None = None,
        *,
        allow_past: bool = False,
    ) -> OnlineMeeting:
        """Move a meeting; without ``end`` the current duration is kept."""
        return run_sync(self._http, self._ops.reschedule(organizer, meeting_id, start, end, allow_past))

    def delete(self, organizer: str, meeting_id: str) -> None:
        run_sync(self._http, self._ops.delete(organizer, meeting_id))

    def cancel(self, organizer: str, meeting_id: str, *, mode: CancelMode = "delete") -> OnlineMeeting | None:
        """Delete the meeting, or (``mode="lock"``) keep it but let nobody in but the organizer."""
        return run_sync(self._http, self._ops.cancel(organizer, meeting_id, mode))

    def attendance_reports(
        self, organizer: str, meeting_id: str, *, with_records: bool = False
    ) -> list[AttendanceReport]:
        return run_sync(self._http, self._ops.attendance_reports(organizer, meeting_id, with_records))


class AsyncMeetingsService:
    """Online meetings of approved organizers, asynchronously (same operations)."""

    def __init__(self, http: AsyncGraphHttp, cache: UserIdCache | None = None) -> None:
        self._http = http
        self._ops = MeetingOps(cache if cache is not None else UserIdCache())

    async def create(
        self,
        organizer: str,
        request: MeetingRequest,
        *,
        external_id: str | None = None,
        allow_past: bool = False,
    ) -> OnlineMeeting:
        return await run_async(self._http, self._ops.create(organizer, request, external_id, allow_past))

    async def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest, *, allow_past: bool = False
    ) -> CreateOrGetResult:
        return await run_async(
            self._http, self._ops.create_or_get(organizer, external_id, request, allow_past)
        )

    async def get(self, organizer: str, meeting_id: str) -> OnlineMeeting:
        return await run_async(self._http, self._ops.get(organizer, meeting_id))

    async def find_by_join_url(self, organizer: str, join_url: str) -> OnlineMeeting | None:
        return await run_async(self._http, self._ops.find_by_join_url(organizer, join_url))

    async def find_by_meeting_id(self, organizer: str, join_meeting_id: str) -> OnlineMeeting | None:
        return await run_async(self._http, self._ops.find_by_meeting_id(organizer, join_meeting_id))

    async def update(
        self, organizer: str, meeting_id: str, changes: MeetingUpdate, *, allow_past: bool = False
    ) -> OnlineMeeting:
        return await run_async(self._http, self._ops.update(organizer, meeting_id, changes, allow_past))

    async def reschedule(
        self,
        organizer: str,
        meeting_id: str,
        start: dt.datetime,
        end: dt.datetime | None = None,
        *,
        allow_past: bool = False,
    ) -> OnlineMeeting:
        return await run_async(
            self._http, self._ops.reschedule(organizer, meeting_id, start, end, allow_past)
        )

    async def delete(self, organizer: str, meeting_id: str) -> None:
        await run_async(self._http, self._ops.delete(organizer, meeting_id))

    async def cancel(
        self, organizer: str, meeting_id: str, *, mode: CancelMode = "delete"
    ) -> OnlineMeeting | None:
        return await run_async(self._http, self._ops.cancel(organizer, meeting_id, mode))

    async def attendance_reports(
        self, organizer: str, meeting_id: str, *, with_records: bool = False
    ) -> list[AttendanceReport]:
        return await run_async(self._http, self._ops.attendance_reports(organizer, meeting_id, with_records))
