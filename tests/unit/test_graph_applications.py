"""ApplicationsService builds Graph's paths and bodies and parses its answers (fake JSON http port)."""

from __future__ import annotations

import base64
import hashlib
import time

import jwt

from meetgate import certificates as certs
from meetgate.graph.applications import (
    ApplicationsService,
    KeyCredential,
    RequiredResourceAccess,
    ResourceAccess,
    key_proof,
    thumbprint_from_custom_key_identifier,
)


class FakeJsonHttp:
    def __init__(self, answers=None):
        self.calls: list[tuple] = []
        self.answers = answers or {}

    def _answer(self, method, path):
        return self.answers.get((method, path), {"value": []} if method == "GET" else None)

    def get(self, path, *, params=None):
        self.calls.append(("GET", path, params))
        return self._answer("GET", path)

    def post(self, path, *, json=None):
        self.calls.append(("POST", path, json))
        return self._answer("POST", path)

    def patch(self, path, *, json=None):
        self.calls.append(("PATCH", path, json))

    def delete(self, path):
        self.calls.append(("DELETE", path, None))


def test_find_by_name_quotes_the_odata_literal():
    http = FakeJsonHttp(
        {("GET", "/applications"): {"value": [{"id": "o1", "appId": "a1", "displayName": "O'Brien app"}]}}
    )
    apps = ApplicationsService(http).find_applications("O'Brien app")
    assert http.calls == [("GET", "/applications", {"$filter": "displayName eq 'O''Brien app'"})]
    assert apps[0].app_id == "a1"


def test_create_application_sends_single_tenant_and_graph_roles():
    http = FakeJsonHttp({("POST", "/applications"): {"id": "o1", "appId": "a1", "displayName": "X"}})
    rra = RequiredResourceAccess(
        resource_app_id="00000003-0000-0000-c000-000000000000", resource_access=[ResourceAccess(id="r1")]
    )
    ApplicationsService(http).create_application("X", required_resource_access=[rra])
    assert http.calls[0][2] == {
        "displayName": "X",
        "signInAudience": "AzureADMyOrg",
        "requiredResourceAccess": [
            {
                "resourceAppId": "00000003-0000-0000-c000-000000000000",
                "resourceAccess": [{"id": "r1", "type": "Role"}],
            }
        ],
    }


def test_key_credentials_are_read_with_select_and_written_whole():
    pair = certs.generate_self_signed()
    der = certs.certificate_der(pair.certificate)
    http = FakeJsonHttp(
        {
            ("GET", "/applications/o1"): {
                "keyCredentials": [
                    {
                        "keyId": "k1",
                        "type": "AsymmetricX509Cert",
                        "usage": "Verify",
                        "key": base64.b64encode(der).decode(),
                    }
                ]
            }
        }
    )
    service = ApplicationsService(http)
    creds = service.get_key_credentials("o1")
    assert http.calls[0] == ("GET", "/applications/o1", {"$select": "keyCredentials"})
    assert creds[0].thumbprint_sha1 == pair.thumbprint_sha1
    service.set_key_credentials("o1", creds)
    method, path, body = http.calls[1]
    assert (method, path) == ("PATCH", "/applications/o1")
    assert body["keyCredentials"][0]["keyId"] == "k1" and body["keyCredentials"][0]["key"]


def test_consent_posts_an_app_role_assignment_on_the_resource():
    http = FakeJsonHttp(
        {
            ("POST", "/servicePrincipals/g1/appRoleAssignedTo"): {
                "id": "as1",
                "appRoleId": "r1",
                "principalId": "p1",
                "resourceId": "g1",
            }
        }
    )
    assignment = ApplicationsService(http).grant_app_role(
        resource_id="g1", principal_id="p1", app_role_id="r1"
    )
    assert http.calls[0][2] == {"principalId": "p1", "resourceId": "g1", "appRoleId": "r1"}
    assert assignment.id == "as1"


def test_graph_service_principal_is_looked_up_by_app_id():
    http = FakeJsonHttp()
    http.answers[("GET", "/servicePrincipals(appId=%2700000003-0000-0000-c000-000000000000%27)")] = {
        "id": "g1",
        "appId": "00000003-0000-0000-c000-000000000000",
        "appRoles": [
            {
                "id": "r1",
                "value": "OnlineMeetings.ReadWrite.All",
                "allowedMemberTypes": ["Application"],
                "isEnabled": True,
            },
            {"id": "r2", "value": "User.Read", "allowedMemberTypes": ["User"]},
            {"id": "r3", "value": "Old.Role", "allowedMemberTypes": ["Application"], "isEnabled": False},
        ],
    }
    graph = ApplicationsService(http).graph_service_principal()
    assert graph.application_roles() == {"OnlineMeetings.ReadWrite.All": "r1"}


def test_custom_key_identifier_forms():
    digest = hashlib.sha1(b"x").digest()
    assert thumbprint_from_custom_key_identifier(base64.b64encode(digest).decode()) == digest.hex().upper()
    assert thumbprint_from_custom_key_identifier(digest.hex()) == digest.hex().upper()
    assert (
        thumbprint_from_custom_key_identifier(base64.b64encode(digest.hex().encode()).decode())
        == digest.hex().upper()
    )
    assert thumbprint_from_custom_key_identifier("not base64!") is None
    assert thumbprint_from_custom_key_identifier(None) is None


def test_key_proof_claims_and_header():
    pair = certs.generate_self_signed()
    now = time.time()
    proof = key_proof(pair.private_key, pair.certificate, "obj-1", now=now)
    header = jwt.get_unverified_header(proof)
    assert header["alg"] == "RS256" and header["x5t"] == certs.x5t(pair.certificate)
    claims = jwt.decode(
        proof,
        pair.certificate.public_key(),
        algorithms=["RS256"],
        audience="00000002-0000-0000-c000-000000000000",
    )
    assert claims["iss"] == "obj-1" and claims["exp"] - claims["nbf"] == 600


def test_key_credential_repr_hides_the_key():
    kc = KeyCredential(key="QUJD", key_id="k")
    assert "QUJD" not in repr(kc)
