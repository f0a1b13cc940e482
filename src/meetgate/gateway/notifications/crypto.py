"""The cryptography of Graph change notifications with resource data.

- :class:`EncryptionKey`: the certificate Graph encrypts for, made by meetgate on first use and kept
  in a folder of its own (0700; the private key 0600);
- :func:`decrypt_content`: an ``encryptedContent`` to the resource JSON: the RSA-OAEP (SHA-1) key
  unwrapped, the HMAC-SHA256 ``dataSignature`` checked BEFORE the AES-256-CBC (PKCS7, IV = the key's
  first 16 bytes) decryption;
- :class:`TokenValidator`: a ``validationTokens`` JWT checked: signature against the authority's keys,
  lifetime, ``iss`` ``https://sts.windows.net/{tid}/``, ``aud`` the app id and ``appid`` Graph's
  change tracking application.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from meetgate import certificates
from meetgate.errors import MeetgateError

#: the application Graph's change tracking signs validation tokens as (its ``appid`` claim)
GRAPH_CHANGE_TRACKING_APP = "0bf30f3b-4a52-48df-9a82-234910c4a086"
#: the ``encryptionCertificateId`` meetgate subscribes with
CERTIFICATE_ID = "meetgate-notifications"


class NotificationRefused(MeetgateError, ValueError):
    """A notification failed a check (signature, token, clientState): it is not processed."""


class EncryptionKey:
    """The key pair Graph encrypts resource data for. ``load_or_create(folder)`` keeps it in
    ``folder`` (made 0700) as ``notifications.key.pem`` (0600) and ``notifications.cert.pem``."""

    def __init__(self, pair: certificates.KeyPair, certificate_id: str = CERTIFICATE_ID) -> None:
        self.pair = pair
        self.certificate_id = certificate_id

    def __repr__(self) -> str:
        return f"EncryptionKey(certificate_id={self.certificate_id!r}, thumbprint={self.thumbprint!r})"

    @classmethod
    def load_or_create(cls, folder: Path) -> EncryptionKey:
        """The key in ``folder``, made there on first use."""
        key_path, cert_path = folder / "notifications.key.pem", folder / "notifications.cert.pem"
        if key_path.exists() and cert_path.exists():
            key = certificates.load_private_key(key_path)
            cert = certificates.load_certificate(cert_path)
            return cls(certificates.KeyPair(private_key=key, certificate=cert))
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        pair = certificates.generate_self_signed("meetgate change notifications")
        certificates.write_secret_file(key_path, certificates.private_key_pem(pair.private_key), force=True)
        certificates.write_public_file(cert_path, certificates.certificate_pem(pair.certificate), force=True)
        return cls(pair)

    @property
    def thumbprint(self) -> str:
        """SHA-1 thumbprint of the certificate (hex, upper case, as Graph sends it)."""
        return self.pair.thumbprint_sha1.upper()

    def certificate_b64(self) -> str:
        """The certificate as ``encryptionCertificate`` wants it (base64 DER, public key only)."""
        return base64.b64encode(certificates.certificate_der(self.pair.certificate)).decode()

    def unwrap(self, data_key_b64: str) -> bytes:
        """The item's symmetric key (RSA-OAEP with SHA-1)."""
        return self.pair.private_key.decrypt(
            base64.b64decode(data_key_b64),
            # Graph wraps the key with RSA-OAEP over SHA-1 (its documented scheme)
            rsa_padding.OAEP(mgf=rsa_padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),  # noqa: S303
        )


def _field(content: Mapping[str, Any], name: str) -> str:
    for key, value in content.items():
        if key.lower() == name.lower() and isinstance(value, str):
            return value
    raise NotificationRefused(f"encryptedContent has no {name}", "this is not a Graph rich notification")


def encrypted_content(item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The item's ``encryptedContent`` (Teams samples spell it ``EncryptedContent``)."""
    for key, value in item.items():
        if key.lower() == "encryptedcontent" and isinstance(value, Mapping):
            return value
    return None


def decrypt_content(content: Mapping[str, Any], key: EncryptionKey) -> dict[str, Any]:
    """The resource an ``encryptedContent`` carries. The HMAC-SHA256 signature of the encrypted
    bytes is checked before anything is decrypted; :class:`NotificationRefused` on any mismatch."""
    certificate_id = _field(content, "encryptionCertificateId")
    if certificate_id != key.certificate_id:
        raise NotificationRefused("encrypted for another certificate", "renew the subscription's certificate")
    try:
        symmetric = key.unwrap(_field(content, "dataKey"))
        data = base64.b64decode(_field(content, "data"))
        signature = base64.b64decode(_field(content, "dataSignature"))
    except (ValueError, TypeError) as exc:
        raise NotificationRefused("encryptedContent cannot be read", "nothing: it is dropped") from exc
    expected = hmac.new(symmetric, data, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise NotificationRefused("dataSignature does not match the data", "nothing: it is dropped")
    try:
        decryptor = Cipher(algorithms.AES(symmetric), modes.CBC(symmetric[:16])).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        resource = json.loads(unpadder.update(padded) + unpadder.finalize())
    except ValueError as exc:
        raise NotificationRefused("encryptedContent does not decrypt", "nothing: it is dropped") from exc
    if not isinstance(resource, dict):
        raise NotificationRefused("the resource data is not an object", "nothing: it is dropped")
    return resource


class TokenValidator:
    """Checks ``validationTokens`` against the signing keys at ``keys_url`` (the authority's
    ``/common/discovery/v2.0/keys``), fetched by ``fetch_keys`` and cached for an hour."""

    def __init__(
        self,
        keys_url: str,
        *,
        tenant_id: str,
        app_id: str,
        fetch_keys: Callable[[str], Mapping[str, Any]],
        cache_seconds: float = 3600.0,
    ) -> None:
        self.keys_url = keys_url
        self.tenant_id = tenant_id
        self.app_id = app_id
        self.fetch_keys = fetch_keys
        self.cache_seconds = cache_seconds
        self._keys: dict[str, Any] = {}
        self._fetched = 0.0
        self._lock = threading.Lock()

    def _jwk(self, kid: str) -> Any:
        with self._lock:
            stale = time.monotonic() - self._fetched > self.cache_seconds
            if stale or kid not in self._keys:
                document = self.fetch_keys(self.keys_url)
                self._keys = {str(k.get("kid")): k for k in document.get("keys", []) if isinstance(k, dict)}
                self._fetched = time.monotonic()
            jwk = self._keys.get(kid)
        if jwk is None:
            raise NotificationRefused("validation token signed by an unknown key", "nothing: it is dropped")
        return jwt.PyJWK(jwk, algorithm="RS256").key

    def check(self, token: str) -> None:
        """A valid token for this tenant and app, or :class:`NotificationRefused`."""
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self._jwk(str(header.get("kid"))),
                algorithms=["RS256"],
                audience=self.app_id,
                issuer=f"https://sts.windows.net/{self.tenant_id}/",
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise NotificationRefused(
                f"validation token refused ({type(exc).__name__})", "nothing: it is dropped"
            ) from exc
        if claims.get("appid") != GRAPH_CHANGE_TRACKING_APP:
            raise NotificationRefused("validation token is not from Graph change tracking", "nothing")

    def check_all(self, tokens: Any) -> None:
        """Every token of a body (at least one is required for rich notifications)."""
        if not isinstance(tokens, list) or not tokens:
            raise NotificationRefused("no validation tokens", "nothing: it is dropped")
        for token in tokens:
            self.check(str(token))
