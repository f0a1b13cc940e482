"""The delivery worker: POSTs change notifications and lifecycle events to subscribers, off the request.

One daemon thread per server keeps a schedule of :class:`~meetgate_sandbox.subscriptions.DeliveryRecord`
attempts. A 2xx answer within the tenant's ``deliveryTimeoutSeconds`` (3 s) is delivered; anything else
(an error status, a timeout, no connection) is retried after ``retryBaseSeconds``, doubling each time,
until ``retryWindowSeconds`` (Graph: "up to 4 hours") have passed since the change; then the
notification is dropped and, when the subscription has a ``lifecycleNotificationUrl``, a ``missed``
lifecycle event is sent there. Notifications of a subscription that is gone (deleted or expired) are
dropped without one.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from meetgate_sandbox.subscriptions import DeliveryRecord, SubscriptionStore, iso

__all__ = ["DeliveryWorker", "PendingDelivery", "lifecycle_body"]

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
        self._client_factory = client_factory or (lambda: httpx.Client(follow_redirects=False))
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
