"""The planner against an in-memory tenant arranged to cause each warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meetgate.admin.policy.apply import ApplyJournal, apply_plan
from meetgate.admin.policy.loader import load_desired_state
from meetgate.admin.policy.model import (
    DesiredPolicy,
    DirectoryUser,
    OrganizerSources,
    PolicyDefinition,
    PolicyError,
)
from meetgate.admin.policy.planner import (
    ApplyRecord,
    PolicyPlan,
    build_plan,
    resolve_organizers,
    unacknowledged,
)
from meetgate.admin.policy.ports import UserOp
from meetgate_sandbox.fakes.policy_tenant import FakePolicyTenant

APP = "11111111-2222-3333-4444-555555555555"
OTHER_APP = "99999999-8888-7777-6666-555555555555"
GROUP = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def desired(users=(), groups=(), app_ids=(APP,), **kw) -> DesiredPolicy:
    return DesiredPolicy(
        "Tag:TeamsMeetingsIntegration",
        tuple(app_ids),
        "Restricts Teams meeting creation",
        OrganizerSources(users=tuple(users), groups=tuple(groups)),
        **kw,
    )


def plan_for(tenant: FakePolicyTenant, want: DesiredPolicy, last=None) -> PolicyPlan:
    return build_plan(want, resolve_organizers(want, tenant), tenant.read_state(want.identity), last)


@pytest.fixture
def tenant() -> FakePolicyTenant:
    return FakePolicyTenant.with_users(10)


def uid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def test_empty_tenant_plans_create_and_grants_by_upn_and_id(tenant):
    plan = plan_for(tenant, desired(["user0@contoso.test", uid(1), "USER0@contoso.test"]))
    assert plan.policy.action == "create"
    assert [o.user_id for o in plan.grants] == [uid(0), uid(1)]
    assert plan.revokes == [] and plan.keeps == {} and plan.warnings == []


def test_converged_tenant_plans_nothing_and_stray_holder_is_revoked(tenant):
    want = desired(["user0@contoso.test"])
    tenant.ensure_policy(PolicyDefinition(want.identity, (APP,), want.description))
    tenant.grant([uid(0), uid(5)], "TeamsMeetingsIntegration")
    plan = plan_for(tenant, want)
    assert plan.policy.action == "none"
    assert plan.keeps == {uid(0): "user0@contoso.test"}
    assert [o.user_id for o in plan.revokes] == [uid(5)]
    assert plan.grants == []


def test_global_grant_of_policy_listing_app_warns(tenant):
    tenant.ensure_policy(PolicyDefinition("Tag:Everyone", (APP,)))
    tenant.global_policy = "Everyone"
    plan = plan_for(tenant, desired(["user0@contoso.test"]))
    assert "global-grant" in plan.warning_codes
    # a global grant of a policy NOT listing this app is no exposure of ours
    tenant.policies.clear()
    tenant.ensure_policy(PolicyDefinition("Tag:Everyone", (OTHER_APP,)))
    assert "global-grant" not in plan_for(tenant, desired(["user0@contoso.test"])).warning_codes


def test_user_holding_other_policy_warns_and_offers_merge(tenant):
    tenant.ensure_policy(PolicyDefinition("Tag:CrmPolicy", (OTHER_APP,)))
    tenant.grant([uid(2)], "CrmPolicy")
    plan = plan_for(tenant, desired([uid(2)]))
    [warning] = [w for w in plan.warnings if w.code == "other-policy"]
    assert warning.details["mergedAppIds"] == [APP, OTHER_APP]
    assert OTHER_APP in warning.remedy
    assert plan.replaces == {uid(2): "CrmPolicy"}
    # once merged into our app ids, nothing is lost and the warning goes away
    merged = plan_for(tenant, desired([uid(2)], app_ids=(APP, OTHER_APP)))
    assert "other-policy" not in merged.warning_codes


def test_other_policy_through_a_group_grant_also_warns(tenant):
    tenant.ensure_policy(PolicyDefinition("Tag:CrmPolicy", (OTHER_APP,)))
    tenant.groups[GROUP] = [uid(3)]
    tenant.group_grants[GROUP] = ("CrmPolicy", 1)
    assert "other-policy" in plan_for(tenant, desired([uid(3)])).warning_codes


def test_unknown_and_disabled_users_warn(tenant):
    tenant.add_user(DirectoryUser(uid(50), "gone@contoso.test", "Gone", enabled=False))
    plan = plan_for(tenant, desired(["nobody@contoso.test", "gone@contoso.test"], groups=[GROUP]))
    codes = {w.code: w for w in plan.warnings}
    assert codes["unknown-users"].sample == ("nobody@contoso.test", f"group:{GROUP}")
    assert codes["disabled-users"].sample == ("gone@contoso.test",)


def test_group_expansion_and_sharp_growth_since_last_apply(tenant):
    tenant.groups[GROUP] = [uid(i) for i in range(3)]
    want = desired(groups=[GROUP], growth_warning_min_users=2)
    first = plan_for(tenant, want)
    assert first.group_counts == {GROUP: 3} and len(first.grants) == 3
    last = ApplyRecord(want.identity, 3, {GROUP: 3})
    tenant.groups[GROUP] = [uid(i) for i in range(4)]
    assert "group-growth" not in plan_for(tenant, want, last).warning_codes  # +1: below the minimum
    tenant.groups[GROUP] = [uid(i) for i in range(10)]
    grown = plan_for(tenant, want, last)
    [w] = [w for w in grown.warnings if w.code == "group-growth"]
    assert w.details == {"group": GROUP, "before": 3, "now": 10}


def test_group_grant_of_our_policy_warns_about_members_outside_list(tenant):
    tenant.ensure_policy(PolicyDefinition("Tag:TeamsMeetingsIntegration", (APP,)))
    tenant.groups[GROUP] = [uid(7), uid(8)]
    tenant.group_grants[GROUP] = ("TeamsMeetingsIntegration", 1)
    [w] = [w for w in plan_for(tenant, desired([uid(7)])).warnings if w.code == "group-grant"]
    assert w.count == 1 and w.sample == ("user8@contoso.test",)


def test_update_that_drops_app_ids_warns(tenant):
    tenant.ensure_policy(PolicyDefinition("Tag:TeamsMeetingsIntegration", (APP, OTHER_APP), "old"))
    plan = plan_for(tenant, desired([uid(0)]))
    assert plan.policy.action == "update"
    assert "app-ids-removed" in plan.warning_codes


def test_unacknowledged_warnings():
    tenant = FakePolicyTenant.with_users(2)
    tenant.ensure_policy(PolicyDefinition("Tag:Everyone", (APP,)))
    tenant.global_policy = "Everyone"
    plan = plan_for(tenant, desired(["nobody@x.test"]))
    assert {w.code for w in unacknowledged(plan, [])} == {"global-grant", "unknown-users"}
    assert [w.code for w in unacknowledged(plan, ["global-grant"])] == ["unknown-users"]
    assert unacknowledged(plan, [], yes=True) == []


def test_plan_round_trips_through_json_and_detects_edits(tenant):
    plan = plan_for(tenant, desired([uid(0), uid(1)]))
    data = json.loads(json.dumps(plan.to_dict()))
    again = PolicyPlan.from_dict(data)
    assert again.plan_id == plan.plan_id and [o.user_id for o in again.grants] == [uid(0), uid(1)]
    data["grant"].append({"id": uid(9), "upn": "user9@contoso.test"})
    with pytest.raises(ValueError, match="edited"):
        PolicyPlan.from_dict(data)


def test_a_saved_plan_with_its_warnings_edited_out_is_refused():
    """The warnings are what `apply` asks to acknowledge: deleting them from plan.json must not
    turn a plan that needs review into one that applies without it."""
    tenant = FakePolicyTenant.with_users(2)
    tenant.ensure_policy(PolicyDefinition("Tag:Everyone", (APP,)))
    tenant.global_policy = "Everyone"
    plan = plan_for(tenant, desired([uid(0), "nobody@x.test"]))
    assert plan.warning_codes == {"global-grant", "unknown-users"}
    data = json.loads(json.dumps(plan.to_dict()))
    assert PolicyPlan.from_dict(data).plan_id == plan.plan_id
    data["warnings"] = [w for w in data["warnings"] if w["code"] != "global-grant"]
    with pytest.raises(ValueError, match="edited"):
        PolicyPlan.from_dict(data)


def test_apply_is_batched_reports_failures_and_converges(tenant, tmp_path):
    want = desired([uid(i) for i in range(7)] + ["ghost@x.test"])
    tenant.batch_size = 3
    tenant.grant([uid(9)], "TeamsMeetingsIntegration")

    def flaky(op: UserOp) -> None:
        if op.user_id == uid(4):
            raise ValueError("transient failure for this user")

    tenant.on_op = flaky
    report = apply_plan(plan_for(tenant, want), tenant, ApplyJournal(tmp_path, want.identity))
    assert tenant.batches == [3, 3, 2]
    assert [(r.user_id, r.error) for r in report.failed] == [(uid(4), "transient failure for this user")]
    assert len(report.succeeded) == 7  # 6 grants + 1 revoke
    tenant.on_op = None
    again = plan_for(tenant, want)
    assert [o.user_id for o in again.grants] == [uid(4)] and again.revokes == []
    assert apply_plan(again, tenant, ApplyJournal(tmp_path, want.identity)).ok
    assert not plan_for(tenant, want).has_changes


def test_interrupted_apply_resumes_from_journal(tenant, tmp_path):
    want = desired([uid(i) for i in range(10)])
    tenant.batch_size = 2
    plan = plan_for(tenant, want)
    seen: list[str] = []

    def interrupt(op: UserOp) -> None:
        seen.append(op.user_id)
        if len(seen) == 5:
            raise KeyboardInterrupt

    tenant.on_op = interrupt
    journal = ApplyJournal(tmp_path, want.identity)
    with pytest.raises(KeyboardInterrupt):
        apply_plan(plan, tenant, journal)
    assert journal.path.exists()
    tenant.on_op = lambda op: seen.append(op.user_id)
    seen.clear()
    report = apply_plan(plan, tenant, journal)  # the same reviewed plan, resumed
    assert report.skipped == 4  # two batches of two were journaled before the interruption
    assert seen == [uid(i) for i in range(4, 10)]
    assert report.ok and not journal.path.exists()
    assert journal.last_apply() is not None and journal.last_apply().approved == 10


def test_loader_reads_toml_yaml_and_csv(tmp_path: Path):
    (tmp_path / "list.csv").write_text(
        "userPrincipalName,displayName\nuser3@contoso.test,U3\n\nuser4@contoso.test,U4\n"
    )
    (tmp_path / "p.toml").write_text(
        f'[policy]\nidentity = "TeamsMeetingsIntegration"\napp_ids = ["{APP}"]\n'
        f'[organizers]\nusers = ["user0@contoso.test"]\ncsv = ["list.csv"]\ngroups = ["{GROUP}"]\n'
    )
    (tmp_path / "p.yaml").write_text(
        f"policy:\n  identity: Tag:TeamsMeetingsIntegration\n  app_ids: [{APP}]\n"
        f"organizers:\n  users: [user0@contoso.test]\n  csv: [list.csv]\n  groups: ['{GROUP}']\n"
    )
    a, b = load_desired_state(tmp_path / "p.toml"), load_desired_state(tmp_path / "p.yaml")
    assert a.identity == b.identity == "Tag:TeamsMeetingsIntegration"
    assert a.organizers == b.organizers
    tenant = FakePolicyTenant.with_users(5)
    tenant.groups[GROUP] = [uid(1)]
    resolved = resolve_organizers(a, tenant)
    assert sorted(resolved.users) == [uid(0), uid(1), uid(3), uid(4)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[policy]\napp_ids=[]\n", "identity is missing"),
        ('[policy]\nidentity="X"\napp_ids=["not-a-guid"]\n', "GUIDs"),
        (f'[policy]\nidentity="Global"\napp_ids=["{APP}"]\n', "not a valid policy name"),
        (f'[policy]\nidentity="X"\napp_ids=["{APP}"]\n[organizers]\ncsv=["missing.csv"]\n', "does not exist"),
        (f'[policy]\nidentity="X"\napp_ids=["{APP}"]\n[organizers]\nteams=["x"]\n', "unknown key"),
        ("[policy\n", "not valid TOML"),
    ],
)
def test_loader_rejects_bad_files_clearly(tmp_path: Path, body, message):
    (tmp_path / "p.toml").write_text(body)
    with pytest.raises(PolicyError, match=message):
        load_desired_state(tmp_path / "p.toml")


def test_one_apply_at_a_time_and_stale_locks_are_taken_over(tenant, tmp_path):
    import os

    want = desired([uid(0)])
    journal = ApplyJournal(tmp_path, want.identity)
    tmp_path.mkdir(exist_ok=True)
    journal.lock_path.write_text(str(os.getpid()))  # a live apply holds the lock
    with pytest.raises(PolicyError, match="another apply"):
        apply_plan(plan_for(tenant, want), tenant, journal)
    assert tenant.direct == {}
    journal.lock_path.write_text("999999999")  # its process is gone
    assert apply_plan(plan_for(tenant, want), tenant, journal).ok
    assert not journal.lock_path.exists()


# --- a saved plan applied later -------------------------------------------------------------------


def saved(plan: PolicyPlan) -> PolicyPlan:
    """The plan as `plan --out` writes it and `apply --plan` reads it."""
    return PolicyPlan.from_dict(json.loads(json.dumps(plan.to_dict())))


def apply_saved(plan: PolicyPlan, tenant: FakePolicyTenant, journal: ApplyJournal):
    return apply_plan(
        plan, tenant, journal, current_state=lambda: tenant.read_state(plan.policy.definition.identity)
    )


def test_the_plan_records_what_each_touched_user_held(tenant):
    tenant.ensure_policy(PolicyDefinition("Tag:Crm", (OTHER_APP,)))
    tenant.grant([uid(1)], "Crm")
    tenant.grant([uid(9)], "TeamsMeetingsIntegration")
    plan = saved(plan_for(tenant, desired([uid(0), uid(1)])))
    assert plan.before == {
        uid(0): (None, "none"),
        uid(1): ("Crm", "direct"),
        uid(9): ("TeamsMeetingsIntegration", "direct"),
    }
    assert plan.created_at
    data = plan.to_dict()
    data["grant"][0]["before"] = {"policy": "Crm", "source": "direct"}
    with pytest.raises(ValueError, match="edited"):
        PolicyPlan.from_dict(data)


def test_a_saved_plan_is_refused_once_a_user_it_touches_changed(tenant, tmp_path):
    tenant.grant([uid(9)], "TeamsMeetingsIntegration")
    want = desired([uid(0), uid(1)])
    plan = saved(plan_for(tenant, want))
    # meanwhile, by hand: user1 got another policy, user9 lost ours
    tenant.ensure_policy(PolicyDefinition("Tag:Crm", (OTHER_APP,)))
    tenant.grant([uid(1)], "Crm")
    tenant.direct.pop(uid(9))
    with pytest.raises(PolicyError, match="stale") as refused:
        apply_saved(plan, tenant, ApplyJournal(tmp_path, want.identity))
    message = str(refused.value)
    assert (
        "2 of the 3 user(s)" in message
        and "user1@contoso.test held nothing, holds Crm (direct) now" in message
    )
    assert "meetgate policy plan" in (refused.value.remedy or "")
    assert tenant.direct == {uid(1): "Crm"} and "teamsmeetingsintegration" not in tenant.policies


def test_a_completed_plan_is_not_replayed_later(tenant, tmp_path):
    """After a complete apply the journal is gone; re-applying the old plan file must not replay it,
    even when the touched users happen to hold again what the plan saw."""
    tenant.grant([uid(9)], "TeamsMeetingsIntegration")
    want = desired([uid(0)])
    journal = ApplyJournal(tmp_path, want.identity)
    plan = saved(plan_for(tenant, want))
    assert apply_saved(plan, tenant, journal).ok
    assert tenant.direct == {uid(0): "TeamsMeetingsIntegration"}
    with pytest.raises(PolicyError, match="stale"):
        apply_saved(plan, tenant, journal)  # user0 holds the policy now: not what the plan saw
    # the tenant later went back to what the plan saw (a later plan revoked user0 and granted user9)
    tenant.direct = {uid(9): "TeamsMeetingsIntegration"}
    with pytest.raises(PolicyError, match="an apply of Tag:TeamsMeetingsIntegration finished at"):
        apply_saved(plan, tenant, journal)
    assert tenant.direct == {uid(9): "TeamsMeetingsIntegration"}
    # planning again gives a plan that applies
    assert apply_saved(saved(plan_for(tenant, want)), tenant, journal).ok


def test_a_changed_policy_definition_makes_the_plan_stale(tenant, tmp_path):
    want = desired([uid(0)])
    plan = saved(plan_for(tenant, want))
    tenant.ensure_policy(PolicyDefinition(want.identity, (OTHER_APP,), "made by hand"))
    with pytest.raises(PolicyError, match=f"the policy {want.identity} changed"):
        apply_saved(plan, tenant, ApplyJournal(tmp_path, want.identity))


def test_a_plan_without_its_before_state_is_refused(tenant, tmp_path):
    want = desired([uid(0)])
    data = plan_for(tenant, want).to_dict()
    for op in data["grant"]:
        op.pop("before")
    data.pop("createdAt")
    data["planId"] = PolicyPlan.from_dict({**data, "planId": None}).plan_id  # as an older meetgate wrote it
    with pytest.raises(PolicyError, match="does not record the tenant state"):
        apply_saved(PolicyPlan.from_dict(data), tenant, ApplyJournal(tmp_path, want.identity))
    assert tenant.direct == {}


def test_an_interrupted_saved_plan_resumes_even_with_an_unjournaled_batch(tenant, tmp_path):
    want = desired([uid(i) for i in range(6)])
    tenant.grant([uid(9)], "TeamsMeetingsIntegration")
    tenant.batch_size = 2
    plan = saved(plan_for(tenant, want))
    seen: list[str] = []

    def interrupt(op: UserOp) -> None:
        seen.append(op.user_id)
        if len(seen) == 4:  # user2 of the batch [user2, user3] is granted, the batch is not journaled
            raise KeyboardInterrupt

    tenant.on_op = interrupt
    journal = ApplyJournal(tmp_path, want.identity)
    with pytest.raises(KeyboardInterrupt):
        apply_saved(plan, tenant, journal)
    assert tenant.direct.get(uid(2)) == "TeamsMeetingsIntegration" and journal.path.exists()
    tenant.on_op = None
    report = apply_saved(plan, tenant, journal)  # the same saved plan, resumed
    assert report.ok and report.skipped == 2
    assert set(tenant.direct) == {uid(i) for i in range(6)}
    # but a user the journal does not cover who changed by hand still stops a resume
    plan2 = saved(plan_for(tenant, desired([uid(7), uid(8)])))

    def stop_at_user8(op: UserOp) -> None:
        if op.user_id == uid(8):
            raise KeyboardInterrupt

    tenant.on_op = stop_at_user8
    with pytest.raises(KeyboardInterrupt):
        apply_saved(plan2, tenant, journal)
    tenant.on_op = None
    tenant.ensure_policy(PolicyDefinition("Tag:Crm", (OTHER_APP,)))
    tenant.grant([uid(8)], "Crm")
    with pytest.raises(PolicyError, match=r"user8@contoso\.test held nothing, holds Crm"):
        apply_saved(plan2, tenant, journal)


# --- mass-revoke ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("holders", "approved", "warns"),
    [
        (1, 0, True),  # the only holder: every holder
        (10, 0, True),  # everybody
        (10, 9, False),  # 1 of 10: 10 %
        (10, 8, False),  # 2 of 10: 20 %, not more
        (10, 7, True),  # 3 of 10: 30 %
        (3, 2, False),  # 1 of 3: 33 %, but a single stray grant is no mass revoke
        (5, 3, True),  # 2 of 5: 40 %
    ],
)
def test_mass_revoke_warns_for_every_holder_or_more_than_the_share(holders, approved, warns):
    tenant = FakePolicyTenant.with_users(12)
    want = desired([uid(i) for i in range(approved)])
    tenant.ensure_policy(PolicyDefinition(want.identity, (APP,), want.description))
    tenant.grant([uid(i) for i in range(holders)], "TeamsMeetingsIntegration")
    plan = plan_for(tenant, want)
    assert len(plan.revokes) == holders - approved
    assert ("mass-revoke" in plan.warning_codes) is warns
    if warns:
        warning = next(w for w in plan.warnings if w.code == "mass-revoke")
        assert warning.count == holders - approved and warning.details["holders"] == holders


def test_the_mass_revoke_share_comes_from_the_policy_file():
    tenant = FakePolicyTenant.with_users(10)
    tenant.ensure_policy(
        PolicyDefinition("Tag:TeamsMeetingsIntegration", (APP,), "Restricts Teams meeting creation")
    )
    tenant.grant([uid(i) for i in range(10)], "TeamsMeetingsIntegration")
    keep_half = [uid(i) for i in range(5)]
    assert "mass-revoke" in plan_for(tenant, desired(keep_half)).warning_codes  # 50 % > 20 %
    assert "mass-revoke" not in plan_for(tenant, desired(keep_half, mass_revoke_percent=50)).warning_codes
    # revoking every holder warns whatever the share
    assert "mass-revoke" in plan_for(tenant, desired([], mass_revoke_percent=100)).warning_codes


def test_a_mass_revoke_is_accepted_only_by_its_own_code():
    tenant = FakePolicyTenant.with_users(4)
    tenant.grant([uid(i) for i in range(4)], "TeamsMeetingsIntegration")
    plan = plan_for(tenant, desired(["nobody@x.test"]))
    assert plan.warning_codes == {"mass-revoke", "unknown-users"}
    assert [w.code for w in unacknowledged(plan, [], yes=True)] == ["mass-revoke"]
    assert [w.code for w in unacknowledged(plan, ["unknown-users"], yes=True)] == ["mass-revoke"]
    assert unacknowledged(plan, ["MASS-REVOKE", "unknown-users"]) == []
    # and the saved plan cannot lose it: its id covers the warnings
    data = json.loads(json.dumps(plan.to_dict()))
    data["warnings"] = [w for w in data["warnings"] if w["code"] != "mass-revoke"]
    with pytest.raises(ValueError, match="edited"):
        PolicyPlan.from_dict(data)


@pytest.mark.parametrize(
    "line",
    ["mass_revoke_percent = 120", "mass_revoke_percent = true", "mass_revoke_min_users = 0", "typo = 1"],
)
def test_loader_rejects_bad_mass_revoke_settings(tmp_path: Path, line: str):
    (tmp_path / "p.toml").write_text(f'[policy]\nidentity="X"\napp_ids=["{APP}"]\n[warnings]\n{line}\n')
    with pytest.raises(PolicyError, match=r"\[warnings\]"):
        load_desired_state(tmp_path / "p.toml")
