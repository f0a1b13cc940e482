"""The events consumers can subscribe to, and :meth:`WebhookPublisher.publish_event`, the one way in.

Every event has a stable ``id`` (``evt_...``: the same on every retry and replay, so a receiver drops
duplicates by it), its ``type``, the ``time`` it happened and the gateway id of the meeting it is about
(``meetingId``), and only ever reaches the endpoints of the consumer whose meeting that is. The body is
fixed when the event is published: every delivery of it sends the same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

from meetgate.errors import MeetgateError
from meetgate.store.webhooks import WebhookStore, new_id

#: what consumers can subscribe to
EVENT_TYPES = (
    "meeting.started",
    "meeting.ended",
    "attendance.ready",
    "transcript.ready",
    "recording.ready",
    "meeting.updated",
    "meeting.cancelled",
)
#: what ``test`` sends (to one endpoint, whatever it subscribed to)
TEST_EVENT = "webhook.test"


class WebhookError(MeetgateError, ValueError):
    """A webhook request cannot be carried out; ``remedy`` says what to do."""


def event_body(
    event_id: str, type: str, occurred_at: dt.datetime, meeting_id: str | None, data: Mapping[str, Any]
) -> str:
    """The JSON every delivery of the event sends (compact, keys in a fixed order)."""
    moment = occurred_at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(
        {"id": event_id, "type": type, "time": moment, "meetingId": meeting_id, "data": dict(data)},
        separators=(",", ":"),
        default=str,
    )


class WebhookPublisher:
    """Writes events to the outbox (the store) and wakes the delivery worker. Synchronous: the
    gateway calls it as it calls the store (inline on SQLite, in a worker thread on PostgreSQL)."""

    def __init__(
        self,
        store: WebhookStore,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.wake = wake

    def publish_event(
        self,
        consumer: str,
        type: str,
        meeting: str | None,
        data: Mapping[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
        occurred_at: dt.datetime | None = None,
    ) -> str:
        """Publish ``type`` about the gateway meeting ``meeting`` to consumer ``consumer`` (its id):
        persisted with a delivery to each of its endpoints that wants ``type`` before this returns.
        ``dedupe_key`` names the cause (e.g. a Graph notification's id): publishing the same cause
        again returns the first event's id and delivers nothing more. Returns the event id.

        The meeting must be the consumer's: events never reach another consumer's endpoints."""
        if type not in EVENT_TYPES:
            raise WebhookError(f"{type!r} is not an event type", f"use one of {', '.join(EVENT_TYPES)}")
        if meeting is not None and self.store.meeting_owner(meeting_id=meeting) != consumer:
            raise WebhookError(
                f"meeting {meeting!r} is not this consumer's", "publish events to the meeting's own consumer"
            )
        return self._publish(consumer, type, meeting, data or {}, dedupe_key, occurred_at, None)

    def publish_test(self, consumer: str, endpoint_id: str) -> str:
        """A ``webhook.test`` event to one endpoint; returns its id."""
        return self._publish(consumer, TEST_EVENT, None, {"endpointId": endpoint_id}, None, None, endpoint_id)

    def _publish(
        self,
        consumer: str,
        type: str,
        meeting: str | None,
        data: Mapping[str, Any],
        dedupe_key: str | None,
        occurred_at: dt.datetime | None,
        endpoint_id: str | None,
    ) -> str:
        event_id = new_id("evt")
        moment = occurred_at or self.clock()
        event_id, deliveries = self.store.publish(
            event_id=event_id,
            consumer_id=consumer,
            type=type,
            meeting_id=meeting,
            occurred_at=moment,
            body=event_body(event_id, type, moment, meeting, data),
            dedupe_key=dedupe_key,
            endpoint_id=endpoint_id,
        )
        if deliveries and self.wake is not None:
            self.wake()
        return event_id
