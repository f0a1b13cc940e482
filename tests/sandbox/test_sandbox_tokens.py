"""The token endpoint, driven by real MSAL over TLS, and every AADSTS error a client can meet."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest

from conftest import (
    ASSERTION_TYPE,
    GRAPH_SCOPE,
    aadsts,
    acquire,
    claims_of,
    make_assertion,
    msal_app,
    post_token,
    token_endpoint,
)
from meetgate import certificates


def _ok(result):
    assert "access_token" in result, result.get("error_description")
    return result


def test_msal_thumbprint_credential_gets_an_app_only_token(sandbox, http, creds):
    result = _ok(acquire(sandbox, http, creds.tenant_id, creds.app_id, creds.thumbprint_credential()))
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3599
    claims = claims_of(result["access_token"])
    assert str(result["access_token"]) not in repr(result)
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["iss"] == f"https://sts.windows.net/{creds.tenant_id}/"
    assert claims["tid"] == creds.tenant_id
    assert claims["ver"] == "1.0"
    assert claims["appid"] == creds.app_id
    assert claims["appidacr"] == "2"
    assert claims["idtyp"] == "app"
    assert claims["oid"] == creds.service_principal_id
    assert sorted(claims["roles"]) == ["Group.Read.All", "OnlineMeetings.ReadWrite.All", "User.Read.All"]
    assert "scp" not in claims
    assert claims["exp"] - claims["iat"] == 3599
    header = jwt.get_unverified_header(result["access_token"])
    assert header["alg"] == "RS256"


def test_msal_public_certificate_credential_uses_ps256_and_is_accepted(sandbox, http, creds):
    result = _ok(acquire(sandbox, http, creds.tenant_id, creds.app_id, creds.public_certificate_credential()))
    assert claims_of(result["access_token"])["appidacr"] == "2"
    log = sandbox_log(sandbox, http, creds)
    assert log[-1]["success"] is True
    assert log[-1]["credentialType"] == "certificate"
    assert log[-1]["thumbprint"] == creds.pair.thumbprint_sha1
    requests = sandbox_requests(sandbox, creds)
    token_calls = [r for r in requests if r["path"].endswith("/oauth2/v2.0/token")]
    assert token_calls[-1]["status"] == 200
    assert token_calls[-1]["appId"] == creds.app_id
    assert token_calls[-1]["method"] == "POST"
    assert token_calls[-1]["requestId"] == log[-1]["requestId"]


def sandbox_requests(sandbox, creds):
    from meetgate_sandbox.control import SandboxControl

    with SandboxControl(sandbox.info.control_url, sandbox.info.ca_bundle) as control:
        return control.request_log(creds.tenant_id)


def sandbox_log(sandbox, http, creds):
    from meetgate_sandbox.control import SandboxControl

    with SandboxControl(sandbox.info.control_url, sandbox.info.ca_bundle) as control:
        return control.token_log(creds.tenant_id, app_id=creds.app_id)


def test_msal_client_secret_gets_a_token_with_appidacr_1(sandbox, http, creds):
    result = _ok(acquire(sandbox, http, creds.tenant_id, creds.app_id, creds.secret))
    assert claims_of(result["access_token"])["appidacr"] == "1"


def test_tenant_can_be_named_by_domain(sandbox, http, creds, sandbox_tenant):
    result = _ok(acquire(sandbox, http, sandbox_tenant.domain, creds.app_id, creds.thumbprint_credential()))
    assert claims_of(result["access_token"])["tid"] == creds.tenant_id


def test_openid_configuration_has_what_msal_reads(sandbox, http, sandbox_tenant):
    response = http.get(
        f"{sandbox.info.authority_url}/{sandbox_tenant.domain}/v2.0/.well-known/openid-configuration"
    )
    assert response.status_code == 200
    doc = response.json()
    base = f"{sandbox.info.authority_url}/{sandbox_tenant.tenant_id}"
    assert doc["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert doc["device_authorization_endpoint"] == f"{base}/oauth2/v2.0/devicecode"
    assert doc["issuer"] == f"{base}/v2.0"
    keys = http.get(doc["jwks_uri"]).json()["keys"]
    assert keys[0]["kty"] == "RSA"


def test_wrong_certificate_is_aadsts700027(sandbox, http, creds):
    other = certificates.generate_self_signed("not-registered")
    credential = {
        "private_key": certificates.private_key_pem(other.private_key).decode(),
        "thumbprint": other.thumbprint_sha1,
    }
    result = acquire(sandbox, http, creds.tenant_id, creds.app_id, credential)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]
    assert other.thumbprint_sha1 in result["error_description"]
    assert "The key was not found." in result["error_description"]
    log = sandbox_log(sandbox, http, creds)
    assert log[-1]["success"] is False
    assert log[-1]["errorCode"] == 700027


def test_signature_by_another_key_under_a_registered_thumbprint_is_700027(sandbox, http, creds):
    forger = certificates.generate_private_key()
    assertion = make_assertion(creds, token_endpoint(sandbox, creds.tenant_id), key=forger)
    response = post_token(
        http, sandbox, creds.tenant_id, client_id=creds.app_id, client_assertion_type=ASSERTION_TYPE,
        client_assertion=assertion,
    )  # fmt: skip
    assert response.status_code == 401
    assert aadsts(response) == 700027
    assert "did not match the expected signature value" in response.json()["error_description"]


def test_ps256_with_x5t_s256_built_by_hand_is_accepted(sandbox, http, creds):
    assertion = make_assertion(creds, token_endpoint(sandbox, creds.tenant_id), alg="PS256")
    response = post_token(
        http, sandbox, creds.tenant_id, client_id=creds.app_id, client_assertion_type=ASSERTION_TYPE,
        client_assertion=assertion,
    )  # fmt: skip
    assert response.status_code == 200, response.text


def test_x5c_that_is_not_the_registered_certificate_is_rejected(sandbox, http, creds):
    other = certificates.generate_self_signed("other")
    import base64

    x5c = [base64.b64encode(certificates.certificate_der(other.certificate)).decode()]
    assertion = make_assertion(
        creds, token_endpoint(sandbox, creds.tenant_id), alg="PS256", headers={"x5c": x5c}
    )
    response = post_token(
        http, sandbox, creds.tenant_id, client_id=creds.app_id, client_assertion_type=ASSERTION_TYPE,
        client_assertion=assertion,
    )  # fmt: skip
    assert aadsts(response) == 700027


def test_expired_key_credential_is_700027(sandbox, http, creds, sandbox_tenant):
    old = certificates.generate_self_signed("expired-key")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    sandbox_tenant.control.add_certificate(
        creds.tenant_id,
        creds.app_id,
        certificates.certificate_pem(old.certificate),
        start=(past - dt.timedelta(days=30)).isoformat(),
        end=past.isoformat(),
    )
    credential = {
        "private_key": certificates.private_key_pem(old.private_key).decode(),
        "thumbprint": old.thumbprint_sha1,
    }
    result = acquire(sandbox, http, creds.tenant_id, creds.app_id, credential)
    assert result["error_codes"] == [700027]
    assert "The key used is expired." in result["error_description"]


def test_unknown_app_is_700016(sandbox, http, creds):
    result = acquire(sandbox, http, creds.tenant_id, "11111111-2222-3333-4444-555555555555", creds.secret)
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]
    assert "was not found in the directory" in result["error_description"]


def test_bad_secret_is_7000215(sandbox, http, creds):
    result = acquire(sandbox, http, creds.tenant_id, creds.app_id, "not-the-secret")
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]


def test_expired_secret_is_7000222(sandbox, http, creds, sandbox_tenant):
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    added = sandbox_tenant.control.add_secret(
        creds.tenant_id, creds.app_id, start=(past - dt.timedelta(days=90)).isoformat(), end=past.isoformat()
    )
    result = acquire(sandbox, http, creds.tenant_id, creds.app_id, added["secretText"])
    assert result["error_codes"] == [7000222]


def test_unknown_tenant_is_90002_at_discovery_and_token(sandbox, http, creds):
    response = http.get(
        f"{sandbox.info.authority_url}/nosuch.onmicrosoft.com/v2.0/.well-known/openid-configuration"
    )
    assert response.status_code == 400
    assert aadsts(response) == 90002
    response = post_token(http, sandbox, "00000000-0000-0000-0000-000000000001", client_id=creds.app_id)
    assert aadsts(response) == 90002
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        msal_app(sandbox, http, "nosuch.onmicrosoft.com", creds.app_id, creds.secret)


def test_assertion_outside_its_time_range_is_700024(sandbox, http, creds):
    assertion = make_assertion(
        creds, token_endpoint(sandbox, creds.tenant_id), exp_offset=-3600, nbf_offset=-4200
    )
    response = post_token(
        http, sandbox, creds.tenant_id, client_id=creds.app_id, client_assertion_type=ASSERTION_TYPE,
        client_assertion=assertion,
    )  # fmt: skip
    assert response.status_code == 401
    assert aadsts(response) == 700024
    assert "not within its valid time range" in response.json()["error_description"]


def test_malformed_assertion_is_50027(sandbox, http, creds):
    response = post_token(
        http, sandbox, creds.tenant_id, client_id=creds.app_id, client_assertion_type=ASSERTION_TYPE,
        client_assertion="not.a.jwt",
    )  # fmt: skip
    assert response.status_code == 400
    assert aadsts(response) == 50027


def test_assertion_for_another_audience_or_issuer_is_refused(sandbox, http, creds):
    wrong_aud = make_assertion(creds, "https://login.microsoftonline.com/common/oauth2/v2.0/token")
    response = post_token(
        http, sandbox, creds.tenant_id, client_id=creds.app_id, client_assertion_type=ASSERTION_TYPE,
        client_assertion=wrong_aud,
    )  # fmt: skip
    assert response.status_code == 401
    assert "audience" in response.json()["error_description"]
    wrong_iss = make_assertion(creds, token_endpoint(sandbox, creds.tenant_id), iss="someone-else")
    response = post_token(
        http, sandbox, creds.tenant_id, client_id=creds.app_id, client_assertion_type=ASSERTION_TYPE,
        client_assertion=wrong_iss,
    )  # fmt: skip
    assert aadsts(response) == 700021


def test_scope_other_than_graph_default_is_70011(sandbox, http, creds):
    result = msal_app(sandbox, http, creds.tenant_id, creds.app_id, creds.secret).acquire_token_for_client(
        ["https://graph.microsoft.com/User.Read"]
    )
    assert "access_token" not in result
    assert result["error"] == "invalid_scope"
    assert result["error_codes"] == [70011]


def test_disabled_app_is_7000112(sandbox, http, creds, sandbox_tenant):
    sandbox_tenant.control.update_app(creds.tenant_id, creds.app_id, account_enabled=False)
    result = acquire(sandbox, http, creds.tenant_id, creds.app_id, creds.thumbprint_credential())
    assert result["error_codes"] == [7000112]
    assert "is disabled" in result["error_description"]


def test_no_credential_and_bad_grant_type(sandbox, http, creds):
    response = post_token(http, sandbox, creds.tenant_id, client_id=creds.app_id)
    assert response.status_code == 401
    assert aadsts(response) == 7000218
    response = post_token(http, sandbox, creds.tenant_id, client_id=creds.app_id, grant_type="password")
    assert response.json()["error"] == "unsupported_grant_type"


def test_error_body_has_entra_shape_and_echoes_correlation_id(sandbox, http, creds):
    response = http.post(
        token_endpoint(sandbox, creds.tenant_id),
        data={
            "grant_type": "client_credentials",
            "scope": GRAPH_SCOPE[0],
            "client_id": creds.app_id,
            "client_secret": "x",
        },
        headers={"client-request-id": "7c9d5d0e-1b84-4a4e-9c7e-000000000001"},
    )
    body = response.json()
    assert set(body) >= {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
    }
    assert body["correlation_id"] == "7c9d5d0e-1b84-4a4e-9c7e-000000000001"
    assert body["error_description"].startswith("AADSTS7000215: ")
    assert "\r\nTrace ID: " in body["error_description"]
    assert response.headers["client-request-id"] == "7c9d5d0e-1b84-4a4e-9c7e-000000000001"
    assert response.headers["x-ms-request-id"] == body["trace_id"]


def test_token_lifetime_setting_applies(sandbox, http, creds, sandbox_control):
    sandbox_control.set_settings(access_token_lifetime_seconds=120)
    try:
        result = _ok(acquire(sandbox, http, creds.tenant_id, creds.app_id, creds.secret))
    finally:
        sandbox_control.set_settings(access_token_lifetime_seconds=3599)
    assert result["expires_in"] == 120
    claims = claims_of(result["access_token"])
    assert claims["exp"] - claims["iat"] == 120


def test_secrets_and_tokens_stay_out_of_logs_and_reprs(sandbox, http, creds, sandbox_control):
    token = _ok(acquire(sandbox, http, creds.tenant_id, creds.app_id, creds.secret))["access_token"]
    dumped = str(sandbox_control.token_log(creds.tenant_id)) + str(
        sandbox_control.app(creds.tenant_id, creds.app_id)
    )
    assert creds.secret not in dumped
    assert token not in dumped
