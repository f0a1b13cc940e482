"""/applications and /servicePrincipals as Graph answers their queries ($count, $search, $orderby,
$top), the documented servicePrincipal keys, and addKey's two documented key forms."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from conftest import Credentials, app_token
from meetgate import certificates
from meetgate.graph.applications import key_proof

EVENTUAL = {"ConsistencyLevel": "eventual"}
ROLES = ["Application.ReadWrite.All", "User.Read.All"]


@pytest.fixture
def admin(sandbox, http, sandbox_tenant, key_pair) -> Credentials:
    app = sandbox_tenant.control.register_app(
        sandbox_tenant.tenant_id,
        "Adatum registrations",
        certificate_pem=certificates.certificate_pem(key_pair.certificate),
        roles=ROLES,
    )
    return Credentials(
        sandbox_tenant.tenant_id, app["appId"], app["objectId"], app["servicePrincipalId"], key_pair
    )


@pytest.fixture
def graph(sandbox, http, admin):
    token = app_token(sandbox, http, admin)

    def call(
        method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {token}", **(headers or {})}
        return http.request(method, f"{sandbox.info.graph_url}/v1.0{path}", headers=sent, **kwargs)

    return call


def _register(graph, *names: str) -> None:
    for name in names:
        created = graph("POST", "/applications", json={"displayName": name})
        assert created.status_code == 201, created.text
        sp = graph("POST", "/servicePrincipals", json={"appId": created.json()["appId"]})
        assert sp.status_code == 201, sp.text


@pytest.mark.parametrize("collection", ["applications", "servicePrincipals"])
def test_count_segment_is_plain_text_and_an_advanced_query(graph, collection):
    _register(graph, "DotNetWeb-App", "myContosoTeam")
    listed = graph("GET", f"/{collection}").json()["value"]
    counted = graph("GET", f"/{collection}/$count", headers=EVENTUAL)
    assert counted.status_code == 200
    assert counted.headers["content-type"].startswith("text/plain")
    assert int(counted.text) == len(listed)
    filtered = graph(
        "GET",
        f"/{collection}/$count",
        headers=EVENTUAL,
        params={"$filter": "startswith(displayName,'dotnet')"},
    )
    assert filtered.text == "1"
    refused = graph("GET", f"/{collection}/$count")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_BadRequest"


@pytest.mark.parametrize("collection", ["applications", "servicePrincipals"])
def test_count_true_adds_odata_count_only_with_eventual_consistency(graph, collection):
    _register(graph, "Alpha reports", "alpha archive", "Beta tools")
    query = {
        "$filter": "startswith(displayName, 'a')",
        "$count": "true",
        "$top": "1",
        "$orderby": "displayName",
    }
    body = graph("GET", f"/{collection}", headers=EVENTUAL, params=query).json()
    # Adatum registrations, Alpha reports, alpha archive: ordered case-insensitively, one per page
    assert body["@odata.count"] == 3
    assert [item["displayName"] for item in body["value"]] == ["Adatum registrations"]
    second = graph("GET", body["@odata.nextLink"].split("/v1.0", 1)[1], headers=EVENTUAL).json()
    assert [item["displayName"] for item in second["value"]] == ["alpha archive"]
    descending = graph(
        "GET", f"/{collection}", headers=EVENTUAL, params={**query, "$orderby": "displayName desc"}
    ).json()
    assert descending["value"][0]["displayName"] == "Alpha reports"
    refused = graph("GET", f"/{collection}", params={"$count": "true"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_BadRequest"
    assert "@odata.count" not in graph("GET", f"/{collection}").json()


@pytest.mark.parametrize("collection", ["applications", "servicePrincipals"])
def test_search_matches_tokens_of_display_name(graph, collection):
    _register(graph, "DotNetWeb-App", "myContosoTeam", "Webhooks relay", "Cobweb")

    def names(search: str) -> list[str]:
        response = graph(
            "GET", f"/{collection}", headers=EVENTUAL, params={"$search": search, "$count": "true"}
        )
        assert response.status_code == 200, response.text
        return sorted(item["displayName"] for item in response.json()["value"])

    assert names('"displayName:Web"') == ["DotNetWeb-App", "Webhooks relay"]  # not Cobweb: prefixes only
    assert names('"displayName:team"') == ["myContosoTeam"]
    assert names('"displayName:contoso team"') == ["myContosoTeam"]
    assert names('"displayName:web" OR "displayName:team"') == [
        "DotNetWeb-App",
        "Webhooks relay",
        "myContosoTeam",
    ]
    assert names('"displayName:web" AND "displayName:relay"') == ["Webhooks relay"]


def test_search_and_orderby_refusals(graph):
    no_header = graph("GET", "/applications", params={"$search": '"displayName:Web"'})
    assert no_header.status_code == 400
    assert "ConsistencyLevel: eventual" in no_header.json()["error"]["message"]
    for search in ("displayName:Web", '"publisherDomain:x"', '"displayName:a" NEAR "displayName:b"'):
        bad = graph("GET", "/applications", headers=EVENTUAL, params={"$search": search})
        assert bad.status_code == 400, search
        assert bad.json()["error"]["code"] == "Request_UnsupportedQuery"
    sort = graph("GET", "/applications", params={"$orderby": "createdDateTime"})
    assert sort.status_code == 400
    assert sort.json()["error"]["message"] == "Sorting not supported for 'createdDateTime'."
    top = graph("GET", "/servicePrincipals", params={"$top": "0"})
    assert top.status_code == 400


def test_service_principal_has_the_documented_default_keys(graph, admin):
    sp = graph("GET", f"/servicePrincipals/{admin.service_principal_id}").json()
    documented = {
        "accountEnabled", "addIns", "alternativeNames", "appDisplayName", "appId", "appOwnerOrganizationId",
        "appRoleAssignmentRequired", "appRoles", "disabledByMicrosoftStatus", "displayName", "endpoints",
        "homepage", "id", "info", "keyCredentials", "logoutUrl", "oauth2PermissionScopes",
        "passwordCredentials", "publisherName", "replyUrls", "resourceSpecificApplicationPermissions",
        "servicePrincipalNames", "servicePrincipalType", "signInAudience", "tags", "tokenEncryptionKeyId",
        "verifiedPublisher",
    }  # fmt: skip
    assert documented <= set(sp)
    assert sp["endpoints"] == []
    assert set(sp["verifiedPublisher"]) == {"displayName", "verifiedPublisherId", "addedDateTime"}


# ---- addKey -----------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _add_key(graph, admin: Credentials, key_credential: dict[str, Any], password: Any) -> httpx.Response:
    proof = key_proof(admin.pair.private_key, admin.pair.certificate, admin.object_id)
    body = {"keyCredential": key_credential, "passwordCredential": password, "proof": proof}
    return graph("POST", f"/applications/{admin.object_id}/addKey", json=body)


def test_add_key_x509_cert_and_password(sandbox, http, graph, admin):
    signing = certificates.generate_self_signed("adatum-signing")
    pfx = certificates.pfx_bytes(signing, b"pfx-password-1")
    added = _add_key(
        graph,
        admin,
        {"type": "X509CertAndPassword", "usage": "Sign", "key": _b64(pfx), "displayName": "CN=signing"},
        {"secretText": "pfx-password-1"},
    )
    assert added.status_code == 200, added.text
    key = added.json()
    assert key["@odata.context"].endswith("$metadata#microsoft.graph.keyCredential")
    assert (key["type"], key["usage"], key["key"], key["displayName"]) == (
        "X509CertAndPassword", "Sign", None, "CN=signing",
    )  # fmt: skip
    assert "pfx-password-1" not in added.text
    app = graph("GET", f"/applications/{admin.object_id}", params={"$select": "keyCredentials"}).json()
    stored = next(k for k in app["keyCredentials"] if k["keyId"] == key["keyId"])
    assert stored["usage"] == "Sign"
    assert base64.b64decode(stored["key"]) == signing.certificate.public_bytes(Encoding.DER)
    # a Sign key verifies nothing: neither a client assertion nor a proof of possession
    signer = Credentials(admin.tenant_id, admin.app_id, admin.object_id, admin.service_principal_id, signing)
    with pytest.raises(AssertionError):
        app_token(sandbox, http, signer)
    proof = key_proof(signing.private_key, signing.certificate, admin.object_id)
    removed = graph(
        "POST", f"/applications/{admin.object_id}/removeKey", json={"keyId": key["keyId"], "proof": proof}
    )
    assert removed.status_code == 400


@pytest.mark.parametrize(
    ("usage", "key", "password", "message"),
    [
        ("Verify", "pfx", {"secretText": "right"}, "must have usage 'Sign'"),
        ("Sign", "pfx", None, "passwordCredential.secretText"),
        ("Sign", "pfx", {"secretText": ""}, "passwordCredential.secretText"),
        ("Sign", "pfx", {"secretText": "wrong"}, "PKCS#12"),
        ("Sign", "der", {"secretText": "right"}, "PKCS#12"),
        ("Sign", "not base64!", {"secretText": "right"}, "base64"),
    ],
)
def test_add_key_x509_cert_and_password_refusals(graph, admin, usage, key, password, message):
    signing = certificates.generate_self_signed("adatum-signing")
    raw = {
        "pfx": _b64(certificates.pfx_bytes(signing, b"right")),
        "der": _b64(signing.certificate.public_bytes(Encoding.DER)),
    }.get(key, key)
    refused = _add_key(graph, admin, {"type": "X509CertAndPassword", "usage": usage, "key": raw}, password)
    assert refused.status_code == 400
    assert message in refused.json()["error"]["message"]
    assert "right" not in refused.text
    keys = graph("GET", f"/applications/{admin.object_id}", params={"$select": "keyCredentials"}).json()
    assert len(keys["keyCredentials"]) == 1  # nothing was added


def test_add_key_still_needs_a_proof_and_a_null_password_for_verify_keys(graph, admin):
    signing = certificates.generate_self_signed("adatum-signing")
    pfx = _b64(certificates.pfx_bytes(signing, b"right"))
    body = {
        "keyCredential": {"type": "X509CertAndPassword", "usage": "Sign", "key": pfx},
        "passwordCredential": {"secretText": "right"},
        "proof": "not.a.jwt",
    }
    no_proof = graph("POST", f"/applications/{admin.object_id}/addKey", json=body)
    assert no_proof.status_code == 400
    assert "Proof of possession" in no_proof.json()["error"]["message"]
    der = _b64(signing.certificate.public_bytes(Encoding.DER))
    with_password = _add_key(
        graph, admin, {"type": "AsymmetricX509Cert", "usage": "Verify", "key": der}, {"secretText": "x"}
    )
    assert with_password.status_code == 400
    assert "only for keys of type 'X509CertAndPassword'" in with_password.json()["error"]["message"]
