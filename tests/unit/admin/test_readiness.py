"""Go-live readiness over plain facts: each item's verdict and evidence, GO / NO-GO, the reports,
and the hypercare window kept in the store."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from meetgate.admin.policy.model import GroupGrant, PolicyDefinition, TenantPolicyState
from meetgate.admin.readiness import (
    ConsumerScope,
    MonitoringStatus,
    ReadinessInputs,
    assess_readiness,
    hypercare_for,
)
from meetgate.admin.records import current_hypercare, last_go_live, load_runs, record_go_live, save_run
from meetgate.admin.reports import readiness_html, readiness_markdown
from meetgate.admin.validation import CheckResult, ValidationRun
from meetgate.store import Store
from meetgate.store.runs import RunRepository

NOW = dt.datetime(2026, 6, 11, 10, 0, tzinfo=dt.UTC)
APP = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
POLICY = "Tag:TeamsMeetingsIntegration"
APPROVED = {"id-a": "alice@t.test", "id-b": "bob@t.test"}


def state(**over) -> TenantPolicyState:
    s = TenantPolicyState(
        policies={"teamsmeetingsintegration": PolicyDefinition(POLICY, (APP,), "x")},
        direct={"id-a": "TeamsMeetingsIntegration", "id-b": "TeamsMeetingsIntegration"},
        upns=dict(APPROVED),
    )
    for key, value in over.items():
        setattr(s, key, value)
    return s


def good_run(at: dt.datetime = NOW - dt.timedelta(days=1), **statuses: str) -> ValidationRun:
    names = ["configuration", "certificate", "token", "permissions", "policy_positive", "policy_negative"]
    evidence = {"token": {"credential": "certificate"}, "certificate": {"app_client_secrets": 0}}
    return ValidationRun(
        id="run-1",
        started_at=at,
        finished_at=at + dt.timedelta(seconds=3),
        tenant_id="t",
        client_id=APP,
        profile="p",
        pilot=("alice@t.test",),
        negative=("eve@t.test",),
        checks=tuple(CheckResult(n, statuses.get(n, "pass"), "ok", evidence.get(n, {})) for n in names),  # type: ignore[arg-type]
    )


def inputs(**over) -> ReadinessInputs:
    base = {
        "tenant_id": "t",
        "client_id": APP,
        "policy_identity": POLICY,
        "now": NOW,
        "approved": dict(APPROVED),
        "policy_state": state(),
        "certificate_not_after": NOW + dt.timedelta(days=400),
        "certificate_thumbprint": "AB" * 20,
        "runs": [good_run()],
        "consumers": [ConsumerScope("booking", ("alice@t.test",)), ConsumerScope("crm", (), True)],
    }
    base.update(over)
    return ReadinessInputs(**base)


def test_ready_tenant_is_go_with_monitoring_skipped_for_a_reason():
    report = assess_readiness(inputs())
    assert report.verdict == "GO", report.to_dict()
    assert report.reasons == []
    monitoring = report.item("monitoring")
    assert monitoring is not None and monitoring.status == "skip" and "monitor" in monitoring.finding
    assert report.item("validation_recent").evidence["run_id"] == "run-1"


def test_extra_holder_missing_operator_and_group_members_break_the_scope():
    s = state(
        direct={"id-a": "TeamsMeetingsIntegration"},
        group_grants=[GroupGrant("g1", "TeamsMeetingsIntegration", 1, ("id-x",))],
    )
    report = assess_readiness(inputs(policy_state=s))
    item = report.item("policy_scope")
    assert report.verdict == "NO-GO" and item.status == "fail"
    assert item.evidence["extra"] == ["id-x"] and item.evidence["missing"] == ["bob@t.test"]
    assert "meetgate policy plan" in item.remedy


def test_global_grant_is_no_go_even_when_the_direct_grants_match():
    report = assess_readiness(inputs(policy_state=state(global_policy="TeamsMeetingsIntegration")))
    assert [i.name for i in report.items if i.status == "fail"] == ["global_grant"]
    assert "-Global" in report.item("global_grant").remedy
    other = state(global_policy="SomethingElse")
    assert assess_readiness(inputs(policy_state=other)).go


def test_global_grant_wording_says_what_holds_what():
    """Teams reports a -Global grant as the tenant-wide instance named Global: not 'Global is granted Global'."""
    instance = state(
        policies={"global": PolicyDefinition("Global", (APP,))},
        global_policy="Global",
    )
    item = assess_readiness(inputs(policy_state=instance)).item("global_grant")
    assert item.status == "fail"
    assert item.finding.startswith(f"the tenant-wide (Global) instance lists app(s) {APP}: the app may act")
    assert "Global is granted Global" not in item.finding
    named = assess_readiness(inputs(policy_state=state(global_policy="TeamsMeetingsIntegration")))
    assert named.item("global_grant").finding.startswith(
        "the tenant-wide (Global) instance holds TeamsMeetingsIntegration:"
    )
    other = assess_readiness(inputs(policy_state=state(global_policy="SomethingElse")))
    assert other.item("global_grant").finding == (
        "the tenant-wide (Global) instance holds SomethingElse, which does not list this app"
    )


def test_secrets_expired_certificate_and_stale_validation():
    report = assess_readiness(
        inputs(
            client_secret_configured=True,
            certificate_not_after=NOW - dt.timedelta(days=1),
            runs=[good_run(NOW - dt.timedelta(days=9))],
        )
    )
    failed = {i.name for i in report.items if i.status == "fail"}
    assert failed == {"certificate_auth", "certificate_validity", "validation_recent"}
    soon = assess_readiness(inputs(certificate_not_after=NOW + dt.timedelta(days=10)))
    assert soon.item("certificate_validity").status == "warn" and soon.go


def test_validation_must_cover_both_policy_tests_and_pass():
    skipped = good_run(policy_negative="skip")
    report = assess_readiness(inputs(runs=[skipped]))
    assert report.item("validation_recent").status == "fail"
    assert "negative" in report.item("validation_recent").finding
    failed = good_run(policy_positive="fail")
    assert assess_readiness(inputs(runs=[failed])).item("validation_recent").finding.endswith("failed")
    assert assess_readiness(inputs(runs=[])).item("validation_recent").status == "fail"


def run(run_id: str, at: dt.datetime, **statuses: str) -> ValidationRun:
    return ValidationRun(**{**good_run(at, **statuses).__dict__, "id": run_id})


def test_the_newest_run_decides_an_earlier_pass_does_not_count():
    passed = run("pass-old", NOW - dt.timedelta(days=3))
    failed = run("fail-new", NOW - dt.timedelta(hours=2), policy_negative="fail")
    report = assess_readiness(inputs(runs=[failed, passed]))
    item = report.item("validation_recent")
    assert report.verdict == "NO-GO" and item.status == "fail"
    assert "newest run fail-new" in item.finding and item.evidence["run_id"] == "fail-new"
    assert "meetgate validate" in item.remedy and "fix" in item.remedy
    assert any("fail-new" in reason for reason in report.reasons)
    # the order the runs arrive in does not matter
    assert assess_readiness(inputs(runs=[passed, failed])).item("validation_recent").status == "fail"
    # a fresh full pass after the failure makes it GO again
    fixed = run("pass-new", NOW - dt.timedelta(hours=1))
    assert assess_readiness(inputs(runs=[fixed, failed, passed])).go


def test_a_quick_pass_after_a_failure_does_not_replace_the_policy_tests():
    full = run("full-old", NOW - dt.timedelta(days=3))
    failed = run("fail-mid", NOW - dt.timedelta(days=2), policy_positive="fail")
    quick = run("quick-new", NOW - dt.timedelta(hours=1), policy_positive="skip", policy_negative="skip")
    item = assess_readiness(inputs(runs=[quick, failed, full])).item("validation_recent")
    assert item.status == "fail" and "since the failed run fail-mid" in item.finding
    # without a failure in between, the full pass before the quick run still counts
    report = assess_readiness(inputs(runs=[quick, full]))
    assert report.go and report.item("validation_recent").evidence["run_id"] == "full-old"
    # a failure older than the window is forgotten
    old_failure = run("fail-old", NOW - dt.timedelta(days=9), policy_positive="fail")
    assert assess_readiness(inputs(runs=[full, old_failure])).go


def test_newest_failed_run_from_the_store_is_no_go(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    repo = RunRepository(store)
    save_run(repo, run("pass-old", NOW - dt.timedelta(days=1)))
    save_run(repo, run("fail-new", NOW - dt.timedelta(minutes=5), certificate="fail"))
    report = assess_readiness(inputs(runs=load_runs(repo, APP)))
    assert report.verdict == "NO-GO"
    assert report.item("validation_recent").evidence["run_id"] == "fail-new"
    store.close()


def test_consumer_outside_the_policy_scope_is_no_go():
    report = assess_readiness(
        inputs(consumers=[ConsumerScope("booking", ("alice@t.test", "mallory@t.test"))])
    )
    item = report.item("consumers_scope")
    assert item.status == "fail" and item.evidence["outside"] == {"booking": ["mallory@t.test"]}
    revoked = ConsumerScope("old", ("mallory@t.test",), active=False)
    assert assess_readiness(inputs(consumers=[revoked])).go


def test_monitoring_when_the_feature_reports():
    stale = MonitoringStatus(True, NOW - dt.timedelta(days=3))
    assert assess_readiness(inputs(monitoring=stale)).item("monitoring").status == "fail"
    fresh = MonitoringStatus(True, NOW - dt.timedelta(hours=1))
    assert assess_readiness(inputs(monitoring=fresh)).item("monitoring").status == "pass"


def test_no_policy_file_or_unreadable_state():
    report = assess_readiness(inputs(approved=None))
    assert (
        report.item("policy_scope").status == "fail" and "policy file" in report.item("policy_scope").finding
    )
    unread = assess_readiness(inputs(policy_state=None, policy_error="pwsh missing"))
    assert "pwsh missing" in unread.item("policy_scope").finding


def test_markdown_and_html_reports():
    report = assess_readiness(inputs(policy_state=state(global_policy="TeamsMeetingsIntegration")))
    md = readiness_markdown(report)
    assert "**Verdict: NO-GO**" in md and "- No Global grant:" in md and "```json" in md
    page = readiness_html(report)
    assert "NO-GO" in page and 'id="global_grant"' in page
    ET.fromstring(page.split("\n", 1)[1].replace("<!DOCTYPE html>", ""))  # well-formed markup


def test_runs_and_go_live_are_kept_in_the_store(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'm.db'}")
    repo = RunRepository(store)
    save_run(repo, good_run(NOW - dt.timedelta(days=2)))
    newer = ValidationRun(**{**good_run(NOW).__dict__, "id": "run-2"})
    save_run(repo, newer)
    runs = load_runs(repo, APP)
    assert [r.id for r in runs] == ["run-2", "run-1"] and runs[0].covers_policy_tests
    assert current_hypercare(repo, APP, now=NOW) is None
    report = assess_readiness(inputs())
    window = record_go_live(repo, report, at=NOW)
    assert window == hypercare_for(NOW)
    assert current_hypercare(repo, APP, now=NOW + dt.timedelta(days=3)) == window
    assert current_hypercare(repo, APP, now=NOW + dt.timedelta(days=7, seconds=1)) is None
    assert last_go_live(repo, APP) == window
    store.close()


def test_an_entra_calendar_grant_beside_a_mailbox_scope_is_no_go():
    roles = ["OnlineMeetings.ReadWrite.All", "User.ReadBasic.All"]
    assert (
        assess_readiness(inputs(mailbox_scoped=True, entra_roles=roles)).item("calendar_scope").status
        == "pass"
    )
    report = assess_readiness(inputs(mailbox_scoped=True, entra_roles=[*roles, "Calendars.ReadWrite"]))
    item = report.item("calendar_scope")
    assert report.verdict == "NO-GO" and item.status == "fail"
    assert item.evidence["entra_calendar_roles"] == ["Calendars.ReadWrite"] and "revoke" in item.remedy
    unread = assess_readiness(inputs(mailbox_scoped=True, entra_roles=None, roles_error="AADSTS700027"))
    assert (
        unread.item("calendar_scope").status == "fail"
        and "AADSTS700027" in unread.item("calendar_scope").finding
    )
    # unscoped: not a go-live blocker here (validate's permissions check flags extra privilege)
    unscoped = assess_readiness(inputs(entra_roles=[*roles, "Calendars.Read"]))
    assert unscoped.go and unscoped.item("calendar_scope").status == "warn"
