"""Key and password credentials of app registrations: ``keyCredentials`` validation, the proof of
possession addKey / removeKey require, and the addKey / removeKey / addPassword / removePassword routes.

addKey takes the two documented forms: an ``AsymmetricX509Cert`` key (usage ``Verify``, the base64 DER
certificate, ``passwordCredential`` null) and an ``X509CertAndPassword`` key (usage ``Sign``, a base64
PKCS#12 file with the signing certificate and its private key, ``passwordCredential.secretText`` its
password). Either needs a proof signed by a current ``Verify`` key; a ``Sign`` key never verifies
anything (client assertions, proofs) — it is what Entra would sign tokens with.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from starlette.requests import Request
from starlette.responses import Response

from meetgate import certificates
from meetgate_sandbox.app_registrations_common import (
    REGISTRATION_ADMINS,
    WRITE_PERMISSIONS,
    _application,
    _authorized,
    _bad,
    _context,
    _guid,
    _json,
    _key_graph,
    _no_content,
    _not_found,
    _record_credential_change,
    _require,
    _tenant,
)
from meetgate_sandbox.apps import Application, KeyCredential, PasswordCredential, parse_iso
from meetgate_sandbox.http import Caller, caller_of, json_object_body
from meetgate_sandbox.state import Tenant

PROOF_AUDIENCE = "00000002-0000-0000-c000-000000000000"
PROOF_MAX_LIFETIME = dt.timedelta(minutes=10)
PROOF_SKEW = dt.timedelta(minutes=5)


# --- key credentials -------------------------------------------------------------------------


def _parse_key_credential(data: Any, existing: dict[str, KeyCredential]) -> KeyCredential:
    if not isinstance(data, dict):
        raise _bad("Invalid value specified for property 'keyCredentials' of resource 'Application'.")
    key_id = data.get("keyId")
    raw = data.get("key")
    if raw in (None, "") and isinstance(key_id, str) and key_id in existing:
        return existing[key_id]  # an existing credential sent back without its key: kept as it is
    if (
        data.get("type", "AsymmetricX509Cert") != "AsymmetricX509Cert"
        or data.get("usage", "Verify") != "Verify"
    ):
        raise _bad("Only key credentials of type 'AsymmetricX509Cert' with usage 'Verify' are supported.")
    if not isinstance(raw, str) or not raw:
        raise _bad("Key credential property 'key' is required (the base64 DER certificate).")
    try:
        cert = certificates.load_certificate_bytes(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, certificates.CertificateError):
        raise _bad("Invalid certificate: the key value must be a base64 encoded X.509 certificate.") from None
    return _credential_of(cert, data)


def _credential_of(cert: x509.Certificate, data: dict[str, Any]) -> KeyCredential:
    """The key credential for ``cert`` with the dates, key id and name ``data`` asks for, checked."""
    key_id = data.get("keyId")
    try:
        start = parse_iso(data["startDateTime"]) if data.get("startDateTime") else None
        end = parse_iso(data["endDateTime"]) if data.get("endDateTime") else None
    except (TypeError, ValueError):
        raise _bad("Invalid value specified for property 'startDateTime' or 'endDateTime'.") from None
    if end is not None and end > cert.not_valid_after_utc + dt.timedelta(seconds=1):
        raise _bad("Key credential end date is invalid: it is later than the certificate's expiry.")
    if start is not None and start < cert.not_valid_before_utc - dt.timedelta(seconds=1):
        raise _bad("Key credential start date is invalid: it is earlier than the certificate's start.")
    if isinstance(key_id, str) and key_id and not _guid(key_id):
        raise _bad("Invalid value specified for property 'keyId'.")
    credential = KeyCredential.from_certificate(
        cert, start=start, end=end, key_id=key_id if isinstance(key_id, str) and key_id else None
    )
    if data.get("displayName"):
        credential.display_name = str(data["displayName"])
    return credential


def _parse_signing_key(data: dict[str, Any], password: Any) -> KeyCredential:
    """An ``X509CertAndPassword`` key of addKey: a base64 PKCS#12 (PFX) with its certificate and
    private key, opened with ``passwordCredential.secretText``. Only the certificate is kept; the
    password and the private key are forgotten at once."""
    if data.get("usage") != "Sign":
        raise _bad("Key credentials of type 'X509CertAndPassword' must have usage 'Sign'.")
    secret = password.get("secretText") if isinstance(password, dict) else None
    if not isinstance(secret, str) or not secret:
        raise _bad(
            "Property 'passwordCredential.secretText' is required for keys of type 'X509CertAndPassword': "
            "it holds the password of the key."
        )
    raw = data.get("key")
    if not isinstance(raw, str) or not raw:
        raise _bad("Key credential property 'key' is required (the base64 PKCS#12 file of the signing key).")
    try:
        blob = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("Invalid key: the key value must be base64 encoded.") from None
    try:
        private_key, cert, _ = pkcs12.load_key_and_certificates(blob, secret.encode())
    except ValueError:
        raise _bad(
            "Invalid key: a key of type 'X509CertAndPassword' must be a PKCS#12 (PFX) file that the "
            "password in passwordCredential.secretText opens."
        ) from None
    if cert is None or not isinstance(private_key, rsa.RSAPrivateKey):
        raise _bad("Invalid key: the PKCS#12 file must hold a certificate and its RSA private key.")
    if not certificates.key_matches_certificate(private_key, cert):
        raise _bad("Invalid key: the private key in the PKCS#12 file does not match its certificate.")
    credential = _credential_of(cert, data)
    credential.type, credential.usage = "X509CertAndPassword", "Sign"
    return credential


def _set_key_credentials(app: Application, items: Any) -> tuple[list[str], list[str]]:
    if not isinstance(items, list):
        raise _bad("Invalid value specified for property 'keyCredentials' of resource 'Application'.")
    existing = {k.key_id: k for k in app.key_credentials}
    parsed = [_parse_key_credential(item, existing) for item in items]
    ids = [k.key_id for k in parsed]
    if len(set(ids)) != len(ids):
        raise _bad("Key credentials contain duplicate keyId values.")
    before = [k.thumbprint_sha1 for k in app.key_credentials]
    app.key_credentials = parsed
    return before, [k.thumbprint_sha1 for k in parsed]


def verify_proof(app: Application, proof: Any, now: dt.datetime | None = None) -> KeyCredential:
    """The current certificate of ``app`` that signed ``proof``; else 400 (UNCONFIRMED wording)."""
    when = now or dt.datetime.now(dt.UTC)
    if not isinstance(proof, str) or proof.count(".") != 2:
        raise _bad(
            "Proof of possession is required: a JWT signed by a current certificate of the application."
        )
    try:
        header = jwt.get_unverified_header(proof)
    except jwt.InvalidTokenError:
        raise _bad("Proof of possession is not a valid JWT.") from None
    valid = [k for k in app.verify_credentials if k.valid_at(when)]
    if not valid:
        raise _bad(
            "The application has no valid certificate to verify the proof of possession; "
            "use Update application (PATCH keyCredentials) instead."
        )
    candidates = valid
    if isinstance(header.get("x5t"), str):
        try:
            thumb = base64.urlsafe_b64decode(header["x5t"] + "=" * (-len(header["x5t"]) % 4)).hex().upper()
        except (binascii.Error, ValueError):
            raise _bad("Proof of possession has an invalid x5t header.") from None
        candidates = [k for k in valid if k.thumbprint_sha1 == thumb]
    for key in candidates:
        public = key.certificate.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            continue
        try:
            claims: dict[str, Any] = jwt.decode(
                proof,
                public,
                algorithms=["RS256", "PS256"],
                audience=PROOF_AUDIENCE,
                issuer=app.id,
                leeway=PROOF_SKEW,
                options={"require": ["aud", "iss", "nbf", "exp"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError as exc:
            raise _bad(f"Proof of possession is invalid: {exc}.") from None
        if float(claims["exp"]) - float(claims["nbf"]) > PROOF_MAX_LIFETIME.total_seconds() + 1:
            raise _bad("Proof of possession is invalid: its lifetime must not exceed 10 minutes.")
        return key
    raise _bad(
        "Proof of possession is invalid: it is not signed by a current certificate of the application."
    )


# --- addKey, removeKey, addPassword, removePassword ------------------------------------------


def _may_roll_own_keys(caller: Caller, app: Application) -> bool:
    return caller.is_app_only and caller.app_id.lower() == app.app_id.lower()


def _key_roll_target(request: Request, tenant: Tenant, caller: Caller) -> Application:
    """The application of an addKey / removeKey call, once the caller may change its keys.

    An app may roll its own keys (the proof of possession is its authority); anyone else needs
    write permission and, signed in as a user, a registration admin role.
    """
    app = _application(tenant, request.path_params["object_id"])
    if not _may_roll_own_keys(caller, app):
        _require(tenant, caller, WRITE_PERMISSIONS | {"Application.ReadWrite.OwnedBy"}, REGISTRATION_ADMINS)
    return app


async def add_key(request: Request) -> Response:
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    app = _key_roll_target(request, tenant, caller)
    body = await json_object_body(request)
    spec = body.get("keyCredential")
    signing = isinstance(spec, dict) and spec.get("type") == "X509CertAndPassword"
    if not signing and body.get("passwordCredential") not in (None, {}):
        raise _bad(
            "Property 'passwordCredential' is only for keys of type 'X509CertAndPassword': set it to null."
        )
    verify_proof(app, body.get("proof"))
    if signing:
        assert isinstance(spec, dict)
        new = _parse_signing_key(spec, body.get("passwordCredential"))
    else:
        new = _parse_key_credential(spec, {})
    if any(k.thumbprint_sha1 == new.thumbprint_sha1 and k.usage == new.usage for k in app.key_credentials):
        raise _bad("A key credential with the same certificate already exists on the application.")
    before = [k.thumbprint_sha1 for k in app.key_credentials]
    app.key_credentials = [*app.key_credentials, new]
    _record_credential_change(
        request, tenant, caller, app, (before, [k.thumbprint_sha1 for k in app.key_credentials])
    )
    return _json(
        {
            "@odata.context": _context(request, "microsoft.graph.keyCredential"),
            **_key_graph(new, with_key=False),
        }
    )


async def remove_key(request: Request) -> Response:
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    app = _key_roll_target(request, tenant, caller)
    body = await json_object_body(request)
    key_id = body.get("keyId")
    if not isinstance(key_id, str) or not key_id:
        raise _bad("Property 'keyId' is required.")
    verify_proof(app, body.get("proof"))
    if key_id not in {k.key_id for k in app.key_credentials}:
        raise _not_found(key_id)
    before = [k.thumbprint_sha1 for k in app.key_credentials]
    app.key_credentials = [k for k in app.key_credentials if k.key_id != key_id]
    _record_credential_change(
        request, tenant, caller, app, (before, [k.thumbprint_sha1 for k in app.key_credentials])
    )
    return _no_content()


async def add_password(request: Request) -> Response:
    caller, tenant = _authorized(request, WRITE_PERMISSIONS, REGISTRATION_ADMINS)
    app = _application(tenant, request.path_params["object_id"])
    body = await json_object_body(request)
    spec = body.get("passwordCredential") or {}
    if not isinstance(spec, dict):
        raise _bad("Invalid value specified for property 'passwordCredential'.")
    try:
        end = parse_iso(spec["endDateTime"]) if spec.get("endDateTime") else None
        start = parse_iso(spec["startDateTime"]) if spec.get("startDateTime") else None
    except (TypeError, ValueError):
        raise _bad("Invalid value specified for property 'endDateTime' or 'startDateTime'.") from None
    credential, secret = PasswordCredential.generate(
        display_name=str(spec.get("displayName") or ""), start=start, end=end
    )
    app.password_credentials = [*app.password_credentials, credential]
    _record_credential_change(
        request, tenant, caller, app, (None, f"[KeyIdentifier={credential.key_id},KeyType=Password]")
    )
    data = credential.to_graph()
    data["secretText"] = secret
    return _json({"@odata.context": _context(request, "microsoft.graph.passwordCredential"), **data})


async def remove_password(request: Request) -> Response:
    caller, tenant = _authorized(request, WRITE_PERMISSIONS, REGISTRATION_ADMINS)
    app = _application(tenant, request.path_params["object_id"])
    body = await json_object_body(request)
    key_id = body.get("keyId")
    if key_id not in {p.key_id for p in app.password_credentials}:
        raise _not_found(str(key_id))
    app.password_credentials = [p for p in app.password_credentials if p.key_id != key_id]
    _record_credential_change(
        request, tenant, caller, app, (f"[KeyIdentifier={key_id},KeyType=Password]", None)
    )
    return _no_content()
