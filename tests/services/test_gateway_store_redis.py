"""The store on the machine's PostgreSQL and the limits on its Redis (unique schema / prefix per run)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from meetgate.gateway.limits import RedisLimiter
from meetgate.store import AuditEntry, Store

pytestmark = pytest.mark.services


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


def test_postgres_store_migrates_twice_and_keeps_audit_append_only(pg_store_url):
    store = Store.open(pg_store_url)
    Store.open(pg_store_url).close()  # a second replica's start-up migration is a no-op
    try:
        consumer = store.add_consumer(name="booking", key_id="0" * 16, key_hash="h", organizers=["a@b.c"])
        first, new = store.reserve_meeting(
            consumer_id=consumer.id, idempotency_key="k", request_hash="r", organizer="a@b.c", external_id="e"
        )
        again, new_again = store.reserve_meeting(
            consumer_id=consumer.id,
            idempotency_key="k",
            request_hash="r2",
            organizer="a@b.c",
            external_id="e",
        )
        assert new and not new_again and again.id == first.id and again.request_hash == "r"
        assert first.revision == 0
        saved = store.save_meeting(meeting_id=first.id, state="active", snapshot={"subject": "s"})
        changed = store.save_meeting(meeting_id=first.id, state="locked", snapshot=None, revise=True)
        assert (saved.revision, changed.revision) == (0, 1)
        store.append_audit(
            AuditEntry(
                request_id="r1", action="meeting.create", outcome="ok", http_status=201, latency_ms=3.0
            )
        )
        assert [a.request_id for a in store.audit()] == ["r1"]
        for statement in ("UPDATE audit_log SET outcome = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
                conn.execute(sa.text(statement))
    finally:
        store.close()


def test_redis_limits_are_shared_between_limiters(redis_url):
    prefix = f"meetgate-test-{uuid.uuid4().hex[:8]}:"

    async def run():
        a, b = RedisLimiter(redis_url, prefix), RedisLimiter(redis_url, prefix)
        try:
            slots = [await (a if i % 2 else b).acquire("c:x", per_second=1.0, burst=5) for i in range(8)]
            quota = [(await (a if i % 2 else b).consume("c:x", limit=3)).allowed for i in range(5)]
            await a.refund("c:x")
            quota.append((await b.consume("c:x", limit=3)).allowed)
            waited = await a.acquire("graph", per_second=10.0, burst=1, max_wait=1.0)
            waited2 = await b.acquire("graph", per_second=10.0, burst=1, max_wait=1.0)
            return [s.allowed for s in slots], quota, waited, waited2
        finally:
            keys = await a._redis.keys(prefix + "*")
            if keys:
                await a._redis.delete(*keys)
            await a.close()
            await b.close()

    slots, quota, waited, waited2 = asyncio.run(run())
    assert slots == [True] * 5 + [False] * 3
    assert quota == [True, True, True, False, False, True]
    assert waited.allowed and waited.wait == 0
    assert waited2.allowed and 0.05 < waited2.wait <= 0.1


class CountingTokens:
    """A TokenSource fake: each fetch makes a new token valid for an hour."""

    def __init__(self):
        self.fetches = 0

    def get_token(self, force_refresh=False, *, rejected=None):
        import datetime as dt

        from meetgate.graph.auth import AccessToken

        self.fetches += 1
        return AccessToken(
            token=f"tok-{uuid.uuid4().hex[:6]}-{self.fetches}",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )

    def peek(self):
        return None


def test_access_tokens_are_shared_between_replicas_through_redis(redis_url):
    from meetgate.gateway.tokens import RedisSharedTokens

    key = f"meetgate-test-{uuid.uuid4().hex[:8]}:token"
    inner_a, inner_b = CountingTokens(), CountingTokens()
    a = RedisSharedTokens(inner_a, redis_url, key=key)
    b = RedisSharedTokens(inner_b, redis_url, key=key)
    try:
        first = a.get_token()
        assert b.get_token().token == first.token and "tok-" not in repr(b)
        assert (inner_a.fetches, inner_b.fetches) == (1, 0)
        assert b.peek() is not None and a.get_token() is first
        refreshed = b.get_token(force_refresh=True, rejected=first.token)  # Graph said 401 to b
        assert refreshed.token != first.token and inner_b.fetches == 1
        assert a.get_token(force_refresh=True, rejected=first.token).token == refreshed.token
        assert inner_a.fetches == 1
    finally:
        a._redis.delete(key)
        a.close()
        b.close()


def test_postgres_migration_0005_keeps_old_consumers_and_records_rotations(pg_store_url):
    import datetime as dt

    from alembic import command
    from alembic.config import Config

    from meetgate.store.repository import MIGRATIONS, make_engine

    engine = make_engine(pg_store_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.execute(
            sa.text(
                "INSERT INTO consumers (id, name, key_id, key_hash, organizers, organizers_from_policy, "
                "created_at) VALUES ('c1', 'booking', 'bbbbbbbbbbbbbbbb', 'h', '[]', false, now())"
            )
        )
    engine.dispose()
    store = Store.open(pg_store_url)  # migrates to 0005
    try:
        old = store.consumer_by_key_id(key_id="b" * 16)
        assert old is not None and old.key_expires_at is None
        expiry = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
        new = store.replace_key(name_or_id="booking", key_id="c" * 16, key_hash="h2", key_expires_at=expiry)
        assert new.key_expires_at == expiry and store.consumer_by_key_id(key_id="c" * 16) == new
        retired = store.retired_key(key_id="b" * 16)
        assert retired is not None and (retired.consumer_id, retired.key_hash) == ("c1", "h")
        assert retired.retired_at == new.key_rotated_at
        added = store.add_consumer(
            name="partner", key_id="d" * 16, key_hash="h3", organizers=["a@b.c"], key_expires_at=expiry
        )
        assert store.consumer(name_or_id="partner").key_expires_at == expiry == added.key_expires_at
    finally:
        store.close()
    with sa.create_engine(pg_store_url).begin() as conn:  # downgrade works too (0005 -> 0004)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
        columns = {c["name"] for c in sa.inspect(conn).get_columns("consumers")}
        assert "key_expires_at" not in columns and not sa.inspect(conn).has_table("retired_keys")
