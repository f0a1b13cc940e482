"""The delivery worker: POSTs change notifications and lifecycle events to subscribers, off the request.

One daemon thread per server keeps a schedule of :class:`~meetgate_sandbox.subscriptions.DeliveryRecord`
attempts. A 2xx answer within the tenant's ``deliveryTimeoutSeconds`` (3 s) is delivered; anything else
(an error status, a timeout, no connection) is retried after ``retryBaseSeconds``, doubling each time,
until ``retryWindowSeconds`` (Graph: "up to 4 hours") have passed since the change; then the
notification is dropped and, when the subscription has a ``lifecycleNotificationUrl``, a ``missed``
lifecycle event is sent there. Notifications of a subscription that is gone (deleted or expired) are
dropped without one.

:func:`attach` makes :func:`on_change` listen to the runtime's
:class:`~meetgate_sandbox.notification_bus.NotificationBus`: each change becomes one notification per
live subscription watching it (with ``encryptedContent`` and ``validationTokens`` when the
subscription asked for resource data).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from meetgate_sandbox.control import ssl_context
from meetgate_sandbox.notification_bus import Change
from meetgate_sandbox.policy import PolicyEngine
from meetgate_sandbox.runtime import SandboxRuntime
from meetgate_sandbox.state import Tenant
from meetgate_sandbox.subscriptions import (
    EXTENSION,
    NOTIFICATION_APP_ID,
    DeliveryRecord,
    Subscription,
    SubscriptionStore,
    encrypt_resource_data,
    iso,
    match_key,
    resource_rule,
)

__all__ = [
    "DeliveryWorker",
    "PendingDelivery",
    "attach",
    "detach",
    "lifecycle_body",
    "lifecycle_of",
    "on_change",
    "sandbox_now",
    "submit",
    "trust",
]

WORKER = "notifications.worker"

log = logging.getLogger("meetgate_sandbox.notifications")


def lifecycle_body(
    *, subscription_id: str, expiration: str, tenant_id: str, client_state: str | None, event: str
) -> dict[str, Any]:
    """A lifecycle notification as Graph sends it (``value`` of one item)."""
    return {
        "value": [
            {
                "subscriptionId": subscription_id,
                "subscriptionExpirationDateTime": expiration,
                "tenantId": tenant_id,
                "clientState": client_state,
                "lifecycleEvent": event,
            }
        ]
    }


@dataclass
class PendingDelivery:
    """A record and what the worker needs to retry it and to say ``missed`` when it is dropped."""

    store: SubscriptionStore
    record: DeliveryRecord
    #: where a ``missed`` lifecycle event goes when the notification is dropped (None: nowhere)
    lifecycle_url: str | None = None
    missed_body: dict[str, Any] | None = None
    started: float = field(default_factory=time.monotonic)


class DeliveryWorker:
    """The server's delivery thread (started on the first delivery; a daemon, so it never holds exit)."""

    def __init__(self, *, client_factory: Callable[[], httpx.Client] | None = None) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, PendingDelivery]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._client_factory = client_factory or (
            lambda: httpx.Client(follow_redirects=False, trust_env=False)
        )
        self._stopped = False

    def submit(self, pending: PendingDelivery, delay: float = 0.0) -> None:
        """Schedule ``pending`` (its record is listed at once, as ``pending``)."""
        if not pending.record.attempts and pending.record.state == "pending":
            pending.store.add_record(pending.record)
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), pending))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-notifications", daemon=True)
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _next(self) -> PendingDelivery | None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    return heapq.heappop(self._heap)[2]
                timeout = self._heap[0][0] - now if self._heap else None
                self._cond.wait(timeout)
            return None

    def _run(self) -> None:
        with self._client_factory() as client:
            while True:
                pending = self._next()
                if pending is None:
                    return
                try:
                    self._attempt(client, pending)
                except Exception:  # the worker must outlive any one delivery
                    log.exception("a notification delivery failed unexpectedly")

    def _attempt(self, client: httpx.Client, pending: PendingDelivery) -> None:
        store, record = pending.store, pending.record
        settings = store.settings
        if record.kind == "notification" and record.subscription_id not in store.subscriptions:
            self._finish(store, record, "dropped", {"error": "the subscription was deleted or expired"})
            return
        started = time.monotonic()
        attempt: dict[str, Any] = {"at": iso(dt.datetime.now(dt.UTC))}
        try:
            response = client.post(
                record.url,
                json=record.body,
                timeout=httpx.Timeout(settings.delivery_timeout_seconds),
            )
            attempt["status"] = response.status_code
            ok = 200 <= response.status_code < 300
        except httpx.HTTPError as error:
            attempt["error"] = type(error).__name__
            ok = False
        attempt["elapsedMs"] = round((time.monotonic() - started) * 1000, 1)
        if ok:
            self._finish(store, record, "delivered", attempt)
            return
        with store.lock:
            record.attempts.append(attempt)
        delay = settings.retry_base_seconds * 2 ** (len(record.attempts) - 1)
        if time.monotonic() + delay - pending.started > settings.retry_window_seconds:
            self._finish(store, record, "dropped", None)
            if record.kind == "notification" and pending.lifecycle_url and pending.missed_body:
                missed = DeliveryRecord(
                    str(uuid.uuid4()),
                    record.subscription_id,
                    "lifecycle",
                    pending.lifecycle_url,
                    pending.missed_body,
                    created=time.time(),
                )
                self.submit(PendingDelivery(store, missed))
            return
        self.submit(pending, delay)

    @staticmethod
    def _finish(
        store: SubscriptionStore, record: DeliveryRecord, state: str, attempt: dict[str, Any] | None
    ) -> None:
        with store.lock:
            if attempt is not None:
                record.attempts.append(attempt)
            record.state = state


# ---- the runtime's worker ----------------------------------------------------------------------------


def trust(runtime: SandboxRuntime) -> ssl.SSLContext | bool:
    """What notification endpoints' certificates are checked against: the system's CAs, plus the
    sandbox's own CA when the server has one (so a test's receiver can use a certificate it issued)."""
    ca = runtime.services.get("tls.ca_certificate")
    return ssl_context(ca) if ca is not None else True


def worker_of(runtime: SandboxRuntime) -> DeliveryWorker:
    """The server's delivery worker (made on first use; it trusts what :func:`trust` says)."""
    worker = runtime.services.get(WORKER)
    if worker is None:
        verify = trust(runtime)
        worker = runtime.services[WORKER] = DeliveryWorker(
            client_factory=lambda: httpx.Client(verify=verify, follow_redirects=False, trust_env=False)
        )
    assert isinstance(worker, DeliveryWorker)
    return worker


def sandbox_now(runtime: SandboxRuntime) -> dt.datetime:
    """The sandbox's clock (``clockOffsetSeconds`` included) as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(runtime.now(), dt.UTC)


# ---- the listener -------------------------------------------------------------------------------------


def _basic_resource_data(change: Change) -> dict[str, Any]:
    data = change.resource_data
    basic: dict[str, Any] = {"@odata.type": change.odata_type, "@odata.id": change.resource}
    if "@odata.etag" in data:
        basic["@odata.etag"] = data["@odata.etag"]
    if "id" in data:
        basic["id"] = data["id"]
    return basic


def _policy_allows(tenant: Tenant, sub: Subscription, change: Change) -> bool:
    found = resource_rule(sub.resource)
    if found is None or not found[0].teams_policy:
        return True
    user = change.organizer_id or sub.policy_user_id
    engine = tenant.extensions.get("policy")
    if user is None or not isinstance(engine, PolicyEngine):
        return True
    return engine.allows(user, sub.application_id)


def on_change(runtime: SandboxRuntime, change: Change) -> None:
    """Queue a notification of ``change`` for each live subscription of its tenant that watches it."""
    tenant = runtime.state.tenants.get(change.tenant_id)
    store = tenant.extensions.get(EXTENSION) if tenant is not None else None
    if tenant is None or not isinstance(store, SubscriptionStore):
        return
    topics = {match_key(topic) for topic in change.topics}
    for sub in store.live(sandbox_now(runtime)):
        if sub.key not in topics or change.change_type not in sub.change_types():
            continue
        if not _policy_allows(tenant, sub, change):
            continue
        item: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": iso(sub.expiration),
            "changeType": change.change_type,
            "resource": change.resource,
            "clientState": sub.client_state,
            "tenantId": tenant.id,
            "resourceData": _basic_resource_data(change),
        }
        body: dict[str, Any] = {"value": [item]}
        if sub.include_resource_data and sub.encryption_certificate and sub.encryption_certificate_id:
            item["encryptedContent"] = encrypt_resource_data(
                change.resource_data, sub.encryption_certificate, sub.encryption_certificate_id
            )
            body["validationTokens"] = [
                runtime.issuer.issue_notification_token(
                    tenant_id=tenant.id, audience=sub.application_id, app_id=NOTIFICATION_APP_ID
                )
            ]
        submit(runtime, store, sub, "notification", sub.notification_url, body)


def submit(
    runtime: SandboxRuntime,
    store: SubscriptionStore,
    sub: Subscription,
    kind: str,
    url: str,
    body: dict[str, Any],
) -> DeliveryRecord:
    record = DeliveryRecord(str(uuid.uuid4()), sub.id, kind, url, body, created=time.time())
    missed = lifecycle_of(store, sub, "missed") if sub.lifecycle_notification_url else None
    worker_of(runtime).submit(PendingDelivery(store, record, sub.lifecycle_notification_url, missed))
    return record


def lifecycle_of(store: SubscriptionStore, sub: Subscription, event: str) -> dict[str, Any]:
    return lifecycle_body(
        subscription_id=sub.id,
        expiration=iso(sub.expiration),
        tenant_id=store.tenant_id,
        client_state=sub.client_state,
        event=event,
    )


def attach(runtime: SandboxRuntime) -> None:
    """Listen to the runtime's changes (once per runtime)."""
    if runtime.services.get("notifications.attached"):
        return
    runtime.services["notifications.attached"] = True
    runtime.notifications.subscribe(lambda change: on_change(runtime, change))


def detach(runtime: SandboxRuntime) -> None:
    """Stop the delivery worker (the server is shutting down; undelivered notifications are lost,
    as they are kept in memory only)."""
    worker = runtime.services.pop(WORKER, None)
    if isinstance(worker, DeliveryWorker):
        worker.stop()
