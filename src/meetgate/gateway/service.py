"""The gateway's use cases, free of HTTP: authenticate, govern, call Graph, remember, audit facts.

Each method fills a :class:`CallContext` (who, for whom, what Graph said) that the HTTP layer turns
into the audit row, the log line and the metrics. Failures are raised as :class:`Problem`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from anyio import to_thread

from meetgate.gateway import graph_ids, keys
from meetgate.gateway.artifacts import MeetingArtifacts
from meetgate.gateway.calendar import CalendarMeetings, check_placement_fields, placement_of
from meetgate.gateway.consumers import format_instant
from meetgate.gateway.limits import Limiter, seconds_until_quota_reset
from meetgate.gateway.meeting_shapes import external_id_for, meeting_out, request_hash, snapshot_of
from meetgate.gateway.metrics import GatewayMetrics
from meetgate.gateway.ports import (
    AsyncArtifactsPort,
    AsyncEventsPort,
    AsyncMeetingsPort,
    Attendee,
    MeetingRequest,
    MeetingUpdate,
    OnlineMeeting,
    PolicyScope,
)
from meetgate.gateway.problems import Problem, from_graph_error, is_graph_error
from meetgate.gateway.schemas import MeetingCreate, MeetingOut, MeetingPatch, OccurrenceOut
from meetgate.gateway.scope import CachedPolicyScope
from meetgate.gateway.settings import GatewaySettings
from meetgate.gateway.webhooks.events import WebhookPublisher
from meetgate.graph.errors import MeetingRuleError
from meetgate.graph.ics import meeting_cancellation_ics, meeting_invitation_ics
from meetgate.store import ConsumerNotFound, ConsumerRecord, MeetingRecord, Store

T = TypeVar("T")


@dataclass
class CallContext:
    request_id: str
    client_ip: str | None = None
    action: str = "unknown"
    consumer: ConsumerRecord | None = None
    organizer: str | None = None
    meeting_id: str | None = None
    graph_status: int | None = None
    graph_request_id: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _unauthenticated(
    detail: str, *, remedy: str | None = None, extra: dict[str, Any] | None = None
) -> Problem:
    """A 401 names the scheme to authenticate with (RFC 9110: a 401 carries WWW-Authenticate)."""
    return Problem(
        "unauthenticated",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="meetgate"'},
        remedy=remedy,
        extra=extra or {},
    )


def _call_status(problem: Problem) -> str:
    """The ``status`` label of a failed Graph call: Graph's HTTP status; ``auth`` when the gateway's own
    credentials failed before Graph answered (no token: certificate removed or expired, app unknown);
    ``identity`` when Entra's token service kept failing (no token, through no fault of the gateway's);
    ``error`` when there was no answer at all."""
    if problem.slug == "identity-unavailable":
        return "identity"
    if problem.graph_status:
        return str(problem.graph_status)
    return "auth" if problem.slug == "graph-auth-failed" else "error"


@dataclass(frozen=True)
class _Stored:
    record: MeetingRecord
    created: bool


@dataclass(frozen=True)
class Created:
    meeting: MeetingOut
    created: bool


class GatewayService:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        store: Store,
        meetings: AsyncMeetingsPort,
        scope: PolicyScope,
        limiter: Limiter,
        metrics: GatewayMetrics,
        events: AsyncEventsPort | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        graph_pause: Callable[[], float] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        publisher: WebhookPublisher | None = None,
        artifacts: AsyncArtifactsPort | None = None,
    ) -> None:
        self.settings = settings
        #: the webhook outbox: meeting.updated / meeting.cancelled go through it (None: no webhooks)
        self.publisher = publisher
        #: UTC now, for keys' expiry
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        #: seconds Graph has asked this app to stop calling (a 429's Retry-After, over all replicas)
        self.graph_pause = graph_pause
        self.store = store
        self.meetings = meetings
        self.scope = scope
        self.limiter = limiter
        self.metrics = metrics
        self.sleep = sleep
        self._inflight: dict[str, asyncio.Future[MeetingRecord]] = {}
        #: calendar-backed meetings and series (None: standalone meetings only)
        self.calendar = CalendarMeetings(self, events)
        #: attendance, transcripts and recordings of the consumers' meetings (the kinds enabled)
        self.artifacts = MeetingArtifacts(self, artifacts)

    async def _db(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """A store call: inline for SQLite (sub-millisecond, one writer: no thread hand-offs to
        contend), in a worker thread for a database across the network."""
        if self.store.inline:
            return fn(**kwargs)
        return await to_thread.run_sync(lambda: fn(**kwargs))

    async def _in_scope(self, organizer: str) -> bool:
        cached = self.scope.cached(organizer) if isinstance(self.scope, CachedPolicyScope) else None
        if cached is not None:
            return cached
        return await to_thread.run_sync(self.scope.contains, organizer)

    # ---- governance
    async def authenticate(self, api_key: str | None, ctx: CallContext) -> ConsumerRecord:
        parsed = keys.parse(api_key) if api_key else None
        if parsed is None:
            raise _unauthenticated("no API key, or not a meetgate API key")
        key_id, secret = parsed
        record = await self._db(self.store.consumer_by_key_id, key_id=key_id)
        if record is None:
            await self._refuse_retired(key_id, secret, ctx)
        if not keys.verify(key_id, secret, record.key_hash if record else None) or record is None:
            raise _unauthenticated("the API key is not known")
        # the key is genuine from here on: a refusal names its consumer in the audit row, so an
        # app that keeps calling with a revoked or expired key can be found (an unknown key names nobody)
        ctx.consumer = record
        if not record.active:
            raise _unauthenticated("the API key was revoked")
        if record.key_expires_at is not None and record.key_expired(self.clock()):
            raise _unauthenticated(
                f"the API key expired on {format_instant(record.key_expires_at)}",
                remedy="ask the gateway operator for a new key (they issue it with "
                "`meetgate consumers rotate-key`)",
                extra={"keyExpiredAt": record.key_expires_at.isoformat()},
            )
        rate = record.rate_per_minute or self.settings.default_consumer_rate_per_minute
        slot = await self.limiter.acquire(f"c:{record.id}", per_second=rate / 60.0, burst=rate)
        if not slot.allowed:
            self.metrics.throttled.labels("consumer-rate").inc()
            raise Problem(
                "rate-limited",
                f"this consumer may make {rate} requests per minute",
                headers={"Retry-After": str(max(1, round(slot.wait + 0.5)))},
            )
        return record

    async def _refuse_retired(self, key_id: str, secret: str, ctx: CallContext) -> None:
        """Refuse a key that a rotation replaced, saying so and when (only to its holder: the
        secret must match the retired key's hash); return when it is no such key."""
        retired = await self._db(self.store.retired_key, key_id=key_id)
        if retired is None or not keys.verify(key_id, secret, retired.key_hash):
            return
        with contextlib.suppress(ConsumerNotFound):
            ctx.consumer = await self._db(self.store.consumer, name_or_id=retired.consumer_id)
        raise _unauthenticated(
            f"the API key was rotated on {format_instant(retired.retired_at)}: a new key replaced it",
            remedy="use the new key the gateway operator issued at the rotation; ask them for it",
            extra={"keyRotatedAt": retired.retired_at.isoformat()},
        )

    async def _organizer(self, consumer: ConsumerRecord, organizer: str, ctx: CallContext) -> str:
        org = organizer.strip().lower()
        ctx.organizer = org
        if org not in {o.lower() for o in consumer.organizers}:
            raise Problem("organizer-not-allowed", f"this consumer may not act for {organizer}")
        if not await self._in_scope(org):
            raise Problem(
                "organizer-outside-policy", f"{organizer} is not granted the application access policy"
            )
        rate = self.settings.organizer_rate_per_minute
        if rate:
            slot = await self.limiter.acquire(f"o:{org}", per_second=rate / 60.0, burst=rate)
            if not slot.allowed:
                self.metrics.throttled.labels("organizer-rate").inc()
                raise Problem(
                    "rate-limited",
                    f"at most {rate} requests per minute for one organizer",
                    headers={"Retry-After": str(max(1, round(slot.wait + 0.5)))},
                )
        return org

    async def _quota(self, consumer: ConsumerRecord, org: str) -> None:
        taken: list[str] = []
        limits = [
            (f"c:{consumer.id}", consumer.daily_quota, "consumer"),
            (f"o:{org}", self.settings.organizer_daily_quota, "organizer"),
        ]
        for key, limit, label in limits:
            if not limit:
                continue
            use = await self.limiter.consume(key, limit=limit)
            if not use.allowed:
                for done in taken:
                    await self.limiter.refund(done)
                self.metrics.throttled.labels(f"{label}-quota").inc()
                raise Problem(
                    "quota-exceeded",
                    f"the {label}'s daily quota of {limit} meetings is used up",
                    headers={"Retry-After": str(seconds_until_quota_reset())},
                )
            taken.append(key)

    async def _graph(self, operation: str, ctx: CallContext, call: Callable[[], Awaitable[T]]) -> T:
        paused = self.graph_pause() if self.graph_pause is not None else 0.0
        if paused > self.settings.graph_max_wait_seconds:
            # the Graph client would hold the request until the pause ends: answer now instead
            self.metrics.throttled.labels("graph").inc()
            raise Problem(
                "graph-throttled",
                "Graph asked this app to pause its calls",
                headers={"Retry-After": str(math.ceil(paused))},
            )
        if self.settings.graph_rate_per_second:
            slot = await self.limiter.acquire(
                "graph",
                per_second=self.settings.graph_rate_per_second,
                burst=self.settings.graph_burst,
                max_wait=self.settings.graph_max_wait_seconds,
            )
            if not slot.allowed:
                self.metrics.throttled.labels("graph-client-limit").inc()
                raise Problem(
                    "graph-throttled",
                    "the gateway is holding back calls to Graph to stay under its limits",
                    headers={"Retry-After": str(max(1, round(slot.wait + 0.5)))},
                )
            if slot.wait > 0:
                self.metrics.graph_waits.inc()
                await self.sleep(slot.wait)
        started = time.perf_counter()
        try:
            with graph_ids.collecting() as answered:
                result = await call()
        except Exception as exc:
            if not is_graph_error(exc):
                raise
            problem = from_graph_error(exc)
            ctx.graph_status = problem.graph_status
            ctx.graph_request_id = problem.graph_request_id
            ctx.notes["graph_error"] = type(exc).__name__
            # for the operator's log line (consumers get only the problem: see from_graph_error)
            ctx.notes["graph_error_message"] = str(getattr(exc, "message", None) or exc)[:500]
            self.metrics.graph_calls.labels(operation, _call_status(problem)).inc()
            if problem.slug == "graph-throttled":
                self.metrics.throttled.labels("graph").inc()
            raise problem from None
        finally:
            self.metrics.labelled(self.metrics.graph_latency, operation).observe(
                time.perf_counter() - started
            )
        ctx.graph_status = 200
        ctx.graph_request_id = answered[-1] if answered else None  # the answer that counted
        self.metrics.labelled(self.metrics.graph_calls, operation, "ok").inc()
        return result

    # ---- meetings
    async def create(
        self, consumer: ConsumerRecord, body: MeetingCreate, idempotency_key: str, ctx: CallContext
    ) -> Created:
        ctx.action = "meeting.create"
        placement = placement_of(body, consumer)
        check_placement_fields(body, placement)
        if placement == "calendar":
            self.calendar.port()
        org = await self._organizer(consumer, body.organizer, ctx)
        digest = request_hash(body)
        external_id = external_id_for(consumer.id, idempotency_key)
        record, new = await self._reserve(consumer, org, idempotency_key, digest, external_id, placement)
        ctx.meeting_id = record.id
        if record.request_hash != digest:
            raise Problem(
                "idempotency-conflict",
                "this Idempotency-Key was used for a different request",
                extra={"meetingId": record.id},
            )
        if not new and record.state == "pending":
            record = await self._await_pending(record)
        if not new and record.state not in ("pending", "failed"):
            self.metrics.labelled(self.metrics.idempotent_replays, consumer.name).inc()
            return Created(meeting_out(record), created=False)
        # this request creates (or, after a replica died, takes over the creation): createOrGet with
        # the derived externalId makes a second call for the same key return the same meeting
        inflight: asyncio.Future[MeetingRecord] = asyncio.get_running_loop().create_future()
        self._inflight[record.id] = inflight
        try:
            created = await self._create_in_graph(consumer, body, org, external_id, record, ctx)
        except BaseException:
            inflight.cancel()
            with contextlib.suppress(Exception):  # let the next retry take over without waiting
                await self._db(self.store.save_meeting, meeting_id=record.id, state="failed", snapshot=None)
            raise
        finally:
            self._inflight.pop(record.id, None)
        inflight.set_result(created.record)
        return Created(meeting_out(created.record), created=created.created)

    async def _await_pending(self, record: MeetingRecord) -> MeetingRecord:
        """Another request is creating this meeting: wait for it (same process: its future; another
        replica: poll the store) for up to ``pending_wait_seconds``, then take over."""
        inflight = self._inflight.get(record.id)
        if inflight is not None:
            try:
                return await asyncio.wait_for(asyncio.shield(inflight), self.settings.pending_wait_seconds)
            except (asyncio.CancelledError, TimeoutError):
                return record
        deadline = time.monotonic() + self.settings.pending_wait_seconds
        while time.monotonic() < deadline:
            await self.sleep(0.1)
            current = await self._db(self.store.meeting, consumer_id=record.consumer_id, meeting_id=record.id)
            if current is not None and current.state != "pending":
                return current
        return record

    async def _create_in_graph(
        self,
        consumer: ConsumerRecord,
        body: MeetingCreate,
        org: str,
        external_id: str,
        record: MeetingRecord,
        ctx: CallContext,
    ) -> _Stored:
        if record.placement == "calendar":  # as reserved: a takeover makes what the first attempt began
            saved, created = await self.calendar.create(body, org, external_id, record, ctx)
            self._count_creation(consumer, created)
            return _Stored(saved, created)
        request = MeetingRequest(
            subject=body.subject,
            start=body.start,
            end=body.end,
            attendees=[Attendee(upn=a.upn, role=a.role) for a in body.attendees],
            lobby_bypass_scope=body.lobby_bypass_scope,
            dial_in_bypass=body.dial_in_bypass,
            allowed_presenters=body.allowed_presenters,
            allow_meeting_chat=body.allow_meeting_chat,
        )
        result = await self._graph(
            "create_or_get",
            ctx,
            lambda: self.meetings.create_or_get(org, external_id, request, allow_past=body.allow_past),
        )
        saved = await self._db(
            self.store.save_meeting,
            meeting_id=record.id,
            state="active",
            snapshot=snapshot_of(result.meeting),
            graph_meeting_id=result.meeting.id,
            join_url=result.meeting.join_web_url,
        )
        self._count_creation(consumer, result.created)
        return _Stored(saved, result.created)

    def _count_creation(self, consumer: ConsumerRecord, created: bool) -> None:
        if created:
            self.metrics.labelled(self.metrics.meetings_created, consumer.name).inc()
        else:
            self.metrics.labelled(self.metrics.idempotent_replays, consumer.name).inc()

    async def _reserve(
        self,
        consumer: ConsumerRecord,
        org: str,
        key: str,
        digest: str,
        external_id: str,
        placement: str = "standalone",
    ) -> tuple[MeetingRecord, bool]:
        """Reserve consumer + key; quota is taken first and given back when the key existed already."""
        try:
            await self._quota(consumer, org)
        except Problem:
            existing = await self._db(self.store.meeting_by_key, consumer_id=consumer.id, idempotency_key=key)
            if existing is None:
                raise
            return existing, False  # a replay is never refused for quota
        record, new = await self._db(
            self.store.reserve_meeting,
            consumer_id=consumer.id,
            idempotency_key=key,
            request_hash=digest,
            organizer=org,
            external_id=external_id,
            placement=placement,
        )
        if not new:  # a replay, or another request with this key won the race: give the quota back
            for k, limit in (
                (f"c:{consumer.id}", consumer.daily_quota),
                (f"o:{org}", self.settings.organizer_daily_quota),
            ):
                if limit:
                    await self.limiter.refund(k)
        return record, new

    async def _owned(self, consumer: ConsumerRecord, meeting_id: str, ctx: CallContext) -> MeetingRecord:
        ctx.meeting_id = meeting_id
        record = await self._db(self.store.meeting, consumer_id=consumer.id, meeting_id=meeting_id)
        if record is None:
            raise Problem("not-found", "this consumer has no meeting with that id")
        ctx.organizer = record.organizer
        return record

    async def _refresh(
        self, consumer: ConsumerRecord, record: MeetingRecord, ctx: CallContext
    ) -> MeetingRecord:
        if record.placement == "calendar":
            return await self.calendar.refresh(consumer, record, ctx)
        if record.state in ("pending", "failed", "cancelled") or record.graph_meeting_id is None:
            return record
        org = await self._organizer(consumer, record.organizer, ctx)
        graph_id = record.graph_meeting_id
        meeting = await self._graph("get", ctx, lambda: self.meetings.get(org, graph_id))
        return await self._db(
            self.store.save_meeting,
            meeting_id=record.id,
            state=record.state,
            snapshot=snapshot_of(meeting),
            join_url=meeting.join_web_url,
        )

    async def get(self, consumer: ConsumerRecord, meeting_id: str, ctx: CallContext) -> MeetingOut:
        ctx.action = "meeting.get"
        record = await self._owned(consumer, meeting_id, ctx)
        return meeting_out(await self._refresh(consumer, record, ctx))

    async def find_by_join_url(self, consumer: ConsumerRecord, join_url: str, ctx: CallContext) -> MeetingOut:
        ctx.action = "meeting.find"
        join_url = join_url.strip()  # a pasted URL often comes with a space or line break around it
        record = await self._db(self.store.meeting_by_join_url, consumer_id=consumer.id, join_url=join_url)
        if record is None:
            raise Problem("not-found", "this consumer has no meeting with that join URL")
        ctx.meeting_id = record.id
        ctx.organizer = record.organizer
        return meeting_out(await self._refresh(consumer, record, ctx))

    async def _publish(self, consumer: ConsumerRecord, type: str, meeting: MeetingOut) -> None:
        """Put ``type`` about ``meeting`` in the webhook outbox, before the request is answered."""
        if self.publisher is None:
            return
        data = {
            "state": meeting.state,
            "placement": meeting.placement,
            "subject": meeting.subject,
            "start": meeting.start.isoformat() if meeting.start else None,
            "end": meeting.end.isoformat() if meeting.end else None,
        }
        await self._db(
            self.publisher.publish_event, consumer=consumer.id, type=type, meeting=meeting.id, data=data
        )

    async def occurrence_changed(
        self, consumer: ConsumerRecord, meeting_id: str, occurrence: OccurrenceOut
    ) -> None:
        """One occurrence of a series was changed or cancelled: ``meeting.updated`` about the series,
        with the occurrence in ``data.occurrence``."""
        if self.publisher is None:
            return
        data = {
            "occurrence": {
                "id": occurrence.id,
                "cancelled": occurrence.cancelled,
                "subject": occurrence.subject,
                "start": occurrence.start.isoformat() if occurrence.start else None,
                "end": occurrence.end.isoformat() if occurrence.end else None,
            }
        }
        await self._db(
            self.publisher.publish_event,
            consumer=consumer.id,
            type="meeting.updated",
            meeting=meeting_id,
            data=data,
        )

    async def update(
        self, consumer: ConsumerRecord, meeting_id: str, patch: MeetingPatch, ctx: CallContext
    ) -> MeetingOut:
        """Change the meeting; its consumer's endpoints get ``meeting.updated``."""
        changed = await self._update(consumer, meeting_id, patch, ctx)
        await self._publish(consumer, "meeting.updated", changed)
        return changed

    async def _update(
        self, consumer: ConsumerRecord, meeting_id: str, patch: MeetingPatch, ctx: CallContext
    ) -> MeetingOut:
        ctx.action = "meeting.update"
        record = await self._owned(consumer, meeting_id, ctx)
        if record.state == "cancelled":
            raise Problem("meeting-gone", "the meeting was cancelled")
        check_placement_fields(patch, record.placement)
        if record.placement == "calendar":
            return await self.calendar.update(consumer, record, patch, ctx)
        if record.graph_meeting_id is None:
            raise Problem("not-found", "the meeting is still being created; retry its creation first")
        org = await self._organizer(consumer, record.organizer, ctx)
        changes = MeetingUpdate(
            subject=patch.subject,
            start=patch.start,
            end=patch.end,
            attendees=None
            if patch.attendees is None
            else [Attendee(upn=a.upn, role=a.role) for a in patch.attendees],
            lobby_bypass_scope=patch.lobby_bypass_scope,
            dial_in_bypass=patch.dial_in_bypass,
            allowed_presenters=patch.allowed_presenters,
            allow_meeting_chat=patch.allow_meeting_chat,
        )
        graph_id = record.graph_meeting_id
        meeting = await self._graph(
            "update",
            ctx,
            lambda: self.meetings.update(org, graph_id, changes, allow_past=patch.allow_past),
        )
        saved = await self._db(
            self.store.save_meeting,
            meeting_id=record.id,
            state=record.state,
            snapshot=snapshot_of(meeting),
            join_url=meeting.join_web_url,
            revise=True,
        )
        return meeting_out(saved)

    async def cancel(
        self,
        consumer: ConsumerRecord,
        meeting_id: str,
        mode: Literal["delete", "lock"],
        ctx: CallContext,
        message: str | None = None,
    ) -> MeetingOut:
        """Cancel or lock the meeting; its consumer's endpoints get ``meeting.cancelled`` (a lock:
        ``meeting.updated``), once: cancelling again changes nothing and publishes nothing."""
        ctx.notes.pop("already", None)
        done = await self._cancel(consumer, meeting_id, mode, ctx, message)
        if not ctx.notes.pop("already", False):
            await self._publish(
                consumer, "meeting.cancelled" if mode == "delete" else "meeting.updated", done
            )
        return done

    async def _cancel(
        self,
        consumer: ConsumerRecord,
        meeting_id: str,
        mode: Literal["delete", "lock"],
        ctx: CallContext,
        message: str | None = None,
    ) -> MeetingOut:
        """Cancel (``delete``) or lock a meeting; a calendar meeting or series is cancelled with
        ``message`` to its attendees (standalone meetings take no message: Exchange sends nothing)."""
        ctx.action = f"meeting.cancel.{mode}"
        record = await self._owned(consumer, meeting_id, ctx)
        if record.placement == "calendar" and mode == "lock":
            raise Problem(
                "not-for-placement",
                "a calendar meeting cannot be locked through the gateway",
                remedy="cancel it (DELETE, or POST /v1/meetings/{id}/cancel with a message to the attendees)",
            )
        if record.placement != "calendar" and message is not None:
            raise Problem(
                "not-for-placement",
                "a standalone meeting's cancellation carries no message: nobody was invited by Exchange",
                remedy="leave the message out, and send the attendees the cancellation from "
                "/v1/meetings/{id}/invite.ics",
            )
        if record.state == "cancelled" or (record.state == "locked" and mode == "lock"):
            ctx.notes["already"] = True
            return meeting_out(record)  # cancelling twice is not an error
        if record.placement == "calendar":
            if record.graph_event_id is None:
                raise Problem("not-found", "the meeting is still being created; retry its creation first")
            org = await self._organizer(consumer, record.organizer, ctx)
            return await self.calendar.cancel(record, org, message, ctx)
        if record.graph_meeting_id is None:
            raise Problem("not-found", "the meeting is still being created; retry its creation first")
        org = await self._organizer(consumer, record.organizer, ctx)
        graph_id = record.graph_meeting_id
        try:
            locked = await self._graph("cancel", ctx, lambda: self.meetings.cancel(org, graph_id, mode=mode))
        except Problem:
            if mode != "delete" or ctx.notes.get("graph_error") != "MeetingNotFound":
                raise
            # deleted in Teams already (by the organizer, or an answer lost on the way): what the
            # consumer asked for is done, and the meeting is recorded as cancelled
            locked = None
        saved = await self._db(
            self.store.save_meeting,
            meeting_id=record.id,
            state="cancelled" if mode == "delete" else "locked",
            snapshot=snapshot_of(locked) if locked is not None else record.snapshot,
            revise=True,
        )
        return meeting_out(saved)

    async def invite(self, consumer: ConsumerRecord, meeting_id: str, ctx: CallContext) -> str:
        """The meeting's iCalendar invitation (a cancellation once cancelled); its SEQUENCE is the
        meeting's revision, so calendars take a rescheduled or cancelled meeting's as newer."""
        ctx.action = "meeting.invite"
        owned = await self._owned(consumer, meeting_id, ctx)
        if owned.placement == "calendar":
            raise Problem(
                "not-for-placement",
                "Exchange sends a calendar meeting's invitations (and their updates) to its attendees",
                remedy="give attendees in the meeting's attendees list; web_link opens the event in Outlook",
            )
        record = await self._refresh(consumer, owned, ctx)
        meeting = meeting_out(record)
        if meeting.start is None or meeting.end is None:
            raise Problem(
                "not-found",
                "the meeting has no times yet (still being created)",
                remedy="retry its creation with the same Idempotency-Key first, then ask for the invitation",
            )
        organizer = str((record.snapshot or {}).get("organizer_upn") or meeting.organizer)
        invitation = OnlineMeeting(
            id=meeting.graph_meeting_id or meeting.id,
            join_web_url=meeting.join_url,
            subject=meeting.subject,
            start=meeting.start,
            end=meeting.end,
            join_meeting_id=meeting.join_meeting_id,
            passcode=meeting.passcode,
            attendees=[Attendee(upn=a.upn, role=a.role) for a in meeting.attendees],
        )
        write = meeting_cancellation_ics if meeting.state == "cancelled" else meeting_invitation_ics
        try:
            # the UID is the gateway's meeting id, the same in every version sent (and as before)
            return write(invitation, organizer, sequence=record.revision, uid=f"{meeting.id}@meetgate")
        except MeetingRuleError as exc:  # an organizer known only by object id has no address
            raise from_graph_error(exc) from None
