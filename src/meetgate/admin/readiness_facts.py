"""Runbook step 8's facts, gathered: what :class:`~meetgate.admin.readiness.ReadinessInputs` needs from
the policy backend, the local certificate, the store's monitoring runs and its consumers.

Each gatherer takes what it reads from (a policy session, a repository, consumer records) and
returns plain values; the CLI builds the readers (``meetgate.composition``) and renders the report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from meetgate.admin.monitoring.collect import STATUS as MONITOR_STATUS_SOURCE
from meetgate.admin.readiness import ConsumerScope, MonitoringStatus


class PolicyReader(Protocol):
    """What a policy session offers: the desired state, the tenant's state and a directory."""

    desired: Any

    def read_state(self) -> Any: ...

    def directory(self) -> Any: ...


class MonitorRecords(Protocol):
    def latest_record(self, *, source: str, tenant_id: str, app_id: str) -> dict[str, Any] | None: ...


def policy_facts(session: PolicyReader) -> tuple[dict[str, str], tuple[str, ...], Any]:
    """(approved organizer id → UPN, references that did not resolve, the tenant's policy state)."""
    from meetgate.admin.policy.planner import resolve_organizers

    state = session.read_state()
    resolved = resolve_organizers(session.desired, session.directory())
    approved = {uid: user.upn for uid, user in resolved.users.items()}
    return approved, tuple(resolved.unknown), state


def certificate_facts(
    *,
    key_path: Path | None,
    certificate_path: Path | None,
    pfx_path: Path | None,
    passphrase: bytes | None,
) -> tuple[dt.datetime | None, str | None]:
    """(expiry, SHA-1 thumbprint) of the local certificate; (None, None) when none is configured."""
    from meetgate.admin.credentials import inspect_local_certificate

    if pfx_path is None and (certificate_path is None or key_path is None):
        return None, None
    local = inspect_local_certificate(
        key_path=key_path, certificate_path=certificate_path, pfx_path=pfx_path, passphrase=passphrase
    )
    return local.not_after, local.thumbprint_sha1


def monitoring_status(
    records: MonitorRecords | None, tenant_id: str | None, app_id: str | None
) -> MonitoringStatus:
    """The newest ``meetgate monitor`` run recorded for this tenant and app (``records`` is not read
    when the profile names no tenant or app)."""
    if not tenant_id or not app_id or records is None:
        return MonitoringStatus(configured=False, detail="no tenant or client id in the profile")
    latest = records.latest_record(source=MONITOR_STATUS_SOURCE, tenant_id=tenant_id, app_id=app_id)
    if latest is None:
        return MonitoringStatus(configured=False, detail="no `meetgate monitor` run recorded for this app")
    return MonitoringStatus(configured=True, last_success=dt.datetime.fromisoformat(latest["at"]))


def consumer_scopes(records: Iterable[Any]) -> list[ConsumerScope]:
    """The gateway's consumers as the readiness check sees them (organizer scope, active)."""
    return [ConsumerScope(c.name, c.organizers, c.organizers_from_policy, c.active) for c in records]
