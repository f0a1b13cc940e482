"""From a stored Graph notification to consumer webhook events.

Each stored body is processed once: every item's ``clientState`` is compared (constant time) with
its subscription's, the ``validationTokens`` are checked and each item's resource data decrypted
(signature first); the artifact's meeting is looked up among the gateway's own meetings and the
event published to that meeting's consumer only (unknown meetings are ignored). The dedupe key names
the artifact (``graph:transcript:{id}``), so a notification Graph sends twice, a ``missed`` catch-up
and the poller publish an artifact once.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from anyio import to_thread

from meetgate.gateway.logs import LOGGER_NAME
from meetgate.gateway.notifications.crypto import (
    EncryptionKey,
    NotificationRefused,
    TokenValidator,
    decrypt_content,
    encrypted_content,
)
from meetgate.gateway.notifications.reader import ArtifactReader, publish_artifacts
from meetgate.gateway.notifications.subscriptions import CALLS, SubscriptionManager
from meetgate.gateway.webhooks.events import WebhookPublisher
from meetgate.store.notifications import MeetingMatch, NotificationStore

log = logging.getLogger(LOGGER_NAME)

#: a resource's @odata.type (lower case) to the event it means
EVENT_OF_TYPE = {
    "#microsoft.graph.calltranscript": "transcript.ready",
    "#microsoft.graph.callrecording": "recording.ready",
}


#: a call event's eventType to the event it means
CALL_EVENTS = {
    "Microsoft.Communication.CallStarted": "meeting.started",
    "Microsoft.Communication.CallEnded": "meeting.ended",
}


class NotificationProcessor:
    """Processes what :mod:`meetgate.gateway.routers.notifications` stored."""

    def __init__(
        self,
        store: NotificationStore,
        manager: SubscriptionManager,
        key: EncryptionKey,
        tokens: TokenValidator,
        publisher: WebhookPublisher,
        reader: ArtifactReader,
    ) -> None:
        self.store = store
        self.manager = manager
        self.key = key
        self.tokens = tokens
        self.publisher = publisher
        self.reader = reader

    async def process_pending(self, grace: dt.timedelta = dt.timedelta(seconds=30)) -> int:
        """Process the stored notifications left unprocessed (a restart) that arrived more than
        ``grace`` ago (younger ones are their request's to process); how many were."""
        count = 0
        for stored in self.store.pending(received_before=dt.datetime.now(dt.UTC) - grace):
            await self.process(stored.seq)
            count += 1
        return count

    async def process(self, seq: int) -> str:
        """Process one stored body; its outcome (also recorded in the store)."""
        stored = self.store.notification(seq)
        if stored is None:
            return "gone"
        try:
            body = json.loads(stored.body)
            items = body.get("value") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise NotificationRefused("not a notification body", "nothing")
            if stored.channel == "lifecycle":
                outcome = await self._lifecycle(items)
            else:
                # the checks fetch keys and decrypt, the store writes: off the event loop
                outcome = await to_thread.run_sync(self._notify, body, items)
        except NotificationRefused as exc:
            outcome = f"refused: {exc}"
            log.warning("graph notification refused", extra={"reason": str(exc)})
        except (ValueError, KeyError, TypeError) as exc:
            outcome = f"refused: unreadable ({type(exc).__name__})"
        self.store.processed(seq, outcome)
        return outcome

    def _subscription_checked(self, item: Mapping[str, Any]) -> Any:
        record = self.store.subscription(str(item.get("subscriptionId")))
        if record is None:
            raise NotificationRefused("for a subscription the gateway does not have", "nothing")
        given = item.get("clientState")
        expected = self.manager.client_state(record)
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
            raise NotificationRefused("clientState does not match", "nothing: it is dropped")
        return record

    def _notify(self, body: Mapping[str, Any], items: list[Any]) -> str:
        kinds = [self._subscription_checked(item).kind for item in items]
        if any(encrypted_content(item) is not None for item in items):
            self.tokens.check_all(body.get("validationTokens"))
        published = 0
        for item, kind in zip(items, kinds, strict=True):
            content = encrypted_content(item)
            if content is None:
                continue
            resource = decrypt_content(content, self.key)
            basic = item.get("resourceData")
            if "@odata.type" not in resource and isinstance(basic, Mapping):
                # the resource as GET answers it may not name its type: the item's resourceData does
                resource = {**resource, "@odata.type": basic.get("@odata.type")}
            if self._publish(resource, kind):
                published += 1
        return f"published {published}"

    def _publish(self, resource: Mapping[str, Any], kind: str) -> bool:
        if str(resource.get("@odata.type", "")).lower() == "#microsoft.graph.onlinemeeting":
            return self._call_event(resource, kind)
        event = EVENT_OF_TYPE.get(str(resource.get("@odata.type", "")).lower())
        meeting = self.store.find_meeting(graph_meeting_id=str(resource.get("meetingId") or "") or None)
        if event is None or meeting is None:
            return False
        publish_one(self.publisher, meeting, event, resource)
        return True

    def _call_event(self, resource: Mapping[str, Any], kind: str) -> bool:
        """``CallStarted`` / ``CallEnded`` of a meeting the gateway made: ``meeting.started`` /
        ``meeting.ended`` (roster updates are not published)."""
        event = CALL_EVENTS.get(str(resource.get("eventType")))
        # the subscription is the meeting's own (calls:{id}); else by the onlineMeeting's id
        meeting = (
            self.store.meeting(kind.removeprefix(CALLS))
            if kind.startswith(CALLS)
            else self.store.find_meeting(graph_meeting_id=str(resource.get("id") or "") or None)
        )
        if event is None or meeting is None:
            return False
        call_id = str(resource.get("callId") or resource.get("id"))
        data = {"callId": resource.get("callId"), "eventDateTime": resource.get("eventDateTime")}
        self.publisher.publish_event(
            meeting.consumer_id,
            event,
            meeting.meeting_id,
            {k: v for k, v in data.items() if v is not None},
            dedupe_key=f"graph:{event}:{call_id}",
        )
        return True

    async def _lifecycle(self, items: list[Any]) -> str:
        done = []
        for item in items:
            record = self._subscription_checked(item)
            event = str(item.get("lifecycleEvent"))
            if event == "reauthorizationRequired":
                await self.manager.reauthorize(record)
            elif event == "subscriptionRemoved":
                await self.manager.removed(record)
            elif event == "missed":
                await self.catch_up()
            done.append(event)
        return "lifecycle " + ",".join(done)

    async def catch_up(self) -> int:
        """Read the artifacts of every meeting the gateway knows and publish what is new (after a
        ``missed`` event: notifications were dropped). How many meetings had artifacts."""
        count = 0
        for meeting in self.store.meetings_with_graph_ids():
            if await publish_artifacts(self.reader, self.publisher, meeting, ("transcripts", "recordings")):
                count += 1
        return count


def publish_one(
    publisher: WebhookPublisher, meeting: MeetingMatch, event: str, resource: Mapping[str, Any]
) -> str:
    """Publish ``event`` about an artifact ``resource`` to the meeting's consumer, once per artifact."""
    kind = event.split(".")[0]
    artifact_id = str(resource.get("id"))
    data = {
        f"{kind}Id": artifact_id,
        "createdDateTime": resource.get("createdDateTime"),
        "endDateTime": resource.get("endDateTime"),
    }
    return publisher.publish_event(
        meeting.consumer_id,
        event,
        meeting.meeting_id,
        {k: v for k, v in data.items() if v is not None},
        dedupe_key=f"graph:{kind}:{artifact_id}",
    )
