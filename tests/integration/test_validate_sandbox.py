"""`meetgate validate` against the sandbox over TLS: a correct tenant validates green, and each
misconfiguration fails exactly the check it should, with the right fix.

Policy tests need the sandbox's meetings routes and policy engine; they skip (saying so) on a
sandbox without them."""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from meetgate import certificates
from meetgate.admin.policy.powershell import SubprocessPwshRunner
from meetgate.admin.validation import (
    GraphReachabilityProbe,
    InMemoryCleanupJournal,
    PwshTeamsProbe,
    ValidationConfig,
    ValidationRun,
    ValidationTarget,
    run_validation,
)
from meetgate.composition import graph_client_from_profile
from meetgate.config import Profile
from meetgate.graph.applications import ApplicationsService
from meetgate.graph.auth import StaticTokenProvider
from meetgate.graph.client import GraphClient

STANDIN = (sys.executable, "-m", "meetgate_sandbox.pwsh")
ROLES = ("OnlineMeetings.ReadWrite.All", "User.Read.All")
POLICY = "Tag:TeamsMeetingsIntegration"


def _has_policy_engine(control) -> bool:
    return "policy" in control.health().get("features", [])


needs_policy = pytest.mark.usefixtures("policy_engine")


@pytest.fixture
def policy_engine(sandbox_control):
    if not _has_policy_engine(sandbox_control):
        pytest.skip("this sandbox has no meetings routes / policy engine yet")


class App:
    """A fresh tenant + app, arranged by each test (certificate, roles, secret, grants)."""

    def __init__(self, sandbox, control, tmp_path: Path, *, roles=ROLES, with_secret=False, cert_days=365):
        self.sandbox = sandbox
        self.control = control
        tenant = control.create_tenant(users=12)
        self.tenant_id = tenant["tenantId"]
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=400) if cert_days < 0 else None
        pair = certificates.generate_self_signed(
            valid_days=abs(cert_days) if cert_days > 0 else 30, not_before=start
        )
        self.pair = pair
        self.key = tmp_path / "app.key.pem"
        self.cert = tmp_path / "app.pem"
        certificates.write_secret_file(self.key, certificates.private_key_pem(pair.private_key), force=True)
        certificates.write_public_file(self.cert, certificates.certificate_pem(pair.certificate), force=True)
        app = control.register_app(
            self.tenant_id,
            "Teams Meetings Integration",
            certificate_pem=certificates.certificate_pem(pair.certificate),
            roles=list(roles),
            with_secret=with_secret,
        )
        self.app_id = app["appId"]
        self.has_secret = bool(app.get("clientSecret"))
        users = [u for u in control.tenant(self.tenant_id)["users"] if u["accountEnabled"]]
        self.pilots = [u["userPrincipalName"] for u in users[:2]]
        self.outsider = users[5]["userPrincipalName"]
        self.users = users
        if _has_policy_engine(control):
            control.create_policy(self.tenant_id, POLICY, [self.app_id], "validate tests")
            for upn in self.pilots:
                control.grant_policy(self.tenant_id, "TeamsMeetingsIntegration", user=upn)

    def profile(self) -> Profile:
        info = self.sandbox.info
        return Profile(
            name="sandbox",
            tenant_id=self.tenant_id,
            client_id=self.app_id,
            private_key_path=self.key,
            certificate_path=self.cert,
            authority_url=info.authority_url,
            graph_url=info.graph_url,
            ca_bundle=info.ca_bundle,
            policy_name=POLICY,
        )

    def pwsh_env(self) -> dict[str, str]:
        info = self.sandbox.info
        return {
            "MEETGATE_SANDBOX_CONTROL_URL": info.control_url,
            "MEETGATE_SANDBOX_CA_BUNDLE": str(info.ca_bundle),
            "MEETGATE_SANDBOX_AUTHORITY_URL": info.authority_url,
        }

    def validate(
        self,
        *,
        profile: Profile | None = None,
        token: str | None = None,
        registration=None,
        teams: bool = False,
        pilot=None,
        negative=None,
        journal=None,
    ) -> ValidationRun:
        p = profile or self.profile()
        client = graph_client_from_profile(p)
        if token is not None:
            client.close()
            client = GraphClient(client.settings, tokens=StaticTokenProvider(token))
        config = ValidationConfig(
            profile=p.name,
            tenant_id=p.tenant_id,
            client_id=p.client_id,
            authority_url=p.authority_url,
            graph_url=p.graph_url,
            private_key_path=p.private_key_path,
            certificate_path=p.certificate_path,
            external_token=token is not None,
        )
        target = ValidationTarget(
            config=config,
            tokens=client.tokens,
            meetings=client.meetings,
            directory=client.directory,
            registration=registration,
            reachability=GraphReachabilityProbe(client.http),
            journal=journal or InMemoryCleanupJournal(),
        )
        if teams:
            runner = _EnvRunner(SubprocessPwshRunner(STANDIN, timeout_seconds=60), self.pwsh_env())
            target.teams = PwshTeamsProbe(self.tenant_id, self.app_id, self.cert, self.key, runner)
        try:
            return run_validation(
                target,
                pilot=self.pilots if pilot is None else pilot,
                negative=[self.outsider] if negative is None else negative,
                reachability_samples=2,
            )
        finally:
            client.close()


class _EnvRunner:
    """Runs pwsh with the sandbox's location in its environment."""

    def __init__(self, runner, env):
        self.runner, self.env = runner, env

    def run(self, script, env):
        return self.runner.run(script, {**self.env, **env})


def automation_reader(app: App, tmp_path: Path) -> GraphClient:
    """A second app with Application.Read.All that reads the integration app's registration."""
    pair = certificates.generate_self_signed()
    key, cert = tmp_path / "auto.key.pem", tmp_path / "auto.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key))
    certificates.write_public_file(cert, certificates.certificate_pem(pair.certificate))
    auto = app.control.register_app(
        app.tenant_id,
        "meetgate automation",
        certificate_pem=certificates.certificate_pem(pair.certificate),
        roles=["Application.Read.All"],
    )
    profile = replace(app.profile(), client_id=auto["appId"], private_key_path=key, certificate_path=cert)
    return graph_client_from_profile(profile)


def statuses(run: ValidationRun) -> dict[str, str]:
    return {c.name: c.status for c in run.checks}


def only_failure(run: ValidationRun) -> str:
    failed = [c.name for c in run.checks if c.status == "fail"]
    assert len(failed) == 1, {c.name: (c.status, c.finding) for c in run.checks}
    return failed[0]


# --- checks that need no policy engine -----------------------------------------------------------


def test_token_permissions_lookup_and_teams_pass_on_a_correct_app(sandbox, sandbox_control, tmp_path):
    app = App(sandbox, sandbox_control, tmp_path)
    run = app.validate(teams=True)
    s = statuses(run)
    for name in (
        "configuration",
        "certificate",
        "token",
        "permissions",
        "organizer_lookup",
        "teams_powershell",
        "graph_reachability",
    ):
        assert s[name] == "pass", (name, run.check(name))
    token = run.check("token")
    assert token.evidence["credential"] == "certificate" and token.evidence["idtyp"] == "app"
    assert token.evidence["scp"] == []
    assert run.check("teams_powershell").evidence["tenant_id"] == app.tenant_id
    assert run.check("graph_reachability").evidence["request_ids"]


def test_delegated_token_fails_the_token_check_with_the_runbook_explanation(
    sandbox, sandbox_control, tmp_path
):
    app = App(sandbox, sandbox_control, tmp_path)
    user = app.users[0]["id"]
    delegated = sandbox_control.delegated_token(app.tenant_id, user, app.app_id, ["OnlineMeetings.ReadWrite"])
    run = app.validate(token=delegated)
    assert only_failure(run) == "token"
    check = run.check("token")
    assert "DELEGATED" in check.finding
    assert "NOT delegated" in check.remedy and "only" in check.remedy
    assert {statuses(run)[n] for n in ("permissions", "policy_positive", "policy_negative")} == {"skip"}


def test_missing_role_fails_permissions_only(sandbox, sandbox_control, tmp_path):
    app = App(sandbox, sandbox_control, tmp_path, roles=("User.Read.All",))
    run = app.validate()
    assert only_failure(run) == "permissions"
    check = run.check("permissions")
    assert "OnlineMeetings.ReadWrite.All" in check.finding
    assert "admin consent" in check.remedy
    assert statuses(run)["policy_positive"] == "skip"


def test_extra_role_warns_about_more_privilege_than_needed(sandbox, sandbox_control, tmp_path):
    app = App(sandbox, sandbox_control, tmp_path, roles=(*ROLES, "Directory.ReadWrite.All"))
    run = app.validate(pilot=[], negative=[])
    check = run.check("permissions")
    assert check.status == "warn"
    assert check.evidence["extra"] == ["Directory.ReadWrite.All"]
    assert "remove Directory.ReadWrite.All" in check.remedy
    assert not [c for c in run.checks if c.status == "fail"]


def test_expired_certificate_fails_the_certificate_check(sandbox, sandbox_control, tmp_path):
    app = App(sandbox, sandbox_control, tmp_path, cert_days=-1)
    run = app.validate()
    assert only_failure(run) == "certificate"
    check = run.check("certificate")
    assert "expired" in check.finding
    assert "meetgate cert new" in check.remedy
    assert statuses(run)["token"] == "skip"


def test_wrong_certificate_is_found_on_the_registration_when_it_is_readable(
    sandbox, sandbox_control, tmp_path
):
    app = App(sandbox, sandbox_control, tmp_path)
    other = certificates.generate_self_signed()
    key, cert = tmp_path / "o.key.pem", tmp_path / "o.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(other.private_key))
    certificates.write_public_file(cert, certificates.certificate_pem(other.certificate))
    reader = automation_reader(app, tmp_path)
    try:
        run = app.validate(
            profile=replace(app.profile(), private_key_path=key, certificate_path=cert),
            registration=ApplicationsService(reader.http),
        )
    finally:
        reader.close()
    assert only_failure(run) == "certificate"
    check = run.check("certificate")
    assert "is not a key credential of app" in check.finding and "meetgate cert upload" in check.remedy


def test_wrong_certificate_is_reported_as_not_registered(sandbox, sandbox_control, tmp_path):
    app = App(sandbox, sandbox_control, tmp_path)
    other = certificates.generate_self_signed()
    (tmp_path / "other").mkdir()
    key, cert = tmp_path / "other" / "k.pem", tmp_path / "other" / "c.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(other.private_key))
    certificates.write_public_file(cert, certificates.certificate_pem(other.certificate))
    run = app.validate(profile=replace(app.profile(), private_key_path=key, certificate_path=cert))
    assert only_failure(run) == "certificate"
    check = run.check("certificate")
    assert other.thumbprint_sha1 in check.finding and "AADSTS700027" in check.finding
    assert "meetgate cert upload" in check.remedy


def test_client_secret_on_the_app_warns(sandbox, sandbox_control, tmp_path):
    app = App(sandbox, sandbox_control, tmp_path, with_secret=True)
    assert app.has_secret
    reader = automation_reader(app, tmp_path)
    try:
        run = app.validate(registration=ApplicationsService(reader.http), pilot=[], negative=[])
    finally:
        reader.close()
    check = run.check("certificate")
    assert check.status == "warn", check
    assert "client secret" in check.finding
    assert "certificate authentication only" in check.remedy
    assert check.evidence["app_client_secrets"] == 1
    assert check.evidence["app_certificates"] == [app.pair.thumbprint_sha1]
    assert not [c for c in run.checks if c.status == "fail"]


def test_key_file_mode_0644_fails_the_certificate_check_but_not_the_rest(sandbox, sandbox_control, tmp_path):
    app = App(sandbox, sandbox_control, tmp_path)
    app.key.chmod(0o644)
    run = app.validate(pilot=[], negative=[])
    assert only_failure(run) == "certificate"
    check = run.check("certificate")
    assert "mode 644" in check.finding
    assert check.remedy == f"chmod 600 {app.key}"
    assert statuses(run)["token"] == "pass"  # not blocking: the credential still works


# --- policy tests (need the sandbox's meetings routes and policy engine) ---------------------------


@needs_policy
def test_correct_tenant_validates_green_and_leaves_no_meeting(sandbox, sandbox_control, tmp_path):
    app = App(sandbox, sandbox_control, tmp_path)
    journal = InMemoryCleanupJournal()
    run = app.validate(journal=journal)
    assert {c.name: c.status for c in run.checks if c.status != "pass"} == {"teams_powershell": "skip"}
    assert run.covers_policy_tests
    positive = run.check("policy_positive").evidence["organizers"]
    assert all(e["deleted"] and e["read_back"] for e in positive.values())
    negative = run.check("policy_negative").evidence["users"][app.outsider]
    assert negative["status"] == 403 and negative["request_id"]
    assert journal.pending() == []
    created = [r for r in sandbox_control.request_log(app.tenant_id) if "createOrGet" in str(r.get("path"))]
    deleted = [
        r
        for r in sandbox_control.request_log(app.tenant_id)
        if r.get("method") == "DELETE" and "onlineMeetings" in str(r.get("path"))
    ]
    assert len(deleted) == len(app.pilots) and len(created) == len(app.pilots) + 1


@needs_policy
def test_missing_policy_on_a_pilot_fails_the_positive_test_with_the_grant_command(
    sandbox, sandbox_control, tmp_path
):
    app = App(sandbox, sandbox_control, tmp_path)
    sandbox_control.grant_policy(app.tenant_id, None, user=app.pilots[1])
    run = app.validate()
    assert only_failure(run) == "policy_positive"
    check = run.check("policy_positive")
    assert app.pilots[1] in check.finding
    assert "Grant-CsApplicationAccessPolicy" in check.remedy and app.app_id in check.remedy
    assert check.evidence["organizers"][app.pilots[1]]["request_id"]


@needs_policy
def test_global_grant_makes_the_negative_test_fail_loudly(sandbox, sandbox_control, tmp_path):
    app = App(sandbox, sandbox_control, tmp_path)
    sandbox_control.grant_policy(app.tenant_id, "TeamsMeetingsIntegration", global_=True)
    run = app.validate()
    assert only_failure(run) == "policy_negative"
    check = run.check("policy_negative")
    assert "POLICY NOT ENFORCED" in check.finding and app.outsider in check.finding
    assert "-Global" in check.remedy
    assert check.evidence["users"][app.outsider]["deleted"] is True
