"""The delivery worker: an asyncio task in the gateway process that sends the outbox's deliveries.

Each round it leases the due deliveries (each the oldest unfinished one of its endpoint: order is kept),
sends them at once (one per endpoint), records the round's attempts (status, latency, error) in one
transaction and schedules a failed one again with exponential backoff and jitter, until
``retry_window`` (24 hours by default) has passed since the event: at least once. A replica that dies holding a lease loses nothing: the lease
expires and another replica (or the restarted one) takes the delivery over. The clock is injectable.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
from anyio import to_thread

from meetgate.gateway.logs import LOGGER_NAME
from meetgate.gateway.metrics import GatewayMetrics
from meetgate.gateway.webhooks import signing
from meetgate.gateway.webhooks.secret_box import SecretBox, SecretBoxError
from meetgate.gateway.webhooks.urls import Resolver, WebhookUrlError, check_url, system_resolver
from meetgate.store.webhooks import Attempted, ClaimedDelivery, WebhookStore

log = logging.getLogger(LOGGER_NAME)
T = TypeVar("T")
USER_AGENT = "meetgate-webhooks/1"


@dataclass(frozen=True)
class WorkerSettings:
    """How the worker sends and retries."""

    #: a delivery is retried until this long after its event, then fails
    retry_window: dt.timedelta = dt.timedelta(hours=24)
    #: the first retry's delay; each further one doubles, up to ``max_delay`` (then jittered)
    first_delay: dt.timedelta = dt.timedelta(seconds=10)
    max_delay: dt.timedelta = dt.timedelta(hours=1)
    #: how long a claimed delivery stays this replica's (longer than ``timeout_seconds``)
    lease: dt.timedelta = dt.timedelta(seconds=60)
    #: a receiver's answer must come within this, seconds
    timeout_seconds: float = 10.0
    #: how often the outbox is looked at when nothing wakes the worker, seconds
    poll_seconds: float = 1.0
    #: endpoints served per round
    batch: int = 50
    #: deliveries of one endpoint sent per round, one after the other (in order)
    per_endpoint: int = 20
    allow_local_http: bool = False
    allow_private: bool = False


def backoff(attempts: int, settings: WorkerSettings, rng: random.Random) -> dt.timedelta:
    """The delay after the ``attempts``-th failed attempt: doubling from ``first_delay`` up to
    ``max_delay``, times a jitter between 0.5 and 1."""
    base = settings.first_delay.total_seconds() * 2 ** max(attempts - 1, 0)
    capped = min(base, settings.max_delay.total_seconds())
    return dt.timedelta(seconds=capped * (0.5 + rng.random() / 2))


class DeliveryWorker:
    """Sends the outbox's deliveries. ``run_once`` is one round (the tests drive it with their clock);
    ``start``/``stop`` run rounds as an asyncio task, woken by :meth:`wake` when an event is published."""

    def __init__(
        self,
        hooks: WebhookStore,
        box: Callable[[], SecretBox],
        *,
        settings: WorkerSettings | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        client: httpx.AsyncClient | None = None,
        resolve: Resolver | None = system_resolver,
        owner: str | None = None,
        rng: random.Random | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.hooks = hooks
        self.box = box
        self.settings = settings or WorkerSettings()
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.client = client or httpx.AsyncClient(
            timeout=self.settings.timeout_seconds,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._own_client = client is None
        self.resolve = resolve
        #: this replica's name on its leases and attempts
        self.owner = owner or f"{socket.gethostname()[:40]}-{uuid.uuid4().hex[:8]}"
        self.metrics = metrics
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken: asyncio.Event | None = None

    async def _db(self, fn: Callable[[], T]) -> T:
        if self.hooks.store.inline:
            return fn()
        return await to_thread.run_sync(fn)

    async def run_once(self) -> int:
        """Lease the due deliveries, send them, record the attempts; returns how many were sent."""
        now = self.clock()
        claimed = await self._db(
            lambda: self.hooks.claim(
                owner=self.owner,
                now=now,
                lease_until=now + self.settings.lease,
                limit=self.settings.batch,
                per_endpoint=self.settings.per_endpoint,
            )
        )
        if not claimed:
            return 0
        queues: dict[str, list[ClaimedDelivery]] = {}
        for delivery in claimed:  # in seq order: each endpoint's queue is in order
            queues.setdefault(delivery.endpoint.id, []).append(delivery)
        results = await asyncio.gather(*(self._send_in_order(q) for q in queues.values()))
        attempts = [a for done, _ in results for a in done]
        release = [r for _, rest in results for r in rest]
        await self._db(
            lambda: self.hooks.record_attempts(owner=self.owner, attempts=attempts, release=release)
        )
        if self.metrics is not None:
            self._count(claimed, attempts)
        return len(attempts)

    def _count(self, claimed: list[ClaimedDelivery], attempts: list[Attempted]) -> None:
        metrics, published = self.metrics, {c.id: c.created_at for c in claimed}
        assert metrics is not None
        done = dt.datetime.now(dt.UTC)
        for attempt in attempts:
            outcome = "ok" if attempt.ok else ("retry" if attempt.next_attempt_at else "failed")
            metrics.labelled(metrics.webhook_attempts, outcome).inc()
            if attempt.ok:
                metrics.webhook_latency.observe(
                    max((done - published[attempt.delivery_id]).total_seconds(), 0)
                )

    async def _send_in_order(self, queue: list[ClaimedDelivery]) -> tuple[list[Attempted], list[str]]:
        """One endpoint's deliveries, one after the other; after a failure the rest are not tried
        (they are released, still in order behind the failed one)."""
        done: list[Attempted] = []
        for n, delivery in enumerate(queue):
            attempt = await self._attempt(delivery)
            done.append(attempt)
            if not attempt.ok:
                return done, [d.id for d in queue[n + 1 :]]
        return done, []

    def _secrets(self, delivery: ClaimedDelivery, now: dt.datetime) -> list[str]:
        endpoint, box = delivery.endpoint, self.box()
        valid = [box.open(endpoint.id, endpoint.secret_enc)]
        until = endpoint.previous_secret_until
        if endpoint.previous_secret_enc and until is not None and now < until:
            valid.append(box.open(endpoint.id, endpoint.previous_secret_enc))
        return valid

    async def _check_target(self, url: str) -> None:
        settings = self.settings
        if self.resolve is None:
            check_url(
                url,
                allow_local_http=settings.allow_local_http,
                allow_private=settings.allow_private,
                resolve=None,
            )
            return
        await to_thread.run_sync(
            lambda: check_url(
                url,
                allow_local_http=settings.allow_local_http,
                allow_private=settings.allow_private,
                resolve=self.resolve,
            )
        )

    async def _attempt(self, delivery: ClaimedDelivery) -> Attempted:
        now = self.clock()
        body = delivery.body.encode()
        status: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            await self._check_target(delivery.endpoint.url)
            headers = {
                "Content-Type": "application/json",
                signing.HEADER: signing.sign(self._secrets(delivery, now), int(now.timestamp()), body),
                signing.EVENT_ID_HEADER: delivery.event_id,
                signing.EVENT_TYPE_HEADER: delivery.event_type,
                signing.DELIVERY_ID_HEADER: delivery.id,
            }
            started = time.perf_counter()
            answer = await self.client.post(delivery.endpoint.url, content=body, headers=headers)
            status = answer.status_code
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
        except WebhookUrlError as exc:
            error = f"refused target: {exc}"[:300]
        except httpx.TimeoutException:
            error = f"no answer within {self.settings.timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        except SecretBoxError as exc:  # the gateway runs with another webhook key than the endpoint's
            error = str(exc)[:300]
        except Exception as exc:  # anything else fails this attempt, not the round (class name only)
            error = f"unexpected {type(exc).__name__}"
        latency_ms = (time.perf_counter() - started) * 1000
        ok = error is None
        next_at: dt.datetime | None = None
        if not ok:
            end = delivery.created_at + self.settings.retry_window
            if now < end:  # one more attempt at least, the last one at the window's end
                next_at = min(now + backoff(delivery.attempts + 1, self.settings, self.rng), end)
        if not ok:
            log.info(
                "webhook delivery failed",
                extra={"delivery": delivery.id, "endpoint": delivery.endpoint.id, "error": error},
            )
        return Attempted(delivery.id, now, status, latency_ms, error, ok, next_at)

    # ---- as a task
    def wake(self) -> None:
        """Look at the outbox now (thread-safe: a publication from a worker thread calls it)."""
        loop, woken = self._loop, self._woken
        if loop is None or woken is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            woken.set()
        else:
            loop.call_soon_threadsafe(woken.set)

    def start(self) -> None:
        """Run rounds in a task on the running loop until :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="meetgate-webhooks")

    async def _run(self) -> None:
        assert self._woken is not None
        while True:
            # cleared before the round: a publication during it wakes the next one at once
            self._woken.clear()
            try:
                sent = await self.run_once()
            except Exception as exc:  # the store is down, say: try again next round
                log.warning("webhook round failed", extra={"error": type(exc).__name__})
                sent = 0
            if sent:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.settings.poll_seconds)

    async def stop(self) -> None:
        """Stop the task (a delivery in flight is abandoned: its lease expires and it is sent again)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_client:
            await self.client.aclose()
