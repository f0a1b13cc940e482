"""Graph change notifications in the store: the gateway's subscriptions, the raw notifications
(persisted before Graph is answered, processed afterwards) and the poller's progress."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from meetgate.store.repository import Store, _aware, utcnow
from meetgate.store.tables import graph_notifications, graph_polls, graph_subscriptions, meetings

s, n, p, m = graph_subscriptions, graph_notifications, graph_polls, meetings


@dataclass(frozen=True)
class SubscriptionRecord:
    """One of the gateway's Graph subscriptions (``client_state_enc``: encrypted, never logged)."""

    id: str
    kind: str
    resource: str
    expires_at: dt.datetime
    client_state_enc: str = field(repr=False)


@dataclass(frozen=True)
class StoredNotification:
    """A notification body as Graph sent it, waiting to be processed."""

    seq: int
    channel: str
    body: str = field(repr=False)


@dataclass(frozen=True)
class MeetingMatch:
    """A meeting the gateway made: its id, its consumer and what Graph knows it by."""

    meeting_id: str
    consumer_id: str
    organizer: str
    graph_meeting_id: str | None
    join_url: str | None
    graph_event_id: str | None
    placement: str
    snapshot: Mapping[str, Any] | None


def _sub(row: Mapping[Any, Any]) -> SubscriptionRecord:
    expires = _aware(row["expires_at"])
    assert expires is not None
    return SubscriptionRecord(row["id"], row["kind"], row["resource"], expires, row["client_state_enc"])


def _match(row: Mapping[Any, Any]) -> MeetingMatch:
    return MeetingMatch(
        row["id"],
        row["consumer_id"],
        row["organizer"],
        row["graph_meeting_id"],
        row["join_url"],
        row["graph_event_id"],
        row["placement"],
        row["snapshot"],
    )


class NotificationStore:
    """The notification tables, in the gateway's store (same engine and write lock)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # ---- subscriptions
    def save_subscription(
        self, *, id: str, kind: str, resource: str, client_state_enc: str, expires_at: dt.datetime
    ) -> None:
        """Record a subscription Graph created."""
        with self.store._tx() as conn:
            conn.execute(
                s.insert().values(
                    id=id,
                    kind=kind,
                    resource=resource,
                    client_state_enc=client_state_enc,
                    expires_at=expires_at,
                    created_at=utcnow(),
                )
            )

    def subscriptions(self) -> list[SubscriptionRecord]:
        """The live subscriptions, by kind, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                s.select().where(s.c.removed_at.is_(None)).order_by(s.c.kind, s.c.created_at, s.c.id)
            )
            return [_sub(r._mapping) for r in rows]

    def subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        """A live subscription by its Graph id."""
        with self.engine.connect() as conn:
            row = conn.execute(s.select().where(s.c.id == subscription_id, s.c.removed_at.is_(None))).first()
        return _sub(row._mapping) if row is not None else None

    def renewed(self, subscription_id: str, expires_at: dt.datetime) -> None:
        """Graph accepted a new expiry."""
        with self.store._tx() as conn:
            conn.execute(s.update().where(s.c.id == subscription_id).values(expires_at=expires_at))

    def removed(self, subscription_id: str) -> None:
        """The subscription is gone (removed by Graph, expired or deleted)."""
        with self.store._tx() as conn:
            conn.execute(s.update().where(s.c.id == subscription_id).values(removed_at=utcnow()))

    # ---- notifications
    def receive(self, channel: str, body: str) -> int:
        """Persist a notification body as received; its sequence number."""
        with self.store._tx() as conn:
            result = conn.execute(n.insert().values(channel=channel, body=body, received_at=utcnow()))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def pending(
        self, limit: int = 100, received_before: dt.datetime | None = None
    ) -> list[StoredNotification]:
        """Notifications not processed yet (received before ``received_before``), oldest first."""
        query = n.select().where(n.c.processed_at.is_(None))
        if received_before is not None:
            query = query.where(n.c.received_at < received_before)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(n.c.seq).limit(limit))
            return [StoredNotification(r.seq, r.channel, r.body) for r in rows]

    def notification(self, seq: int) -> StoredNotification | None:
        """One stored notification."""
        with self.engine.connect() as conn:
            row = conn.execute(n.select().where(n.c.seq == seq)).first()
        return StoredNotification(row.seq, row.channel, row.body) if row is not None else None

    def processed(self, seq: int, outcome: str) -> bool:
        """Mark a notification processed (False: another worker had already)."""
        with self.store._tx() as conn:
            result = conn.execute(
                n.update()
                .where(n.c.seq == seq, n.c.processed_at.is_(None))
                .values(processed_at=utcnow(), outcome=outcome[:300])
            )
            return bool(result.rowcount)

    def outcomes(self) -> list[tuple[str, str | None]]:
        """Every notification's channel and outcome, in order (for operators and tests)."""
        with self.engine.connect() as conn:
            return [(r.channel, r.outcome) for r in conn.execute(n.select().order_by(n.c.seq))]

    # ---- the meetings notifications are about
    def find_meeting(
        self,
        *,
        graph_meeting_id: str | None = None,
        join_url: str | None = None,
        graph_event_id: str | None = None,
    ) -> MeetingMatch | None:
        """The gateway's meeting Graph knows by one of these (None: not one the gateway made)."""
        clauses = []
        if graph_meeting_id:
            clauses.append(m.c.graph_meeting_id == graph_meeting_id)
        if join_url:
            clauses.append(m.c.join_url == join_url)
        if graph_event_id:
            clauses.append(m.c.graph_event_id == graph_event_id)
        if not clauses:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(m.select().where(sa.or_(*clauses)).order_by(m.c.created_at)).first()
        return _match(row._mapping) if row is not None else None

    def meeting(self, meeting_id: str) -> MeetingMatch | None:
        """A gateway meeting by its id."""
        with self.engine.connect() as conn:
            row = conn.execute(m.select().where(m.c.id == meeting_id)).first()
        return _match(row._mapping) if row is not None else None

    def meetings_with_graph_ids(self) -> list[MeetingMatch]:
        """Every active meeting whose onlineMeeting id is known (for catch-up and the poller)."""
        return self._active(m.c.graph_meeting_id.is_not(None))

    def meetings_with_join_urls(self) -> list[MeetingMatch]:
        """Every active meeting whose join URL is known (for call events)."""
        return self._active(m.c.join_url.is_not(None))

    def _active(self, clause: Any) -> list[MeetingMatch]:
        with self.engine.connect() as conn:
            rows = conn.execute(m.select().where(clause, m.c.state == "active").order_by(m.c.created_at))
            return [_match(r._mapping) for r in rows]

    # ---- the poller
    def poll_state(self, meeting_id: str) -> tuple[int, dt.datetime | None, list[str]]:
        """Attempts so far, when the next is due (None: never polled) and the kinds already published."""
        with self.engine.connect() as conn:
            row = conn.execute(p.select().where(p.c.meeting_id == meeting_id)).first()
        if row is None:
            return 0, None, []
        return int(row.attempts), _aware(row.next_at), list(row.done)

    def save_poll(self, meeting_id: str, attempts: int, next_at: dt.datetime, done: list[str]) -> None:
        """Record a poll of the meeting."""
        with self.store._tx() as conn:
            updated = conn.execute(
                p.update()
                .where(p.c.meeting_id == meeting_id)
                .values(attempts=attempts, next_at=next_at, done=done)
            )
            if not updated.rowcount:
                conn.execute(
                    p.insert().values(meeting_id=meeting_id, attempts=attempts, next_at=next_at, done=done)
                )
