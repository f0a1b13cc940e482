"""Collection: Entra's logs into the store, incrementally, and policy snapshots.

Each source keeps a cursor (the newest record time seen). The next run asks for records from
``cursor - overlap`` on (Entra writes records late, with their original time) and inserts only
records whose id is new, so a restart neither misses nor repeats a record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from meetgate.admin.monitoring.model import MonitorScope, PolicySnapshot
from meetgate.admin.policy.model import TenantPolicyState, policy_name
from meetgate.graph.audit import concerns_app, parse_graph_time
from meetgate.store.monitoring import MonitorRepository

SIGN_INS = "signin"
AUDITS = "directory_audit"
POLICY = "policy"
STATUS = "status"
DEFAULT_OVERLAP = dt.timedelta(minutes=10)
#: first run: how far back to read
DEFAULT_BACKFILL = dt.timedelta(days=7)


class AuditLogPort(Protocol):
    """What collection needs of :class:`meetgate.graph.audit.AuditLogService`."""

    requests: int

    def service_principal_sign_ins(
        self, app_id: str, *, since: dt.datetime | None = None
    ) -> Iterator[dict[str, Any]]: ...

    def directory_audits(
        self, *, since: dt.datetime | None = None, category: str | None = ...
    ) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True)
class CollectResult:
    new_sign_ins: int
    new_audits: int
    seen_sign_ins: int
    seen_audits: int
    requests: int

    def to_dict(self) -> dict[str, int]:
        return {
            "newSignIns": self.new_sign_ins,
            "newAudits": self.new_audits,
            "seenSignIns": self.seen_sign_ins,
            "seenAudits": self.seen_audits,
            "requests": self.requests,
        }


class Collector:
    def __init__(
        self,
        logs: AuditLogPort,
        repo: MonitorRepository,
        scope: MonitorScope,
        *,
        overlap: dt.timedelta = DEFAULT_OVERLAP,
        backfill: dt.timedelta = DEFAULT_BACKFILL,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.logs = logs
        self.repo = repo
        self.scope = scope
        self.overlap = overlap
        self.backfill = backfill
        self.now = now

    def _since(self, source: str) -> dt.datetime:
        cursor = self.repo.cursor(tenant_id=self.scope.tenant_id, app_id=self.scope.app_id, source=source)
        return (cursor - self.overlap) if cursor is not None else self.now() - self.backfill

    def _store(self, source: str, items: Iterable[dict[str, Any]], time_key: str) -> tuple[int, int]:
        rows: list[tuple[str, dt.datetime, Any]] = []
        for item in items:
            if not item.get("id") or not item.get(time_key):
                continue
            rows.append((str(item["id"]), parse_graph_time(str(item[time_key])), item))
        added = self.repo.add_records(
            source=source, tenant_id=self.scope.tenant_id, app_id=self.scope.app_id, records=rows
        )
        if rows:
            newest = max(at for _, at, _ in rows)
            current = self.repo.cursor(
                tenant_id=self.scope.tenant_id, app_id=self.scope.app_id, source=source
            )
            if current is None or newest > current:
                self.repo.set_cursor(
                    tenant_id=self.scope.tenant_id, app_id=self.scope.app_id, source=source, last_at=newest
                )
        return added, len(rows)

    def collect(self) -> CollectResult:
        before = self.logs.requests
        sign_ins = list(self.logs.service_principal_sign_ins(self.scope.app_id, since=self._since(SIGN_INS)))
        new_sign_ins, seen_sign_ins = self._store(SIGN_INS, sign_ins, "createdDateTime")
        audits = [
            a
            for a in self.logs.directory_audits(since=self._since(AUDITS))
            if concerns_app(a, self.scope.ids)
        ]
        new_audits, seen_audits = self._store(AUDITS, audits, "activityDateTime")
        return CollectResult(
            new_sign_ins, new_audits, seen_sign_ins, seen_audits, self.logs.requests - before
        )

    def snapshot_policy(self, state: TenantPolicyState, approved_ids: Iterable[str]) -> PolicySnapshot:
        """Record who holds the scope's policy now (direct, group or global) against the approved list."""
        wanted = policy_name(self.scope.policy_name).lower()
        # Teams shows a -Global grant as the tenant-wide "Global" instance carrying the policy's app ids
        global_definition = state.policy("global")
        global_grant = bool(state.global_policy) and (
            policy_name(str(state.global_policy)).lower() == wanted
            or (global_definition is not None and global_definition.lists_any([self.scope.app_id]))
        )
        names = {wanted, "global"} if global_grant else {wanted}
        holders: dict[str, tuple[str, str]] = {}
        candidates = set(state.direct) | set(state.upns)
        for grant in state.group_grants:
            candidates |= set(grant.members)
        for user_id in candidates:
            name, source = state.effective(user_id)
            if name and policy_name(name).lower() in names:
                holders[user_id] = (state.upns.get(user_id, user_id), source)
        now = self.now()
        snapshot = PolicySnapshot(
            taken_at=now.isoformat(),
            policy=self.scope.policy_name,
            holders=holders,
            approved=frozenset(approved_ids),
            global_grant=global_grant,
        )
        self.repo.add_records(
            source=POLICY,
            tenant_id=self.scope.tenant_id,
            app_id=self.scope.app_id,
            records=[(f"policy-{now.isoformat()}", now, snapshot.to_dict())],
        )
        return snapshot
