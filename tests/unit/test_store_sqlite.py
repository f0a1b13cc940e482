"""The store on an SQLite file: a creation's statements (consumer by key, reserve, save) run on
SQLite's own connection, and must read and write exactly what the SQLAlchemy Core path does."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import sqlalchemy as sa

from meetgate.store import Store
from meetgate.store.tables import meetings

SNAPSHOT = {
    "subject": "Interview — ünïcode",
    "start": "2030-12-01T09:00:00+00:00",
    "end": None,
    "attendees": [{"upn": "c@example.org", "role": "attendee"}],
    "allow_meeting_chat": None,
}


@pytest.fixture
def store(tmp_path):
    opened = Store.open(f"sqlite:///{tmp_path}/s.db")
    yield opened
    opened.close()


def _consumer(store: Store, name: str = "booking"):
    return store.add_consumer(
        name=name, key_id=name[:1] * 16, key_hash="h", organizers=["a@b.test"], rate_per_minute=5
    )


def _reserve(store: Store, consumer_id: str, key: str, digest: str = "r"):
    return store.reserve_meeting(
        consumer_id=consumer_id,
        idempotency_key=key,
        request_hash=digest,
        organizer="a@b.test",
        external_id="e",
    )


def test_records_match_what_the_core_queries_read(store):
    consumer = _consumer(store)
    assert (
        store.consumer_by_key_id(key_id=consumer.key_id) == store.consumer(name_or_id="booking") == consumer
    )
    assert store.consumer_by_key_id(key_id="f" * 16) is None

    reserved, new = _reserve(store, consumer.id, "k1")
    assert new and reserved.state == "pending" and reserved.snapshot is None
    assert reserved.created_at.tzinfo is not None
    assert store.meeting_by_key(consumer_id=consumer.id, idempotency_key="k1") == reserved

    saved = store.save_meeting(
        meeting_id=reserved.id,
        state="active",
        snapshot=SNAPSHOT,
        graph_meeting_id="g1",
        join_url="https://j/1",
    )
    assert saved.snapshot == SNAPSHOT and (saved.graph_meeting_id, saved.join_url) == ("g1", "https://j/1")
    assert store.meeting(consumer_id=consumer.id, meeting_id=reserved.id) == saved
    kept = store.save_meeting(meeting_id=reserved.id, state="failed", snapshot=None)
    assert (kept.graph_meeting_id, kept.join_url, kept.snapshot) == ("g1", "https://j/1", None)
    assert store.meeting(consumer_id=consumer.id, meeting_id=reserved.id) == kept


def test_a_replay_returns_the_first_reservation(store):
    consumer = _consumer(store)
    first, new = _reserve(store, consumer.id, "k", "r1")
    again, new_again = _reserve(store, consumer.id, "k", "r2")
    assert new and not new_again and again == first and again.request_hash == "r1"
    assert store.count_meetings(consumer_id=consumer.id) == 1


def test_stored_values_are_those_core_stores(store, tmp_path):
    consumer = _consumer(store)
    reserved, _ = _reserve(store, consumer.id, "direct")
    direct = store.save_meeting(meeting_id=reserved.id, state="active", snapshot=SNAPSHOT)
    core = {name: getattr(direct, name) for name in meetings.c.keys() if name != "snapshot"}  # noqa: SIM118
    with store.engine.begin() as conn:
        conn.execute(meetings.insert().values({**core, "id": "mtg_core", "idempotency_key": "core"}))
        conn.execute(meetings.update().where(meetings.c.id == "mtg_core").values(snapshot=SNAPSHOT))
    with sqlite3.connect(tmp_path / "s.db") as raw:
        rows = raw.execute(
            "SELECT idempotency_key, snapshot, created_at, updated_at, typeof(snapshot), typeof(created_at) "
            "FROM meetings ORDER BY idempotency_key"
        ).fetchall()
    [core_row, direct_row] = rows
    assert core_row[0] == "core" and direct_row[1:] == core_row[1:]


def test_revocation_by_another_process_is_seen_at_once(store, tmp_path):
    consumer = _consumer(store)
    assert store.consumer_by_key_id(key_id=consumer.key_id).active
    other = Store.open(f"sqlite:///{tmp_path}/s.db", migrate=False)  # e.g. `meetgate consumers revoke`
    try:
        other.revoke_consumer(name_or_id="booking")
        assert not store.consumer_by_key_id(key_id=consumer.key_id).active
        rotated = other.replace_key(name_or_id="booking", key_id="9" * 16, key_hash="h2")
    finally:
        other.close()
    assert store.consumer_by_key_id(key_id=consumer.key_id) is None
    assert store.consumer_by_key_id(key_id="9" * 16) == rotated


def test_a_failed_statement_leaves_no_transaction_open(store, tmp_path):
    consumer = _consumer(store)
    with pytest.raises(sa.exc.NoResultFound):
        store.save_meeting(meeting_id="mtg_nothing", state="active", snapshot=None)
    with pytest.raises(sa.exc.IntegrityError):  # no such consumer (foreign key)
        _reserve(store, "no-such-consumer", "k")
    reserved, new = _reserve(store, consumer.id, "k")
    other = Store.open(f"sqlite:///{tmp_path}/s.db", migrate=False)
    try:  # committed, and no write lock held: another connection reads it and writes
        assert new and other.meeting_by_key(consumer_id=consumer.id, idempotency_key="k") == reserved
        other.save_meeting(meeting_id=reserved.id, state="active", snapshot=SNAPSHOT)
    finally:
        other.close()
    assert store.meeting(consumer_id=consumer.id, meeting_id=reserved.id).state == "active"


def test_threads_share_the_connection_one_at_a_time(store):
    consumer = _consumer(store)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                record, _ = _reserve(store, consumer.id, f"t{n}-{i % 25}")
                store.save_meeting(meeting_id=record.id, state="active", snapshot={"n": n})
                assert store.consumer_by_key_id(key_id=consumer.key_id) == consumer
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_meetings(consumer_id=consumer.id) == 100


def test_closing_returns_the_connection(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path}/s.db")
    consumer = _consumer(store)
    assert store.consumer_by_key_id(key_id=consumer.key_id) == consumer
    store.close()
    assert store.engine.pool.checkedout() == 0


@pytest.mark.parametrize("path", ["direct", "core"])
def test_a_change_raises_the_revision_and_a_refresh_does_not(store, path):
    if path == "core":
        store._direct = None  # the path PostgreSQL and in-memory SQLite take
    consumer = _consumer(store)
    reserved, _ = _reserve(store, consumer.id, "k")
    assert reserved.revision == 0
    created = store.save_meeting(meeting_id=reserved.id, state="active", snapshot=SNAPSHOT, join_url="j")
    refreshed = store.save_meeting(meeting_id=reserved.id, state="active", snapshot=SNAPSHOT)
    assert created.revision == refreshed.revision == 0
    changed = store.save_meeting(meeting_id=reserved.id, state="active", snapshot=SNAPSHOT, revise=True)
    cancelled = store.save_meeting(meeting_id=reserved.id, state="cancelled", snapshot=None, revise=True)
    assert (changed.revision, cancelled.revision) == (1, 2)
    assert store.meeting(consumer_id=consumer.id, meeting_id=reserved.id).revision == 2


def test_meetings_stored_before_revisions_start_at_zero(tmp_path):
    from alembic import command
    from alembic.config import Config

    from meetgate.store.repository import MIGRATIONS, make_engine

    url = f"sqlite:///{tmp_path}/old.db"
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.execute(
            sa.text(
                "INSERT INTO consumers (id, name, key_id, key_hash, organizers, organizers_from_policy, "
                "created_at) VALUES ('c1', 'booking', 'bbbbbbbbbbbbbbbb', 'h', '[]', 0, '2026-01-01')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO meetings (id, consumer_id, idempotency_key, request_hash, organizer, "
                "external_id, state, created_at, updated_at) VALUES ('mtg_old', 'c1', 'k', 'r', "
                "'a@b.test', 'e', 'active', '2026-01-01', '2026-01-01')"
            )
        )
    engine.dispose()
    store = Store.open(url)
    try:
        assert store.meeting(consumer_id="c1", meeting_id="mtg_old").revision == 0
        saved = store.save_meeting(meeting_id="mtg_old", state="locked", snapshot=None, revise=True)
        assert saved.revision == 1
    finally:
        store.close()


def test_consumers_stored_before_key_expiry_keep_keys_that_never_expire(tmp_path):
    import datetime as dt

    from alembic import command
    from alembic.config import Config

    from meetgate.store.repository import MIGRATIONS, make_engine

    url = f"sqlite:///{tmp_path}/old.db"
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.execute(
            sa.text(
                "INSERT INTO consumers (id, name, key_id, key_hash, organizers, organizers_from_policy, "
                "created_at) VALUES ('c1', 'booking', 'bbbbbbbbbbbbbbbb', 'h', '[]', 0, '2026-01-01')"
            )
        )
    engine.dispose()
    store = Store.open(url)  # migrates to 0005
    try:
        old = store.consumer_by_key_id(key_id="b" * 16)
        assert old is not None and old.key_expires_at is None
        expiry = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
        new = store.replace_key(name_or_id="booking", key_id="c" * 16, key_hash="h2", key_expires_at=expiry)
        assert new.key_expires_at == expiry and store.consumer_by_key_id(key_id="c" * 16) == new
        retired = store.retired_key(key_id="b" * 16)
        assert retired is not None and (retired.consumer_id, retired.key_hash) == ("c1", "h")
        assert retired.retired_at == new.key_rotated_at and retired.retired_at.tzinfo is not None
        assert store.retired_key(key_id="c" * 16) is None
    finally:
        store.close()


def _mode(path) -> int:
    import stat

    return stat.S_IMODE(path.stat().st_mode)


def _write_something(store: Store) -> None:
    from meetgate.store import AuditEntry

    consumer = _consumer(store)
    _reserve(store, consumer.id, "k1")
    store.append_audit(AuditEntry(request_id="r", action="a", outcome="ok", http_status=200, latency_ms=1.0))


def test_a_new_store_and_its_wal_files_are_private_in_a_private_folder(tmp_path):
    import os

    folder = tmp_path / "state" / ".meetgate"
    previous = os.umask(0o022)  # the usual umask, which made the store 0644 in a 0755 folder
    try:
        store = Store.open(f"sqlite:///{folder}/meetgate.db")
        try:
            _write_something(store)
            files = [folder / name for name in ("meetgate.db", "meetgate.db-wal", "meetgate.db-shm")]
            assert all(f.exists() for f in files)  # WAL mode: written and not yet checkpointed away
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
            assert _mode(folder) == 0o700
        finally:
            store.close()
    finally:
        os.umask(previous)


def test_an_existing_store_readable_by_others_is_narrowed_to_its_owner(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    Store.open(f"sqlite:///{folder}/s.db").close()
    (folder / "s.db").chmod(0o644)  # as older versions left it
    store = Store.open(f"sqlite:///{folder}/s.db")
    try:
        _write_something(store)
        assert _mode(folder / "s.db") == 0o600 and _mode(folder / "s.db-wal") == 0o600
        assert _mode(folder) == 0o755  # a folder the operator made keeps its mode
    finally:
        store.close()
