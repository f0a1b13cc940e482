import base64
import hashlib

import httpx
import pytest
from graph_fakes import CLIENT_ID, TENANT, FakeCloud, credential, fake_jwt, settings

from meetgate import certificates
from meetgate.graph import credentials as credentials_module
from meetgate.graph.auth import StaticTokenProvider, TokenProvider, decode_claims
from meetgate.graph.credentials import CertificateCredential, ClientSecretCredential
from meetgate.graph.errors import (
    AuthenticationError,
    CredentialError,
    InvalidTokenError,
    TokenServiceUnavailable,
    TransportError,
)
from meetgate.graph.retry import RetryPolicy, no_jitter

FAST = RetryPolicy(max_attempts=3, jitter=no_jitter)


def provider(cloud: FakeCloud, **kwargs) -> TokenProvider:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("sleep", lambda s: None)
    return TokenProvider(settings(**kwargs.pop("settings", {})), transport=cloud.transport(), **kwargs)


def test_certificate_assertion_is_ps256_with_sha256_thumbprint():
    cloud = FakeCloud()
    token = provider(cloud).get_token()
    assert token.token in cloud.issued
    header = cloud.assertions[0]
    assert header["alg"] == "PS256"
    der = certificates.certificate_der(credential().certificate)
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    # MSAL keeps the base64 padding ("=") on x5t#S256; Entra accepts both forms
    assert header["x5t#S256"].rstrip("=") == expected
    assert "x5c" in header


def test_token_is_cached_until_close_to_expiry():
    cloud = FakeCloud(token_lifetime=3600)
    now = [1_000_000.0]
    tokens = provider(cloud, clock=lambda: now[0])
    first = tokens.get_token()
    assert tokens.get_token() is first
    now[0] += 3600 - 301  # more than the 5-minute margin left
    assert tokens.get_token() is first
    now[0] += 2  # now inside the margin: refreshed before it expires
    second = tokens.get_token()
    assert second.token != first.token
    assert len(cloud.issued) == 2


def test_short_lived_tokens_refresh_at_a_tenth_of_their_lifetime():
    cloud = FakeCloud(token_lifetime=60)
    now = [1_000_000.0]
    tokens = provider(cloud, clock=lambda: now[0])
    first = tokens.get_token()
    now[0] += 53
    assert tokens.get_token() is first
    now[0] += 2
    assert tokens.get_token() is not first


def test_force_refresh_fetches_once_even_when_many_callers_report_the_same_rejected_token():
    cloud = FakeCloud()
    tokens = provider(cloud)
    first = tokens.get_token()
    second = tokens.get_token(force_refresh=True, rejected=first.token)
    assert second.token != first.token
    # another caller that saw the old token being rejected gets the new one without a new fetch
    third = tokens.get_token(force_refresh=True, rejected=first.token)
    assert third is second
    assert len(cloud.issued) == 2


def test_token_endpoint_error_maps_to_authentication_error_with_remedy():
    cloud = FakeCloud(
        token_error={
            "error": "invalid_client",
            "error_description": "AADSTS700027: Client assertion failed signature validation.\r\nTrace ID: t",
            "error_codes": [700027],
            "trace_id": "trace-1",
            "correlation_id": "corr-1",
        }
    )
    with pytest.raises(AuthenticationError) as caught:
        provider(cloud).get_token()
    err = caught.value
    assert err.aadsts_code == 700027
    assert err.code == "invalid_client"
    assert err.request_id == "trace-1" and err.client_request_id == "corr-1"
    assert "certificate" in err.remedy
    assert "Trace ID" not in err.message


def test_unknown_tenant_maps_to_aadsts90002():
    cloud = FakeCloud()
    with pytest.raises(AuthenticationError) as caught:
        provider(cloud, settings={"tenant_id": "nope.example"}).get_token()
    assert caught.value.aadsts_code == 90002
    assert "tenant_id" in caught.value.remedy


def test_transient_token_failures_are_retried_with_injected_sleep():
    slept: list[float] = []
    request = httpx.Request("GET", "https://login.test")
    cloud = FakeCloud(token_faults=[httpx.ConnectError("refused", request=request)])
    token = provider(cloud, sleep=slept.append).get_token()
    assert token.token in cloud.issued
    assert slept == [0.5]


def test_discovery_and_token_5xx_and_429_are_retried_honouring_retry_after():
    slept: list[float] = []
    busy = httpx.Response(429, headers={"Retry-After": "2"}, json={"error": "temporarily_unavailable"})
    cloud = FakeCloud(token_faults=[httpx.Response(500), busy, httpx.Response(503)])
    token = provider(cloud, retry=RetryPolicy(jitter=no_jitter), sleep=slept.append).get_token()
    assert token.token in cloud.issued
    assert slept == [0.5, 2.0, 2.0]  # backoff, Retry-After as given, backoff


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_a_token_endpoint_that_keeps_failing_is_token_service_unavailable(status):
    headers = {"Retry-After": "7"} if status in (429, 503) else {}
    cloud = FakeCloud(token_faults=[httpx.Response(status, headers=headers, text="busy")] * 3)
    with pytest.raises(TokenServiceUnavailable) as caught:
        provider(cloud).get_token()
    error = caught.value
    assert error.status == status
    assert error.retry_after == (7.0 if headers else None)
    assert "tenant discovery" in error.message and "Entra ID" in error.remedy
    assert len(cloud.requests) == 3  # FAST: three attempts, then the error


def test_a_failing_token_request_after_discovery_is_token_service_unavailable():
    discovery_ok = []

    def token_503(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "1"}, json={"error": "temporarily_unavailable"})

    cloud = FakeCloud()
    real = cloud._entra

    def entra(request: httpx.Request, path: str) -> httpx.Response:
        if path.endswith("/token"):
            return token_503(request)
        discovery_ok.append(path)
        return real(request, path)

    cloud._entra = entra  # type: ignore[method-assign]
    with pytest.raises(TokenServiceUnavailable) as caught:
        provider(cloud).get_token()
    assert discovery_ok and "token endpoint" in caught.value.message
    assert caught.value.retry_after == 1.0


def test_unreachable_authority_gives_transport_error():
    request = httpx.Request("GET", "https://login.test")
    cloud = FakeCloud(token_faults=[httpx.ConnectError("refused", request=request)] * 5)
    with pytest.raises(TransportError, match="token endpoint"):
        provider(cloud).get_token()


@pytest.fixture
def fresh_weak_warnings(monkeypatch):
    """The weak-credential warning as a new process sees it: not given yet, going to the log."""
    monkeypatch.setattr(credentials_module, "_weak_reported", set())
    monkeypatch.setattr(credentials_module, "_weak_reporter", credentials_module._log_weak_credential)


def test_client_secret_works_and_is_reported_weaker(caplog, fresh_weak_warnings):
    cloud = FakeCloud()
    caplog.set_level("WARNING")
    tokens = provider(cloud, settings={"credential": ClientSecretCredential("s3cr3t-value")})
    token = tokens.get_token()
    assert token.claims.credential_kind == "client_secret"
    assert "client secret" in caplog.text and "certificate" in caplog.text
    assert "s3cr3t-value" not in caplog.text
    form = cloud.requests[-1].content.decode()
    assert "client_secret=s3cr3t-value" in form


def test_the_weak_credential_warning_is_given_once_per_app_and_process(caplog, fresh_weak_warnings):
    caplog.set_level("WARNING")
    secret = {"credential": ClientSecretCredential("s3cr3t-value")}
    for _ in range(3):  # e.g. a sync and an async client, or one per request handler
        provider(FakeCloud(), settings=secret)
    warnings = [r for r in caplog.records if "client secret" in r.getMessage()]
    assert len(warnings) == 1 and CLIENT_ID in warnings[0].getMessage()
    provider(FakeCloud(), settings={**secret, "client_id": "another-app"})
    assert len([r for r in caplog.records if "client secret" in r.getMessage()]) == 2
    provider(FakeCloud())  # a certificate is not reported
    assert len([r for r in caplog.records if "client secret" in r.getMessage()]) == 2


def test_decode_claims_app_only_and_missing_roles():
    token = fake_jwt(
        {"appid": CLIENT_ID, "appidacr": "2", "idtyp": "app", "tid": TENANT, "roles": ["User.Read.All"]}
    )
    claims = decode_claims(token)
    assert claims.is_app_only
    assert claims.credential_kind == "certificate"
    assert claims.roles == ("User.Read.All",)
    assert claims.missing_roles(["OnlineMeetings.ReadWrite.All", "user.read.all"]) == [
        "OnlineMeetings.ReadWrite.All"
    ]


def test_decode_claims_delegated():
    claims = decode_claims(fake_jwt({"scp": "OnlineMeetings.ReadWrite User.Read", "upn": "a@x.test"}))
    assert not claims.is_app_only
    assert claims.scopes == ("OnlineMeetings.ReadWrite", "User.Read")
    assert claims.roles == ()


def test_decode_claims_rejects_garbage_without_echoing_it():
    with pytest.raises(InvalidTokenError) as caught:
        decode_claims("secret-opaque-thing")
    assert "secret-opaque-thing" not in str(caught.value)
    with pytest.raises(InvalidTokenError):
        decode_claims("a.!!!.c")


def test_static_token_provider_reads_expiry_from_claims():
    token = fake_jwt({"exp": 2_000_000_000, "roles": []})
    static = StaticTokenProvider(token)
    assert static.get_token().expires_on == 2_000_000_000
    assert token not in repr(static)


def test_credentials_from_files_and_pfx(tmp_path):
    pair = certificates.generate_self_signed("cred-test")
    key = tmp_path / "k.pem"
    cert = tmp_path / "c.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key, b"pw"))
    certificates.write_public_file(cert, certificates.certificate_pem(pair.certificate))
    loaded = CertificateCredential.from_pem_files(key, cert, b"pw")
    assert loaded.thumbprint_sha1 == pair.thumbprint_sha1
    assert loaded.thumbprint_sha256 == pair.thumbprint_sha256
    assert loaded.not_after == pair.certificate.not_valid_after_utc
    with pytest.raises(CredentialError, match="encrypted"):
        CertificateCredential.from_pem_files(key, cert)
    pfx = tmp_path / "a.pfx"
    pfx.write_bytes(certificates.pfx_bytes(pair, b"pfxpw"))
    assert CertificateCredential.from_pfx(pfx, b"pfxpw").thumbprint_sha1 == pair.thumbprint_sha1
    with pytest.raises(CredentialError, match="passphrase"):
        CertificateCredential.from_pfx(pfx, b"wrong")
    other = certificates.generate_self_signed("other")
    with pytest.raises(CredentialError, match="does not belong"):
        CertificateCredential(other.private_key, pair.certificate)
    with pytest.raises(CredentialError, match="cannot read"):
        CertificateCredential.from_pem_files(tmp_path / "missing.pem", cert)
