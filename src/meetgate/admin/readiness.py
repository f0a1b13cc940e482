"""Runbook step 8: go-live readiness as evidence, and the hypercare window after go-live.

:func:`assess_readiness` is pure: the CLI gathers the facts (:class:`ReadinessInputs` — the policy
state the tenant holds, the approved organizers from the policy file, the local certificate, the
validation runs kept in the store, the gateway consumers) and gets back items with evidence and a
GO / NO-GO verdict::

    policy_scope          who holds the policy == the approved list, exactly
    global_grant          no Global grant of a policy that lists the app
    certificate_auth      certificate only: no client secret configured or on the app
    certificate_validity  the certificate's remaining validity
    validation_recent     the newest `meetgate validate` within N days passed, and no failure since the
                          last run with the pilot and negative tests (and, when calendar placement is
                          scoped, the calendar positive and negative tests)
    monitoring            monitoring configured and a recent successful run
    consumers_scope       every gateway consumer's organizer allowlist inside the policy scope
    calendar_scope        when the policy file scopes calendar placement ([mailbox_scope]), no tenant-wide
                          Entra calendar permission beside it (Entra grants and Exchange RBAC add up)

``meetgate golive --start`` records the go-live time; :func:`hypercare_window` tells monitoring
whether the 7-day hypercare window (tighter thresholds, daily digest) is on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from meetgate.admin.policy.model import TenantPolicyState, describe_global_grant, policy_key
from meetgate.admin.validation import ValidationRun
from meetgate.admin.validation.model import Outcome

HYPERCARE_DAYS = 7
DEFAULT_VALIDATION_MAX_AGE_DAYS = 7
CERTIFICATE_WARNING_DAYS = 30
MONITORING_MAX_AGE_HOURS = 24

ITEMS: tuple[tuple[str, str], ...] = (
    ("policy_scope", "Policy scope equals the approved operator list"),
    ("global_grant", "No Global grant"),
    ("certificate_auth", "Certificate authentication only"),
    ("certificate_validity", "Certificate validity"),
    ("validation_recent", "Recent passing validation (pilot and negative tests, calendar tests when scoped)"),
    ("monitoring", "Monitoring configured and running"),
    ("consumers_scope", "Gateway consumers inside the policy scope"),
    ("calendar_scope", "No tenant-wide Entra calendar grant beside the mailbox scope"),
)
ITEM_TITLES = dict(ITEMS)


@dataclass(frozen=True)
class ReadinessItem(Outcome):
    """One go-live item's outcome (the same shape as a validation check's)."""

    titles: ClassVar[Mapping[str, str]] = ITEM_TITLES


@dataclass(frozen=True)
class ReadinessReport:
    generated_at: dt.datetime
    tenant_id: str | None
    client_id: str | None
    policy_identity: str
    items: tuple[ReadinessItem, ...]

    @property
    def go(self) -> bool:
        return not any(i.status == "fail" for i in self.items)

    @property
    def verdict(self) -> Literal["GO", "NO-GO"]:
        return "GO" if self.go else "NO-GO"

    @property
    def reasons(self) -> list[str]:
        """Why NO-GO (the failed items' findings); empty for GO."""
        return [f"{i.title}: {i.finding}" for i in self.items if i.status == "fail"]

    def item(self, name: str) -> ReadinessItem | None:
        return next((i for i in self.items if i.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": self.reasons,
            "generated_at": self.generated_at.isoformat(),
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "policy_identity": self.policy_identity,
            "items": [i.to_dict() for i in self.items],
        }


@dataclass(frozen=True)
class ConsumerScope:
    """A gateway consumer as readiness sees it."""

    name: str
    organizers: tuple[str, ...]
    organizers_from_policy: bool = False
    active: bool = True


@dataclass(frozen=True)
class MonitoringStatus:
    configured: bool
    last_success: dt.datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class ReadinessInputs:
    tenant_id: str | None
    client_id: str | None
    policy_identity: str
    now: dt.datetime
    #: approved organizers from the policy file: user id → UPN (None when there is no policy file)
    approved: Mapping[str, str] | None = None
    #: references in the policy file that match no user
    approved_unknown: tuple[str, ...] = ()
    #: what the tenant holds (None when it could not be read: ``policy_error`` says why)
    policy_state: TenantPolicyState | None = None
    policy_error: str | None = None
    #: the local certificate's expiry (None when no certificate is configured)
    certificate_not_after: dt.datetime | None = None
    certificate_thumbprint: str | None = None
    client_secret_configured: bool = False
    client_secret_env: str = "MEETGATE_CLIENT_SECRET"
    #: validation runs from the store, newest first
    runs: Sequence[ValidationRun] = ()
    validation_max_age_days: int = DEFAULT_VALIDATION_MAX_AGE_DAYS
    #: None while meetgate has no monitoring feature (``monitoring_skip_reason`` says so)
    monitoring: MonitoringStatus | None = None
    monitoring_skip_reason: str = "the monitoring feature (`meetgate monitor`) is not in this build yet"
    consumers: Sequence[ConsumerScope] | None = ()
    #: the policy file scopes calendar placement ([mailbox_scope])
    mailbox_scoped: bool = False
    #: the roles of the app's current token (None when no token could be had: ``roles_error`` says why)
    entra_roles: Sequence[str] | None = None
    roles_error: str | None = None


def assess_readiness(inputs: ReadinessInputs) -> ReadinessReport:
    items = (
        check_policy_scope(inputs),
        check_global_grant(inputs),
        check_certificate_auth(inputs),
        check_certificate_validity(inputs),
        check_validation_recent(inputs),
        check_monitoring(inputs),
        check_consumers_scope(inputs),
        check_calendar_scope(inputs),
    )
    return ReadinessReport(inputs.now, inputs.tenant_id, inputs.client_id, inputs.policy_identity, items)


# --- policy ---------------------------------------------------------------------------------------


def _holders(state: TenantPolicyState, identity: str) -> dict[str, str]:
    """User id → how the user holds ``identity`` (direct / group:<id>), Global excluded."""
    ours = policy_key(identity)
    users = set(state.direct)
    for grant in state.group_grants:
        users.update(grant.members)
    out: dict[str, str] = {}
    for user_id in users:
        policy, source = state.effective(user_id)
        if policy_key(policy) == ours and source != "global":
            out[user_id] = source
    return out


def _global_covers(inputs: ReadinessInputs) -> str | None:
    """The Global-granted policy when it lets the app act (ours, or another listing the app)."""
    state = inputs.policy_state
    if state is None or not state.global_policy:
        return None
    if policy_key(state.global_policy) == policy_key(inputs.policy_identity):
        return state.global_policy
    definition = state.policy(state.global_policy)
    if definition is not None and inputs.client_id and definition.lists_any([inputs.client_id]):
        return state.global_policy
    return None


def check_policy_scope(inputs: ReadinessInputs) -> ReadinessItem:
    name = "policy_scope"
    if inputs.approved is None:
        return ReadinessItem(
            name,
            "fail",
            "no approved operator list: the profile names no policy file",
            remedy="write the policy file (docs/policy.md) and set policy_file in the profile",
        )
    state = inputs.policy_state
    if state is None:
        return ReadinessItem(
            name,
            "fail",
            f"the tenant's policy grants could not be read: {inputs.policy_error or 'unknown error'}",
            remedy="check `meetgate policy status` (pwsh / Teams Administrator role, or --backend graph)",
        )
    definition = state.policy(inputs.policy_identity)
    approved = dict(inputs.approved)
    holders = _holders(state, inputs.policy_identity)
    extra = sorted(set(holders) - set(approved))
    missing = sorted(set(approved) - set(holders))
    label = state.upns
    evidence: dict[str, Any] = {
        "policy": inputs.policy_identity,
        "policy_exists": definition is not None,
        "policy_app_ids": list(definition.app_ids) if definition else [],
        "approved": len(approved),
        "holders": len(holders),
        "extra": [label.get(u, u) for u in extra],
        "missing": [approved.get(u) or label.get(u, u) for u in missing],
        "holders_by_source": {s: sum(1 for v in holders.values() if v == s) for s in set(holders.values())},
    }
    if inputs.approved_unknown:
        evidence["approved_unknown"] = list(inputs.approved_unknown)
    if definition is None:
        return ReadinessItem(
            name,
            "fail",
            f"the policy {inputs.policy_identity} does not exist in the tenant",
            evidence,
            "`meetgate policy plan` then `meetgate policy apply`",
        )
    if inputs.client_id and not definition.lists_any([inputs.client_id]):
        return ReadinessItem(
            name,
            "fail",
            f"the policy does not list app {inputs.client_id}",
            evidence,
            "add the app id to [policy] app_ids and `meetgate policy apply`",
        )
    problems = []
    if extra:
        problems.append(
            f"{len(extra)} holder(s) not on the approved list ({', '.join(evidence['extra'][:5])})"
        )
    if missing:
        problems.append(
            f"{len(missing)} approved operator(s) without the policy ({', '.join(evidence['missing'][:5])})"
        )
    if inputs.approved_unknown:
        problems.append(f"{len(inputs.approved_unknown)} approved reference(s) match no user")
    if problems:
        return ReadinessItem(
            name,
            "fail",
            "; ".join(problems),
            evidence,
            "`meetgate policy plan` shows the grants and revokes that make the tenant match the file; "
            "`meetgate policy apply` carries them out",
        )
    return ReadinessItem(
        name,
        "pass",
        f"{len(holders)} holder(s) = the {len(approved)} approved operator(s), exactly",
        evidence,
    )


def check_global_grant(inputs: ReadinessInputs) -> ReadinessItem:
    name = "global_grant"
    state = inputs.policy_state
    if state is None:
        return ReadinessItem(
            name, "fail", f"cannot tell: the policy grants could not be read ({inputs.policy_error})"
        )
    covering = _global_covers(inputs)
    evidence = {"global_policy": state.global_policy}
    if covering:
        return ReadinessItem(
            name,
            "fail",
            f"{describe_global_grant(state)}: the app may act for EVERY user without another grant",
            evidence,
            "Grant-CsApplicationAccessPolicy -PolicyName $null -Global, then grant the approved users "
            "(`meetgate policy apply`)",
        )
    if state.global_policy:
        return ReadinessItem(
            name,
            "pass",
            f"{describe_global_grant(state)}, which does not list this app",
            evidence,
        )
    return ReadinessItem(name, "pass", "no Global grant", evidence)


# --- credentials ----------------------------------------------------------------------------------


def _latest(inputs: ReadinessInputs) -> ValidationRun | None:
    return inputs.runs[0] if inputs.runs else None


def check_certificate_auth(inputs: ReadinessInputs) -> ReadinessItem:
    name = "certificate_auth"
    run = _latest(inputs)
    evidence: dict[str, Any] = {"client_secret_configured": inputs.client_secret_configured}
    problems: list[str] = []
    if inputs.certificate_not_after is None:
        problems.append("no certificate is configured")
    if inputs.client_secret_configured:
        problems.append(f"a client secret is configured (${inputs.client_secret_env})")
    if run is not None:
        evidence["validation_run"] = run.id
        token = run.check("token")
        if token is not None and token.evidence.get("credential"):
            evidence["token_credential"] = token.evidence.get("credential")
            if token.evidence.get("credential") != "certificate":
                problems.append(f"the last validation signed in with {token.evidence.get('credential')}")
        cert = run.check("certificate")
        if cert is not None:
            secrets = cert.evidence.get("app_client_secrets")
            evidence["app_registration"] = cert.evidence.get("registration")
            if isinstance(secrets, int):
                evidence["app_client_secrets"] = secrets
                if secrets:
                    problems.append(f"the app registration has {secrets} client secret(s)")
    if problems:
        return ReadinessItem(
            name,
            "fail",
            "; ".join(problems),
            evidence,
            "remove client secrets from the app (Certificates & secrets) and the environment; "
            "authenticate with the certificate only",
        )
    note = (
        ""
        if "app_client_secrets" in evidence
        else " (the app's secrets were not readable: confirm with `meetgate cert status`)"
    )
    return ReadinessItem(name, "pass", "certificate authentication, no client secret" + note, evidence)


def check_certificate_validity(inputs: ReadinessInputs) -> ReadinessItem:
    name = "certificate_validity"
    not_after = inputs.certificate_not_after
    if not_after is None:
        return ReadinessItem(name, "fail", "no certificate is configured", remedy="`meetgate cert new`")
    days = (not_after - inputs.now).days
    evidence = {
        "thumbprint_sha1": inputs.certificate_thumbprint,
        "not_after": not_after.isoformat(),
        "days_left": days,
    }
    if not_after <= inputs.now:
        return ReadinessItem(
            name,
            "fail",
            f"the certificate expired on {not_after:%Y-%m-%d}",
            evidence,
            "`meetgate cert rotate`",
        )
    if days < CERTIFICATE_WARNING_DAYS:
        return ReadinessItem(
            name,
            "warn",
            f"the certificate expires in {days} days ({not_after:%Y-%m-%d}) — during or soon after hypercare",
            evidence,
            "rotate before go-live: `meetgate cert rotate`",
        )
    return ReadinessItem(name, "pass", f"valid {days} more days (until {not_after:%Y-%m-%d})", evidence)


# --- validation -----------------------------------------------------------------------------------


def check_validation_recent(inputs: ReadinessInputs) -> ReadinessItem:
    """The newest run in the window decides: a failed run cancels every earlier pass.

    GO needs the newest run to pass, and a run with both policy tests passed no older than the newest
    failed run in the window (a later quick run without ``--pilot``/``--negative`` does not undo it).
    When the policy file scopes calendar placement, that run must have passed both calendar tests too
    (a run made before the scope existed, or with them skipped, does not count).
    """
    name = "validation_recent"
    horizon = inputs.now - dt.timedelta(days=inputs.validation_max_age_days)
    recent = sorted(
        (r for r in inputs.runs if r.started_at >= horizon), key=lambda r: r.started_at, reverse=True
    )
    evidence: dict[str, Any] = {"max_age_days": inputs.validation_max_age_days, "runs_in_window": len(recent)}
    if not recent:
        return ReadinessItem(
            name,
            "fail",
            f"no validation run in the last {inputs.validation_max_age_days} days",
            evidence,
            "run `meetgate validate --pilot UPN --negative UPN`",
        )
    newest = recent[0]
    evidence.update({"newest_run_id": newest.id, "newest_status": newest.status})
    if not newest.ok:
        evidence.update({"run_id": newest.id, "status": newest.status})
        return ReadinessItem(
            name,
            "fail",
            f"the newest run {newest.id[:8]} ({newest.started_at:%Y-%m-%d %H:%M} UTC) failed",
            evidence,
            "fix what it reported (`meetgate validate` shows it) and run "
            "`meetgate validate --pilot UPN --negative UPN` again",
        )
    last_failed = next((r for r in recent if not r.ok), None)
    since_failure = [r for r in recent if last_failed is None or r.started_at > last_failed.started_at]
    calendar = inputs.mailbox_scoped
    evidence["calendar_tests_required"] = calendar
    good = next(
        (r for r in since_failure if r.covers_policy_tests and (not calendar or r.covers_calendar_tests)),
        None,
    )
    if good is None and calendar and any(r.covers_policy_tests for r in since_failure):
        evidence.update({"run_id": newest.id, "status": newest.status})
        calendar_check = newest.check("calendar_positive")
        return ReadinessItem(
            name,
            "fail",
            "calendar placement is scoped ([mailbox_scope]) but no run"
            + (f" since the failed run {last_failed.id[:8]}" if last_failed is not None else "")
            + " passed the calendar positive and negative tests "
            + (
                f"(the newest, {newest.id[:8]}, did not run them)"
                if calendar_check is None or calendar_check.status == "skip"
                else f"(the newest, {newest.id[:8]}, has calendar_positive {calendar_check.status})"
            ),
            evidence,
            "run `meetgate validate` with the policy file holding [mailbox_scope] (it adds the calendar tests)",
        )
    if good is None:
        evidence.update({"run_id": newest.id, "status": newest.status})
        since = (
            f" since the failed run {last_failed.id[:8]} ({last_failed.started_at:%Y-%m-%d %H:%M} UTC)"
            if last_failed is not None
            else f" in the last {inputs.validation_max_age_days} days"
        )
        return ReadinessItem(
            name,
            "fail",
            f"no run{since} passed both the positive and the negative policy test "
            f"(the newest, {newest.id[:8]}, did not run them)",
            evidence,
            "run `meetgate validate --pilot UPN --negative UPN` again",
        )
    evidence.update(
        {
            "run_id": good.id,
            "at": good.started_at.isoformat(),
            "status": good.status,
            "pilot": list(good.pilot),
            "negative": list(good.negative),
        }
    )
    return ReadinessItem(
        name,
        "pass",
        f"run {good.id[:8]} on {good.started_at:%Y-%m-%d %H:%M} UTC passed, "
        f"positive test for {len(good.pilot)} pilot(s), negative test for {len(good.negative)} user(s)"
        + (", calendar tests passed" if calendar else ""),
        evidence,
    )


# --- monitoring -----------------------------------------------------------------------------------


def check_monitoring(inputs: ReadinessInputs) -> ReadinessItem:
    name = "monitoring"
    status = inputs.monitoring
    if status is None:
        return ReadinessItem(name, "skip", f"not checked: {inputs.monitoring_skip_reason}")
    evidence = {
        "configured": status.configured,
        "last_success": status.last_success.isoformat() if status.last_success else None,
    }
    if not status.configured:
        return ReadinessItem(
            name,
            "fail",
            "monitoring is not configured",
            evidence,
            "set up `meetgate monitor` (docs/monitoring.md)",
        )
    if status.last_success is None or inputs.now - status.last_success > dt.timedelta(
        hours=MONITORING_MAX_AGE_HOURS
    ):
        return ReadinessItem(
            name,
            "fail",
            f"no successful monitoring run in the last {MONITORING_MAX_AGE_HOURS} h",
            evidence,
            "run `meetgate monitor report` and fix what stops it",
        )
    return ReadinessItem(
        name, "pass", f"last successful run {status.last_success:%Y-%m-%d %H:%M} UTC", evidence
    )


# --- gateway consumers ----------------------------------------------------------------------------


def check_consumers_scope(inputs: ReadinessInputs) -> ReadinessItem:
    name = "consumers_scope"
    if inputs.consumers is None:
        return ReadinessItem(name, "skip", "not checked: the gateway store could not be read")
    active = [c for c in inputs.consumers if c.active]
    if not active:
        return ReadinessItem(
            name, "pass", "no gateway consumers (apps call Graph directly with the policy as the only limit)"
        )
    if inputs.approved is None:
        return ReadinessItem(
            name,
            "fail",
            "cannot compare: no approved operator list (policy file)",
            {"consumers": len(active)},
        )
    scope = {k.lower() for k in inputs.approved} | {v.lower() for v in inputs.approved.values() if v}
    outside: dict[str, list[str]] = {}
    empty: list[str] = []
    for consumer in active:
        if consumer.organizers_from_policy:
            continue
        if not consumer.organizers:
            empty.append(consumer.name)
            continue
        bad = [o for o in consumer.organizers if o.lower() not in scope]
        if bad:
            outside[consumer.name] = bad
    evidence = {
        "consumers": {c.name: ("policy" if c.organizers_from_policy else len(c.organizers)) for c in active},
        "outside": outside,
        "without_allowlist": empty,
    }
    if outside or empty:
        parts = [f"{n}: {', '.join(v[:5])} outside the policy" for n, v in outside.items()]
        parts += [f"{n} has no organizer allowlist" for n in empty]
        return ReadinessItem(
            name,
            "fail",
            "; ".join(parts),
            evidence,
            "re-create each consumer with an allowlist inside the policy: `meetgate consumers add NAME --organizers UPN` (or --organizers-from-policy), then `meetgate consumers revoke OLD`",
        )
    return ReadinessItem(
        name, "pass", f"{len(active)} consumer(s), every allowlist inside the policy scope", evidence
    )


# --- hypercare ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HypercareWindow:
    """The 7 days after go-live: monitoring tightens thresholds and sends a daily digest."""

    started_at: dt.datetime
    ends_at: dt.datetime

    def active(self, now: dt.datetime) -> bool:
        return self.started_at <= now < self.ends_at

    def to_dict(self) -> dict[str, Any]:
        return {"started_at": self.started_at.isoformat(), "ends_at": self.ends_at.isoformat()}


def hypercare_for(go_live_at: dt.datetime, days: int = HYPERCARE_DAYS) -> HypercareWindow:
    return HypercareWindow(go_live_at, go_live_at + dt.timedelta(days=days))


# --- the calendar plane ---------------------------------------------------------------------------


def check_calendar_scope(inputs: ReadinessInputs) -> ReadinessItem:
    """NO-GO when a mailbox scope is configured and the app holds a tenant-wide Entra calendar grant."""
    from meetgate.admin.mailbox_scope.model import union_violation

    name = "calendar_scope"
    if not inputs.mailbox_scoped:
        held = union_violation(inputs.entra_roles or [])
        if held:
            return ReadinessItem(
                name,
                "warn",
                f"calendar placement is not scoped and the app holds {', '.join(held)}: every mailbox",
                {"entra_calendar_roles": list(held)},
                "scope it with [mailbox_scope] and `meetgate mailbox-scope apply`, then remove the Entra grant",
            )
        return ReadinessItem(name, "skip", "calendar placement is not scoped ([mailbox_scope] absent)")
    if inputs.entra_roles is None:
        return ReadinessItem(
            name,
            "fail",
            f"cannot tell: the app's token could not be read ({inputs.roles_error})",
            remedy="fix the sign-in (`meetgate validate`), then run golive again",
        )
    held = union_violation(inputs.entra_roles)
    if held:
        return ReadinessItem(
            name,
            "fail",
            f"the app holds the tenant-wide Entra permission(s) {', '.join(held)}: with Exchange RBAC they add "
            "up, so the mailbox scope limits nothing",
            {"entra_calendar_roles": list(held)},
            f"remove {', '.join(held)} from the app's API permissions and revoke the admin consent",
        )
    return ReadinessItem(
        name,
        "pass",
        "no tenant-wide Entra calendar permission: calendar access comes from the Exchange mailbox scope alone",
        {"roles": sorted(inputs.entra_roles)},
    )
