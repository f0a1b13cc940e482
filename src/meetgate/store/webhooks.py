"""The webhook outbox: consumers' endpoints, events, deliveries and their attempts.

An event is written with one delivery per endpoint that wants it, in one transaction, before the
request that caused it is answered: a restart loses nothing. Workers claim due deliveries with a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that replicas never claim the same one; SQLite is
one process, serialised by the store's write lock). Only the oldest unfinished delivery of an
endpoint can be claimed: an endpoint gets its events in order, even after it was down.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from meetgate.store.repository import Store, _aware, utcnow
from meetgate.store.tables import (
    meetings,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)

#: what a delivery's ``status`` can be
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


def new_id(prefix: str) -> str:
    """A random id with a readable prefix (``whk_``, ``evt_``, ``dlv_``)."""
    return f"{prefix}_{secrets.token_hex(12)}"


def _when(value: Any) -> dt.datetime:
    moment = _aware(value)
    assert moment is not None
    return moment


@dataclass(frozen=True)
class EndpointRecord:
    """A consumer's webhook endpoint; the secrets are encrypted (never shown in reprs)."""

    id: str
    consumer_id: str
    url: str
    events: tuple[str, ...]
    description: str | None
    secret_enc: str
    previous_secret_enc: str | None
    previous_secret_until: dt.datetime | None
    created_at: dt.datetime
    secret_rotated_at: dt.datetime | None
    removed_at: dt.datetime | None

    def __repr__(self) -> str:
        return f"EndpointRecord(id={self.id!r}, consumer_id={self.consumer_id!r}, url={self.url!r})"


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of a delivery."""

    at: dt.datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    ok: bool


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivery of an event to an endpoint, with its attempts when asked for."""

    id: str
    seq: int
    event_id: str
    event_type: str
    meeting_id: str | None
    endpoint_id: str
    status: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    finished_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    replay_of: str | None
    history: tuple[AttemptRecord, ...] = ()


@dataclass(frozen=True)
class Attempted:
    """What one attempt gave: the receiver's status (None: no answer), latency, error, and when the
    next attempt is due (None with ``ok`` False: the delivery fails for good)."""

    delivery_id: str
    at: dt.datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    ok: bool
    next_attempt_at: dt.datetime | None


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery a worker holds the lease of: what it needs to send it."""

    id: str
    seq: int
    event_id: str
    event_type: str
    body: str
    attempts: int
    created_at: dt.datetime
    endpoint: EndpointRecord


def _endpoint(m: Mapping[Any, Any]) -> EndpointRecord:
    return EndpointRecord(
        id=m["id"],
        consumer_id=m["consumer_id"],
        url=m["url"],
        events=tuple(m["events"] or ()),
        description=m["description"],
        secret_enc=m["secret_enc"],
        previous_secret_enc=m["previous_secret_enc"],
        previous_secret_until=_aware(m["previous_secret_until"]),
        created_at=_when(m["created_at"]),
        secret_rotated_at=_aware(m["secret_rotated_at"]),
        removed_at=_aware(m["removed_at"]),
    )


def _delivery(m: Mapping[Any, Any], history: Sequence[AttemptRecord] = ()) -> DeliveryRecord:
    return DeliveryRecord(
        id=m["id"],
        seq=int(m["seq"]),
        event_id=m["event_id"],
        event_type=m["type"],
        meeting_id=m["meeting_id"],
        endpoint_id=m["endpoint_id"],
        status=m["status"],
        attempts=int(m["attempts"]),
        created_at=_when(m["created_at"]),
        next_attempt_at=_when(m["next_attempt_at"]),
        finished_at=_aware(m["finished_at"]),
        last_status_code=m["last_status_code"],
        last_error=m["last_error"],
        replay_of=m["replay_of"],
        history=tuple(history),
    )


e, d, ev, a = webhook_endpoints, webhook_deliveries, webhook_events, webhook_attempts
_DELIVERY_COLUMNS = (*d.c, ev.c.type, ev.c.meeting_id)


class WebhookStore:
    """Endpoints, events and deliveries in the gateway's store (the same engine and write lock)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # ---- endpoints
    def add_endpoint(
        self,
        *,
        consumer_id: str,
        url: str,
        events: Sequence[str],
        secret_enc: str,
        description: str | None = None,
        endpoint_id: str | None = None,
    ) -> EndpointRecord:
        """Store a new endpoint (``endpoint_id``: chosen by the caller, who sealed the secret for it)."""
        values = {
            "id": endpoint_id or new_id("whk"),
            "consumer_id": consumer_id,
            "url": url,
            "events": list(events),
            "description": description,
            "secret_enc": secret_enc,
            "created_at": utcnow(),
        }
        with self.store._tx() as conn:
            conn.execute(e.insert().values(**values))
            row = conn.execute(e.select().where(e.c.id == values["id"])).one()
        return _endpoint(row._mapping)

    def endpoints(
        self, *, consumer_id: str | None = None, include_removed: bool = False
    ) -> list[EndpointRecord]:
        """The endpoints of one consumer (None: every consumer's), oldest first."""
        query = e.select().order_by(e.c.created_at, e.c.id)
        if consumer_id is not None:
            query = query.where(e.c.consumer_id == consumer_id)
        if not include_removed:
            query = query.where(e.c.removed_at.is_(None))
        with self.engine.connect() as conn:
            return [_endpoint(r._mapping) for r in conn.execute(query)]

    def endpoint(self, *, endpoint_id: str, consumer_id: str | None = None) -> EndpointRecord | None:
        """The endpoint (not removed), only when it is ``consumer_id``'s when that is given."""
        query = e.select().where(e.c.id == endpoint_id, e.c.removed_at.is_(None))
        if consumer_id is not None:
            query = query.where(e.c.consumer_id == consumer_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _endpoint(row._mapping) if row else None

    def update_endpoint(self, *, endpoint_id: str, **changes: Any) -> EndpointRecord:
        """Change url, events or description (keys given with a value that is not None)."""
        values = {k: (list(v) if k == "events" else v) for k, v in changes.items() if v is not None}
        with self.store._tx() as conn:
            if values:
                conn.execute(e.update().where(e.c.id == endpoint_id).values(**values))
            row = conn.execute(e.select().where(e.c.id == endpoint_id)).one()
        return _endpoint(row._mapping)

    def rotate_secret(
        self, *, endpoint_id: str, secret_enc: str, previous_secret_enc: str, previous_until: dt.datetime
    ) -> EndpointRecord:
        """The new secret signs from now on; the previous one too, until ``previous_until``."""
        with self.store._tx() as conn:
            conn.execute(
                e.update()
                .where(e.c.id == endpoint_id)
                .values(
                    secret_enc=secret_enc,
                    previous_secret_enc=previous_secret_enc,
                    previous_secret_until=previous_until,
                    secret_rotated_at=utcnow(),
                )
            )
            row = conn.execute(e.select().where(e.c.id == endpoint_id)).one()
        return _endpoint(row._mapping)

    def remove_endpoint(self, *, endpoint_id: str, now: dt.datetime | None = None) -> None:
        """Stop delivering to the endpoint: its unfinished deliveries fail as "endpoint removed"."""
        moment = now or utcnow()
        with self.store._tx() as conn:
            conn.execute(e.update().where(e.c.id == endpoint_id).values(removed_at=moment))
            conn.execute(
                d.update()
                .where(d.c.endpoint_id == endpoint_id, d.c.status == PENDING)
                .values(status=FAILED, finished_at=moment, last_error="endpoint removed", lease_owner=None)
            )

    # ---- events
    def meeting_owner(self, *, meeting_id: str) -> str | None:
        """The consumer whose meeting this is (None: no such meeting)."""
        with self.engine.connect() as conn:
            owner = conn.execute(
                sa.select(meetings.c.consumer_id).where(meetings.c.id == meeting_id)
            ).scalar()
        return str(owner) if owner is not None else None

    def publish(
        self,
        *,
        event_id: str,
        consumer_id: str,
        type: str,
        meeting_id: str | None,
        occurred_at: dt.datetime,
        body: str,
        dedupe_key: str | None = None,
        endpoint_id: str | None = None,
    ) -> tuple[str, list[str]]:
        """Write the event and a delivery to each of the consumer's endpoints that wants ``type``
        (only ``endpoint_id`` when given), in one transaction. Returns the event id and the new
        deliveries' ids; an event with the same ``dedupe_key`` is returned instead of a second."""
        with self.store._tx() as conn:
            if dedupe_key is not None:
                existing = conn.execute(
                    sa.select(ev.c.id).where(ev.c.consumer_id == consumer_id, ev.c.dedupe_key == dedupe_key)
                ).scalar()
                if existing is not None:
                    return str(existing), []
            conn.execute(
                ev.insert().values(
                    id=event_id,
                    consumer_id=consumer_id,
                    type=type,
                    meeting_id=meeting_id,
                    occurred_at=occurred_at,
                    body=body,
                    dedupe_key=dedupe_key,
                )
            )
            query = e.select().where(e.c.consumer_id == consumer_id, e.c.removed_at.is_(None))
            if endpoint_id is not None:
                query = query.where(e.c.id == endpoint_id)
            targets = [_endpoint(r._mapping) for r in conn.execute(query.order_by(e.c.created_at, e.c.id))]
            wanted = [t for t in targets if endpoint_id is not None or type in t.events]
            rows = [
                {
                    "id": new_id("dlv"),
                    "event_id": event_id,
                    "endpoint_id": t.id,
                    "status": PENDING,
                    "attempts": 0,
                    "created_at": occurred_at,
                    "next_attempt_at": occurred_at,
                }
                for t in wanted
            ]
            if rows:
                conn.execute(d.insert(), rows)
        return event_id, [str(r["id"]) for r in rows]

    # ---- the workers' side
    def claim(
        self,
        *,
        owner: str,
        now: dt.datetime,
        lease_until: dt.datetime,
        limit: int = 50,
        per_endpoint: int = 1,
    ) -> list[ClaimedDelivery]:
        """Lease to ``owner`` until ``lease_until`` up to ``limit`` endpoints' oldest unfinished
        deliveries (when due), and behind each up to ``per_endpoint - 1`` of the same endpoint's next
        ones, in order. On PostgreSQL a head another replica is claiming is skipped (``FOR UPDATE SKIP
        LOCKED``), and a claimed one stays leased once committed; the ones behind a head can only be
        claimed with it (no other replica sees them as heads, and once the head is done they are
        leased). The worker sends an endpoint's in order and stops at its first failure."""
        earlier = d.alias("earlier")
        blocked = (
            sa.select(earlier.c.seq)
            .where(
                earlier.c.endpoint_id == d.c.endpoint_id,
                earlier.c.status == PENDING,
                earlier.c.seq < d.c.seq,
            )
            .exists()
        )
        query = (
            sa.select(d.c.seq)
            .where(
                d.c.status == PENDING,
                d.c.next_attempt_at <= now,
                sa.or_(d.c.lease_until.is_(None), d.c.lease_until < now),
                ~blocked,
            )
            .order_by(d.c.seq)
            .limit(limit)
        )
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=d)
        with self.store._tx() as conn:
            heads = [int(s) for s in conn.execute(query).scalars()]
            if not heads:
                return []
            seqs = list(heads)
            if per_endpoint > 1:
                for head, endpoint_id in conn.execute(
                    sa.select(d.c.seq, d.c.endpoint_id).where(d.c.seq.in_(heads))
                ).all():
                    seqs.extend(
                        int(s)
                        for s in conn.execute(
                            sa.select(d.c.seq)
                            .where(
                                d.c.endpoint_id == endpoint_id,
                                d.c.status == PENDING,
                                d.c.seq > head,
                                d.c.next_attempt_at <= now,
                                sa.or_(d.c.lease_until.is_(None), d.c.lease_until < now),
                            )
                            .order_by(d.c.seq)
                            .limit(per_endpoint - 1)
                        ).scalars()
                    )
            # the lease's own condition again: a row another process leased meanwhile is not taken
            # (PostgreSQL's row locks make that impossible; it keeps SQLite shared by processes safe)
            conn.execute(
                d.update()
                .where(
                    d.c.seq.in_(seqs),
                    d.c.status == PENDING,
                    sa.or_(d.c.lease_until.is_(None), d.c.lease_until < now),
                )
                .values(lease_owner=owner, lease_until=lease_until)
            )
            rows = conn.execute(
                sa.select(
                    d.c.seq,
                    d.c.id,
                    d.c.event_id,
                    d.c.attempts,
                    d.c.created_at,
                    ev.c.type,
                    ev.c.body,
                    *[c.label(f"e_{c.name}") for c in e.c],
                )
                .select_from(d.join(ev, ev.c.id == d.c.event_id).join(e, e.c.id == d.c.endpoint_id))
                .where(d.c.seq.in_(seqs), d.c.lease_owner == owner, d.c.lease_until == lease_until)
                .order_by(d.c.seq)
            ).all()
        claimed = []
        for row in rows:
            m = row._mapping
            endpoint = _endpoint({c.name: m[f"e_{c.name}"] for c in e.c})
            claimed.append(
                ClaimedDelivery(
                    id=m["id"],
                    seq=int(m["seq"]),
                    event_id=m["event_id"],
                    event_type=m["type"],
                    body=m["body"],
                    attempts=int(m["attempts"]),
                    created_at=_when(m["created_at"]),
                    endpoint=endpoint,
                )
            )
        return claimed

    def record_attempts(
        self, *, owner: str, attempts: Sequence[Attempted], release: Sequence[str] = ()
    ) -> int:
        """Record a round's attempts, in one transaction, and what follows each: succeeded (``ok``),
        retried at ``next_attempt_at``, or failed for good (neither). A delivery whose lease ``owner``
        no longer holds keeps its state (its attempt is recorded all the same: the receiver did get
        it). ``release``: deliveries leased but not tried, freed. Returns how many were updated."""
        updated = 0
        with self.store._tx() as conn:
            if attempts:
                conn.execute(
                    a.insert(),
                    [
                        {
                            "delivery_id": t.delivery_id,
                            "at": t.at,
                            "status_code": t.status_code,
                            "latency_ms": t.latency_ms,
                            "error": t.error,
                            "ok": t.ok,
                            "replica": owner,
                        }
                        for t in attempts
                    ],
                )
            for t in attempts:
                if t.ok:
                    outcome: dict[str, Any] = {"status": SUCCEEDED, "finished_at": t.at}
                elif t.next_attempt_at is None:
                    outcome = {"status": FAILED, "finished_at": t.at}
                else:
                    outcome = {"next_attempt_at": t.next_attempt_at}
                result = conn.execute(
                    d.update()
                    .where(d.c.id == t.delivery_id, d.c.lease_owner == owner, d.c.status == PENDING)
                    .values(
                        attempts=d.c.attempts + 1,
                        lease_owner=None,
                        lease_until=None,
                        last_status_code=t.status_code,
                        last_error=t.error,
                        **outcome,
                    )
                )
                updated += result.rowcount
            if release:  # leased but not tried (behind a failure): free again, untouched
                conn.execute(
                    d.update()
                    .where(d.c.id.in_(list(release)), d.c.lease_owner == owner)
                    .values(lease_owner=None, lease_until=None)
                )
        return updated

    # ---- reading and replaying
    def deliveries(
        self, *, endpoint_id: str, limit: int = 50, status: str | None = None, with_attempts: bool = True
    ) -> list[DeliveryRecord]:
        """The endpoint's deliveries, newest first, with their attempts."""
        query = (
            sa.select(*_DELIVERY_COLUMNS)
            .select_from(d.join(ev, ev.c.id == d.c.event_id))
            .where(d.c.endpoint_id == endpoint_id)
            .order_by(d.c.seq.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(d.c.status == status)
        with self.engine.connect() as conn:
            rows = [r._mapping for r in conn.execute(query)]
            history: dict[str, list[AttemptRecord]] = {}
            if with_attempts and rows:
                for at in conn.execute(
                    a.select().where(a.c.delivery_id.in_([r["id"] for r in rows])).order_by(a.c.id)
                ):
                    m = at._mapping
                    history.setdefault(m["delivery_id"], []).append(
                        AttemptRecord(_when(m["at"]), m["status_code"], m["latency_ms"], m["error"], m["ok"])
                    )
        return [_delivery(r, history.get(r["id"], ())) for r in rows]

    def delivery(self, *, endpoint_id: str, delivery_id: str) -> DeliveryRecord | None:
        """One of the endpoint's deliveries, with its attempts."""
        query = (
            sa.select(*_DELIVERY_COLUMNS)
            .select_from(d.join(ev, ev.c.id == d.c.event_id))
            .where(d.c.endpoint_id == endpoint_id, d.c.id == delivery_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            history = [
                AttemptRecord(_when(m["at"]), m["status_code"], m["latency_ms"], m["error"], m["ok"])
                for m in (
                    r._mapping
                    for r in conn.execute(a.select().where(a.c.delivery_id == delivery_id).order_by(a.c.id))
                )
            ]
        return _delivery(row._mapping, history)

    def replay(self, *, delivery_id: str, now: dt.datetime) -> str:
        """A new delivery of the same event (same event id, same body) to the same endpoint,
        queued behind the endpoint's unfinished ones; returns its id."""
        new = new_id("dlv")
        with self.store._tx() as conn:
            row = conn.execute(sa.select(d.c.event_id, d.c.endpoint_id).where(d.c.id == delivery_id)).one()
            conn.execute(
                d.insert().values(
                    id=new,
                    event_id=row.event_id,
                    endpoint_id=row.endpoint_id,
                    status=PENDING,
                    attempts=0,
                    created_at=now,
                    next_attempt_at=now,
                    replay_of=delivery_id,
                )
            )
        return new

    def pending_count(self) -> int:
        """Deliveries not finished yet (for the metrics and the tests)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(d).where(d.c.status == PENDING)
                ).scalar_one()
            )
