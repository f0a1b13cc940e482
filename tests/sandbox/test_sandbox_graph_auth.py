"""Bearer token checks on /v1.0 and /beta: Graph's 401s, delegated tokens, request ids."""

from __future__ import annotations

import jwt
import pytest

from conftest import app_token, claims_of
from meetgate import certificates


def _get(http, sandbox, path, token=None, **headers):
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http.get(f"{sandbox.info.graph_url}{path}", headers=headers)


def _assert_401(response, message):
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["message"] == message
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm=""')
    assert error["innerError"]["request-id"] == response.headers["request-id"]


def test_missing_token_is_401_access_token_is_empty(sandbox, http):
    _assert_401(_get(http, sandbox, "/v1.0/users"), "Access token is empty.")
    _assert_401(_get(http, sandbox, "/beta/users", Authorization="Basic abc"), "Access token is empty.")


def test_garbage_token_is_401(sandbox, http):
    response = _get(http, sandbox, "/v1.0/users", token="garbage")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_token_signed_by_someone_else_is_401(sandbox, http, creds):
    claims = claims_of(app_token(sandbox, http, creds))
    forged = jwt.encode(claims, certificates.generate_private_key(), algorithm="RS256")
    _assert_401(_get(http, sandbox, "/v1.0/users", token=forged), "Access token validation failure.")


def test_token_for_another_audience_is_401(sandbox, http, creds):
    # the sandbox's own key cannot be reached from tests, so use a real token with a tampered audience:
    # the signature check fails first, which Graph also reports as a validation failure
    token = app_token(sandbox, http, creds)
    header, payload, signature = token.split(".")
    assert _get(http, sandbox, "/v1.0/users", token=f"{header}.{payload}x.{signature}").status_code == 401


def test_expired_token_is_401_with_graphs_message(sandbox, http, creds, sandbox_control):
    token = app_token(sandbox, http, creds)  # valid for an hour
    sandbox_control.set_settings(clock_offset_seconds=3600)  # an hour later, without waiting for it
    try:
        _assert_401(
            _get(http, sandbox, "/v1.0/users", token=token), "Access token has expired or is not yet valid."
        )
    finally:
        sandbox_control.set_settings(clock_offset_seconds=0)
    assert _get(http, sandbox, "/v1.0/users?$top=1", token=token).status_code == 200


def test_valid_app_token_reads_users_and_ids_are_echoed(sandbox, http, creds):
    token = app_token(sandbox, http, creds)
    response = _get(http, sandbox, "/v1.0/users?$top=1", token=token, **{"client-request-id": "abc-123"})
    assert response.status_code == 200
    assert response.headers["client-request-id"] == "abc-123"
    assert len(response.headers["request-id"]) == 36
    other = _get(http, sandbox, "/v1.0/users?$top=1", token=token)
    assert other.headers["request-id"] != response.headers["request-id"]


def test_delegated_token_has_scp_and_can_use_me_only(sandbox, http, creds, sandbox_tenant):
    user = sandbox_tenant.users[0]
    token = sandbox_tenant.control.delegated_token(creds.tenant_id, user.upn, creds.app_id, ["User.Read"])
    claims = claims_of(token)
    assert claims["scp"] == "User.Read"
    assert "roles" not in claims
    assert claims["oid"] == user.id
    me = _get(http, sandbox, "/v1.0/me", token=token)
    assert me.status_code == 200
    assert me.json()["userPrincipalName"] == user.upn
    denied = _get(http, sandbox, "/v1.0/users", token=token)
    assert denied.status_code == 403
    assert denied.json()["error"] == {
        **denied.json()["error"],
        "code": "Authorization_RequestDenied",
        "message": "Insufficient privileges to complete the operation.",
    }


def test_app_only_token_cannot_use_me(sandbox, http, creds):
    response = _get(http, sandbox, "/v1.0/me", token=app_token(sandbox, http, creds))
    assert response.status_code == 400
    assert (
        response.json()["error"]["message"] == "/me request is only valid with delegated authentication flow."
    )


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1.0/nosuchthing", 400, "BadRequest"),
        ("/nosuchroot", 404, "UnknownError"),
    ],
)
def test_unknown_paths_answer_in_graphs_envelope(sandbox, http, creds, path, status, code):
    response = _get(http, sandbox, path, token=app_token(sandbox, http, creds))
    assert response.status_code == status
    body = response.json()
    assert body["error"]["code"] == code
    assert set(body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}


def test_wrong_method_answers_405_in_graphs_envelope(sandbox, http, creds):
    token = app_token(sandbox, http, creds)
    response = http.delete(
        f"{sandbox.info.graph_url}/v1.0/users", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "Request_BadRequest"
