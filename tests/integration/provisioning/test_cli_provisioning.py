"""Runbook steps 1–3 through the CLI against a fresh sandbox tenant: setup app, cert new/upload/
status/rotate/remove, with real MSAL tokens, and bad input that changes nothing."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetgate.cli.main import app
from meetgate.composition import graph_settings_from_profile
from meetgate.config import load_profile
from meetgate.graph.auth import TokenProvider
from meetgate_sandbox.control import SandboxControl


class Tenant:
    def __init__(self, sandbox, tmp_path: Path) -> None:
        info = sandbox.info
        self.info = info
        self.control = SandboxControl(info.control_url, info.ca_bundle)
        data = self.control.create_tenant(users=5)
        self.tenant_id = data["tenantId"]
        self.domain = data["domain"]
        self.users = data["users"]
        self.admin_upn = data["adminUpn"]
        self.dir = tmp_path
        self.config = tmp_path / "meetgate.toml"
        self.config.write_text(
            'default_profile = "t"\n\n[profiles.t]\n'
            f'tenant_id = "{self.domain}"\n'
            f'authority_url = "{info.authority_url}"\n'
            f'graph_url = "{info.graph_url}"\n'
            f'ca_bundle = "{info.ca_bundle}"\n'
        )

    def run(self, *args: str, env: dict[str, str] | None = None, code: int | None = 0):
        result = CliRunner().invoke(app, ["--config", str(self.config), *args], env=env or {})
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.output, result.exception)
        return result

    def json(self, *args: str, env: dict[str, str] | None = None, code: int | None = 0):
        return json.loads(self.run(*args, "--json", env=env, code=code).stdout)

    def profile(self, env: dict[str, str] | None = None):
        return load_profile(self.config, environ=env or {})

    def token_roles(self, profile=None, env=None) -> list[str]:
        provider = TokenProvider(graph_settings_from_profile(profile or self.profile(env), env or {}))
        try:
            return sorted(provider.get_token().claims.roles)
        finally:
            provider.close()

    def audits(self) -> list[dict]:
        return self.control.request("GET", f"/tenants/{self.tenant_id}/log/directory-audits")["value"]

    def provisioned(self) -> None:
        self.json("setup", "app")
        self.json("cert", "new", "--out", str(self.dir / "keys"), "--use")
        self.json("cert", "upload")

    def seeded(self, env: dict[str, str] | None = None, *args: str) -> None:
        """A consented app with the profile's new certificate, registered through the control API
        (faster than `setup app` + `cert upload`, for tests about later steps)."""
        from meetgate.config import save_profile_values

        made = self.json("cert", "new", "--out", str(self.dir / "keys"), "--use", *args, env=env)
        app = self.control.register_app(
            self.tenant_id,
            "Teams Meetings Integration",
            certificate_pem=Path(made["files"]["certificate_pem"]).read_bytes(),
            roles=["OnlineMeetings.ReadWrite.All", "User.ReadBasic.All"],
        )
        save_profile_values(
            self.config,
            "t",
            {
                "tenant_id": self.tenant_id,
                "client_id": app["appId"],
                "application_object_id": app["objectId"],
                "service_principal_id": app["servicePrincipalId"],
            },
        )


@pytest.fixture
def tenant(sandbox, tmp_path):
    t = Tenant(sandbox, tmp_path)
    yield t
    t.control.close()


def test_setup_app_cert_new_upload_gives_an_app_only_token_with_exactly_the_granted_roles(tenant):
    plan = tenant.json("setup", "app", "--plan")
    assert [c["action"] for c in plan["changes"]] == [
        "create_application",
        "create_service_principal",
        "grant_admin_consent",
        "grant_admin_consent",
    ]
    assert tenant.audits() == [] and tenant.profile().client_id is None

    first = tenant.json("setup", "app")
    assert first["changed"] is True and first["permissions"]["missing"] == []
    assert sorted(first["permissions"]["granted"]) == ["OnlineMeetings.ReadWrite.All", "User.ReadBasic.All"]
    assert first["signed_in"]["name"] == tenant.admin_upn
    profile = tenant.profile()
    assert profile.tenant_id == tenant.tenant_id  # the GUID replaces the domain
    assert (profile.client_id, profile.application_object_id, profile.service_principal_id) == (
        first["client_id"],
        first["application_object_id"],
        first["service_principal_id"],
    )

    made = tenant.json("cert", "new", "--out", str(tenant.dir / "keys"), "--use")
    uploaded = tenant.json("cert", "upload")
    assert uploaded["changed"] is True and uploaded["thumbprint_sha1"] == made["thumbprint_sha1"]
    assert tenant.json("cert", "upload")["changed"] is False

    assert tenant.token_roles() == ["OnlineMeetings.ReadWrite.All", "User.ReadBasic.All"]

    second = tenant.json("setup", "app")
    assert second["changes"] == [] and second["changed"] is False
    readable = tenant.run("setup", "app").stdout
    assert "no changes" in readable and "granted" in readable

    activities = [a["activityDisplayName"] for a in tenant.audits()]
    assert activities.count("Add application") == 1
    assert activities.count("Add app role assignment to service principal") == 2
    assert activities[-1] == "Update application – Certificates and secrets management"


def test_user_read_all_and_the_extra_permission_finding(tenant):
    result = tenant.json("setup", "app", "--user-read", "all")
    assert sorted(result["permissions"]["granted"]) == ["OnlineMeetings.ReadWrite.All", "User.Read.All"]
    # switching to least privilege adds User.ReadBasic.All and reports User.Read.All as extra
    again = tenant.json("setup", "app", "--user-read", "basic")
    assert [c["action"] for c in again["changes"]] == ["add_required_permissions", "grant_admin_consent"]
    assert again["permissions"]["extra"] == ["User.Read.All"]
    assert [f["code"] for f in again["findings"]] == ["permission.extra"]


def test_cert_status_reports_expiry_secrets_and_local_key(tenant):
    tenant.seeded()
    tenant.json("cert", "new", "--out", str(tenant.dir / "short"), "--name", "short", "--days", "20")
    tenant.json("cert", "upload", "--certificate", str(tenant.dir / "short" / "short.pem"))
    # a client secret added by an admin through Graph
    from meetgate.graph.admin_signin import admin_graph_client

    profile = tenant.profile()
    with admin_graph_client(
        tenant.tenant_id,
        authority_url=profile.authority_url,
        graph_url=profile.graph_url,
        ca_bundle=profile.ca_bundle,
        prompt=lambda m: None,
    ) as admin:
        admin.http.post(
            f"/applications/{profile.application_object_id}/addPassword",
            json={"passwordCredential": {"displayName": "legacy secret"}},
        )
    report = tenant.json("cert", "status", "--self")
    codes = {f["code"] for f in report["findings"]}
    assert {"certificate.expiring_30d", "client_secret.present"} <= codes
    assert report["ok"] is True  # warnings only
    kinds = sorted(c["kind"] for c in report["credentials"])
    assert kinds == ["certificate", "certificate", "client_secret"]
    assert report["local"]["key_mode"] == "600"

    profile.private_key_path.chmod(0o644)
    bad = tenant.json("cert", "status", code=1)
    assert "local_key.mode" in {f["code"] for f in bad["findings"]} and bad["ok"] is False


def _token_watcher(tenant: Tenant, stop: threading.Event, outcomes: list[str]) -> None:
    while not stop.is_set():
        try:
            roles = tenant.token_roles()
            outcomes.append("ok" if roles else "no-roles")
        except Exception as exc:
            outcomes.append(f"fail: {exc}")
        time.sleep(0.25)


def test_rotation_keeps_a_working_token_throughout(tenant):
    tenant.seeded()
    old = tenant.profile().certificate_path
    old_thumb = tenant.json("cert", "status", "--self")["local"]["thumbprint_sha1"]
    stop, outcomes = threading.Event(), []
    watcher = threading.Thread(target=_token_watcher, args=(tenant, stop, outcomes))
    watcher.start()
    try:
        first = tenant.json("cert", "rotate", "--name", "second")
        second = tenant.json("cert", "rotate", "--self", "--remove-old", "--grace", "0.5", "--name", "third")
        time.sleep(0.2)
    finally:
        stop.set()
        watcher.join(10)
    assert outcomes and all(o == "ok" for o in outcomes), [o for o in outcomes if o != "ok"][:3]
    assert first["previous_thumbprint"] == old_thumb and first["removed"] is None
    assert first["verified_roles"] == ["OnlineMeetings.ReadWrite.All", "User.ReadBasic.All"]
    assert second["removed"]["thumbprint_sha1"] == first["new"]["thumbprint_sha1"]
    profile = tenant.profile()
    assert profile.certificate_path.name == "third.pem" and profile.certificate_path != old
    thumbs = {c["thumbprint_sha1"] for c in tenant.json("cert", "status", "--self")["credentials"]}
    assert thumbs == {old_thumb, second["new"]["thumbprint_sha1"]}
    # the certificate in use cannot be removed by mistake
    refused = tenant.run("cert", "remove", "--thumbprint", second["new"]["thumbprint_sha1"], code=2)
    assert "signs in with" in refused.output
    # the original certificate is still there (rotate without --remove-old kept it): remove it now
    removed = tenant.json("cert", "remove", "--thumbprint", old_thumb)
    assert removed["changed"] is True
    import dataclasses

    stale = dataclasses.replace(
        profile, private_key_path=old.with_name(old.name.replace(".pem", ".key.pem")), certificate_path=old
    )
    from meetgate.graph.errors import AuthenticationError

    with pytest.raises(AuthenticationError) as info:
        tenant.token_roles(stale)
    assert info.value.aadsts_code == 700027
    assert tenant.token_roles() == ["OnlineMeetings.ReadWrite.All", "User.ReadBasic.All"]


def test_unknown_tenant_is_a_clear_error_and_changes_nothing(tenant):
    before = tenant.config.read_text()
    result = tenant.run("setup", "app", "--tenant", "no-such-tenant.example.com", code=2)
    assert "no-such-tenant.example.com" in result.output and "not found" in result.output
    assert tenant.config.read_text() == before


def test_non_admin_sign_in_is_refused_before_any_change(tenant):
    user = tenant.users[0]["userPrincipalName"]
    tenant.control.request("PUT", f"/tenants/{tenant.tenant_id}/device-login", json={"approveAs": user})
    before = tenant.config.read_text()
    result = tenant.run("setup", "app", code=2)
    assert user in result.output and "Global Administrator" in result.output
    assert tenant.config.read_text() == before
    assert tenant.audits() == []
    assert tenant.control.request("GET", f"/tenants/{tenant.tenant_id}/apps") in ([], {"value": []})


def test_application_administrator_registers_but_cannot_consent(tenant):
    user = tenant.users[1]["userPrincipalName"]
    tenant.control.request(
        "PUT",
        f"/tenants/{tenant.tenant_id}/users/{user}/directory-roles",
        json={"roles": ["Application Administrator"]},
    )
    tenant.control.request("PUT", f"/tenants/{tenant.tenant_id}/device-login", json={"approveAs": user})
    result = tenant.run("setup", "app", code=2)
    assert "admin consent" in result.output
    assert tenant.audits() == []
    plan = tenant.json("setup", "app", "--plan")  # reading is allowed
    assert len(plan["changes"]) == 4


def test_wrong_passphrase_is_a_clear_error_and_changes_nothing(tenant):
    env = {"MY_PASS": "right horse battery"}
    tenant.seeded(env, "--passphrase-env", "MY_PASS")
    assert tenant.token_roles(env=env)
    keys_before = sorted(p.name for p in (tenant.dir / "keys").iterdir())
    config_before = tenant.config.read_text()
    wrong = {"MY_PASS": "wrong horse"}
    result = tenant.run("cert", "rotate", env=wrong, code=2)
    assert "wrong passphrase" in result.output and "wrong horse" not in result.output
    assert sorted(p.name for p in (tenant.dir / "keys").iterdir()) == keys_before
    assert tenant.config.read_text() == config_before
    status = tenant.json("cert", "status", env=wrong, code=1)
    assert "local_key.unreadable" in {f["code"] for f in status["findings"]}
    assert len(status["credentials"]) == 1


def test_existing_key_file_without_force_changes_nothing(tenant):
    tenant.json("setup", "app")
    made = tenant.json("cert", "new", "--out", str(tenant.dir / "keys"), "--use")
    config_before = tenant.config.read_text()
    key = Path(made["files"]["key"]).read_bytes()
    result = tenant.run("cert", "new", "--out", str(tenant.dir / "keys"), "--use", code=2)
    assert "--force" in result.output
    assert Path(made["files"]["key"]).read_bytes() == key
    assert tenant.config.read_text() == config_before


def _automation_profile(tenant: Tenant, roles: list[str]) -> None:
    from meetgate import certificates as certs

    pair = certs.generate_self_signed("automation")
    key = tenant.dir / "automation.key.pem"
    cert = tenant.dir / "automation.pem"
    certs.write_secret_file(key, certs.private_key_pem(pair.private_key))
    certs.write_public_file(cert, certs.certificate_pem(pair.certificate))
    seeded = tenant.control.register_app(
        tenant.tenant_id,
        "Provisioning automation",
        certificate_pem=certs.certificate_pem(pair.certificate),
        roles=roles,
    )
    info = tenant.info
    with tenant.config.open("a") as fh:
        fh.write(
            "\n[profiles.automation]\n"
            f'tenant_id = "{tenant.tenant_id}"\nclient_id = "{seeded["appId"]}"\n'
            f'private_key_path = "{key}"\ncertificate_path = "{cert}"\n'
            f'authority_url = "{info.authority_url}"\ngraph_url = "{info.graph_url}"\nca_bundle = "{info.ca_bundle}"\n'
        )


def test_setup_as_an_automation_app(tenant):
    _automation_profile(tenant, ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"])
    result = tenant.json("setup", "app", "--as-app", "automation")
    assert result["signed_in"]["kind"] == "app" and result["permissions"]["missing"] == []
    assert tenant.profile().client_id == result["client_id"]  # ids go to the active profile, not "automation"
    initiators = {a["initiatedBy"]["app"]["displayName"] for a in tenant.audits()}
    assert initiators == {"Provisioning automation"}
    tenant.json("cert", "new", "--out", str(tenant.dir / "keys"), "--use")
    tenant.json("cert", "upload", "--as-app", "automation")
    assert tenant.token_roles() == ["OnlineMeetings.ReadWrite.All", "User.ReadBasic.All"]


def test_automation_app_without_consent_permission_is_refused(tenant):
    _automation_profile(tenant, ["Application.ReadWrite.All"])
    result = tenant.run("setup", "app", "--as-app", "automation", code=2)
    assert "AppRoleAssignment.ReadWrite.All" in result.output
    assert tenant.audits() == []


def test_plan_for_an_existing_app_missing_a_consent_lists_it_and_exits_0(tenant):
    """A plan that would grant a missing consent is a plan with changes, not a failure (as `policy
    plan`); only the run that makes the changes fails when a permission is still missing after it."""
    tenant.json("setup", "app")
    audits = len(tenant.audits())
    plan = tenant.json("setup", "app", "--plan", "--user-read", "all")
    assert [(c["action"], c["target"]) for c in plan["changes"]][-1] == (
        "grant_admin_consent",
        "User.Read.All",
    )
    assert plan["permissions"]["missing"] == ["User.Read.All"]
    assert [f["code"] for f in plan["findings"] if f["severity"] == "error"] == []
    assert "permission.consent_pending" in {f["code"] for f in plan["findings"]}
    text = tenant.run("setup", "app", "--plan", "--user-read", "all").output
    assert "User.Read.All: not granted yet (the plan grants it)" in " ".join(text.split())
    assert "error" not in text
    assert len(tenant.audits()) == audits  # nothing changed


def _device_code_grants(tenant) -> list[str]:
    return [
        t["grantType"]
        for t in tenant.control.token_log(tenant.tenant_id)
        if t.get("credentialType") == "delegated" and t.get("success")
    ]


def test_the_admin_signs_in_once_for_the_runbook_and_signout_forgets_it(tenant):
    import stat

    first = tenant.run("setup", "app")
    # the sandbox approves automatically: it says so, and asks nobody to open a browser
    assert "approved this sign-in" in first.output and "use a web browser" not in first.output
    second = tenant.run("cert", "status", "--json", code=None)
    assert "Signed in as" in second.stderr and "approved this sign-in" not in second.stderr
    grants = _device_code_grants(tenant)
    assert grants.count("urn:ietf:params:oauth:grant-type:device_code") == 1

    folder = tenant.dir / ".meetgate" / "signin"
    files = sorted(folder.iterdir())
    # kept under the domain the profile named and under the directory id setup wrote into it
    assert {p.name for p in files} == {
        f"t--{tenant.domain.lower()}.signin.json",
        f"t--{tenant.tenant_id.lower()}.signin.json",
    }
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)

    out = tenant.json("signout")
    assert len(out["removed"]) == 2 and not any(folder.iterdir())
    tenant.run("cert", "status", "--json", code=None)
    assert _device_code_grants(tenant).count("urn:ietf:params:oauth:grant-type:device_code") == 2


def test_an_expired_access_token_is_renewed_with_the_refresh_token_silently(tenant, sandbox_control):
    tenant.run("setup", "app")
    sandbox_control.set_settings(clock_offset_seconds=2 * 3600)  # the kept access token has expired
    try:
        again = tenant.run("cert", "status", "--json", code=None)
    finally:
        sandbox_control.set_settings(clock_offset_seconds=0)
    assert "Signed in as" in again.stderr
    grants = _device_code_grants(tenant)
    assert grants.count("urn:ietf:params:oauth:grant-type:device_code") == 1
    assert "refresh_token" in grants


def test_a_kept_sign_in_readable_by_others_is_not_used(tenant):
    tenant.run("setup", "app")
    for path in (tenant.dir / ".meetgate" / "signin").iterdir():
        path.chmod(0o644)
    again = tenant.run("cert", "status", "--json", code=None)
    assert "Signed in as" not in again.stderr
    assert _device_code_grants(tenant).count("urn:ietf:params:oauth:grant-type:device_code") == 2
