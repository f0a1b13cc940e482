"""Reading a meeting's artifacts from Graph (for ``missed`` catch-up and the poller) and publishing
each artifact once (its dedupe key names it, as the notification path's does)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meetgate.gateway.notifications.subscriptions import GraphCalls
from meetgate.gateway.webhooks.events import WebhookPublisher
from meetgate.store.notifications import MeetingMatch

#: an artifact collection to the event a new item of it means
EVENTS = {
    "attendanceReports": "attendance.ready",
    "transcripts": "transcript.ready",
    "recordings": "recording.ready",
}


class ArtifactReader:
    """Lists a meeting's attendance reports, transcripts and recordings through Graph (the
    organizer's ``onlineMeetings/{id}/…``). A collection Graph refuses reads as empty."""

    def __init__(self, graph: GraphCalls) -> None:
        self.graph = graph

    async def items(self, meeting: MeetingMatch, collection: str) -> list[dict[str, Any]]:
        """The collection's items (``[]`` when not available yet or refused)."""
        if not meeting.graph_meeting_id:
            return []
        path = f"/users/{meeting.organizer}/onlineMeetings/{meeting.graph_meeting_id}/{collection}"
        status, body = await self.graph("GET", path)
        value = body.get("value") if status == 200 else None
        return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


async def publish_artifacts(
    reader: ArtifactReader, publisher: WebhookPublisher, meeting: MeetingMatch, collections: Sequence[str]
) -> list[str]:
    """Publish an event for each artifact the meeting has in ``collections`` (``attendanceReports``,
    ``transcripts``, ``recordings``); returns the collections that had at least one."""
    from meetgate.gateway.notifications.processor import publish_one

    found = []
    for collection in collections:
        items = await reader.items(meeting, collection)
        for item in items:
            publish_one(publisher, meeting, EVENTS[collection], item)
        if items:
            found.append(collection)
    return found
