"""Calendar placement in the store on the machine's PostgreSQL (a unique schema per run): migration
0006 keeps earlier meetings standalone and consumers without a default, and downgrades cleanly."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from meetgate.store import Store

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


def test_postgres_migration_0006_keeps_old_meetings_standalone(pg_store_url):
    from alembic import command
    from alembic.config import Config

    from meetgate.store.repository import MIGRATIONS, make_engine

    engine = make_engine(pg_store_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        conn.execute(
            sa.text(
                "INSERT INTO consumers (id, name, key_id, key_hash, organizers, organizers_from_policy, "
                "created_at) VALUES ('c1', 'booking', 'bbbbbbbbbbbbbbbb', 'h', '[]', false, now())"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO meetings (id, consumer_id, idempotency_key, request_hash, organizer, external_id, "
                "graph_meeting_id, state, created_at, updated_at) VALUES ('mtg_old', 'c1', 'k', 'r', "
                "'a@b.c', 'e', 'g1', 'active', now(), now())"
            )
        )
    engine.dispose()
    store = Store.open(pg_store_url)  # migrates to 0006
    Store.open(pg_store_url).close()  # a second replica's start-up migration is a no-op
    try:
        old = store.meeting(consumer_id="c1", meeting_id="mtg_old")
        assert old is not None and (old.placement, old.graph_event_id) == ("standalone", None)
        assert store.consumer(name_or_id="booking").default_placement is None
        record, new = store.reserve_meeting(
            consumer_id="c1",
            idempotency_key="k2",
            request_hash="r",
            organizer="a@b.c",
            external_id="e2",
            placement="calendar",
        )
        again, again_new = store.reserve_meeting(
            consumer_id="c1", idempotency_key="k2", request_hash="r", organizer="a@b.c", external_id="e2"
        )
        assert new and not again_new and again.placement == "calendar"  # the first reservation's placement
        saved = store.save_meeting(meeting_id=record.id, state="active", snapshot={}, graph_event_id="AAMk=")
        assert (saved.placement, saved.graph_event_id) == ("calendar", "AAMk=")
        assert (
            store.save_meeting(meeting_id=record.id, state="cancelled", snapshot={}).graph_event_id == "AAMk="
        )
        updated = store.set_default_placement(name_or_id="booking", placement="calendar")
        assert (
            updated.default_placement
            == "calendar"
            == store.consumer_by_key_id(key_id="b" * 16).default_placement
        )
    finally:
        store.close()
    with sa.create_engine(pg_store_url).begin() as conn:  # downgrade works too (0006 -> 0005)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
        assert "placement" not in {c["name"] for c in sa.inspect(conn).get_columns("meetings")}
        assert "default_placement" not in {c["name"] for c in sa.inspect(conn).get_columns("consumers")}
