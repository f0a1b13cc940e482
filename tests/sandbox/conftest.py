"""Helpers for the sandbox tests: real MSAL and httpx clients over TLS that trust the sandbox CA."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import msal
import pytest

from meetgate import certificates
from meetgate.graph.msal_http import MsalHttpxAdapter
from meetgate_sandbox.control import ssl_context
from meetgate_sandbox.server import SandboxServer

GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Hidden(str):
    """A secret string (token, key, client secret) whose repr never shows it in test output."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<hidden>'"


def hide_tokens(result: dict[str, Any]) -> dict[str, Any]:
    if "access_token" in result:
        result = {**result, "access_token": Hidden(result["access_token"])}
    return result


@dataclass
class Credentials:
    tenant_id: str
    app_id: str
    object_id: str
    service_principal_id: str
    pair: certificates.KeyPair = field(repr=False)
    secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.secret is not None:
            self.secret = Hidden(self.secret)

    @property
    def key_pem(self) -> str:
        return Hidden(certificates.private_key_pem(self.pair.private_key).decode())

    @property
    def cert_pem(self) -> str:
        return certificates.certificate_pem(self.pair.certificate).decode()

    def thumbprint_credential(self) -> dict[str, str]:
        return {"private_key": self.key_pem, "thumbprint": self.pair.thumbprint_sha1}

    def public_certificate_credential(self) -> dict[str, str]:
        return {"private_key": self.key_pem, "public_certificate": self.cert_pem}


@pytest.fixture(scope="session")
def http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(verify=ssl_context(sandbox.info.ca_bundle), timeout=15) as client:
        yield client


@pytest.fixture(scope="session")
def key_pair() -> certificates.KeyPair:
    return certificates.generate_self_signed("sandbox-tests")


@pytest.fixture
def creds(sandbox_tenant, key_pair) -> Credentials:
    """An app in a fresh tenant with a certificate, a secret and User.Read.All + Group.Read.All."""
    app = sandbox_tenant.control.register_app(
        sandbox_tenant.tenant_id,
        "Sandbox tests",
        certificate_pem=certificates.certificate_pem(key_pair.certificate),
        with_secret=True,
        roles=["User.Read.All", "Group.Read.All", "OnlineMeetings.ReadWrite.All"],
    )
    return Credentials(
        sandbox_tenant.tenant_id,
        app["appId"],
        app["objectId"],
        app["servicePrincipalId"],
        key_pair,
        app["clientSecret"],
    )


def msal_app(sandbox: SandboxServer, http: httpx.Client, tenant: str, client_id: str, credential: Any):
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=f"{sandbox.info.authority_url}/{tenant}",
        instance_discovery=False,
        http_client=MsalHttpxAdapter(http),
    )


def acquire(sandbox, http, tenant, client_id, credential) -> dict[str, Any]:
    return hide_tokens(
        msal_app(sandbox, http, tenant, client_id, credential).acquire_token_for_client(GRAPH_SCOPE)
    )


def app_token(sandbox, http, creds: Credentials) -> str:
    result = acquire(sandbox, http, creds.tenant_id, creds.app_id, creds.thumbprint_credential())
    assert "access_token" in result, result.get("error_description")
    return Hidden(result["access_token"])


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def token_endpoint(sandbox: SandboxServer, tenant: str) -> str:
    return f"{sandbox.info.authority_url}/{tenant}/oauth2/v2.0/token"


def make_assertion(
    creds: Credentials,
    aud: str,
    *,
    key: Any = None,
    alg: str = "RS256",
    exp_offset: int = 600,
    nbf_offset: int = 0,
    iss: str | None = None,
    headers: dict[str, Any] | None = None,
) -> str:
    """A client assertion built by hand (to exercise the checks MSAL never fails)."""
    now = int(time.time())
    header = (
        {"x5t": certificates.x5t(creds.pair.certificate)}
        if alg == "RS256"
        else {"x5t#S256": certificates.x5t_s256(creds.pair.certificate)}
    )
    header.update(headers or {})
    claims = {
        "aud": aud,
        "iss": iss or creds.app_id,
        "sub": iss or creds.app_id,
        "jti": str(now),
        "nbf": now + nbf_offset,
        "iat": now + nbf_offset,
        "exp": now + exp_offset,
    }
    return jwt.encode(claims, key or creds.pair.private_key, algorithm=alg, headers=header)


def post_token(http: httpx.Client, sandbox, tenant: str, **form: str) -> httpx.Response:
    body = {"grant_type": "client_credentials", "scope": GRAPH_SCOPE[0], **form}
    return http.post(token_endpoint(sandbox, tenant), data=body)


def aadsts(response: httpx.Response | dict[str, Any]) -> int:
    body = response.json() if isinstance(response, httpx.Response) else response
    return int(body["error_codes"][0])
