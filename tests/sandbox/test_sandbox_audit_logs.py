"""auditLogs/signIns with user sign-ins (device code, refresh token) beside the service principal
ones, their documented fields and filters; auditLogs/directoryAudits naming who made a change.

The log APIs allow 5 requests per 10 s per app and tenant: each test reads through its own app."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import Credentials, Hidden, app_token
from meetgate import certificates

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRAPH_CLI = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
GRAPH_EXPLORER = "de8bc8b5-d9f9-48b1-a8ad-b748da725064"
EDGE_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91"
)
USER_KEYS = {
    "userDisplayName", "userPrincipalName", "userId", "appId", "appDisplayName", "ipAddress", "clientAppUsed",
    "correlationId", "conditionalAccessStatus", "isInteractive", "riskDetail", "riskLevelAggregated",
    "riskLevelDuringSignIn", "riskState", "riskEventTypes", "resourceDisplayName", "resourceId", "status",
    "deviceDetail", "location", "appliedConditionalAccessPolicies", "id", "createdDateTime",
}  # fmt: skip


@pytest.fixture
def reader(sandbox, http, sandbox_tenant, key_pair):
    """GET on Graph as a fresh app with AuditLog.Read.All (its own log API budget)."""
    app = sandbox_tenant.control.register_app(
        sandbox_tenant.tenant_id,
        "Log reader",
        certificate_pem=certificates.certificate_pem(key_pair.certificate),
        roles=["AuditLog.Read.All", "Directory.Read.All", "Application.ReadWrite.All"],
    )
    creds = Credentials(
        sandbox_tenant.tenant_id, app["appId"], app["objectId"], app["servicePrincipalId"], key_pair
    )
    token = app_token(sandbox, http, creds)

    def get(path: str, **params: str) -> httpx.Response:
        return http.get(
            f"{sandbox.info.graph_url}{path}", params=params, headers={"Authorization": f"Bearer {token}"}
        )

    get.app = app  # type: ignore[attr-defined]
    get.token = token  # type: ignore[attr-defined]
    return get


@pytest.fixture
def admin_id(sandbox_tenant) -> str:
    return str(sandbox_tenant.control.tenant(sandbox_tenant.tenant_id)["adminId"])


def _device_sign_in(
    sandbox,
    http,
    tenant_id: str,
    client_id: str,
    *,
    scope: str = "User.Read",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    authority = f"{sandbox.info.authority_url}/{tenant_id}/oauth2/v2.0"
    code = http.post(f"{authority}/devicecode", data={"client_id": client_id, "scope": scope})
    assert code.status_code == 200, code.text
    form = {"client_id": client_id, "grant_type": DEVICE_CODE, "device_code": code.json()["device_code"]}
    token = http.post(f"{authority}/token", data=form, headers=headers or {})
    assert token.status_code == 200, token.text
    return {k: Hidden(v) if "token" in k else v for k, v in token.json().items()}


def test_device_code_sign_in_is_listed_with_the_user(sandbox, http, sandbox_tenant, reader, admin_id):
    headers = {"User-Agent": EDGE_ON_WINDOWS, "client-request-id": "0b8b3c5e-1f7e-4c1e-9d4e-2a1f0c2b3d4e"}
    _device_sign_in(sandbox, http, sandbox_tenant.tenant_id, GRAPH_CLI, headers=headers)
    listed = reader("/v1.0/auditLogs/signIns")
    assert listed.status_code == 200
    records = listed.json()["value"]
    assert len(records) == 1  # the reader's own client credentials sign-in is not a user sign-in
    record = records[0]
    assert set(record) >= USER_KEYS
    assert (record["userId"], record["userPrincipalName"]) == (admin_id, sandbox_tenant.admin_upn)
    assert record["userDisplayName"] == "MOD Administrator"
    assert (record["appId"], record["appDisplayName"]) == (GRAPH_CLI, "Microsoft Graph Command Line Tools")
    assert record["clientAppUsed"] == "Mobile Apps and Desktop clients"
    assert record["isInteractive"] is True
    assert record["correlationId"] == headers["client-request-id"]
    assert record["conditionalAccessStatus"] == "notApplied"
    assert record["appliedConditionalAccessPolicies"] == []
    assert {
        record[k] for k in ("riskDetail", "riskLevelAggregated", "riskLevelDuringSignIn", "riskState")
    } == {"none"}
    assert record["riskEventTypes"] == []
    assert record["status"] == {"errorCode": 0, "failureReason": None, "additionalDetails": None}
    assert record["deviceDetail"] == {
        "deviceId": "", "displayName": None, "operatingSystem": "Windows 10", "browser": "Edge 120.0.2210.91",
        "isCompliant": None, "isManaged": None, "trustType": None,
    }  # fmt: skip
    geo = record["location"]["geoCoordinates"]
    assert isinstance(geo["latitude"], float) and isinstance(geo["longitude"], float)
    assert geo["altitude"] is None
    # the service principal sign-ins stay where the product reads them: beta, by event type
    sp_filter = f"appId eq '{reader.app['appId']}' and signInEventTypes/any(t: t eq 'servicePrincipal')"
    sp = reader("/beta/auditLogs/signIns", **{"$filter": sp_filter}).json()["value"]
    assert len(sp) == 1
    assert sp[0]["servicePrincipalId"] == reader.app["servicePrincipalId"]
    assert sp[0]["servicePrincipalCredentialKeyId"] and sp[0]["clientCredentialType"] == "certificate"
    assert (sp[0]["userId"], sp[0]["userPrincipalName"], sp[0]["isInteractive"]) == (None, None, False)


def test_sign_in_filters_the_docs_show(sandbox, http, sandbox_tenant, reader):
    _device_sign_in(sandbox, http, sandbox_tenant.tenant_id, GRAPH_EXPLORER)
    _device_sign_in(sandbox, http, sandbox_tenant.tenant_id, GRAPH_CLI)

    def apps(**params: str) -> list[str]:
        response = reader("/v1.0/auditLogs/signIns", **params)
        assert response.status_code == 200, response.text
        return [r["appDisplayName"] for r in response.json()["value"]]

    assert apps(**{"$filter": "startsWith(appDisplayName,'Graph')", "$top": "10"}) == ["Graph Explorer"]
    admin = sandbox_tenant.admin_upn
    assert apps(
        **{
            "$filter": f"userPrincipalName eq '{admin.upper()}' and isInteractive eq true",
            "$orderby": "createdDateTime asc",
        }
    ) == ["Graph Explorer", "Microsoft Graph Command Line Tools"]
    refused = reader("/v1.0/auditLogs/signIns", **{"$filter": "startsWith(appId,'14d8')"})
    assert refused.status_code == 400
    assert "appId" in refused.json()["error"]["message"]
    sort = reader("/v1.0/auditLogs/signIns", **{"$orderby": "userId"})
    assert sort.status_code == 400


def test_refresh_token_sign_in_is_non_interactive(sandbox, http, sandbox_tenant, reader, admin_id):
    tenant_id = sandbox_tenant.tenant_id
    first = _device_sign_in(sandbox, http, tenant_id, GRAPH_CLI, scope="User.Read offline_access")
    refreshed = http.post(
        f"{sandbox.info.authority_url}/{tenant_id}/oauth2/v2.0/token",
        data={"client_id": GRAPH_CLI, "grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers={"x-client-os": "linux", "User-Agent": "python-requests/2.32"},
    )
    assert refreshed.status_code == 200
    interactive = reader("/v1.0/auditLogs/signIns").json()["value"]
    assert [r["isInteractive"] for r in interactive] == [True]
    beta = reader(
        "/beta/auditLogs/signIns", **{"$filter": "signInEventTypes/any(t: t eq 'nonInteractiveUser')"}
    ).json()["value"]
    assert len(beta) == 1
    assert beta[0]["userId"] == admin_id and beta[0]["isInteractive"] is False
    assert beta[0]["deviceDetail"]["operatingSystem"] == "Linux"
    assert beta[0]["deviceDetail"]["browser"] == "Rich Client"


def test_declined_device_code_is_a_failed_sign_in_without_a_user(sandbox, http, sandbox_tenant, reader):
    tenant_id = sandbox_tenant.tenant_id
    sandbox_tenant.control.request("PUT", f"/tenants/{tenant_id}/device-login", json={"mode": "deny"})
    authority = f"{sandbox.info.authority_url}/{tenant_id}/oauth2/v2.0"
    code = http.post(f"{authority}/devicecode", data={"client_id": GRAPH_CLI, "scope": "User.Read"}).json()
    form = {"client_id": GRAPH_CLI, "grant_type": DEVICE_CODE, "device_code": code["device_code"]}
    assert http.post(f"{authority}/token", data=form).status_code == 400
    failed = reader("/v1.0/auditLogs/signIns", **{"$filter": "status/errorCode ne 0"}).json()["value"]
    assert len(failed) == 1
    assert failed[0]["status"]["errorCode"] == 70000 and failed[0]["status"]["failureReason"]
    assert failed[0]["userId"] is None and failed[0]["appDisplayName"] == "Microsoft Graph Command Line Tools"


# ---- directory audits ------------------------------------------------------------------------------


def test_directory_audits_name_the_admin_or_the_app(sandbox, http, sandbox_tenant, reader, admin_id):
    tenant_id = sandbox_tenant.tenant_id
    token = sandbox_tenant.control.delegated_token(
        tenant_id, admin_id, reader.app["appId"], ["Application.ReadWrite.All"]
    )
    by_admin = http.post(
        f"{sandbox.info.graph_url}/v1.0/applications",
        json={"displayName": "Registered by the admin"},
        headers={"Authorization": f"Bearer {Hidden(token)}"},
    )
    assert by_admin.status_code == 201
    by_app = http.post(
        f"{sandbox.info.graph_url}/v1.0/applications",
        json={"displayName": "Registered by an app"},
        headers={"Authorization": f"Bearer {reader.token}"},
    )
    assert by_app.status_code == 201
    audits = reader(
        "/v1.0/auditLogs/directoryAudits", **{"$filter": "activityDisplayName eq 'Add application'"}
    ).json()["value"]
    targets = {a["targetResources"][0]["displayName"]: a["initiatedBy"] for a in audits}
    assert targets["Registered by the admin"] == {
        "app": None,
        "user": {
            "id": admin_id,
            "displayName": "MOD Administrator",
            "userPrincipalName": sandbox_tenant.admin_upn,
            "ipAddress": "127.0.0.1",
        },
    }
    assert targets["Registered by an app"] == {
        "user": None,
        "app": {
            "appId": reader.app["appId"],
            "displayName": "Log reader",
            "servicePrincipalId": reader.app["servicePrincipalId"],
            "servicePrincipalName": "Log reader",
        },
    }
    mine = reader(
        "/v1.0/auditLogs/directoryAudits",
        **{"$filter": f"startswith(initiatedBy/user/userPrincipalName,'{sandbox_tenant.admin_upn[:5]}')"},
    ).json()["value"]
    assert [a["targetResources"][0]["displayName"] for a in mine] == ["Registered by the admin"]
