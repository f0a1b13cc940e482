"""Validation runs, the test-meeting cleanup journal and go-live events (runbook steps 6 and 8).

Plain dicts in and out (the admin layer owns the models); keyword-only arguments. Open with a
:class:`~meetgate.store.Store`: ``RunRepository(Store.open(url))``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from meetgate.store.repository import Store, _aware, utcnow
from meetgate.store.tables import golive_events, validation_pending, validation_runs


class RunRepository:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    # ---- validation runs
    def save_validation_run(self, *, run: Mapping[str, Any], covers_policy_tests: bool) -> None:
        """Insert (or replace) one run, given as ``ValidationRun.to_dict()``."""
        values = {
            "id": str(run["id"]),
            "started_at": dt.datetime.fromisoformat(str(run["started_at"])),
            "finished_at": dt.datetime.fromisoformat(str(run["finished_at"]))
            if run.get("finished_at")
            else None,
            "tenant_id": run.get("tenant_id"),
            "client_id": run.get("client_id"),
            "profile": str(run.get("profile") or "default"),
            "status": str(run["status"]),
            "covers_policy_tests": covers_policy_tests,
            "result": dict(run),
        }
        with self.engine.begin() as conn:
            conn.execute(validation_runs.delete().where(validation_runs.c.id == values["id"]))
            conn.execute(validation_runs.insert().values(**values))

    def validation_runs(
        self, *, client_id: str | None = None, since: dt.datetime | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Newest first: each run's stored dict."""
        query = validation_runs.select().order_by(validation_runs.c.started_at.desc()).limit(limit)
        if client_id is not None:
            query = query.where(validation_runs.c.client_id == client_id)
        if since is not None:
            query = query.where(validation_runs.c.started_at >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [dict(r._mapping["result"] or {}) for r in rows]

    def validation_run(self, *, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(validation_runs.select().where(validation_runs.c.id == run_id)).first()
        return dict(row._mapping["result"] or {}) if row else None

    # ---- cleanup journal
    def announce_pending(
        self, *, organizer_id: str, external_id: str, meeting_id: str | None, client_id: str | None
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                validation_pending.delete().where(
                    validation_pending.c.organizer_id == organizer_id,
                    validation_pending.c.external_id == external_id,
                )
            )
            conn.execute(
                validation_pending.insert().values(
                    organizer_id=organizer_id,
                    external_id=external_id,
                    meeting_id=meeting_id,
                    client_id=client_id,
                    announced_at=utcnow(),
                )
            )

    def resolve_pending(self, *, organizer_id: str, external_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                validation_pending.delete().where(
                    validation_pending.c.organizer_id == organizer_id,
                    validation_pending.c.external_id == external_id,
                )
            )

    def pending(self, *, client_id: str | None = None) -> list[dict[str, Any]]:
        query = validation_pending.select().order_by(validation_pending.c.announced_at)
        if client_id is not None:
            query = query.where(validation_pending.c.client_id == client_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "organizer_id": r._mapping["organizer_id"],
                "external_id": r._mapping["external_id"],
                "meeting_id": r._mapping["meeting_id"],
                "announced_at": _aware(r._mapping["announced_at"]),
            }
            for r in rows
        ]

    # ---- go-live
    def record_golive(
        self,
        *,
        tenant_id: str | None,
        client_id: str | None,
        verdict: str,
        hypercare_until: dt.datetime,
        report: Mapping[str, Any] | None,
        at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        values = {
            "id": str(uuid.uuid4()),
            "at": at or utcnow(),
            "tenant_id": tenant_id,
            "client_id": client_id,
            "verdict": verdict,
            "hypercare_until": hypercare_until,
            "report": dict(report) if report is not None else None,
        }
        with self.engine.begin() as conn:
            conn.execute(golive_events.insert().values(**values))
        return {k: v for k, v in values.items() if k != "report"}

    def latest_golive(self, *, client_id: str | None = None) -> dict[str, Any] | None:
        query = golive_events.select().order_by(golive_events.c.at.desc()).limit(1)
        if client_id is not None:
            query = query.where(golive_events.c.client_id == client_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        return {
            "id": m["id"],
            "at": _aware(m["at"]),
            "tenant_id": m["tenant_id"],
            "client_id": m["client_id"],
            "verdict": m["verdict"],
            "hypercare_until": _aware(m["hypercare_until"]),
        }

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(validation_runs)).scalar_one())
