"""The administrator's device code sign-in over a mock Entra (httpx.MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest

from meetgate.graph.admin_signin import DeviceCodeTokenSource, admin_settings
from meetgate.graph.errors import AuthenticationError

AUTHORITY = "https://login.example.test"
TENANT = "contoso.example"


def _jwt(claims: dict) -> str:
    import base64

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


class FakeEntra:
    """Discovery, device code and token endpoints; ``poll_answers`` are returned in order."""

    def __init__(self, poll_answers: list[tuple[int, dict]], *, tenant_exists: bool = True) -> None:
        self.poll_answers = list(poll_answers)
        self.tenant_exists = tenant_exists
        self.device_code_requests = 0
        self.polls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        base = f"{AUTHORITY}/{TENANT}"
        if path.endswith("/.well-known/openid-configuration"):
            if not self.tenant_exists:
                return httpx.Response(
                    400,
                    json={
                        "error": "invalid_tenant",
                        "error_description": f"AADSTS90002: Tenant '{TENANT}' not found.",
                    },
                )
            return httpx.Response(
                200,
                json={
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "issuer": f"{base}/v2.0",
                },
            )
        if path.endswith("/devicecode"):
            self.device_code_requests += 1
            return httpx.Response(
                200,
                json={
                    "device_code": "dc",
                    "user_code": "ABCD1234",
                    "verification_uri": f"{AUTHORITY}/devicelogin",
                    "expires_in": 900,
                    "interval": 0,
                    "message": "To sign in, enter the code ABCD1234",
                },
            )
        if path.endswith("/token"):
            self.polls += 1
            status, body = self.poll_answers.pop(0)
            return httpx.Response(status, json=body)
        return httpx.Response(404)


def _source(entra: FakeEntra, prompts: list[str], clock=lambda: 1_000_000.0) -> DeviceCodeTokenSource:
    return DeviceCodeTokenSource(
        tenant=TENANT,
        authority_url=AUTHORITY,
        prompt=prompts.append,
        transport=httpx.MockTransport(entra),
        clock=clock,
    )


def test_sign_in_prompts_once_and_caches_the_delegated_token():
    token = _jwt({"scp": "Application.ReadWrite.All", "upn": "admin@contoso", "tid": "t"})
    entra = FakeEntra(
        [(200, {"token_type": "Bearer", "access_token": token, "expires_in": 3600, "scope": "x"})]
    )
    prompts: list[str] = []
    source = _source(entra, prompts)
    first = source.get_token()
    assert first.claims.scopes == ("Application.ReadWrite.All",) and first.claims.upn == "admin@contoso"
    assert source.get_token() is first and source.peek() is first
    assert prompts == ["To sign in, enter the code ABCD1234"]
    assert entra.device_code_requests == 1
    assert token not in repr(source) and token not in repr(first)


def test_pending_then_approved():
    token = _jwt({"scp": "x"})
    pending = {
        "error": "authorization_pending",
        "error_description": "AADSTS70016: pending",
        "error_codes": [70016],
    }
    entra = FakeEntra([(400, pending), (400, pending), (200, {"access_token": token, "expires_in": 3600})])
    assert _source(entra, []).get_token().token == token
    assert entra.polls == 3


def test_declined_sign_in_is_an_authentication_error_with_a_remedy():
    entra = FakeEntra(
        [
            (
                400,
                {
                    "error": "authorization_declined",
                    "error_description": "AADSTS70000: declined",
                    "error_codes": [70000],
                },
            )
        ]
    )
    with pytest.raises(AuthenticationError, match="administrator sign-in failed") as info:
        _source(entra, []).get_token()
    assert info.value.aadsts_code == 70000 and "declined" in info.value.remedy


def test_unknown_tenant_names_the_tenant():
    with pytest.raises(AuthenticationError, match=f"tenant '{TENANT}' was not found") as info:
        _source(FakeEntra([], tenant_exists=False), []).get_token()
    assert "tenant_id" in info.value.remedy


def test_expired_token_signs_in_again():
    now = [1_000_000.0]
    a, b = _jwt({"scp": "x", "n": 1}), _jwt({"scp": "x", "n": 2})
    entra = FakeEntra(
        [(200, {"access_token": a, "expires_in": 600}), (200, {"access_token": b, "expires_in": 600})]
    )
    prompts: list[str] = []
    source = _source(entra, prompts, clock=lambda: now[0])
    assert source.get_token().token == a
    now[0] += 590
    assert source.get_token().token == b and len(prompts) == 2


def test_admin_settings_have_no_client_credential():
    settings = admin_settings(TENANT, authority_url=AUTHORITY)
    assert settings.credential.msal_credential() is None and not settings.uses_weak_credential
    assert "secret" not in repr(settings.credential).lower()
