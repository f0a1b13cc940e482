"""Monitoring data in the store: collected records, collection cursors, alerts, gateway activity.

``meetgate monitor`` writes here; the gateway's dashboard reads here (the gateway cannot import the
admin code, so what both need — the failure classes, the dashboard's figures — lives in this module).
Keyword-only arguments, as in :mod:`meetgate.store.repository`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from meetgate.store.repository import Store, utcnow
from meetgate.store.tables import audit_log, monitor_alerts, monitor_cursors, monitor_records

#: failure classes of the gateway's audit log (what the failure-spike rule and the dashboard count)
FAILURE_CLASSES = ("policy_403", "auth_401", "throttled_429", "server_5xx", "overreach", "other_4xx")


def classify_failure(outcome: str, http_status: int, graph_status: int | None) -> str | None:
    """The failure class of one gateway request, or None when it succeeded."""
    if http_status < 400 and outcome in ("ok", ""):
        return None
    if outcome in ("graph-access-policy-missing", "organizer-outside-policy") or graph_status == 403:
        return "policy_403"
    if outcome == "organizer-not-allowed":
        return "overreach"
    if outcome in ("unauthenticated", "graph-auth-failed") or http_status == 401 or graph_status == 401:
        return "auth_401"
    if outcome in ("graph-throttled", "rate-limited", "quota-exceeded") or 429 in (http_status, graph_status):
        return "throttled_429"
    if http_status >= 500 or (graph_status or 0) >= 500:
        return "server_5xx"
    if http_status >= 400:
        return "other_4xx"
    return None


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class MonitorRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _insert_ignore(self, values: dict[str, Any]) -> Any:
        """INSERT … ON CONFLICT DO NOTHING into ``monitor_records`` for the engine's dialect."""
        if self.store.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(monitor_records).values(**values).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(monitor_records).values(**values).on_conflict_do_nothing()

    # ---- collected records
    def add_records(
        self, *, source: str, tenant_id: str, app_id: str, records: Iterable[tuple[str, dt.datetime, Any]]
    ) -> int:
        """Insert records not seen before; returns how many were new."""
        now = utcnow()
        added = 0
        with self.store._tx() as conn:
            for record_id, at, data in records:
                result = conn.execute(
                    self._insert_ignore(
                        {
                            "source": source,
                            "id": record_id,
                            "tenant_id": tenant_id,
                            "app_id": app_id,
                            "at": at,
                            "collected_at": now,
                            "data": data,
                        },
                    )
                )
                added += result.rowcount or 0
        return added

    def records(
        self,
        *,
        source: str,
        tenant_id: str,
        app_id: str,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Records of ``source`` oldest first, each as stored (``data``)."""
        t = monitor_records.c
        query = (
            sa.select(t.data, t.at)
            .where(t.source == source, t.tenant_id == tenant_id, t.app_id == app_id)
            .order_by(t.at, t.id)
        )
        if since is not None:
            query = query.where(t.at >= since)
        if until is not None:
            query = query.where(t.at < until)
        with self.store.engine.connect() as conn:
            return [dict(row.data) for row in conn.execute(query)]

    def count_records(self, *, source: str, tenant_id: str, app_id: str) -> int:
        t = monitor_records.c
        query = sa.select(sa.func.count()).where(
            t.source == source, t.tenant_id == tenant_id, t.app_id == app_id
        )
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def latest_record(self, *, source: str, tenant_id: str, app_id: str) -> dict[str, Any] | None:
        t = monitor_records.c
        query = (
            sa.select(t.data)
            .where(t.source == source, t.tenant_id == tenant_id, t.app_id == app_id)
            .order_by(t.at.desc(), t.id.desc())
            .limit(1)
        )
        with self.store.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row.data) if row is not None else None

    def latest_any(self, *, source: str) -> dict[str, Any] | None:
        """The newest record of ``source`` over every tenant and app (the dashboard's view)."""
        t = monitor_records.c
        query = sa.select(t.data).where(t.source == source).order_by(t.at.desc(), t.id.desc()).limit(1)
        with self.store.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row.data) if row is not None else None

    # ---- cursors
    def cursor(self, *, tenant_id: str, app_id: str, source: str) -> dt.datetime | None:
        t = monitor_cursors.c
        query = sa.select(t.last_at).where(t.tenant_id == tenant_id, t.app_id == app_id, t.source == source)
        with self.store.engine.connect() as conn:
            return _aware(conn.execute(query).scalar_one_or_none())

    def set_cursor(self, *, tenant_id: str, app_id: str, source: str, last_at: dt.datetime) -> None:
        t = monitor_cursors.c
        where = (t.tenant_id == tenant_id, t.app_id == app_id, t.source == source)
        with self.store._tx() as conn:
            updated = conn.execute(
                monitor_cursors.update().where(*where).values(last_at=last_at, updated_at=utcnow())
            )
            if not updated.rowcount:
                conn.execute(
                    monitor_cursors.insert().values(
                        tenant_id=tenant_id,
                        app_id=app_id,
                        source=source,
                        last_at=last_at,
                        updated_at=utcnow(),
                    )
                )

    # ---- alerts
    def upsert_alert(self, *, alert: Mapping[str, Any], tenant_id: str, app_id: str) -> bool:
        """Record an alert; True when its key is new (to be sent), False when it was seen already."""
        now = utcnow()
        t = monitor_alerts.c
        with self.store._tx() as conn:
            row = conn.execute(sa.select(t.key, t.data).where(t.key == alert["key"])).first()
            if row is not None:
                data = dict(row.data)
                data["occurrences"] = int(data.get("occurrences", 1)) + 1
                conn.execute(
                    monitor_alerts.update().where(t.key == alert["key"]).values(last_seen=now, data=data)
                )
                return False
            conn.execute(
                monitor_alerts.insert().values(
                    key=alert["key"],
                    tenant_id=tenant_id,
                    app_id=app_id,
                    rule=alert["rule"],
                    severity=alert["severity"],
                    title=alert["title"],
                    first_seen=now,
                    last_seen=now,
                    status="open",
                    sent_at=None,
                    data={**alert, "occurrences": 1},
                )
            )
            return True

    def mark_sent(self, *, keys: Sequence[str]) -> None:
        if not keys:
            return
        with self.store._tx() as conn:
            conn.execute(
                monitor_alerts.update().where(monitor_alerts.c.key.in_(list(keys))).values(sent_at=utcnow())
            )

    def resolve_alert(self, *, key: str) -> bool:
        with self.store._tx() as conn:
            result = conn.execute(
                monitor_alerts.update().where(monitor_alerts.c.key == key).values(status="resolved")
            )
            return bool(result.rowcount)

    def alerts(
        self, *, status: str | None = "open", tenant_id: str | None = None, app_id: str | None = None
    ) -> list[dict[str, Any]]:
        t = monitor_alerts.c
        query = sa.select(monitor_alerts).order_by(t.last_seen.desc(), t.key)
        if status is not None:
            query = query.where(t.status == status)
        if tenant_id is not None:
            query = query.where(t.tenant_id == tenant_id)
        if app_id is not None:
            query = query.where(t.app_id == app_id)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            m = row._mapping
            out.append(
                {
                    **dict(m["data"]),
                    "status": m["status"],
                    "firstSeen": _aware(m["first_seen"]).isoformat(),  # type: ignore[union-attr]
                    "lastSeen": _aware(m["last_seen"]).isoformat(),  # type: ignore[union-attr]
                    "sent": m["sent_at"] is not None,
                }
            )
        return out

    # ---- go-live (``meetgate golive --start`` records the hypercare window)
    def latest_golive(self, *, client_id: str | None) -> dict[str, Any] | None:
        """The newest go-live event for ``client_id``: ``at`` and ``hypercare_until`` (None if none)."""
        from meetgate.store.runs import RunRepository

        return RunRepository(self.store).latest_golive(client_id=client_id)

    # ---- the gateway's audit log
    def gateway_requests(
        self, *, since: dt.datetime, until: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Audit log rows since ``since``, oldest first, with their failure class."""
        t = audit_log.c
        query = sa.select(
            t.at,
            t.consumer_name,
            t.organizer,
            t.action,
            t.outcome,
            t.http_status,
            t.graph_status,
            t.client_ip,
        ).where(t.at >= since)
        if until is not None:
            query = query.where(t.at < until)
        query = query.order_by(t.id)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            m = dict(row._mapping)
            m["at"] = _aware(m["at"])
            m["failure"] = classify_failure(str(m["outcome"]), int(m["http_status"]), m["graph_status"])
            out.append(m)
        return out


def is_creation(row: Mapping[str, Any]) -> bool:
    return row.get("action") == "meeting.create" and int(row.get("http_status", 0)) == 201


def activity_figures(
    rows: Sequence[Mapping[str, Any]], *, since: dt.datetime, until: dt.datetime, bucket_minutes: int
) -> dict[str, Any]:
    """Meetings over time, failures by class, top organizers and consumers, from audit rows."""
    bucket = dt.timedelta(minutes=bucket_minutes)
    count = max(1, int((until - since) / bucket) + (1 if (until - since) % bucket else 0))
    series = [0] * count
    failures: Counter[str] = Counter()
    organizers: Counter[str] = Counter()
    consumers: Counter[str] = Counter()
    requests = 0
    for row in rows:
        at = row["at"]
        requests += 1
        if row.get("failure"):
            failures[str(row["failure"])] += 1
        if is_creation(row):
            index = min(count - 1, max(0, int((at - since) / bucket)))
            series[index] += 1
            organizers[str(row.get("organizer") or "?")] += 1
            consumers[str(row.get("consumer_name") or "?")] += 1
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "bucketMinutes": bucket_minutes,
        "requests": requests,
        "meetingsCreated": sum(series),
        "meetingsOverTime": [
            {"start": (since + i * bucket).isoformat(), "count": n} for i, n in enumerate(series)
        ],
        "failuresByClass": {c: failures.get(c, 0) for c in FAILURE_CLASSES},
        "topOrganizers": [{"name": k, "count": v} for k, v in organizers.most_common(10)],
        "topConsumers": [{"name": k, "count": v} for k, v in consumers.most_common(10)],
    }
