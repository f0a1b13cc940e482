"""The app's credential: a certificate (PEM key + certificate, or PFX) or a client secret.

Key material lives only in private attributes that no repr, str or error message shows. Certificates
sign a PS256 client assertion with the ``x5t#S256`` header (MSAL does the signing from what
:meth:`CertificateCredential.msal_credential` hands it); a client secret works too but is reported as
the weaker choice wherever it is used (:attr:`ClientSecretCredential.is_weak`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meetgate.graph.errors import CredentialError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

# cryptography loads with the first key, not with this module (import time of `import meetgate`).

SECRET_WARNING = (
    "a client secret is in use: certificates are recommended (a secret is a shared password that can "
    "leak from any config store; rotate it and move to `meetgate cert new`)"
)


#: receives (client_id, warning) once per app and process; logs a warning unless an application
#: (the CLI) renders it itself through :func:`set_weak_credential_reporter`
WeakCredentialReporter = Callable[[str, str], None]


def _log_weak_credential(client_id: str, warning: str) -> None:
    logging.getLogger("meetgate.graph.auth").warning("app %s: %s", client_id, warning)


_weak_reporter: WeakCredentialReporter = _log_weak_credential
_weak_reported: set[str] = set()
_weak_lock = threading.Lock()


def set_weak_credential_reporter(reporter: WeakCredentialReporter | None) -> WeakCredentialReporter:
    """Where the weak-credential warning goes (None: the ``meetgate.graph.auth`` log, the default);
    returns the reporter it replaces, to put back."""
    global _weak_reporter
    previous, _weak_reporter = _weak_reporter, reporter or _log_weak_credential
    return previous


def report_weak_credential(credential: Credential | Any, client_id: str) -> bool:
    """Warn that ``client_id`` signs in with a weak credential (a client secret), once per app in this
    process however many clients are built for it. Returns True when this call warned."""
    warning = getattr(credential, "warning", None)
    if not getattr(credential, "is_weak", False) or not warning:
        return False
    with _weak_lock:
        if client_id in _weak_reported:
            return False
        _weak_reported.add(client_id)
    _weak_reporter(client_id, warning)
    return True


class CertificateCredential:
    """An RSA private key and its X.509 certificate, loaded and checked to belong together."""

    kind = "certificate"
    is_weak = False

    def __init__(self, private_key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        public = certificate.public_key()
        if (
            not isinstance(public, rsa.RSAPublicKey)
            or public.public_numbers() != private_key.public_key().public_numbers()
        ):
            raise CredentialError(
                "the private key does not belong to the certificate",
                remedy="Use the key file that was generated together with this certificate.",
            )
        # Kept as unencrypted PKCS#8 PEM in memory only: MSAL signs with it.
        self.__key_pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")
        self.certificate = certificate
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    # --- constructors ---------------------------------------------------------------------------

    # ``passphrase_env`` (optional, all constructors) names the environment variable the passphrase
    # came from, so that a missing passphrase is reported as that variable not being set.

    @classmethod
    def from_pem(
        cls,
        private_key_pem: bytes,
        certificate_pem: bytes,
        passphrase: bytes | None = None,
        *,
        passphrase_env: str | None = None,
    ) -> CertificateCredential:
        key = _load_key(private_key_pem, passphrase, "the private key", passphrase_env)
        return cls(key, _load_cert(certificate_pem))

    @classmethod
    def from_pem_files(
        cls,
        private_key_path: str | Path,
        certificate_path: str | Path,
        passphrase: bytes | None = None,
        *,
        passphrase_env: str | None = None,
    ) -> CertificateCredential:
        key_path, cert_path = Path(private_key_path), Path(certificate_path)
        key = _load_key(_read(key_path, "private key"), passphrase, str(key_path), passphrase_env)
        try:
            cert = _load_cert(_read(cert_path, "certificate"))
        except CredentialError as exc:
            raise CredentialError(f"{cert_path}: {exc.message}") from None
        return cls(key, cert)

    @classmethod
    def from_pfx(
        cls, pfx_path: str | Path, passphrase: bytes | None = None, *, passphrase_env: str | None = None
    ) -> CertificateCredential:
        path = Path(pfx_path)
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import pkcs12

        data = _read(path, "PFX file")
        try:
            key, cert, _ = pkcs12.load_key_and_certificates(data, passphrase or None)
        except ValueError:
            if not passphrase:
                raise _no_passphrase(
                    f"{path} could not be opened without a passphrase",
                    passphrase_env,
                    " If the file has no passphrase, it is not a valid PKCS#12 (.pfx) file.",
                ) from None
            raise CredentialError(
                f"{path}: wrong passphrase or not a PKCS#12 (.pfx) file",
                remedy="Check the passphrase in the environment variable named by passphrase_env, "
                "and that the file is the .pfx exported with the key.",
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey) or cert is None:
            raise CredentialError(f"{path} must hold one RSA private key and its certificate")
        return cls(key, cert)

    # --- facts about the certificate ------------------------------------------------------------

    @property
    def thumbprint_sha1(self) -> str:
        """Upper-case hex SHA-1 of the DER certificate (the portal's "Thumbprint")."""
        from cryptography.hazmat.primitives import hashes

        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - thumbprint

    @property
    def thumbprint_sha256(self) -> str:
        from cryptography.hazmat.primitives import hashes

        return self.certificate.fingerprint(hashes.SHA256()).hex().upper()

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        return (now or dt.datetime.now(dt.UTC)) >= self.not_after

    def describe(self) -> str:
        return (
            f"certificate {self.subject}, SHA-1 thumbprint {self.thumbprint_sha1}, "
            f"valid until {self.not_after:%Y-%m-%d}"
        )

    def msal_credential(self) -> dict[str, Any]:
        """MSAL's ``client_credential``: with ``public_certificate`` MSAL signs PS256 + ``x5t#S256``."""
        return {"private_key": self.__key_pem, "public_certificate": self.certificate_pem}

    def client_assertion(self, audience: str, client_id: str, *, lifetime_seconds: int, now: float) -> str:
        """A signed client assertion (PS256, ``x5t#S256``) for ``audience`` (the token endpoint URL),
        valid from ``now`` for ``lifetime_seconds``: what MSAL sends, for a tool that cannot sign one
        (Postman). The assertion is a bearer credential until it expires: keep it as private as a key."""
        import base64
        import uuid

        import jwt
        from cryptography.hazmat.primitives import hashes

        if not 0 < lifetime_seconds <= 3600:
            raise CredentialError("an assertion must be valid for between 1 second and 1 hour")
        issued = int(now)
        claims = {
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": str(uuid.uuid4()),
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime_seconds,
        }
        digest = self.certificate.fingerprint(hashes.SHA256())
        header = {"x5t#S256": base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")}
        return jwt.encode(claims, self.__key_pem, algorithm="PS256", headers=header)

    def __repr__(self) -> str:
        return f"CertificateCredential(thumbprint_sha1={self.thumbprint_sha1!r}, not_after={self.not_after:%Y-%m-%d})"

    __str__ = __repr__


class ClientSecretCredential:
    """A client secret. Allowed, but weaker than a certificate, and reported as such."""

    kind = "client_secret"
    is_weak = True
    warning = SECRET_WARNING

    def __init__(self, secret: str) -> None:
        if not secret or not secret.strip():
            raise CredentialError(
                "the client secret is empty",
                remedy="Set the environment variable named by client_secret_env, or use a certificate.",
            )
        self.__secret = secret

    def msal_credential(self) -> str:
        return self.__secret

    def describe(self) -> str:
        return "client secret (weaker than a certificate)"

    def __repr__(self) -> str:
        return "ClientSecretCredential(secret=<redacted>)"

    __str__ = __repr__


Credential = CertificateCredential | ClientSecretCredential


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CredentialError(
            f"cannot read {what} {path}: {exc.strerror}",
            remedy="Check the path in the profile (private_key_path / certificate_path / pfx_path).",
        ) from None


def _no_passphrase(what: str, passphrase_env: str | None, more: str = "") -> CredentialError:
    """The error for an encrypted key or PFX opened without a passphrase: names the unset variable."""
    if passphrase_env:
        return CredentialError(
            f"{what}: the environment variable {passphrase_env} (passphrase_env) is not set",
            remedy=f"Set {passphrase_env} to the passphrase, or point passphrase_env at the variable "
            f"that holds it.{more}",
        )
    return CredentialError(
        f"{what}: no passphrase was given",
        remedy=f"Set the passphrase in the environment variable named by passphrase_env.{more}",
    )


def _load_key(
    data: bytes, passphrase: bytes | None, where: str, passphrase_env: str | None = None
) -> rsa.RSAPrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError:
        if passphrase:
            raise CredentialError(f"{where} is not encrypted: drop the passphrase") from None
        raise _no_passphrase(f"{where} is encrypted", passphrase_env) from None
    except ValueError:
        raise CredentialError(
            f"{where} could not be opened: wrong passphrase or not a PEM private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialError(f"{where} is not an RSA key: Entra app certificates must be RSA")
    return key


def _load_cert(data: bytes) -> x509.Certificate:
    from cryptography import x509

    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise CredentialError("not a PEM or DER X.509 certificate") from None
