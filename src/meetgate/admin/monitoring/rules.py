"""The rules: pure functions from collected data to alerts.

Every rule reads a :class:`RuleInput` and returns alerts with a severity, what happened, evidence and
the first thing to check. Thresholds come from :class:`~meetgate.admin.monitoring.model.Thresholds`
(the tighter hypercare set during the go-live window).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meetgate.admin.monitoring.model import Alert, CertificateStatus, PolicySnapshot, Severity, Thresholds
from meetgate.graph.audit import normalize_activity, parse_graph_time
from meetgate.store.monitoring import is_creation

CERTS_AND_SECRETS = "update application - certificates and secrets management"
PERMISSION_ACTIVITIES = {
    "add app role assignment to service principal": "an application permission was granted",
    "remove app role assignment from service principal": "an application permission was removed",
    "consent to application": "consent was granted",
    "add delegated permission grant": "a delegated permission was granted",
    "remove delegated permission grant": "a delegated permission was removed",
}


@dataclass(frozen=True)
class RuleInput:
    now: dt.datetime
    since: dt.datetime
    thresholds: Thresholds
    hypercare: bool = False
    #: sign-ins in the period, and every earlier one collected (the history "new" is judged against)
    sign_ins: Sequence[Mapping[str, Any]] = ()
    earlier_sign_ins: Sequence[Mapping[str, Any]] = ()
    audits: Sequence[Mapping[str, Any]] = ()
    #: gateway audit rows in the period, and in the baseline days before it
    requests: Sequence[Mapping[str, Any]] = ()
    baseline_requests: Sequence[Mapping[str, Any]] = ()
    policy: PolicySnapshot | None = None
    certificates: Sequence[CertificateStatus] = ()
    #: known credential key ids besides those seen in earlier sign-ins (e.g. the profile's own)
    known_key_ids: frozenset[str] = field(default_factory=frozenset)
    #: the policy file scopes calendar placement ([mailbox_scope]): an Entra calendar grant voids it
    mailbox_scoped: bool = False


Rule = Callable[[RuleInput], list[Alert]]


def _day(value: dt.datetime) -> str:
    return value.date().isoformat()


def _hour(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H")


def _t(record: Mapping[str, Any], key: str) -> dt.datetime:
    return parse_graph_time(str(record.get(key)))


def _failed(sign_in: Mapping[str, Any]) -> bool:
    return int((sign_in.get("status") or {}).get("errorCode") or 0) != 0


def _place(sign_in: Mapping[str, Any]) -> str:
    loc = sign_in.get("location") or {}
    return ", ".join(str(loc[k]) for k in ("city", "countryOrRegion") if loc.get(k)) or "unknown"


# ---- sign-ins ------------------------------------------------------------------------------------


def _credential_of(sign_in: Mapping[str, Any]) -> str:
    """Which credential a sign-in presented, as far as Entra could tell."""
    key = sign_in.get("servicePrincipalCredentialKeyId")
    if key:
        return f"key id {key}"
    thumbprint = sign_in.get("servicePrincipalCredentialThumbprint")
    if thumbprint:
        return f"certificate {thumbprint}, not one of the app's"
    return "a credential the app does not have"


def sign_in_failures(data: RuleInput) -> list[Alert]:
    failed = [s for s in data.sign_ins if _failed(s)]
    if not failed or len(failed) < data.thresholds.sign_in_failures:
        return []
    codes = Counter(f"AADSTS{(s.get('status') or {}).get('errorCode')}" for s in failed)
    newest = max(failed, key=lambda s: str(s.get("createdDateTime")))
    return [
        Alert(
            "sign_in_failures",
            "high",
            f"{len(failed)} failed sign-in(s) of the app's service principal ({', '.join(sorted(codes))})",
            tuple(
                f"{s.get('createdDateTime')} {s.get('ipAddress')} AADSTS{(s.get('status') or {}).get('errorCode')}: "
                f"{(s.get('status') or {}).get('failureReason')} ({_credential_of(s)})"
                for s in failed[-10:]
            ),
            "Check who holds a credential for this app: a wrong or retired certificate (AADSTS700027), "
            "an expired or wrong secret (AADSTS7000215), or someone guessing. Compare the key id and IP "
            "with the app's key credentials and your servers.",
            subject="service-principal",
            at=str(newest.get("createdDateTime")),
            period=_day(data.now),
        )
    ]


def _new_values(
    data: RuleInput, value: Callable[[Mapping[str, Any]], str | None], known: set[str] | None = None
) -> dict[str, Mapping[str, Any]]:
    """Values of successful sign-ins in the period that no earlier successful sign-in had.

    Every collected sign-in counts as history for the ones after it; the app's very first sign-in
    teaches, it does not alert."""
    seen = set(known or ())
    period_ids = {id(s) for s in data.sign_ins}
    fresh: dict[str, Mapping[str, Any]] = {}
    ordered = sorted([*data.earlier_sign_ins, *data.sign_ins], key=lambda s: str(s.get("createdDateTime")))
    for s in ordered:
        v = value(s)
        if not v or _failed(s):
            continue
        if id(s) in period_ids and seen and v not in seen and v not in fresh:
            fresh[v] = s
        seen.add(v)
    return fresh


def new_ip_or_location(data: RuleInput) -> list[Alert]:
    alerts = []
    for ip, s in _new_values(data, lambda s: s.get("ipAddress") or None).items():
        alerts.append(
            Alert(
                "sign_in_new_ip",
                "warning",
                f"The service principal signed in from a new IP address {ip} ({_place(s)})",
                (f"sign-in {s.get('id')} at {s.get('createdDateTime')} from {ip}",),
                "Confirm the IP belongs to your servers (a new host, NAT or cloud region); if not, "
                "rotate the certificate and review the app's sign-ins.",
                subject=ip,
                at=str(s.get("createdDateTime")),
            )
        )
    for place, s in _new_values(data, _place).items():
        alerts.append(
            Alert(
                "sign_in_new_location",
                "high",
                f"The service principal signed in from a new location: {place}",
                (f"sign-in {s.get('id')} at {s.get('createdDateTime')} from {s.get('ipAddress')}",),
                "An app-only credential used from an unexpected country is a classic sign of a leaked "
                "key: confirm with the team that runs the integration, else remove the credential.",
                subject=place,
                at=str(s.get("createdDateTime")),
            )
        )
    return alerts


def new_credential_key(data: RuleInput) -> list[Alert]:
    def key_of(s: Mapping[str, Any]) -> str | None:
        key = s.get("servicePrincipalCredentialKeyId")
        return str(key) if key else None

    alerts = []
    for key, s in _new_values(data, key_of, set(data.known_key_ids)).items():
        kind = s.get("clientCredentialType") or "credential"
        alerts.append(
            Alert(
                "sign_in_new_key",
                "high" if kind == "clientSecret" else "warning",
                f"A {kind} never seen before signed the app in (key id {key})",
                (
                    f"sign-in {s.get('id')} at {s.get('createdDateTime')} from {s.get('ipAddress')}, "
                    f"thumbprint {s.get('servicePrincipalCredentialThumbprint')}",
                ),
                "If nobody rotated the certificate (`meetgate cert status`), find who added this "
                "credential in the directory audit and remove it.",
                subject=key,
                at=str(s.get("createdDateTime")),
            )
        )
    return alerts


# ---- directory audits ----------------------------------------------------------------------------


def _modified(audit: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for target in audit.get("targetResources") or []:
        out += target.get("modifiedProperties") or []
    return out


def _initiator(audit: Mapping[str, Any]) -> str:
    by = audit.get("initiatedBy") or {}
    user = by.get("user") or {}
    app = by.get("app") or {}
    return str(user.get("userPrincipalName") or app.get("displayName") or app.get("appId") or "unknown")


def credential_changes(data: RuleInput) -> list[Alert]:
    alerts = []
    for audit in data.audits:
        name = normalize_activity(str(audit.get("activityDisplayName", "")))
        if name not in (CERTS_AND_SECRETS, "add service principal credentials"):
            continue
        new_values = " ".join(str(p.get("newValue") or "") for p in _modified(audit))
        secret = "keytype=password" in new_values.lower() or "password" in name
        if secret:
            alerts.append(
                Alert(
                    "new_client_secret",
                    "critical",
                    f"A client secret was added to the app by {_initiator(audit)}",
                    (
                        f"audit {audit.get('id')} '{audit.get('activityDisplayName')}' at {audit.get('activityDateTime')}",
                        f"new value: {new_values[:200]}",
                    ),
                    "The integration signs in with a certificate: a secret is a second, weaker way in. "
                    "Ask the initiator why; remove it with `meetgate setup app` (reports secrets) unless "
                    "it is planned.",
                    subject=str(audit.get("id")),
                    at=str(audit.get("activityDateTime")),
                )
            )
        elif name == CERTS_AND_SECRETS:
            alerts.append(
                Alert(
                    "credential_change",
                    "warning",
                    f"The app's certificates changed (by {_initiator(audit)})",
                    (f"audit {audit.get('id')} at {audit.get('activityDateTime')}",),
                    "Expected during `meetgate cert rotate`; otherwise compare the thumbprints with "
                    "`meetgate cert status`.",
                    subject=str(audit.get("id")),
                    at=str(audit.get("activityDateTime")),
                )
            )
    return alerts


def permission_changes(data: RuleInput) -> list[Alert]:
    alerts = []
    for audit in data.audits:
        raw = str(audit.get("activityDisplayName", ""))
        name = normalize_activity(raw)
        what = PERMISSION_ACTIVITIES.get(name)
        if what is None and name == "update application":
            props = {str(p.get("displayName", "")).lower() for p in _modified(audit)}
            if "requiredresourceaccess" in props:
                what = "the requested API permissions changed"
        if what is None:
            continue
        values = "; ".join(
            f"{p.get('displayName')}: {p.get('newValue')}" for p in _modified(audit) if p.get("newValue")
        )
        alerts.append(
            Alert(
                "permission_change",
                "high",
                f"Permission or consent change on the app: {what} (by {_initiator(audit)})",
                (f"audit {audit.get('id')} '{raw}' at {audit.get('activityDateTime')}", values[:300]),
                "The app needs only OnlineMeetings.ReadWrite.All (and user read): check the granted "
                "roles with `meetgate setup app --plan` (it lists them and changes nothing) and revoke anything else.",
                subject=str(audit.get("id")),
                at=str(audit.get("activityDateTime")),
            )
        )
    return alerts


def _granted_values(audit: Mapping[str, Any]) -> set[str]:
    """The permission names an app role assignment audit grants (``AppRole.Value``'s new value)."""
    out = set()
    for prop in _modified(audit):
        if str(prop.get("displayName", "")).lower() == "approle.value" and prop.get("newValue"):
            out.add(str(prop["newValue"]).strip().strip('"').lower())
    return out


def calendar_grant(data: RuleInput) -> list[Alert]:
    """A tenant-wide Entra calendar permission granted to the app: with a mailbox scope configured it
    voids the scope (Entra grants and Exchange RBAC add up) — critical; without one, high."""
    from meetgate.admin.mailbox_scope.model import ENTRA_CALENDAR_ROLES

    wanted = {name.lower(): name for name in ENTRA_CALENDAR_ROLES}
    alerts = []
    for audit in data.audits:
        raw = str(audit.get("activityDisplayName", ""))
        if normalize_activity(raw) not in (
            "add app role assignment to service principal",
            "consent to application",
        ):
            continue
        granted = sorted(wanted[v] for v in _granted_values(audit) if v in wanted)
        if not granted:
            continue
        scoped = data.mailbox_scoped
        alerts.append(
            Alert(
                "calendar_grant",
                "critical" if scoped else "high",
                f"Tenant-wide Entra permission {', '.join(granted)} granted to the app (by {_initiator(audit)})"
                + (": it voids the Exchange mailbox scope" if scoped else ": it reaches every mailbox"),
                (f"audit {audit.get('id')} '{raw}' at {audit.get('activityDateTime')}",),
                f"remove {', '.join(granted)} from the app's API permissions and revoke the consent; calendar "
                "access belongs in the Exchange role assignment (`meetgate mailbox-scope verify`)",
                subject=str(audit.get("id")),
                at=str(audit.get("activityDateTime")),
            )
        )
    return alerts


# ---- policy --------------------------------------------------------------------------------------


def policy_scope(data: RuleInput) -> list[Alert]:
    snap = data.policy
    if snap is None:
        return []
    alerts = []
    if snap.global_grant:
        alerts.append(
            Alert(
                "policy_global",
                "critical",
                f"{snap.policy} is granted tenant-wide (Global): the app may act for every user",
                (f"snapshot {snap.taken_at}: global grant present",),
                f"Revoke it: Grant-CsApplicationAccessPolicy -PolicyName $null -Global, then grant "
                f"{snap.policy} to the approved organizers only (`meetgate policy apply`).",
                subject="global",
                at=snap.taken_at,
            )
        )
    if snap.missing and not snap.global_grant:
        alerts.append(
            Alert(
                "policy_missing",
                "warning",
                f"{len(snap.missing)} approved organizer(s) do not hold {snap.policy}: their meetings fail with 403",
                tuple(sorted(snap.missing)[:20]),
                "Run `meetgate policy apply` to grant them (allow up to 30 minutes to propagate), or "
                "remove them from the desired state file.",
                subject=",".join(sorted(snap.missing)),
                at=snap.taken_at,
            )
        )
    extra = {uid: v for uid, v in snap.beyond_approved.items() if v[1] != "global"}
    if extra:
        alerts.append(
            Alert(
                "policy_beyond_approved",
                "high",
                f"{len(extra)} user(s) hold {snap.policy} without being on the approved list",
                tuple(f"{upn} ({uid}) via {source}" for uid, (upn, source) in sorted(extra.items())[:20]),
                "Run `meetgate policy plan` to see the drift and `meetgate policy apply` to revoke, or "
                "add the users to the desired state file if they were approved.",
                subject=",".join(sorted(extra)),
                at=snap.taken_at,
            )
        )
    return alerts


# ---- the gateway ---------------------------------------------------------------------------------


def _hourly(
    rows: Sequence[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], str]
) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        if is_creation(row):
            out[key(row)][_hour(row["at"])] += 1
    return out


def excessive_creation(data: RuleInput) -> list[Alert]:
    th = data.thresholds
    alerts = []
    total = _hourly(data.requests, lambda r: "app").get("app", Counter())
    for hour, n in sorted(total.items()):
        if n > th.creations_per_hour:
            alerts.append(
                Alert(
                    "creations_absolute",
                    "high",
                    f"{n} meetings created in the hour from {hour}:00 UTC (ceiling {th.creations_per_hour})",
                    (f"hour {hour}: {n} creations",),
                    "Find the consumer behind the burst on the dashboard (top consumers) and its logs; "
                    "lower its rate with `meetgate consumers` if it misbehaves.",
                    subject="app",
                    at=f"{hour}:00",
                    period=hour,
                )
            )
    hours = max(1.0, th.baseline_days * 24.0)
    for label, key in (("organizer", "organizer"), ("consumer", "consumer_name")):
        now_counts = _hourly(data.requests, lambda r, k=key: str(r.get(k) or "?"))  # type: ignore[misc]
        base_counts = _hourly(data.baseline_requests, lambda r, k=key: str(r.get(k) or "?"))  # type: ignore[misc]
        for who, per_hour in sorted(now_counts.items()):
            mean = sum(base_counts.get(who, Counter()).values()) / hours
            limit = max(float(th.baseline_min_creations), mean * th.baseline_factor)
            for hour, n in sorted(per_hour.items()):
                if n >= limit:
                    alerts.append(
                        Alert(
                            f"creations_{label}",
                            "high" if data.hypercare else "warning",
                            f"{label} {who} created {n} meetings in the hour from {hour}:00 UTC "
                            f"(baseline {mean:.1f}/h, limit {limit:.0f})",
                            (
                                f"{label} {who}: {n} creations in {hour}",
                                f"baseline over {th.baseline_days} days: {mean:.2f}/h",
                            ),
                            f"Ask the owner of {label} {who} whether the volume is expected (a campaign, "
                            "an import, a retry loop); check the gateway's audit log for the requests.",
                            subject=f"{label}:{who}",
                            at=f"{hour}:00",
                            period=hour,
                        )
                    )
    return alerts


FAILURE_TEXT = {
    "policy_403": (
        "requests refused by the application access policy (403)",
        "An organizer is outside the policy: grant it (`meetgate policy apply`) if approved; otherwise "
        "the consumer asks for the wrong organizers.",
    ),
    "auth_401": (
        "authentication failures (401)",
        "A consumer uses a revoked or wrong API key, or the app's Graph token is refused: check "
        "`meetgate consumers list` and the app's sign-ins.",
    ),
    "throttled_429": (
        "throttled requests (429)",
        "Graph or the gateway's own limits throttle: look for a burst on the dashboard and spread it.",
    ),
    "server_5xx": (
        "server errors (5xx)",
        "Check Microsoft 365 service health and the gateway's logs (/readyz).",
    ),
}


def failure_spikes(data: RuleInput) -> list[Alert]:
    counts: Counter[str] = Counter()
    newest: dict[str, Mapping[str, Any]] = {}
    for row in data.requests:
        cls = row.get("failure")
        if cls:
            counts[str(cls)] += 1
            newest[str(cls)] = row
    alerts = []
    for cls, (what, check) in FAILURE_TEXT.items():
        threshold = data.thresholds.failure_threshold(cls)
        n = counts.get(cls, 0)
        if threshold is None or n == 0 or n < threshold:
            continue
        row = newest[cls]
        alerts.append(
            Alert(
                f"failures_{cls}",
                "high" if cls in ("policy_403", "auth_401") else "warning",
                f"{n} {what} since {data.since.strftime('%Y-%m-%d %H:%M')} UTC (threshold {threshold})",
                (
                    f"latest: {row['at'].isoformat()} {row.get('action')} by {row.get('consumer_name')} "
                    f"for {row.get('organizer')} -> {row.get('outcome')}",
                ),
                check,
                subject=cls,
                at=row["at"].isoformat(),
                period=_day(data.now),
            )
        )
    return alerts


def consumer_overreach(data: RuleInput) -> list[Alert]:
    by: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in data.requests:
        if row.get("failure") == "overreach":
            by[str(row.get("consumer_name") or "?")].append(row)
    alerts = []
    for consumer, rows in sorted(by.items()):
        if len(rows) < data.thresholds.overreach:
            continue
        organizers = sorted({str(r.get("organizer")) for r in rows})
        alerts.append(
            Alert(
                "consumer_overreach",
                "high",
                f"Consumer {consumer} asked for {len(organizers)} organizer(s) outside its allowlist",
                tuple(
                    f"{r['at'].isoformat()} {r.get('action')} for {r.get('organizer')}" for r in rows[-10:]
                ),
                f"Ask the owner of {consumer} why it acts for {', '.join(organizers[:5])}; widen its "
                "allowlist (`meetgate consumers`) only if approved, else revoke its key.",
                subject=consumer,
                at=rows[-1]["at"].isoformat(),
                period=_day(data.now),
            )
        )
    return alerts


def unusual_hours(data: RuleInput) -> list[Alert]:
    start, end = data.thresholds.active_hours
    offset = dt.timedelta(hours=data.thresholds.utc_offset_hours)

    def outside(at: dt.datetime) -> bool:
        hour = (at + offset).hour
        return not (start <= hour < end) if start <= end else (end <= hour < start)

    events = [
        (r["at"], f"{r.get('action')} by {r.get('consumer_name')}") for r in data.requests if is_creation(r)
    ]
    events += [
        (_t(s, "createdDateTime"), f"sign-in from {s.get('ipAddress')}")
        for s in data.sign_ins
        if not _failed(s)
    ]
    odd = sorted((at, what) for at, what in events if outside(at))
    if not odd:
        return []
    return [
        Alert(
            "unusual_hours",
            "warning" if data.hypercare else "info",
            f"{len(odd)} app event(s) outside the usual hours {start:02d}:00-{end:02d}:00 "
            f"(UTC{data.thresholds.utc_offset_hours:+g})",
            tuple(f"{at.isoformat()} {what}" for at, what in odd[-10:]),
            "Scheduled jobs explain most night activity; if none runs then, look at the sign-ins' IPs "
            "and the consumers involved.",
            subject="hours",
            at=odd[-1][0].isoformat(),
            period=_day(data.now),
        )
    ]


def certificate_expiry(data: RuleInput) -> list[Alert]:
    th = data.thresholds
    alerts = []
    for cert in data.certificates:
        days = cert.days_left(data.now)
        if days > th.certificate_warning_days:
            continue
        severity: Severity = "critical" if days <= th.certificate_critical_days else "warning"
        state = "expired" if days < 0 else f"expires in {days:.0f} day(s)"
        alerts.append(
            Alert(
                "certificate_expiry",
                severity,
                f"The app's certificate {cert.thumbprint[:12]}… {state} ({cert.not_after.date().isoformat()})",
                (f"{cert.source}: thumbprint {cert.thumbprint}, notAfter {cert.not_after.isoformat()}",),
                "Rotate it with `meetgate cert rotate` (new key, upload, switch, remove the old one).",
                subject=cert.thumbprint,
                at=data.now.isoformat(),
                period=severity,
            )
        )
    return alerts


RULES: dict[str, Rule] = {
    "sign_in_failures": sign_in_failures,
    "new_ip_or_location": new_ip_or_location,
    "new_credential_key": new_credential_key,
    "credential_changes": credential_changes,
    "permission_changes": permission_changes,
    "calendar_grant": calendar_grant,
    "policy_scope": policy_scope,
    "excessive_creation": excessive_creation,
    "failure_spikes": failure_spikes,
    "consumer_overreach": consumer_overreach,
    "unusual_hours": unusual_hours,
    "certificate_expiry": certificate_expiry,
}

_SEVERITY_ORDER = {"critical": 0, "high": 1, "warning": 2, "info": 3}


def evaluate(data: RuleInput, rules: Mapping[str, Rule] = RULES) -> list[Alert]:
    alerts = [alert for rule in rules.values() for alert in rule(data)]
    return sorted(alerts, key=lambda a: (_SEVERITY_ORDER[a.severity], a.rule, a.subject))
