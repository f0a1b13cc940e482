"""Data access for the gateway: consumers, idempotent meetings, the audit log.

Synchronous SQLAlchemy 2 Core. The gateway calls it from worker threads on PostgreSQL, and on its
event loop on SQLite, where a creation's statements (consumer by key id, reserve, save) run on
SQLite's own connection past SQLAlchemy's per-call machinery (see :class:`_SqliteDirect`). Nothing
is built at import time: open a store with :meth:`Store.open`. Every function takes keyword
arguments only.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from meetgate.errors import MeetgateError
from meetgate.private_files import PRIVATE_FILE_MODE, make_private_folder
from meetgate.store.tables import audit_log, consumers, meetings, retired_keys

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x6D656574  # "meet": serialises migrations of replicas starting together


class StoreError(MeetgateError, RuntimeError):
    """The store is unreachable or refused an operation."""


class ConsumerExists(StoreError):
    pass


class ConsumerNotFound(StoreError):
    pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)  # SQLite gives naive datetimes back


@dataclass(frozen=True)
class ConsumerRecord:
    id: str
    name: str
    key_id: str
    key_hash: str
    organizers: tuple[str, ...]
    organizers_from_policy: bool
    rate_per_minute: int | None
    daily_quota: int | None
    created_at: dt.datetime
    key_rotated_at: dt.datetime | None
    revoked_at: dt.datetime | None
    #: when the current key stops working (None: never)
    key_expires_at: dt.datetime | None = None
    #: the placement of its meetings when a request names none (None: standalone)
    default_placement: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def key_expired(self, now: dt.datetime) -> bool:
        """True when the current key has expired at ``now``."""
        return self.key_expires_at is not None and now >= self.key_expires_at

    def __repr__(self) -> str:  # the key hash stays out of reprs and logs
        return f"ConsumerRecord(id={self.id!r}, name={self.name!r}, active={self.active})"


@dataclass(frozen=True)
class RetiredKey:
    """A key a rotation replaced: its hash (to tell its holder from a guesser) and when."""

    key_id: str
    consumer_id: str
    key_hash: str
    retired_at: dt.datetime

    def __repr__(self) -> str:  # the key hash stays out of reprs and logs
        return f"RetiredKey(key_id={self.key_id!r}, consumer_id={self.consumer_id!r})"


@dataclass(frozen=True)
class MeetingRecord:
    id: str
    consumer_id: str
    idempotency_key: str
    request_hash: str
    organizer: str
    external_id: str
    graph_meeting_id: str | None
    join_url: str | None
    state: str
    snapshot: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime
    #: 0 at creation, +1 for every change made through the gateway (its invitation's SEQUENCE)
    revision: int = 0
    #: ``standalone`` (an onlineMeeting) or ``calendar`` (an Exchange event with a Teams meeting)
    placement: str = "standalone"
    #: the calendar event's id (calendar placement; a series' master for a recurring meeting)
    graph_event_id: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    request_id: str
    action: str
    outcome: str
    http_status: int
    latency_ms: float
    consumer_id: str | None = None
    consumer_name: str | None = None
    organizer: str | None = None
    meeting_id: str | None = None
    graph_status: int | None = None
    graph_request_id: str | None = None
    client_ip: str | None = None
    at: dt.datetime | None = None


def _consumer(m: Mapping[Any, Any]) -> ConsumerRecord:
    return ConsumerRecord(
        id=m["id"],
        name=m["name"],
        key_id=m["key_id"],
        key_hash=m["key_hash"],
        organizers=tuple(m["organizers"] or ()),
        organizers_from_policy=bool(m["organizers_from_policy"]),
        rate_per_minute=m["rate_per_minute"],
        daily_quota=m["daily_quota"],
        created_at=_aware(m["created_at"]) or utcnow(),
        key_rotated_at=_aware(m["key_rotated_at"]),
        revoked_at=_aware(m["revoked_at"]),
        key_expires_at=_aware(m["key_expires_at"]),
        default_placement=m["default_placement"],
    )


def _meeting(m: Mapping[Any, Any]) -> MeetingRecord:
    return MeetingRecord(
        id=m["id"],
        consumer_id=m["consumer_id"],
        idempotency_key=m["idempotency_key"],
        request_hash=m["request_hash"],
        organizer=m["organizer"],
        external_id=m["external_id"],
        graph_meeting_id=m["graph_meeting_id"],
        join_url=m["join_url"],
        state=m["state"],
        snapshot=m["snapshot"],
        created_at=_aware(m["created_at"]) or utcnow(),
        updated_at=_aware(m["updated_at"]) or utcnow(),
        revision=m["revision"],
        placement=m["placement"],
        graph_event_id=m["graph_event_id"],
    )


#: the SQLite store holds join URLs, passcodes, the audit log and key hashes: its owner's only
#: the files SQLite keeps beside the database in WAL mode (created with the database file's mode)
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def prepare_private_sqlite_file(database: str) -> None:
    """Create the SQLite file ``database`` with mode 0600 before SQLite opens it, in a folder of
    mode 0700 when the folder is new, and narrow an existing store file (and its ``-wal``, ``-shm``,
    ``-journal``) that others may read to 0600. SQLite gives the files it adds beside the database
    the database file's own mode, so they are private too. An existing folder keeps its mode."""
    path = Path(database)
    make_private_folder(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        pass
    else:
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
        finally:
            os.close(fd)
    for suffix in _SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        try:
            status = companion.stat()
            if status.st_mode & 0o077 and status.st_uid == os.getuid():
                companion.chmod(PRIVATE_FILE_MODE)
        except OSError:  # absent, or not ours to change (a read-only mount): left as it is
            continue


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and their folder created, both
    private to their owner (see :func:`prepare_private_sqlite_file`)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
        if not in_memory and not database.startswith("file:"):
            prepare_private_sqlite_file(database)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20, max_overflow=20
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return sa.create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def _sqlite_file(engine: Engine) -> bool:
    """True for an SQLite database in a file (each connection to an in-memory one sees its own)."""
    url = engine.url
    database = url.database or ""
    return (
        engine.dialect.name == "sqlite"
        and database not in ("", ":memory:")
        and url.query.get("mode") != "memory"
    )


def _convert(process: Callable[[Any], Any] | None, value: Any) -> Any:
    return value if process is None else process(value)


#: runs a named statement with parameters, returning its rows as mappings
_Run = Callable[[str, Mapping[str, Any]], list[Mapping[Any, Any]]]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, Callable[[Any], Any]], ...]
    columns: tuple[str, ...]
    results: tuple[Callable[[Any], Any] | None, ...]


class _SqliteDirect:
    """The statements of every creation, run on SQLite's own connection past SQLAlchemy's per-call
    machinery (its connection, transaction, context and result objects cost more than SQLite does).

    The SQL is compiled once from the same Core statements, and values pass through the columns'
    own type processors, so rows are written and read exactly as the Core path does. One connection,
    used only under the store's write lock; a failed call rolls back, so no transaction stays open.
    """

    def __init__(self, engine: Engine, statements: Callable[[], dict[str, Any]]) -> None:
        self._engine = engine
        self._statements = statements
        self._pooled: Any = None
        self._dbapi: Any = None
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, name: str) -> _Compiled:
        dialect = self._engine.dialect
        statement = self._statements()[name]
        dialect_class: Any = type(dialect)
        compiled = statement.compile(dialect=dialect_class(paramstyle="named"))  # sqlite3 binds by name
        binds = []
        for key, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                binds.append((key, process))
        columns = tuple(statement.exported_columns)
        return _Compiled(
            sql=compiled.string,
            binds=tuple(binds),
            columns=tuple(c.name for c in columns),
            results=tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns),
        )

    def _run(self, name: str, params: Mapping[str, Any]) -> list[Mapping[Any, Any]]:
        compiled = self._compiled.get(name) or self._compiled.setdefault(name, self._compile(name))
        if compiled.binds:
            params = dict(params)
            for key, process in compiled.binds:
                params[key] = process(params[key])
        try:
            rows = self._dbapi.execute(compiled.sql, params).fetchall()
        except sqlite3.Error as exc:  # raised as the Core path raises it (IntegrityError, ...)
            raise sa.exc.DBAPIError.instance(compiled.sql, params, exc, sqlite3.Error) from exc
        names, results = compiled.columns, compiled.results
        return [dict(zip(names, map(_convert, results, row), strict=True)) for row in rows]

    @contextmanager
    def transaction(self) -> Iterator[_Run]:
        """Statements run in one transaction (SQLite begins it at the first write), committed at the
        end; rolled back when a statement or the commit fails."""
        if self._dbapi is None:
            self._pooled = self._engine.raw_connection()  # with the engine's pragmas (WAL, timeouts)
            self._dbapi = self._pooled.dbapi_connection
        try:
            yield self._run
            if self._dbapi.in_transaction:
                try:
                    self._dbapi.commit()
                except sqlite3.Error as exc:
                    raise sa.exc.DBAPIError.instance("COMMIT", None, exc, sqlite3.Error) from exc
        except BaseException:
            if self._dbapi.in_transaction:
                self._dbapi.rollback()
            raise

    def close(self) -> None:
        if self._pooled is not None:
            self._pooled.close()
            self._pooled = self._dbapi = None


class Store:
    """The gateway's persistent state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite allows one writer: queue writers here instead of in SQLite's sleeping busy handler
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        self._direct = _SqliteDirect(engine, lambda: self._statements) if _sqlite_file(engine) else None

    @property
    def inline(self) -> bool:
        """True when calls are cheap and local enough to make from an event loop (SQLite)."""
        return self.engine.dialect.name == "sqlite"

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        try:
            store = cls(make_engine(url))
            if migrate:
                store.migrate()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the store at {sa.make_url(url).render_as_string(hide_password=True)}: "
                f"{type(exc).__name__}",
                "check store_url (MEETGATE_STORE_URL) and that the database is reachable",
            ) from None
        return store

    def close(self) -> None:
        if self._direct is not None:
            with self._write_lock:
                self._direct.close()
        self.engine.dispose()

    # ---- schema
    def migrate(self) -> None:
        """Bring the schema to the newest migration (safe when several replicas start together)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _hot(self, *, write: bool) -> Iterator[_Run]:
        """Run statements of :attr:`_statements` by name (rows as mappings), in one transaction when
        ``write``: on SQLite's own connection when there is one, else through SQLAlchemy Core."""
        if self._direct is not None:
            with self._write_lock, self._direct.transaction() as run:
                yield run
            return
        with self._tx() if write else self.engine.connect() as conn:
            statements = self._statements
            yield lambda name, params: [row._mapping for row in conn.execute(statements[name], params)]

    # ---- consumers
    def add_consumer(
        self,
        *,
        name: str,
        key_id: str,
        key_hash: str,
        organizers: Sequence[str],
        organizers_from_policy: bool = False,
        rate_per_minute: int | None = None,
        daily_quota: int | None = None,
        key_expires_at: dt.datetime | None = None,
        default_placement: str | None = None,
    ) -> ConsumerRecord:
        values = {
            "id": str(uuid.uuid4()),
            "name": name,
            "key_id": key_id,
            "key_hash": key_hash,
            "organizers": list(organizers),
            "organizers_from_policy": organizers_from_policy,
            "rate_per_minute": rate_per_minute,
            "daily_quota": daily_quota,
            "created_at": utcnow(),
            "key_expires_at": key_expires_at,
            "default_placement": default_placement,
        }
        try:
            with self._tx() as conn:
                conn.execute(consumers.insert().values(**values))
                row = conn.execute(consumers.select().where(consumers.c.id == values["id"])).one()
        except sa.exc.IntegrityError:
            raise ConsumerExists(
                f"a consumer named {name!r} exists already",
                "choose another name, or `meetgate consumers rotate-key` to give it a new key",
            ) from None
        return _consumer(row._mapping)

    def consumer_by_key_id(self, *, key_id: str) -> ConsumerRecord | None:
        with self._hot(write=False) as run:
            rows = run("consumer_by_key_id", {"key_id": key_id})
        return _consumer(rows[0]) if rows else None

    def consumer(self, *, name_or_id: str) -> ConsumerRecord:
        with self.engine.connect() as conn:
            row = conn.execute(
                consumers.select().where(sa.or_(consumers.c.name == name_or_id, consumers.c.id == name_or_id))
            ).first()
        if row is None:
            raise ConsumerNotFound(
                f"no consumer named {name_or_id!r}", "list them with `meetgate consumers list`"
            )
        return _consumer(row._mapping)

    def list_consumers(self) -> list[ConsumerRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(consumers.select().order_by(consumers.c.name)).all()
        return [_consumer(r._mapping) for r in rows]

    def revoke_consumer(self, *, name_or_id: str) -> ConsumerRecord:
        record = self.consumer(name_or_id=name_or_id)
        with self._tx() as conn:
            conn.execute(
                consumers.update()
                .where(consumers.c.id == record.id, consumers.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return self.consumer(name_or_id=record.id)

    def replace_key(
        self, *, name_or_id: str, key_id: str, key_hash: str, key_expires_at: dt.datetime | None = None
    ) -> ConsumerRecord:
        """Give the consumer a new key (expiring at ``key_expires_at``, or never) and re-enable it;
        the old key is kept in ``retired_keys`` so that its holder is told it was rotated."""
        record = self.consumer(name_or_id=name_or_id)
        now = utcnow()
        with self._tx() as conn:
            conn.execute(
                retired_keys.insert().values(
                    key_id=record.key_id, consumer_id=record.id, key_hash=record.key_hash, retired_at=now
                )
            )
            conn.execute(
                consumers.update()
                .where(consumers.c.id == record.id)
                .values(
                    key_id=key_id,
                    key_hash=key_hash,
                    key_rotated_at=now,
                    revoked_at=None,
                    key_expires_at=key_expires_at,
                )
            )
        return self.consumer(name_or_id=record.id)

    def retired_key(self, *, key_id: str) -> RetiredKey | None:
        """The key a rotation replaced under ``key_id``, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(retired_keys.select().where(retired_keys.c.key_id == key_id)).first()
        if row is None:
            return None
        m = row._mapping
        return RetiredKey(m["key_id"], m["consumer_id"], m["key_hash"], _aware(m["retired_at"]) or utcnow())

    def set_organizers(self, *, name_or_id: str, organizers: Sequence[str]) -> ConsumerRecord:
        record = self.consumer(name_or_id=name_or_id)
        with self._tx() as conn:
            conn.execute(
                consumers.update().where(consumers.c.id == record.id).values(organizers=list(organizers))
            )
        return self.consumer(name_or_id=record.id)

    def set_default_placement(self, *, name_or_id: str, placement: str | None) -> ConsumerRecord:
        """The placement the consumer's meetings get when a request names none (None: standalone)."""
        record = self.consumer(name_or_id=name_or_id)
        with self._tx() as conn:
            conn.execute(
                consumers.update().where(consumers.c.id == record.id).values(default_placement=placement)
            )
        return self.consumer(name_or_id=record.id)

    # ---- meetings
    def reserve_meeting(
        self,
        *,
        consumer_id: str,
        idempotency_key: str,
        request_hash: str,
        organizer: str,
        external_id: str,
        placement: str = "standalone",
    ) -> tuple[MeetingRecord, bool]:
        """Record the intent to create (in ``placement``, kept for every retry and takeover); returns
        (record, True) or the existing (record, False)."""
        now = utcnow()
        values = {
            "id": "mtg_" + uuid.uuid4().hex,
            "consumer_id": consumer_id,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "organizer": organizer,
            "external_id": external_id,
            "placement": placement,
            "state": "pending",
            "created_at": now,
            "updated_at": now,
        }
        with self._hot(write=True) as run:
            rows = run("reserve", values)
            if rows:
                return _meeting(rows[0]), True
            rows = run("meeting_by_key", {"consumer_id": consumer_id, "idempotency_key": idempotency_key})
        return _meeting(rows[0]), False

    @functools.cached_property
    def _statements(self) -> dict[str, Any]:
        """The hot path's statements, built once (with bind parameters) and compiled once."""
        from sqlalchemy.dialects import postgresql, sqlite

        dialect_insert: Any = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        b = sa.bindparam
        reserve_columns = (
            "id",
            "consumer_id",
            "idempotency_key",
            "request_hash",
            "organizer",
            "external_id",
            "placement",
            "state",
            "created_at",
            "updated_at",
        )
        c = meetings.c
        return {
            "consumer_by_key_id": consumers.select().where(consumers.c.key_id == b("key_id")),
            "reserve": dialect_insert(meetings)
            .values({name: b(name) for name in reserve_columns})
            .on_conflict_do_nothing()
            .returning(*meetings.c),
            "meeting_by_key": meetings.select().where(
                c.consumer_id == b("consumer_id"), c.idempotency_key == b("idempotency_key")
            ),
            "save": meetings.update()
            .where(c.id == b("meeting_id"))
            .values(
                state=b("state"),
                snapshot=b("snapshot", type_=meetings.c.snapshot.type),
                updated_at=b("updated_at"),
                graph_meeting_id=sa.func.coalesce(b("graph_meeting_id", type_=sa.Text), c.graph_meeting_id),
                join_url=sa.func.coalesce(b("join_url", type_=sa.Text), c.join_url),
                graph_event_id=sa.func.coalesce(b("graph_event_id", type_=sa.Text), c.graph_event_id),
                revision=c.revision + b("revise", type_=sa.Integer),
            )
            .returning(*meetings.c),
        }

    def save_meeting(
        self,
        *,
        meeting_id: str,
        state: str,
        snapshot: dict[str, Any] | None,
        graph_meeting_id: str | None = None,
        join_url: str | None = None,
        revise: bool = False,
        graph_event_id: str | None = None,
    ) -> MeetingRecord:
        """Save the meeting's state and snapshot; ``revise`` when this is a change to the meeting
        (update, lock, cancel), which raises its revision by one."""
        params = {
            "meeting_id": meeting_id,
            "state": state,
            "snapshot": snapshot,
            "updated_at": utcnow(),
            "graph_meeting_id": graph_meeting_id,
            "join_url": join_url,
            "graph_event_id": graph_event_id,
            "revise": 1 if revise else 0,
        }
        with self._hot(write=True) as run:
            rows = run("save", params)
        if not rows:
            raise sa.exc.NoResultFound(f"no meeting {meeting_id!r} to save")
        return _meeting(rows[0])

    def meeting(self, *, consumer_id: str, meeting_id: str) -> MeetingRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                meetings.select().where(meetings.c.id == meeting_id, meetings.c.consumer_id == consumer_id)
            ).first()
        return _meeting(row._mapping) if row else None

    def meeting_by_key(self, *, consumer_id: str, idempotency_key: str) -> MeetingRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                meetings.select().where(
                    meetings.c.consumer_id == consumer_id, meetings.c.idempotency_key == idempotency_key
                )
            ).first()
        return _meeting(row._mapping) if row else None

    def meeting_by_join_url(self, *, consumer_id: str, join_url: str) -> MeetingRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                meetings.select().where(
                    meetings.c.consumer_id == consumer_id, meetings.c.join_url == join_url
                )
            ).first()
        return _meeting(row._mapping) if row else None

    def count_meetings(self, *, consumer_id: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(meetings)
        if consumer_id is not None:
            query = query.where(meetings.c.consumer_id == consumer_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # ---- audit
    def append_audit(self, *entries: AuditEntry) -> None:
        """Append entries to the audit log in one transaction."""
        if not entries:
            return
        rows = []
        for entry in entries:
            values = dict(entry.__dict__)
            values["at"] = entry.at or utcnow()
            rows.append(values)
        with self._tx() as conn:
            conn.execute(audit_log.insert(), rows)

    def audit(self, *, consumer_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        query = audit_log.select().order_by(audit_log.c.id.desc()).limit(limit)
        if consumer_id is not None:
            query = query.where(audit_log.c.consumer_id == consumer_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        fields = AuditEntry.__dataclass_fields__
        return [AuditEntry(**{k: v for k, v in r._mapping.items() if k in fields}) for r in rows]
