"""The sandbox's app registration routes and device code flow, over TLS, with real MSAL."""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid

import httpx
import jwt
import msal
import pytest

from meetgate import certificates as certs
from meetgate.graph.msal_http import MsalHttpxAdapter
from meetgate_sandbox.control import SandboxControl, ssl_context

GRAPH_CLI = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
ADMIN_SCOPES = [
    "https://graph.microsoft.com/Application.ReadWrite.All",
    "https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All",
]
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
OM_RW = "b8bb2037-6e08-44ac-a4ea-4674e010e2a4"
USER_BASIC = "97235f07-e226-4f63-ace3-39588e11d3a1"


class Env:
    def __init__(self, sandbox) -> None:
        info = sandbox.info
        self.info = info
        self.control = SandboxControl(info.control_url, info.ca_bundle)
        tenant = self.control.create_tenant(users=5)
        self.tenant_id = tenant["tenantId"]
        self.admin_upn = tenant["adminUpn"]
        self.users = tenant["users"]
        self.http = httpx.Client(verify=ssl_context(info.ca_bundle), base_url=f"{info.graph_url}/v1.0")

    def msal_http(self) -> MsalHttpxAdapter:
        return MsalHttpxAdapter(httpx.Client(verify=ssl_context(self.info.ca_bundle)))

    def device_code_token(self, scopes=ADMIN_SCOPES) -> dict:
        app = msal.PublicClientApplication(
            GRAPH_CLI,
            authority=f"{self.info.authority_url}/{self.tenant_id}",
            http_client=self.msal_http(),
            instance_discovery=False,
            validate_authority=False,
        )
        flow = app.initiate_device_flow(scopes=scopes)
        assert "user_code" in flow, flow
        return app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)

    def app_token(self, client_id: str, pair: certs.KeyPair) -> dict:
        app = msal.ConfidentialClientApplication(
            client_id,
            authority=f"{self.info.authority_url}/{self.tenant_id}",
            client_credential={
                "private_key": certs.private_key_pem(pair.private_key).decode(),
                "thumbprint": pair.thumbprint_sha1,
            },
            http_client=self.msal_http(),
            instance_discovery=False,
            validate_authority=False,
            token_cache=msal.TokenCache(),
        )
        return app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])

    def audits(self) -> list[dict]:
        return self.control.request("GET", f"/tenants/{self.tenant_id}/log/directory-audits")["value"]


@pytest.fixture
def env(sandbox):
    e = Env(sandbox)
    yield e
    e.http.close()
    e.control.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _proof(pair: certs.KeyPair, object_id: str) -> str:
    now = int(time.time())
    return jwt.encode(
        {"aud": "00000002-0000-0000-c000-000000000000", "iss": object_id, "nbf": now, "exp": now + 600},
        pair.private_key,
        algorithm="RS256",
        headers={"x5t": certs.x5t(pair.certificate)},
    )


def _key_credential(pair: certs.KeyPair) -> dict:
    return {
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
        "key": base64.b64encode(certs.certificate_der(pair.certificate)).decode(),
    }


def test_device_code_flow_gives_the_admin_a_delegated_token(env):
    result = env.device_code_token()
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["upn"] == env.admin_upn and claims["idtyp"] == "user"
    assert set(claims["scp"].split()) == {"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"}
    assert "roles" not in claims
    roles = env.http.get(
        "/me/memberOf/microsoft.graph.directoryRole", headers=_bearer(result["access_token"])
    )
    assert [r["displayName"] for r in roles.json()["value"]] == ["Global Administrator"]
    log = env.control.token_log(env.tenant_id) if hasattr(env.control, "token_log") else []
    assert any(t.get("grantType", "").endswith("device_code") and t["success"] for t in log)


def test_manual_device_login_waits_until_approved(env):
    env.control.request("PUT", f"/tenants/{env.tenant_id}/device-login", json={"mode": "manual"})
    app = msal.PublicClientApplication(
        GRAPH_CLI,
        authority=f"{env.info.authority_url}/{env.tenant_id}",
        http_client=env.msal_http(),
        instance_discovery=False,
        validate_authority=False,
    )
    flow = app.initiate_device_flow(scopes=ADMIN_SCOPES)
    pending = app.acquire_token_by_device_flow(dict(flow), exit_condition=lambda f: True)
    assert pending.get("error") == "authorization_pending"
    user = env.users[0]["userPrincipalName"]
    env.control.request(
        "POST", f"/tenants/{env.tenant_id}/device-codes/{flow['user_code']}/approve", json={"user": user}
    )
    done = app.acquire_token_by_device_flow(dict(flow), exit_condition=lambda f: True)
    assert jwt.decode(done["access_token"], options={"verify_signature": False})["upn"] == user


def test_admin_registers_consents_and_uploads_then_msal_gets_exactly_the_roles(env):
    token = env.device_code_token()["access_token"]
    h = _bearer(token)
    created = env.http.post(
        "/applications",
        headers=h,
        json={
            "displayName": "Teams Meetings Integration",
            "signInAudience": "AzureADMyOrg",
            "requiredResourceAccess": [
                {"resourceAppId": GRAPH_APP_ID, "resourceAccess": [{"id": OM_RW, "type": "Role"}]}
            ],
        },
    )
    assert created.status_code == 201, created.text
    app = created.json()
    sp = env.http.post("/servicePrincipals", headers=h, json={"appId": app["appId"]})
    assert sp.status_code == 201
    again = env.http.post("/servicePrincipals", headers=h, json={"appId": app["appId"]})
    assert again.status_code == 409
    graph = env.http.get(
        f"/servicePrincipals(appId='{GRAPH_APP_ID}')", params={"$select": "id,appRoles"}, headers=h
    )
    graph_id = graph.json()["id"]
    for role in (OM_RW, USER_BASIC):
        grant = env.http.post(
            f"/servicePrincipals/{graph_id}/appRoleAssignedTo",
            headers=h,
            json={"principalId": sp.json()["id"], "resourceId": graph_id, "appRoleId": role},
        )
        assert grant.status_code == 201, grant.text
    dup = env.http.post(
        f"/servicePrincipals/{graph_id}/appRoleAssignedTo",
        headers=h,
        json={"principalId": sp.json()["id"], "resourceId": graph_id, "appRoleId": OM_RW},
    )
    assert dup.status_code == 400 and "already exists" in dup.json()["error"]["message"]
    pair = certs.generate_self_signed()
    patched = env.http.patch(
        f"/applications/{app['id']}", headers=h, json={"keyCredentials": [_key_credential(pair)]}
    )
    assert patched.status_code == 204, patched.text
    listed = env.http.get(f"/applications/{app['id']}", headers=h).json()
    assert listed["keyCredentials"][0]["key"] is None
    assert (
        base64.b64decode(listed["keyCredentials"][0]["customKeyIdentifier"]).hex().upper()
        == pair.thumbprint_sha1
    )
    selected = env.http.get(
        f"/applications/{app['id']}", params={"$select": "keyCredentials"}, headers=h
    ).json()
    assert base64.b64decode(selected["keyCredentials"][0]["key"]) == certs.certificate_der(pair.certificate)

    result = env.app_token(app["appId"], pair)
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert sorted(claims["roles"]) == ["OnlineMeetings.ReadWrite.All", "User.ReadBasic.All"]
    assert claims["idtyp"] == "app" and "scp" not in claims

    activities = [a["activityDisplayName"] for a in env.audits()]
    assert activities == [
        "Add application",
        "Add service principal",
        "Add app role assignment to service principal",
        "Add app role assignment to service principal",
        "Update application – Certificates and secrets management",
    ]
    assert env.audits()[0]["initiatedBy"]["user"]["userPrincipalName"] == env.admin_upn


def test_non_admin_user_cannot_register_or_consent(env):
    user = env.users[0]["userPrincipalName"]
    env.control.request("PUT", f"/tenants/{env.tenant_id}/device-login", json={"approveAs": user})
    token = env.device_code_token()["access_token"]
    assert (
        env.http.get("/me/memberOf/microsoft.graph.directoryRole", headers=_bearer(token)).json()["value"]
        == []
    )
    denied = env.http.post("/applications", headers=_bearer(token), json={"displayName": "Sneaky"})
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "Authorization_RequestDenied"
    env.control.request("PUT", f"/tenants/{env.tenant_id}/device-login", json={"approveAs": None})
    admin = env.device_code_token()["access_token"]
    names = [a["displayName"] for a in env.http.get("/applications", headers=_bearer(admin)).json()["value"]]
    assert "Sneaky" not in names
    assert env.audits() == []


def test_app_rolls_its_own_key_with_a_proof(env):
    old = certs.generate_self_signed()
    seeded = env.control.register_app(
        env.tenant_id,
        "Roller",
        certificate_pem=certs.certificate_pem(old.certificate),
        roles=["User.ReadBasic.All"],
    )
    own = _bearer(env.app_token(seeded["appId"], old)["access_token"])
    new = certs.generate_self_signed()
    object_id = seeded["objectId"]
    bad = env.http.post(
        f"/applications/{object_id}/addKey",
        headers=own,
        json={
            "keyCredential": _key_credential(new),
            "passwordCredential": None,
            "proof": _proof(new, object_id),
        },
    )
    assert bad.status_code == 400 and "Proof of possession" in bad.json()["error"]["message"]
    wrong_iss = env.http.post(
        f"/applications/{object_id}/addKey",
        headers=own,
        json={"keyCredential": _key_credential(new), "proof": _proof(old, str(uuid.uuid4()))},
    )
    assert wrong_iss.status_code == 400
    added = env.http.post(
        f"/applications/{object_id}/addKey",
        headers=own,
        json={
            "keyCredential": _key_credential(new),
            "passwordCredential": None,
            "proof": _proof(old, object_id),
        },
    )
    assert added.status_code == 200, added.text
    assert "access_token" in env.app_token(seeded["appId"], new)
    assert "access_token" in env.app_token(seeded["appId"], old)
    old_key_id = next(
        k["keyId"]
        for k in env.control.app(env.tenant_id, seeded["appId"])["keyCredentials"]
        if k["customKeyIdentifier"] in (old.thumbprint_sha1,)
        or base64.b64decode(k["customKeyIdentifier"] + "==").hex().upper() == old.thumbprint_sha1
    )
    removed = env.http.post(
        f"/applications/{object_id}/removeKey",
        headers=own,
        json={"keyId": old_key_id, "proof": _proof(new, object_id)},
    )
    assert removed.status_code == 204, removed.text
    failed = env.app_token(seeded["appId"], old)
    assert failed.get("error") == "invalid_client" and 700027 in failed["error_codes"]
    assert "access_token" in env.app_token(seeded["appId"], new)


def test_key_credentials_validation_changes_nothing(env):
    token = env.device_code_token()["access_token"]
    h = _bearer(token)
    app = env.http.post("/applications", headers=h, json={"displayName": "V"}).json()
    for body in (
        {"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": "bm90IGEgY2VydA=="}]},
        {"keyCredentials": "nope"},
        {"passwordCredentials": []},
        {"notAProperty": 1},
        {
            "requiredResourceAccess": [
                {"resourceAppId": GRAPH_APP_ID, "resourceAccess": [{"id": str(uuid.uuid4()), "type": "Role"}]}
            ]
        },
    ):
        response = env.http.patch(f"/applications/{app['id']}", headers=h, json=body)
        assert response.status_code == 400, body
    after = env.http.get(f"/applications/{app['id']}", headers=h).json()
    assert after["keyCredentials"] == [] and after["requiredResourceAccess"] == []
    expired_end = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5000)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pair = certs.generate_self_signed()
    too_long = env.http.patch(
        f"/applications/{app['id']}",
        headers=h,
        json={"keyCredentials": [{**_key_credential(pair), "endDateTime": expired_end}]},
    )
    assert too_long.status_code == 400


def test_secrets_are_created_once_and_listed_without_text(env):
    token = env.device_code_token()["access_token"]
    h = _bearer(token)
    app = env.http.post("/applications", headers=h, json={"displayName": "S"}).json()
    secret = env.http.post(
        f"/applications/{app['id']}/addPassword",
        headers=h,
        json={"passwordCredential": {"displayName": "old"}},
    )
    assert secret.status_code == 200 and secret.json()["secretText"]
    listed = env.http.get(f"/applications/{app['id']}", headers=h).json()["passwordCredentials"]
    assert listed[0]["secretText"] is None and listed[0]["hint"] == secret.json()["secretText"][:3]
    removed = env.http.post(
        f"/applications/{app['id']}/removePassword", headers=h, json={"keyId": listed[0]["keyId"]}
    )
    assert removed.status_code == 204
