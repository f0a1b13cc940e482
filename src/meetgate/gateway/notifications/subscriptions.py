"""The gateway's Graph subscriptions: made for what consumers want, renewed before they expire,
reauthorized, recreated when Graph removes them. Each has a ``clientState`` of its own (random,
kept encrypted in the store, never logged) and, for transcripts and recordings, resource data
encrypted for meetgate's own certificate and a ``lifecycleNotificationUrl``."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx

from meetgate.errors import MeetgateError
from meetgate.gateway.logs import LOGGER_NAME
from meetgate.gateway.notifications.crypto import EncryptionKey
from meetgate.gateway.webhooks.secret_box import SecretBox
from meetgate.store.notifications import MeetingMatch, NotificationStore, SubscriptionRecord

log = logging.getLogger(LOGGER_NAME)

#: the tenant-wide resources meetgate watches, by kind
RESOURCES = {
    "transcripts": "communications/onlineMeetings/getAllTranscripts",
    "recordings": "communications/onlineMeetings/getAllRecordings",
}


#: the kind of a meeting's call-events subscription: ``calls:{gateway meeting id}``
CALLS = "calls:"


def call_events_resource(join_url: str) -> str:
    """The (beta) resource of a meeting's call events."""
    return f"communications/onlineMeetings/?$filter=JoinWebUrl eq '{join_url}'"


def _version(kind: str) -> str:
    return "beta" if kind.startswith(CALLS) else "v1.0"


class SubscriptionError(MeetgateError, RuntimeError):
    """Graph refused a subscription request; ``remedy`` says what to do."""


class GraphCalls(Protocol):
    """One Graph request (``version`` ``v1.0`` or ``beta``): ``(status, JSON body or {})``."""

    async def __call__(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, version: str = "v1.0"
    ) -> tuple[int, dict[str, Any]]: ...


class HttpGraphCalls:
    """:class:`GraphCalls` over httpx: ``base_url`` is Graph's ``…/v1.0``, ``token`` gives an
    app-only access token; without ``client`` each call opens its own (any event loop can call)."""

    def __init__(
        self,
        base_url: str,
        token: Callable[[], Awaitable[str]],
        client: httpx.AsyncClient | None = None,
        *,
        verify: Any = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.client = client
        self.verify = verify

    async def __call__(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, version: str = "v1.0"
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {await self.token()}"}
        root = (
            self.base_url.rsplit("/", 1)[0] if self.base_url.endswith(("/v1.0", "/beta")) else self.base_url
        )
        url = f"{root}/{version}/{path.lstrip('/')}"
        if self.client is not None:
            response = await self.client.request(method, url, json=body, headers=headers, timeout=30)
        else:
            async with httpx.AsyncClient(verify=self.verify) as client:
                response = await client.request(method, url, json=body, headers=headers, timeout=30)
        try:
            parsed = response.json() if response.content else {}
        except ValueError:
            parsed = {}
        return response.status_code, parsed if isinstance(parsed, dict) else {}


def _graph_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _parse_time(text: str) -> dt.datetime:
    head = text.rstrip("Z").split(".")[0]
    return dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)


def _graph_error(status: int, body: Mapping[str, Any]) -> str:
    error = body.get("error")
    if isinstance(error, Mapping):
        return f"{status} {error.get('code')}: {error.get('message')}"
    return str(status)


class SubscriptionManager:
    """Ensures, renews and repairs the gateway's subscriptions (``kinds``: of :data:`RESOURCES`)."""

    def __init__(
        self,
        store: NotificationStore,
        graph: GraphCalls,
        key: EncryptionKey,
        box: Callable[[], SecretBox],
        *,
        notification_url: str,
        lifecycle_url: str,
        kinds: tuple[str, ...] = ("transcripts", "recordings"),
        call_events: bool = True,
        lifetime: dt.timedelta = dt.timedelta(minutes=4200),
        renew_before: dt.timedelta = dt.timedelta(hours=12),
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.store = store
        self.graph = graph
        self.key = key
        self.box = box
        self.notification_url = notification_url
        self.lifecycle_url = lifecycle_url
        self.kinds = kinds
        self.call_events = call_events
        self.lifetime = lifetime
        self.renew_before = renew_before
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def client_state(self, record: SubscriptionRecord) -> str:
        """The subscription's clientState (a secret: compare it, never log it)."""
        return self.box().open(record.id, record.client_state_enc)

    async def ensure(self) -> list[SubscriptionRecord]:
        """Every wanted kind has a live subscription, none expires within ``renew_before``. Replicas
        that subscribed at once keep the oldest of a kind and delete the others."""
        live: dict[str, SubscriptionRecord] = {}
        for record in self.store.subscriptions():
            if record.kind in live:
                await self.delete(record)
            else:
                live[record.kind] = record
        for kind in self.kinds:
            current = live.get(kind)
            if current is None:
                await self.create(kind)
            elif current.expires_at - self.clock() < self.renew_before:
                await self.renew(current)
        if self.call_events:
            await self._ensure_calls(live)
        return self.store.subscriptions()

    async def _ensure_calls(self, live: Mapping[str, SubscriptionRecord]) -> None:
        """A call-events subscription for each meeting that has not ended (by its join URL); those
        of ended meetings deleted, the others renewed."""
        now = self.clock()
        wanted = {}
        for meeting in self.store.meetings_with_join_urls():
            end = meeting_end(meeting)
            if meeting.join_url and (end is None or end > now):
                wanted[CALLS + meeting.meeting_id] = meeting.join_url
        for kind, record in live.items():
            if kind.startswith(CALLS) and kind not in wanted:
                await self.delete(record)
        for kind, join_url in wanted.items():
            current = live.get(kind)
            try:
                if current is None:
                    await self.create(kind, call_events_resource(join_url))
                elif current.expires_at - now < self.renew_before:
                    await self.renew(current)
            except SubscriptionError as exc:  # one meeting's refusal does not stop the others
                log.warning("call events subscription failed", extra={"kind": kind, "error": str(exc)})

    async def delete(self, record: SubscriptionRecord) -> None:
        """Delete a subscription (already gone at Graph is as good)."""
        status, answer = await self.graph(
            "DELETE", f"/subscriptions/{record.id}", version=_version(record.kind)
        )
        if status not in (204, 404):
            raise SubscriptionError(
                f"Graph refused to delete the {record.kind} subscription ({_graph_error(status, answer)})",
                "the next round tries again",
            )
        self.store.removed(record.id)

    async def create(self, kind: str, resource: str | None = None) -> SubscriptionRecord:
        """Subscribe to ``kind`` (of :data:`RESOURCES`, or ``calls:…`` with its ``resource``);
        Graph validates both URLs before it answers."""
        state = secrets.token_urlsafe(32)
        resource = resource or RESOURCES[kind]
        body = {
            "changeType": "updated" if kind.startswith(CALLS) else "created",
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "resource": resource,
            "includeResourceData": True,
            "encryptionCertificate": self.key.certificate_b64(),
            "encryptionCertificateId": self.key.certificate_id,
            "expirationDateTime": _graph_time(self.clock() + self.lifetime),
            "clientState": state,
        }
        status, answer = await self.graph("POST", "/subscriptions", body, version=_version(kind))
        if status != 201:
            raise SubscriptionError(
                f"Graph refused the {kind} subscription ({_graph_error(status, answer)})",
                "check the app's permissions and that Graph can reach the notification URLs",
            )
        sub_id = str(answer["id"])
        self.store.save_subscription(
            id=sub_id,
            kind=kind,
            resource=resource,
            client_state_enc=self.box().seal(sub_id, state),
            expires_at=_parse_time(str(answer["expirationDateTime"])),
        )
        log.info("graph subscription created", extra={"kind": kind, "subscription": sub_id})
        record = self.store.subscription(sub_id)
        assert record is not None
        return record

    async def renew(self, record: SubscriptionRecord) -> SubscriptionRecord:
        """Extend the subscription (recreated when Graph no longer has it)."""
        expiry = _graph_time(self.clock() + self.lifetime)
        status, answer = await self.graph(
            "PATCH", f"/subscriptions/{record.id}", {"expirationDateTime": expiry}
        )
        if status == 404:
            self.store.removed(record.id)
            return await self.create(record.kind)
        if status != 200:
            raise SubscriptionError(
                f"Graph refused to renew the {record.kind} subscription ({_graph_error(status, answer)})",
                "check the app's permissions; the next run tries again",
            )
        self.store.renewed(record.id, _parse_time(str(answer["expirationDateTime"])))
        renewed = self.store.subscription(record.id)
        assert renewed is not None
        return renewed

    async def reauthorize(self, record: SubscriptionRecord) -> None:
        """Answer ``reauthorizationRequired`` (recreated when Graph no longer has it)."""
        status, answer = await self.graph(
            "POST", f"/subscriptions/{record.id}/reauthorize", version=_version(record.kind)
        )
        if status == 404:
            self.store.removed(record.id)
            await self.create(record.kind, record.resource)
        elif status not in (200, 204):
            raise SubscriptionError(
                f"Graph refused to reauthorize the {record.kind} subscription ({_graph_error(status, answer)})",
                "check the app's permissions",
            )

    async def removed(self, record: SubscriptionRecord) -> SubscriptionRecord:
        """Answer ``subscriptionRemoved``: subscribe again."""
        self.store.removed(record.id)
        return await self.create(record.kind, record.resource)


def meeting_end(meeting: MeetingMatch) -> dt.datetime | None:
    """When the meeting ends, as the gateway stored it (None: not known)."""
    snapshot: Any = meeting.snapshot or {}
    text = snapshot.get("end") if isinstance(snapshot, dict) else None
    if not text:
        return None
    moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
