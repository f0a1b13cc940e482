"""A state folder keeps TLS, signing key, tenants, apps and logs across restarts."""

from __future__ import annotations

import json
import time

import httpx

from conftest import Credentials, app_token
from meetgate import certificates
from meetgate_sandbox.control import SandboxControl, ssl_context
from meetgate_sandbox.server import SandboxOptions, SandboxServer, read_info


def test_state_survives_a_restart(tmp_path, key_pair):
    state_dir = tmp_path / "sandbox"
    with SandboxServer(SandboxOptions(state_dir=state_dir, users=8)) as first:
        info = first.info
        assert read_info(state_dir) == info
        assert len(info.users) == 8
        ca_before = info.ca_bundle.read_bytes()
        with SandboxControl(info.control_url, info.ca_bundle) as control:
            tenant = control.create_tenant(users=3, seed=5)
            app = control.register_app(
                tenant["tenantId"], "persisted", certificate_pem=certificates.certificate_pem(key_pair.certificate),
                roles=["User.Read.All"],
            )  # fmt: skip
            control.set_settings(policy_delay_seconds=2.5)
        creds = Credentials(
            tenant["tenantId"], app["appId"], app["objectId"], app["servicePrincipalId"], key_pair
        )
        with httpx.Client(verify=ssl_context(info.ca_bundle)) as client:
            token = app_token(first, client, creds)
        time.sleep(0.8)  # debounced save while running
        saved = json.loads((state_dir / "state.json").read_text())
        assert tenant["tenantId"] in {t["id"] for t in saved["tenants"]}
    assert not (state_dir / "sandbox.json").exists()
    assert oct((state_dir / "state.json").stat().st_mode & 0o777) == "0o600"
    assert oct((state_dir / "tls" / "server.key.pem").stat().st_mode & 0o777) == "0o600"
    assert "secretText" not in (state_dir / "state.json").read_text()

    with SandboxServer(SandboxOptions(state_dir=state_dir)) as second:
        again = second.info
        assert again.tenant_id == info.tenant_id
        assert again.users == info.users
        assert again.ca_bundle.read_bytes() == ca_before
        with SandboxControl(again.control_url, again.ca_bundle) as control:
            assert control.tenant(tenant["tenantId"])["users"] == tenant["users"]
            assert control.settings()["policyDelaySeconds"] == 2.5
            assert any(t["success"] for t in control.token_log(tenant["tenantId"]))
        with httpx.Client(verify=ssl_context(again.ca_bundle)) as client:
            # a token from before the restart is still valid: the signing key persisted
            before = client.get(f"{again.graph_url}/v1.0/users", headers={"Authorization": f"Bearer {token}"})
            assert before.status_code == 200
            assert len(before.json()["value"]) == 4  # 3 users + admin
            assert app_token(second, client, creds)


def test_same_seed_gives_the_same_directory(sandbox_control):
    one = sandbox_control.create_tenant(users=20, seed=42)
    two = sandbox_control.create_tenant(users=20, seed=42)
    assert one["tenantId"] != two["tenantId"]

    def strip(tenant):
        return [(u["id"], u["userPrincipalName"].split("@")[0], u["accountEnabled"]) for u in tenant["users"]]

    assert strip(one) == strip(two)
    assert sum(not u["accountEnabled"] for u in one["users"]) >= 1
    three = sandbox_control.create_tenant(users=20, seed=43)
    assert strip(three) != strip(one)


def test_control_api_validates_input(sandbox_control, sandbox_tenant):
    import pytest

    from meetgate_sandbox.control import SandboxControlError

    with pytest.raises(SandboxControlError, match="users must be an integer"):
        sandbox_control.create_tenant(users=-1)
    with pytest.raises(SandboxControlError) as conflict:
        sandbox_control.create_tenant(users=1, domain=sandbox_tenant.domain)
    assert conflict.value.status == 409
    with pytest.raises(SandboxControlError, match=r"no application permission 'Nope\.All'"):
        sandbox_control.register_app(sandbox_tenant.tenant_id, "x", roles=["Nope.All"])
    with pytest.raises(SandboxControlError, match="certificatePem"):
        sandbox_control.register_app(sandbox_tenant.tenant_id, "x", certificate_pem="not a cert")
    with pytest.raises(SandboxControlError) as missing:
        sandbox_control.tenant("00000000-0000-0000-0000-00000000dead")
    assert missing.value.status == 404


def test_one_server_per_state_folder(tmp_path):
    import pytest

    from meetgate_sandbox.server import SandboxStartError

    with (
        SandboxServer(SandboxOptions(state_dir=tmp_path, users=2)),
        pytest.raises(SandboxStartError, match="another sandbox is already serving"),
    ):
        SandboxServer(SandboxOptions(state_dir=tmp_path)).start()
    with SandboxServer(SandboxOptions(state_dir=tmp_path)) as again:
        assert len(again.info.users) == 2


def test_no_save_reads_the_saved_state_but_never_writes_it(tmp_path):
    state_dir = tmp_path / "sandbox"
    with SandboxServer(SandboxOptions(state_dir=state_dir, users=4)) as first:
        default_tenant = first.info.tenant_id
    saved = (state_dir / "state.json").read_bytes()
    with SandboxServer(SandboxOptions(state_dir=state_dir, save_state=False)) as second:
        assert second.info.tenant_id == default_tenant  # the saved tenants are there
        with SandboxControl(second.info.control_url, second.info.ca_bundle) as control:
            extra = control.create_tenant(users=2)["tenantId"]
            assert control.tenant(extra)["tenantId"] == extra  # and new ones work, in memory
        time.sleep(0.8)  # longer than the debounce of a saving server
    assert (state_dir / "state.json").read_bytes() == saved
