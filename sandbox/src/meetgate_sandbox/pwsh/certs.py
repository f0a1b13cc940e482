"""Certificates in the pwsh stand-in: ``X509Certificate2::CreateFromPemFile``, the certificate store
(``Cert:\\CurrentUser\\My`` is the folder ``MEETGATE_PWSH_CERT_STORE`` names) and the app-only
sign-in with a client assertion that Connect-MicrosoftTeams and Connect-MgGraph share.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meetgate_sandbox.pwsh.errors import PSError
from meetgate_sandbox.pwsh.values import PSObject

if TYPE_CHECKING:
    from meetgate_sandbox.pwsh.tenant import TenantControlClient

CERT_STORE_ENV = "MEETGATE_PWSH_CERT_STORE"


def _load_pem_certificate(cert_path: str, key_path: str) -> PSObject:
    from meetgate.certificates import (
        CertificateError,
        key_matches_certificate,
        load_certificate,
        load_private_key,
        thumbprint_sha1,
    )

    try:
        cert = load_certificate(Path(cert_path))
        key = load_private_key(Path(key_path), None)
    except (CertificateError, OSError) as exc:
        raise PSError(
            f'Exception calling "CreateFromPemFile" with "2" argument(s): "{exc}"',
            "CryptographicException",
            "InvalidData",
        ) from None
    if not key_matches_certificate(key, cert):
        raise PSError(
            'Exception calling "CreateFromPemFile" with "2" argument(s): "The key does not match the certificate."',
            "CryptographicException",
            "InvalidData",
        )
    return PSObject(
        Thumbprint=thumbprint_sha1(cert).upper(),
        Subject=cert.subject.rfc4514_string(),
        _cert_path=cert_path,
        _key_path=key_path,
    )


def certificate_from_store(thumbprint: str) -> PSObject:
    """The certificate (with its key) whose SHA-1 thumbprint is ``thumbprint``, from the store folder."""
    from meetgate.certificates import (
        CertificateError,
        key_matches_certificate,
        load_certificate,
        load_private_key,
        thumbprint_sha1,
    )

    wanted = thumbprint.replace(" ", "").upper()
    folder = os.environ.get(CERT_STORE_ENV)
    not_found = PSError(
        f"no certificate with thumbprint {wanted} and a private key was found in "
        f"Cert:\\CurrentUser\\My"
        + (
            ""
            if folder
            else f" (the sandbox stand-in's store is the folder {CERT_STORE_ENV} names; it is not set)"
        ),
        "CertificateNotFound",
        "ObjectNotFound",
    )
    if not folder or not Path(folder).is_dir():
        raise not_found
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    keys = []
    for path in files:
        try:
            if b"PRIVATE KEY" in path.read_bytes()[:4096]:
                keys.append((path, load_private_key(path, None)))
        except (OSError, CertificateError):
            continue
    for path in files:
        try:
            cert = load_certificate(path)
        except (OSError, CertificateError):
            continue
        if thumbprint_sha1(cert).upper() != wanted:
            continue
        for key_path, key in keys:
            if key_matches_certificate(key, cert):
                return _load_pem_certificate(str(path), str(key_path))
    raise not_found


def _certificate_sign_in(
    tenant: TenantControlClient,
    tenant_id: str,
    app_id: str,
    cert: PSObject,
    command: str = "Connect-MicrosoftTeams",
) -> dict[str, Any]:
    """Acquire an app-only token with a client assertion, as the modules do; fail as Entra fails."""
    import jwt

    from meetgate.certificates import load_certificate, load_private_key, x5t_s256

    certificate = load_certificate(Path(cert["_cert_path"]))
    key = load_private_key(Path(cert["_key_path"]), None)
    token_url = f"{tenant.authority_url}/{tenant_id}/oauth2/v2.0/token"
    now = int(time.time())
    assertion = jwt.encode(
        {
            "aud": token_url,
            "iss": app_id,
            "sub": app_id,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        },
        key,
        algorithm="PS256",
        headers={"x5t#S256": x5t_s256(certificate)},
    )
    response = tenant.http.post(
        token_url,
        data={
            "client_id": app_id,
            "scope": "https://graph.microsoft.com/.default",  # the module signs in to Graph first
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    if response.status_code != 200:
        try:
            detail = response.json().get("error_description", response.text)
        except ValueError:
            detail = response.text
        raise PSError(
            f"{command}: {str(detail).splitlines()[0]}" if command else str(detail).splitlines()[0],
            "AuthenticationFailed",
            "AuthenticationError",
        )
    token: dict[str, Any] = response.json()
    return token
