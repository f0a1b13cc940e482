"""Helpers for the webhook tests: a fake receiver, a settable clock, a gateway with webhooks whose
delivery worker the test drives round by round."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient
from gateway_kit import IN_SCOPE

from meetgate.gateway.app import create_app
from meetgate.gateway.consumers import ConsumerAdmin
from meetgate.gateway.limits import InMemoryLimiter
from meetgate.gateway.scope import StaticPolicyScope
from meetgate.gateway.settings import GatewaySettings
from meetgate.gateway.webhooks.manage import WebhookAdmin, secret_box_factory
from meetgate.gateway.webhooks.worker import DeliveryWorker, WorkerSettings
from meetgate.store import Store
from meetgate.store.webhooks import WebhookStore
from meetgate_sandbox.fakes.meetings import InMemoryMeetings

#: a webhook key for the tests (32 zero bytes would do as well; this one is random-looking)
TEST_KEY = "q1xJ2i0qkq1K0mV3f0m1oGm2zq8xA6uY1cVQmX3n7dE="
START = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)


class Clock:
    """UTC now, moved by the test."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """A consumer's endpoint: records what it is sent; answers 200 while ``up``, else 503."""

    up: bool = True
    received: list[Received] = field(default_factory=list)
    refused: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            self.refused += 1
            return httpx.Response(503)
        self.received.append(Received(dict(request.headers), request.content))
        return httpx.Response(204)

    def event_ids(self) -> list[str]:
        return [r.event["id"] for r in self.received]


@dataclass
class WebhookGateway:
    client: TestClient
    store: Store
    admin: ConsumerAdmin
    hooks: WebhookAdmin
    receiver: Receiver
    clock: Clock
    booking_key: str
    crm_key: str
    booking_id: str
    crm_id: str
    settings: GatewaySettings

    def headers(self, key: str, idem: str | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {key}"}
        if idem is not None:
            h["Idempotency-Key"] = idem
        return h

    def worker(self, owner: str = "replica-a", **settings: Any) -> DeliveryWorker:
        """A delivery worker on the gateway's store, sending to :attr:`receiver`, on :attr:`clock`."""
        return DeliveryWorker(
            WebhookStore(self.store),
            secret_box_factory(TEST_KEY, self.store_dir()),
            settings=WorkerSettings(**settings),
            clock=self.clock,
            client=httpx.AsyncClient(transport=httpx.MockTransport(self.receiver)),
            resolve=None,
            owner=owner,
            rng=random.Random(7),
        )

    def store_dir(self) -> Any:
        from pathlib import Path

        return Path(str(self.store.engine.url.database)).parent / "webhook.key"

    def deliver(self, worker: DeliveryWorker | None = None, rounds: int = 1) -> int:
        """Run worker rounds; returns the deliveries attempted."""
        worker = worker or self.worker()
        return sum(asyncio.run(worker.run_once()) for _ in range(rounds))


def make_webhook_gateway(
    tmp_path: Any, webhook_client: httpx.AsyncClient | None = None, **settings: Any
) -> WebhookGateway:
    """A gateway with two consumers (booking, crm) whose worker is off unless ``webhook_worker``;
    with it on, ``webhook_client`` is what it sends with."""
    values: dict[str, Any] = {
        "store_url": f"sqlite:///{tmp_path}/gw.db",
        "policy_cache_seconds": 0,
        "webhook_worker": False,
        "webhook_key": TEST_KEY,
    }
    values.update(settings)
    config = GatewaySettings(**values)
    store = Store.open(config.store_url)
    scope = StaticPolicyScope(IN_SCOPE)
    graph = InMemoryMeetings(scope=scope)
    admin = ConsumerAdmin(store, scope)
    booking = admin.add("booking", organizers=["alice@contoso.test", "bob@contoso.test"])
    crm = admin.add("crm", organizers=["carol@contoso.test"])
    app = create_app(
        config,
        meetings=graph,
        scope=scope,
        store=store,
        limiter=InMemoryLimiter(),
        webhook_resolve=None,
        webhook_client=webhook_client,
    )
    clock = Clock()
    hooks: WebhookAdmin = app.state.webhooks
    hooks.clock = clock
    hooks.publisher.clock = clock
    return WebhookGateway(
        TestClient(app),
        store,
        admin,
        hooks,
        Receiver(),
        clock,
        booking.api_key,
        crm.api_key,
        booking.consumer.id,
        crm.consumer.id,
        config,
    )
