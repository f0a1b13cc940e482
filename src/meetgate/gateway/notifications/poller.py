"""The poller, for gateways Graph cannot reach (no public URL): after each stored meeting's end it
reads the attendance reports, transcripts and recordings, with backoff, and publishes the same
events the notifications would (the same dedupe keys: an artifact is published once either way)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from meetgate.gateway.notifications.reader import EVENTS, ArtifactReader, publish_artifacts
from meetgate.gateway.notifications.subscriptions import meeting_end
from meetgate.gateway.webhooks.events import WebhookPublisher
from meetgate.store.notifications import NotificationStore

#: every collection the poller waits for
COLLECTIONS = tuple(EVENTS)


class ArtifactPoller:
    """Polls ended meetings: first ``first_delay`` after the end, then doubling up to ``max_delay``,
    until every collection had an item or ``give_up_after`` has passed since the end."""

    def __init__(
        self,
        store: NotificationStore,
        reader: ArtifactReader,
        publisher: WebhookPublisher,
        *,
        first_delay: dt.timedelta = dt.timedelta(minutes=5),
        max_delay: dt.timedelta = dt.timedelta(hours=6),
        give_up_after: dt.timedelta = dt.timedelta(days=3),
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.store = store
        self.reader = reader
        self.publisher = publisher
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.give_up_after = give_up_after
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    async def run_once(self) -> int:
        """Poll every meeting that is due; how many were polled."""
        now = self.clock()
        polled = 0
        for meeting in self.store.meetings_with_graph_ids():
            end = meeting_end(meeting)
            if end is None or now < end + self.first_delay or now > end + self.give_up_after:
                continue
            attempts, next_at, done = self.store.poll_state(meeting.meeting_id)
            if len(done) == len(COLLECTIONS) or (next_at is not None and now < next_at):
                continue
            wanted = [c for c in COLLECTIONS if c not in done]
            found = await publish_artifacts(self.reader, self.publisher, meeting, wanted)
            delay = min(self.first_delay * (2**attempts), self.max_delay)
            self.store.save_poll(meeting.meeting_id, attempts + 1, now + delay, [*done, *found])
            polled += 1
        return polled
