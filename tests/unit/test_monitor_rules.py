"""Monitoring rules over hand-made records: each rule fires on its case and stays quiet otherwise."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from meetgate.admin.monitoring.model import (
    HYPERCARE_DEFAULTS,
    CertificateStatus,
    MonitorError,
    PolicySnapshot,
    Thresholds,
)
from meetgate.admin.monitoring.rules import RULES, RuleInput, evaluate
from meetgate.graph.audit import normalize_activity
from meetgate.store.monitoring import activity_figures, classify_failure

NOW = dt.datetime(2026, 11, 26, 14, 30, tzinfo=dt.UTC)
SINCE = NOW - dt.timedelta(hours=24)
QUIET = Thresholds(active_hours=(0, 24))


def sign_in(minutes_ago: float, *, ip: str = "10.0.0.5", key: str = "key-1", error: int = 0, **extra):
    at = NOW - dt.timedelta(minutes=minutes_ago)
    return {
        "id": f"si-{minutes_ago}-{ip}-{key}-{error}",
        "createdDateTime": at.isoformat().replace("+00:00", "Z"),
        "ipAddress": ip,
        "location": extra.pop("location", {"city": "Dublin", "countryOrRegion": "IE"}),
        "servicePrincipalCredentialKeyId": key,
        "clientCredentialType": extra.pop("kind", "certificate"),
        "status": {"errorCode": error, "failureReason": "bad" if error else None},
        **extra,
    }


def request(
    minutes_ago: float,
    *,
    organizer="alice@contoso.test",
    consumer="booking",
    outcome="ok",
    status=201,
    action="meeting.create",
    graph_status=None,
):
    return {
        "at": NOW - dt.timedelta(minutes=minutes_ago),
        "organizer": organizer,
        "consumer_name": consumer,
        "action": action,
        "outcome": outcome,
        "http_status": status,
        "graph_status": graph_status,
        "failure": classify_failure(outcome, status, graph_status),
    }


HISTORY = [sign_in(60 * 30), sign_in(60 * 29)]


def quiet_day(**changes) -> RuleInput:
    base = RuleInput(
        now=NOW,
        since=SINCE,
        thresholds=QUIET,
        sign_ins=[sign_in(m) for m in (600, 300, 60)],
        earlier_sign_ins=HISTORY,
        requests=[
            request(m, organizer=o) for m, o in ((500, "alice@contoso.test"), (200, "bob@contoso.test"))
        ],
        policy=PolicySnapshot(
            NOW.isoformat(),
            "Tag:T",
            {"u1": ("alice@contoso.test", "direct"), "u2": ("bob@contoso.test", "group:g1")},
            frozenset({"u1", "u2"}),
        ),
        certificates=[CertificateStatus("AB" * 20, NOW + dt.timedelta(days=300))],
    )
    return dataclasses.replace(base, **changes)


def rules_of(data: RuleInput) -> list[str]:
    return [a.rule for a in evaluate(data)]


def test_quiet_day_raises_nothing():
    assert evaluate(quiet_day()) == []


def test_sign_in_failures_fire_at_the_threshold_only():
    two = quiet_day(sign_ins=[sign_in(10, error=700027), sign_in(5, error=700027)])
    assert rules_of(two) == []
    three = quiet_day(sign_ins=[sign_in(m, error=700027) for m in (10, 5, 1)])
    (alert,) = evaluate(three)
    assert alert.rule == "sign_in_failures" and "AADSTS700027" in alert.title
    hyper = quiet_day(sign_ins=[sign_in(1, error=7000215)], thresholds=HYPERCARE_DEFAULTS, hypercare=True)
    assert "sign_in_failures" in rules_of(hyper)


def test_failed_sign_in_evidence_names_the_credential_it_presented():
    unknown = [
        sign_in(m, key=None, error=700027, servicePrincipalCredentialThumbprint="AB12") for m in (3, 2)
    ]
    (alert,) = evaluate(quiet_day(sign_ins=[sign_in(10, error=700027), *unknown]))
    assert "None" not in " ".join(alert.evidence)
    assert "(key id key-1)" in alert.evidence[0]
    assert "certificate AB12, not one of the app's" in alert.evidence[-1]


def test_new_ip_and_location_against_history_only():
    sydney = {"city": "Sydney", "countryOrRegion": "AU"}
    data = quiet_day(sign_ins=[sign_in(5, ip="203.0.113.9", location=sydney)])
    assert sorted(rules_of(data)) == ["sign_in_new_ip", "sign_in_new_location"]
    # no history yet: learning, not alerting
    assert rules_of(dataclasses.replace(data, earlier_sign_ins=[])) == []
    # a failed sign-in from a new IP counts as a failure, not as a new IP
    failed = quiet_day(sign_ins=[sign_in(5, ip="203.0.113.9", error=700027)])
    assert rules_of(failed) == []


def test_new_credential_key_and_known_keys():
    data = quiet_day(sign_ins=[sign_in(5, key="key-2", kind="clientSecret")])
    (alert,) = evaluate(data)
    assert alert.rule == "sign_in_new_key" and alert.severity == "high" and alert.subject == "key-2"
    assert rules_of(dataclasses.replace(data, known_key_ids=frozenset({"key-2"}))) == []


def audit(activity: str, *, new_value: str = "", prop: str = "KeyDescription"):
    return {
        "id": f"Directory_{activity}",
        "activityDisplayName": activity,
        "activityDateTime": NOW.isoformat(),
        "initiatedBy": {"user": {"userPrincipalName": "admin@contoso.test"}},
        "targetResources": [
            {"id": "obj", "modifiedProperties": [{"displayName": prop, "newValue": new_value}]}
        ],
    }


@pytest.mark.parametrize("dash", ["\u2013", "-"])
def test_secret_added_matches_either_dash(dash):
    data = quiet_day(
        audits=[
            audit(
                f"Update application {dash} Certificates and secrets management",
                new_value="[KeyIdentifier=1,KeyType=Password]",
            )
        ]
    )
    (alert,) = evaluate(data)
    assert alert.rule == "new_client_secret" and alert.severity == "critical"
    assert "admin@contoso.test" in alert.title


def test_certificate_change_and_permission_changes():
    data = quiet_day(
        audits=[
            audit("Update application \u2013 Certificates and secrets management", new_value='["AB12"]'),
            audit(
                "Add app role assignment to service principal", new_value='"Mail.Read"', prop="AppRole.Value"
            ),
            audit("Consent to application"),
            audit("Update application", new_value="[...]", prop="RequiredResourceAccess"),
            audit("Update application", new_value="x", prop="DisplayName"),
        ]
    )
    assert sorted(rules_of(data)) == ["credential_change"] + ["permission_change"] * 3


def test_a_tenant_wide_calendar_grant_raises_calendar_grant():
    grant = audit(
        "Add app role assignment to service principal",
        new_value='"Calendars.ReadWrite"',
        prop="AppRole.Value",
    )
    other = audit(
        "Add app role assignment to service principal", new_value='"Mail.Read"', prop="AppRole.Value"
    )
    scoped = [
        a
        for a in evaluate(quiet_day(audits=[grant, other], mailbox_scoped=True))
        if a.rule == "calendar_grant"
    ]
    assert len(scoped) == 1 and scoped[0].severity == "critical"
    assert "Calendars.ReadWrite" in scoped[0].title and "voids the Exchange mailbox scope" in scoped[0].title
    unscoped = [a for a in evaluate(quiet_day(audits=[grant])) if a.rule == "calendar_grant"]
    assert len(unscoped) == 1 and unscoped[0].severity == "high"
    assert not [
        a for a in evaluate(quiet_day(audits=[other], mailbox_scoped=True)) if a.rule == "calendar_grant"
    ]


def test_policy_global_and_beyond_approved():
    snap = PolicySnapshot(
        NOW.isoformat(),
        "Tag:T",
        {"u1": ("alice", "direct"), "u9": ("mallory", "direct"), "u3": ("carol", "global")},
        frozenset({"u1", "u2"}),
        global_grant=True,
    )
    alerts = {a.rule: a for a in evaluate(quiet_day(policy=snap))}
    assert set(alerts) == {"policy_global", "policy_beyond_approved"}  # under -Global nobody misses it
    assert alerts["policy_beyond_approved"].evidence == ("mallory (u9) via direct",)
    assert alerts["policy_global"].severity == "critical"


def test_policy_drift_approved_organizer_without_the_policy():
    snap = PolicySnapshot(NOW.isoformat(), "Tag:T", {"u1": ("alice", "direct")}, frozenset({"u1", "u2"}))
    (alert,) = evaluate(quiet_day(policy=snap))
    assert alert.rule == "policy_missing" and alert.evidence == ("u2",)


def test_excessive_creation_absolute_and_against_baseline():
    th = dataclasses.replace(QUIET, creations_per_hour=10, baseline_min_creations=8, baseline_factor=3.0)
    burst = [request(5 + i * 0.1, organizer="bob@contoso.test", consumer="crm") for i in range(12)]
    alerts = evaluate(quiet_day(thresholds=th, requests=burst))
    assert sorted(a.rule for a in alerts) == [
        "creations_absolute",
        "creations_consumer",
        "creations_organizer",
    ]
    # a consumer that usually creates that many per hour: only the absolute ceiling remains
    baseline = [
        request(60 * 24 + h * 60 + i, consumer="crm", organizer="bob@contoso.test")
        for h in range(24 * 7 - 24)
        for i in range(0, 60, 6)
    ][:1500]
    alerts = evaluate(quiet_day(thresholds=th, requests=burst, baseline_requests=baseline))
    assert [a.rule for a in alerts] == ["creations_absolute"]


def test_failure_spikes_and_overreach():
    rows = [
        request(m, outcome="graph-access-policy-missing", status=403, graph_status=403) for m in (30, 20, 10)
    ]
    rows += [request(9, outcome="unauthenticated", status=401, action="unknown")]
    rows += [
        request(8, outcome="organizer-not-allowed", status=403, organizer="ceo@contoso.test", consumer="crm")
    ]
    rows += [request(7, outcome="graph-unavailable", status=502, graph_status=503)]
    alerts = {a.rule: a for a in evaluate(quiet_day(requests=rows))}
    assert set(alerts) == {"failures_policy_403", "consumer_overreach"}
    assert "ceo@contoso.test" in alerts["consumer_overreach"].remedy
    hyper = {
        a.rule for a in evaluate(quiet_day(requests=rows, thresholds=HYPERCARE_DEFAULTS, hypercare=True))
    }
    assert {"failures_policy_403", "failures_auth_401", "failures_server_5xx", "consumer_overreach"} <= hyper


def test_unusual_hours_uses_local_hours():
    th = dataclasses.replace(QUIET, active_hours=(8, 14), utc_offset_hours=0)
    (alert,) = evaluate(quiet_day(thresholds=th, sign_ins=[], requests=[request(5)]))
    assert alert.rule == "unusual_hours" and alert.severity == "info"
    shifted = dataclasses.replace(th, utc_offset_hours=-2)  # 14:25 UTC is 12:25 local
    assert evaluate(quiet_day(thresholds=shifted, sign_ins=[], requests=[request(5)])) == []


def test_certificate_expiry_levels():
    soon = CertificateStatus("CD" * 20, NOW + dt.timedelta(days=20))
    (warn,) = evaluate(quiet_day(certificates=[soon]))
    assert warn.rule == "certificate_expiry" and warn.severity == "warning"
    expired = CertificateStatus("EF" * 20, NOW - dt.timedelta(days=1))
    (crit,) = evaluate(quiet_day(certificates=[expired]))
    assert crit.severity == "critical" and "expired" in crit.title


def test_every_rule_is_covered_here():
    assert len(RULES) == 12


def test_alert_keys_deduplicate_by_rule_subject_period():
    data = quiet_day(sign_ins=[sign_in(m, error=700027) for m in (10, 5, 1)])
    first, again = (
        evaluate(data),
        evaluate(dataclasses.replace(data, sign_ins=[*data.sign_ins, sign_in(0.5, error=1)])),
    )
    assert [a.key for a in first] == [a.key for a in again]


def test_thresholds_file(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("policy_403 = 7\nactive_hours = [7, 19]\n[hypercare]\npolicy_403 = 2\n")
    normal, hyper = Thresholds.load(path)
    assert normal.policy_403 == 7 and normal.active_hours == (7, 19)
    assert hyper.policy_403 == 2 and hyper.sign_in_failures == 1 and hyper.active_hours == (7, 19)
    path.write_text("policy403 = 1\n")
    with pytest.raises(MonitorError, match="unknown threshold 'policy403'") as info:
        Thresholds.load(path)
    assert "policy_403" in (info.value.remedy or "")
    path.write_text("auth_401 = 'many'\n")
    with pytest.raises(MonitorError, match="must be a number"):
        Thresholds.load(path)
    normal, hyper = Thresholds.load(None)
    assert hyper.creations_per_hour < normal.creations_per_hour


def test_activity_names_fold_dashes():
    assert normalize_activity(
        "Update application \u2013 Certificates and secrets management"
    ) == normalize_activity("Update application - Certificates  and secrets management")


def test_activity_figures_buckets():
    rows = [request(m) for m in (5, 15, 25)] + [request(5, outcome="graph-throttled", status=503)]
    figures = activity_figures(rows, since=NOW - dt.timedelta(hours=1), until=NOW, bucket_minutes=10)
    assert figures["meetingsCreated"] == 3 and len(figures["meetingsOverTime"]) == 6
    assert [p["count"] for p in figures["meetingsOverTime"]] == [0, 0, 0, 1, 1, 1]
    assert figures["failuresByClass"]["throttled_429"] == 1
    assert figures["topOrganizers"] == [{"name": "alice@contoso.test", "count": 3}]
