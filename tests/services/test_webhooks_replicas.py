"""Two gateway replicas on the machine's PostgreSQL (a unique schema per run) share one webhook
outbox: each delivery is sent once between them, not once each, and every endpoint gets its events
in the order they were published."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa

from meetgate.gateway.consumers import ConsumerAdmin
from meetgate.gateway.scope import StaticPolicyScope
from meetgate.gateway.webhooks.manage import WebhookAdmin, secret_box_factory
from meetgate.gateway.webhooks.worker import DeliveryWorker, WorkerSettings
from meetgate.store import Store
from meetgate.store.tables import webhook_attempts
from meetgate.store.webhooks import WebhookStore

pytestmark = pytest.mark.services
KEY = "q1xJ2i0qkq1K0mV3f0m1oGm2zq8xA6uY1cVQmX3n7dE="


@pytest.fixture
def pg_store_url(postgres_url):
    schema = f"gw_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_two_replicas_deliver_each_event_exactly_once_and_in_order(pg_store_url, tmp_path):
    primary = Store.open(pg_store_url)
    replica = Store.open(pg_store_url)  # a second process's store: its own engine and connections
    box = secret_box_factory(KEY, tmp_path / "webhook.key")
    consumer = ConsumerAdmin(primary, StaticPolicyScope(["alice@contoso.test"])).add(
        "booking", organizers=["alice@contoso.test"]
    )
    admin = WebhookAdmin(primary, box, resolve=None)
    endpoints = [
        admin.add(consumer.consumer.id, f"https://receiver.example.org/{n}", ["recording.ready"]).endpoint
        for n in range(3)
    ]
    received: list[tuple[str, str]] = []  # (endpoint path, event id)

    async def receive(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.002)  # a receiver that takes a moment: replicas overlap
        received.append((request.url.path, request.headers["meetgate-event-id"]))
        return httpx.Response(200)

    def worker(store: Store, owner: str) -> DeliveryWorker:
        return DeliveryWorker(
            WebhookStore(store),
            box,
            settings=WorkerSettings(poll_seconds=0.05, batch=5),
            client=httpx.AsyncClient(transport=httpx.MockTransport(receive)),
            resolve=None,
            owner=owner,
        )

    published: list[str] = []
    total = 40

    async def scenario() -> None:
        workers = [worker(primary, "replica-a"), worker(replica, "replica-b")]
        for w in workers:
            w.start()
        for n in range(total):  # published while both replicas deliver
            published.append(
                admin.publisher.publish_event(consumer.consumer.id, "recording.ready", None, {"n": n})
            )
            if n % 10 == 0:
                await asyncio.sleep(0.01)
        deadline = time.monotonic() + 120
        while len(received) < total * len(endpoints) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a duplicate, had there been one, would arrive now
        for w in workers:
            await w.stop()

    try:
        asyncio.run(scenario())
        counts = Counter(received)
        assert len(counts) == total * len(endpoints)
        assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1]
        for n in range(len(endpoints)):
            assert [e for path, e in received if path == f"/{n}"] == published
        assert WebhookStore(primary).pending_count() == 0
        with primary.engine.connect() as conn:
            replicas = Counter(conn.execute(sa.select(webhook_attempts.c.replica)).scalars())
        assert sum(replicas.values()) == total * len(endpoints)
    finally:
        replica.close()
        primary.close()


def test_postgres_migration_0007_downgrades_and_upgrades(pg_store_url):
    from alembic import command
    from alembic.config import Config

    from meetgate.store.repository import MIGRATIONS, make_engine

    Store.open(pg_store_url).close()
    Store.open(pg_store_url).close()  # a second replica's start-up migration is a no-op
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    engine = make_engine(pg_store_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        assert "webhook_deliveries" not in sa.inspect(conn).get_table_names()
        command.upgrade(cfg, "head")
        assert "webhook_deliveries" in sa.inspect(conn).get_table_names()
    engine.dispose()
