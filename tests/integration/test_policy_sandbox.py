"""Policy end to end against the sandbox over TLS: the powershell backend and generated scripts run
through the pwsh stand-in (a real subprocess), and each warning from a tenant arranged to cause it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meetgate import certificates
from meetgate.admin.policy.apply import ApplyJournal, apply_plan
from meetgate.admin.policy.model import DesiredPolicy, OrganizerSources
from meetgate.admin.policy.planner import PolicyPlan, build_plan, resolve_organizers
from meetgate.admin.policy.powershell import PowerShellBackend, PwshConnection, SubprocessPwshRunner
from meetgate.admin.policy.script import render_script

STANDIN = (sys.executable, "-m", "meetgate_sandbox.pwsh")
IDENTITY = "Tag:TeamsMeetingsIntegration"
OTHER_APP = "99999999-8888-7777-6666-555555555555"


class Tenant:
    """A fresh sandbox tenant with an app that signs in with a certificate."""

    def __init__(self, sandbox, control, tmp_path: Path) -> None:
        self.control = control
        data = control.create_tenant(users=12)
        self.tenant_id = data["tenantId"]
        pair = certificates.generate_self_signed()
        self.key = tmp_path / "app.key.pem"
        self.cert = tmp_path / "app.pem"
        certificates.write_secret_file(self.key, certificates.private_key_pem(pair.private_key))
        certificates.write_public_file(self.cert, certificates.certificate_pem(pair.certificate))
        app = control.register_app(
            self.tenant_id,
            "Teams Meetings Integration",
            certificate_pem=certificates.certificate_pem(pair.certificate),
            roles=[
                "OnlineMeetings.ReadWrite.All",
                "User.Read.All",
                "GroupMember.Read.All",
                "TeamsPolicyUserAssign.ReadWrite.All",
            ],
        )
        self.app_id = app["appId"]
        full = control.tenant(self.tenant_id)
        self.enabled = [u for u in full["users"] if u["accountEnabled"]]
        self.disabled = [u for u in full["users"] if not u["accountEnabled"]]
        self.groups = full["groups"]
        info = sandbox.info
        self.env = {
            "MEETGATE_SANDBOX_CONTROL_URL": info.control_url,
            "MEETGATE_SANDBOX_CA_BUNDLE": str(info.ca_bundle),
            "MEETGATE_SANDBOX_AUTHORITY_URL": info.authority_url,
        }
        self.backend = PowerShellBackend(
            PwshConnection(self.tenant_id, self.app_id, self.cert, self.key),
            SubprocessPwshRunner(STANDIN, timeout_seconds=60, extra_env=self.env),
            batch_size=10,  # batching per session is unit-tested; here every session costs a sign-in
        )

    def profile(self, sandbox):
        from meetgate.config import Profile

        info = sandbox.info
        return Profile(
            tenant_id=self.tenant_id,
            client_id=self.app_id,
            private_key_path=self.key,
            certificate_path=self.cert,
            authority_url=info.authority_url,
            graph_url=info.graph_url,
            ca_bundle=info.ca_bundle,
        )

    def desired(self, users, app_ids=None) -> DesiredPolicy:
        return DesiredPolicy(
            IDENTITY,
            tuple(app_ids or [self.app_id]),
            "approved organizers",
            OrganizerSources(users=tuple(users)),
        )

    def plan(self, desired: DesiredPolicy) -> PolicyPlan:
        state = self.backend.read_state(desired.identity)
        return build_plan(desired, resolve_organizers(desired, self.backend), state)

    def direct(self) -> dict[str, str]:
        return {g["user"]: g["policyName"] for g in self.control.policy_grants(self.tenant_id)["direct"]}


@pytest.fixture
def tenant(sandbox, sandbox_control, tmp_path) -> Tenant:
    if "policy" not in sandbox_control.health().get("features", []):
        pytest.skip(
            "this sandbox build has no policy engine (GET /_sandbox/health lists no 'policy' feature)"
        )
    return Tenant(sandbox, sandbox_control, tmp_path)


def test_powershell_backend_from_empty_to_desired_and_back(tenant: Tenant, tmp_path):
    upns = [u["userPrincipalName"] for u in tenant.enabled[:4]]
    want = tenant.desired(upns)
    plan = tenant.plan(want)
    assert plan.policy.action == "create" and len(plan.grants) == 4 and not plan.warnings
    report = apply_plan(plan, tenant.backend, ApplyJournal(tmp_path, IDENTITY))
    assert report.ok, report.to_dict()
    assert sorted(tenant.direct()) == sorted(u["id"].lower() for u in tenant.enabled[:4])
    [policy] = tenant.control.policies(tenant.tenant_id)["value"]
    assert policy["appIds"] == [tenant.app_id]
    assert not tenant.plan(want).has_changes
    back = apply_plan(tenant.plan(tenant.desired([])), tenant.backend, ApplyJournal(tmp_path, IDENTITY))
    assert back.ok and len(back.succeeded) == 4
    assert tenant.direct() == {}


def test_generated_script_through_the_stand_in_there_and_back(tenant: Tenant, tmp_path):
    ids = [u["id"] for u in tenant.enabled[:3]]

    def run_script(plan: PolicyPlan, name: str) -> subprocess.CompletedProcess[str]:
        script = tmp_path / f"{name}.ps1"
        script.write_text(render_script(plan, tenant_id=tenant.tenant_id, app_id=tenant.app_id))
        return subprocess.run(
            [
                *STANDIN,
                "-NoLogo",
                "-NonInteractive",
                "-File",
                str(script),
                "-TranscriptPath",
                str(tmp_path / f"{name}.log"),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **tenant.env},
            timeout=60,
            check=False,
        )

    there = tenant.plan(tenant.desired(ids))
    done = run_script(there, "there")
    assert done.returncode == 0, done.stderr
    assert sorted(tenant.direct()) == sorted(i.lower() for i in ids)
    assert "granted" in (tmp_path / "there.log").read_text()
    again = run_script(there, "there")  # the same script again: nothing changes
    assert again.returncode == 0 and again.stdout.count("unchanged") == 3 and "granted" not in again.stdout
    back = tenant.plan(tenant.desired([]))
    assert len(back.revokes) == 3
    done = run_script(back, "back")
    assert done.returncode == 0, done.stderr
    assert tenant.direct() == {}


def test_warning_global_grant(tenant: Tenant):
    tenant.control.create_policy(tenant.tenant_id, "Tag:Everyone", [tenant.app_id])
    tenant.control.grant_policy(tenant.tenant_id, "Everyone", global_=True)
    plan = tenant.plan(tenant.desired([tenant.enabled[0]["userPrincipalName"]]))
    assert "global-grant" in plan.warning_codes


def test_warning_other_policy_offers_merge(tenant: Tenant):
    tenant.control.create_policy(tenant.tenant_id, "Tag:CrmIntegration", [OTHER_APP])
    user = tenant.enabled[1]
    tenant.control.grant_policy(tenant.tenant_id, "CrmIntegration", user=user["id"])
    plan = tenant.plan(tenant.desired([user["userPrincipalName"]]))
    [warning] = [w for w in plan.warnings if w.code == "other-policy"]
    assert warning.details["mergedAppIds"] == [tenant.app_id, OTHER_APP]
    merged = tenant.plan(tenant.desired([user["userPrincipalName"]], app_ids=[tenant.app_id, OTHER_APP]))
    assert "other-policy" not in merged.warning_codes


def test_warning_unknown_and_disabled_users(tenant: Tenant):
    assert tenant.disabled, "the seeded tenant has disabled accounts"
    plan = tenant.plan(tenant.desired(["nobody@nowhere.example", tenant.disabled[0]["userPrincipalName"]]))
    assert {"unknown-users", "disabled-users"} <= plan.warning_codes


def test_warning_group_grant_of_our_policy(tenant: Tenant):
    tenant.control.create_policy(tenant.tenant_id, IDENTITY, [tenant.app_id])
    group = next(g for g in tenant.groups if g["displayName"] == "Customer Support")
    tenant.control.grant_policy(tenant.tenant_id, "TeamsMeetingsIntegration", group=group["id"], rank=1)
    plan = tenant.plan(tenant.desired([tenant.enabled[0]["userPrincipalName"]]))
    [warning] = [w for w in plan.warnings if w.code == "group-grant"]
    assert warning.details["group"].lower() == group["id"].lower()


def test_cli_plan_apply_verify_end_to_end(tenant: Tenant, sandbox, tmp_path, monkeypatch):
    """What `make demo` shows: plan + apply create and grant the policy, verify proves it via Graph."""
    from typer.testing import CliRunner

    from meetgate.cli.main import app
    from meetgate.config import save_profile_values

    info = sandbox.info
    config = tmp_path / "meetgate.toml"
    save_profile_values(
        config,
        "sandbox",
        {
            "tenant_id": tenant.tenant_id,
            "client_id": tenant.app_id,
            "private_key_path": tenant.key,
            "certificate_path": tenant.cert,
            "authority_url": info.authority_url,
            "graph_url": info.graph_url,
            "ca_bundle": info.ca_bundle,
        },
    )
    pilots = tenant.enabled[:2]
    policy = tmp_path / "policy.toml"
    policy.write_text(
        f'[policy]\napp_ids = ["{tenant.app_id}"]\ndescription = "pilot organizers"\n'
        f"[organizers]\nusers = {json.dumps([u['userPrincipalName'] for u in pilots])}\n"
    )
    for key, value in tenant.env.items():
        monkeypatch.setenv(key, value)
    pwsh = f"{sys.executable} -m meetgate_sandbox.pwsh"
    common = ["--file", str(policy), "--pwsh", pwsh]
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(app, ["--config", str(config), "policy", *args], catch_exceptions=False)

    state = ["--state-dir", str(tmp_path / "state")]
    script = tmp_path / "policy.ps1"
    written = cli("script", "--file", str(policy), "--out", str(script))  # UPNs resolved through Graph
    assert written.exit_code == 0, written.output
    assert all(f"'{u['id'].lower()}'  # {u['userPrincipalName']}" in script.read_text() for u in pilots)
    plan = cli("plan", *common, *state, "--json")
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.output)["policy"]["action"] == "create"
    applied = cli("apply", *common, *state)
    assert applied.exit_code == 0, applied.output
    assert sorted(tenant.direct()) == sorted(u["id"].lower() for u in pilots)

    before = tenant.control.settings()
    tenant.control.set_settings(policy_delay_seconds=1)
    try:
        verified = cli(
            "verify",
            *common,
            "--sample",
            "0",
            "--negative",
            "2",
            "--timeout",
            "20",
            "--interval",
            "0.5",
            "--json",
        )
    finally:
        tenant.control.set_settings(policy_delay_seconds=before.get("policyDelaySeconds", 0))
    report = json.loads(verified.output)
    assert verified.exit_code == 0, verified.output
    assert [r["observed"] for r in report["results"]] == ["allowed", "allowed", "refused", "refused"]
    assert report["meetingsCreated"] == report["meetingsDeleted"] == 2


def test_organizers_resolve_through_graph_with_nested_groups(sandbox, sandbox_control, tmp_path):
    """UPNs, ids and Entra groups (transitively) through the real Graph client and the sandbox directory."""
    from meetgate.admin.policy.graph import GraphDirectory
    from meetgate.admin.policy.model import TenantPolicyState
    from meetgate.admin.policy.planner import ApplyRecord
    from meetgate.composition import graph_client_from_profile
    from meetgate.config import Profile

    t = Tenant(sandbox, sandbox_control, tmp_path)  # needs no policy engine
    data = sandbox_control.tenant(t.tenant_id)
    groups = {g["displayName"]: g["id"] for g in data["groups"]}
    disabled = t.disabled
    pilot, other = t.enabled[0], t.enabled[1]
    info = sandbox.info
    profile = Profile(
        tenant_id=t.tenant_id,
        client_id=t.app_id,
        private_key_path=t.key,
        certificate_path=t.cert,
        authority_url=info.authority_url,
        graph_url=info.graph_url,
        ca_bundle=info.ca_bundle,
    )
    desired = DesiredPolicy(
        IDENTITY,
        (t.app_id,),
        "",
        OrganizerSources(
            users=(
                pilot["userPrincipalName"],
                other["id"],
                "ghost@nowhere.example",
                *(u["userPrincipalName"] for u in disabled[:1]),
            ),
            groups=(groups["Meeting Organizers"], "00000000-0000-4000-8000-00000000dead"),
        ),
        growth_warning_min_users=1,
    )
    with graph_client_from_profile(profile) as client:
        directory = GraphDirectory(client.directory)
        resolved = resolve_organizers(desired, directory)
        sales = list(client.directory.group_members(groups["Sales and Marketing"]))
    # Meeting Organizers contains Sales and Marketing: its members are expanded through the nesting
    assert {u.id.lower() for u in sales} <= set(resolved.users)
    assert resolved.group_counts[groups["Meeting Organizers"]] > len(sales) > 0
    assert pilot["id"].lower() in resolved.users and other["id"].lower() in resolved.users
    assert resolved.unknown == ("ghost@nowhere.example",)
    assert resolved.unknown_groups == ("00000000-0000-4000-8000-00000000dead",)
    # a last apply that saw a smaller group: the expansion grew sharply since
    last = ApplyRecord(IDENTITY, 1, {groups["Meeting Organizers"]: 1})
    plan = build_plan(desired, resolved, TenantPolicyState(), last)
    assert {"unknown-users", "group-growth"} <= plan.warning_codes
    if disabled:
        assert "disabled-users" in plan.warning_codes


def test_graph_backend_assigns_in_requests_of_many(tenant: Tenant, sandbox, tmp_path):
    from meetgate.admin.policy.graph import GraphDirectory, GraphPolicyBackend, _user
    from meetgate.admin.policy.model import PolicyDefinition
    from meetgate.composition import graph_client_from_profile

    tenant.control.create_policy(tenant.tenant_id, IDENTITY, [tenant.app_id], "approved organizers")
    stray = tenant.enabled[-1]
    tenant.control.grant_policy(tenant.tenant_id, "TeamsMeetingsIntegration", user=stray["id"])
    approved = [u["userPrincipalName"] for u in tenant.enabled[:7]]
    want = tenant.desired(approved)
    with graph_client_from_profile(tenant.profile(sandbox)) as client:
        backend = GraphPolicyBackend(
            client.http,
            PolicyDefinition(want.identity, want.app_ids, want.description),
            users=lambda: [_user(u) for u in client.directory.list_users()],
            batch_size=3,
        )
        plan = build_plan(
            want, resolve_organizers(want, GraphDirectory(client.directory)), backend.read_state(IDENTITY)
        )
        assert plan.policy.action == "none" and len(plan.grants) == 7 and len(plan.revokes) == 1
        report = apply_plan(plan, backend, ApplyJournal(tmp_path, IDENTITY))
        assert report.ok, report.to_dict()
        assert backend.requests == [3, 3, 1, 1]  # grants 3+3+(1 grant + 1 revoke in the last batch)
        again = build_plan(
            want, resolve_organizers(want, GraphDirectory(client.directory)), backend.read_state(IDENTITY)
        )
    assert not again.has_changes
    assert sorted(tenant.direct()) == sorted(u["id"].lower() for u in tenant.enabled[:7])
