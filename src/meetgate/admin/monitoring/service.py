"""One monitoring pass: collect, evaluate the rules, record alerts; and the report's data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meetgate.admin.monitoring.collect import AUDITS, POLICY, SIGN_INS, STATUS, Collector, CollectResult
from meetgate.admin.monitoring.model import Alert, CertificateStatus, MonitorScope, PolicySnapshot, Thresholds
from meetgate.admin.monitoring.rules import RuleInput, evaluate
from meetgate.graph.audit import parse_graph_time
from meetgate.store.monitoring import MonitorRepository, activity_figures


@dataclass(frozen=True)
class PassResult:
    """What one pass saw and raised; ``new_alerts`` are those not raised before (to be sent)."""

    since: dt.datetime
    now: dt.datetime
    hypercare: bool
    collected: CollectResult | None
    alerts: list[Alert]
    new_alerts: list[Alert]


@dataclass
class Monitor:
    repo: MonitorRepository
    scope: MonitorScope
    collector: Collector | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    hypercare_thresholds: Thresholds | None = None
    certificates: Sequence[CertificateStatus] = ()
    known_key_ids: frozenset[str] = frozenset()
    #: the policy file scopes calendar placement ([mailbox_scope])
    mailbox_scoped: bool = False
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def hypercare_until(self, now: dt.datetime) -> dt.datetime | None:
        """The end of the go-live hypercare window when ``now`` is inside it (from ``meetgate golive``)."""
        event = self.repo.latest_golive(client_id=self.scope.app_id)
        if not event or not event.get("hypercare_until") or not event.get("at"):
            return None
        if event["at"] <= now < event["hypercare_until"]:
            return event["hypercare_until"]  # type: ignore[no-any-return]
        return None

    def rule_input(self, since: dt.datetime, now: dt.datetime) -> RuleInput:
        hypercare = self.hypercare_until(now) is not None
        thresholds = (self.hypercare_thresholds or self.thresholds) if hypercare else self.thresholds
        tid, aid = self.scope.tenant_id, self.scope.app_id
        all_sign_ins = self.repo.records(source=SIGN_INS, tenant_id=tid, app_id=aid)
        period = [s for s in all_sign_ins if parse_graph_time(str(s["createdDateTime"])) >= since]
        earlier = [s for s in all_sign_ins if parse_graph_time(str(s["createdDateTime"])) < since]
        audits = self.repo.records(source=AUDITS, since=since, tenant_id=tid, app_id=aid)
        baseline_start = since - dt.timedelta(days=thresholds.baseline_days)
        latest_policy = self.repo.latest_record(source=POLICY, tenant_id=tid, app_id=aid)
        return RuleInput(
            now=now,
            since=since,
            thresholds=thresholds,
            hypercare=hypercare,
            sign_ins=period,
            earlier_sign_ins=earlier,
            audits=audits,
            requests=self.repo.gateway_requests(since=since),
            baseline_requests=self.repo.gateway_requests(since=baseline_start, until=since),
            policy=PolicySnapshot.from_dict(latest_policy) if latest_policy else None,
            certificates=self.certificates,
            known_key_ids=self.known_key_ids,
            mailbox_scoped=self.mailbox_scoped,
        )

    def run(self, since: dt.timedelta, *, collect: bool = True) -> PassResult:
        """Collect (when a collector is set), evaluate the period ``now - since .. now``, record alerts."""
        collected = self.collector.collect() if (collect and self.collector is not None) else None
        now = self.now()
        start = now - since
        data = self.rule_input(start, now)
        alerts = evaluate(data)
        new = [
            a
            for a in alerts
            if self.repo.upsert_alert(
                alert=a.to_dict(), tenant_id=self.scope.tenant_id, app_id=self.scope.app_id
            )
        ]
        self.repo.add_records(
            source=STATUS,
            tenant_id=self.scope.tenant_id,
            app_id=self.scope.app_id,
            records=[(f"status-{now.isoformat()}", now, self._status(now, data.hypercare))],
        )
        return PassResult(start, now, data.hypercare, collected, alerts, new)

    def _status(self, now: dt.datetime, hypercare: bool) -> dict[str, Any]:
        """What the dashboard shows besides the gateway's figures: certificates, hypercare."""
        until = self.hypercare_until(now)
        return {
            "at": now.isoformat(),
            "tenantId": self.scope.tenant_id,
            "appId": self.scope.app_id,
            "hypercare": hypercare,
            "hypercareUntil": until.isoformat() if until else None,
            "certificates": [
                {
                    "thumbprint": c.thumbprint,
                    "notAfter": c.not_after.isoformat(),
                    "daysLeft": round(c.days_left(now), 1),
                    "source": c.source,
                }
                for c in self.certificates
            ],
        }

    def report(self, result: PassResult, *, bucket_minutes: int | None = None) -> dict[str, Any]:
        """Everything ``meetgate monitor report`` shows, as JSON-ready data."""
        tid, aid = self.scope.tenant_id, self.scope.app_id
        span = result.now - result.since
        bucket = bucket_minutes or (60 if span > dt.timedelta(hours=6) else 10)
        rows = self.repo.gateway_requests(since=result.since)
        sign_ins = [
            s
            for s in self.repo.records(source=SIGN_INS, tenant_id=tid, app_id=aid)
            if parse_graph_time(str(s["createdDateTime"])) >= result.since
        ]
        audits = self.repo.records(source=AUDITS, since=result.since, tenant_id=tid, app_id=aid)
        failed = [s for s in sign_ins if int((s.get("status") or {}).get("errorCode") or 0) != 0]
        policy = self.repo.latest_record(source=POLICY, tenant_id=tid, app_id=aid)
        hypercare_until = self.hypercare_until(result.now)
        return {
            "tenantId": self.scope.tenant_id,
            "appId": self.scope.app_id,
            "since": result.since.isoformat(),
            "until": result.now.isoformat(),
            "hypercare": result.hypercare,
            "hypercareUntil": hypercare_until.isoformat() if hypercare_until else None,
            "collected": result.collected.to_dict() if result.collected else None,
            "signIns": {
                "total": len(sign_ins),
                "failed": len(failed),
                "ips": sorted({str(s.get("ipAddress")) for s in sign_ins}),
                "keyIds": sorted({str(s.get("servicePrincipalCredentialKeyId")) for s in sign_ins}),
            },
            "directoryAudits": [
                {
                    "id": a.get("id"),
                    "at": a.get("activityDateTime"),
                    "activity": a.get("activityDisplayName"),
                    "result": a.get("result"),
                }
                for a in audits
            ],
            "gateway": activity_figures(rows, since=result.since, until=result.now, bucket_minutes=bucket),
            "policy": (policy or {}).get("coverage"),
            "certificates": [
                {
                    "thumbprint": c.thumbprint,
                    "notAfter": c.not_after.isoformat(),
                    "daysLeft": round(c.days_left(result.now), 1),
                    "source": c.source,
                }
                for c in self.certificates
            ],
            "alerts": [a.to_dict() for a in result.alerts],
            "newAlerts": [a.key for a in result.new_alerts],
        }
