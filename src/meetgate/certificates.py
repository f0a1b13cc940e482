"""Certificate and key helpers shared by the admin commands and the sandbox.

Pure functions over ``cryptography`` objects plus a few careful file writers. Nothing here logs,
prints or keeps a private key in a string that could end up in a repr.

The thumbprints match what Entra shows: the portal's "Thumbprint" column is the SHA-1 of the
certificate's DER bytes in upper-case hex; the ``x5t`` / ``x5t#S256`` JWT headers are the base64url
of the SHA-1 / SHA-256 digests of the same bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meetgate.errors import MeetgateError

DEFAULT_SUBJECT = "TeamsMeetingsIntegration"
DEFAULT_KEY_SIZE = 2048
ALLOWED_KEY_SIZES = (2048, 3072, 4096)
DEFAULT_VALIDITY_DAYS = 730


class CertificateError(MeetgateError, ValueError):
    """A key or certificate could not be read, generated or written; the message says what to do."""


@dataclass(frozen=True)
class KeyPair:
    """A private key and its certificate. The key never appears in the repr."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate

    @property
    def thumbprint_sha1(self) -> str:
        return thumbprint_sha1(self.certificate)

    @property
    def thumbprint_sha256(self) -> str:
        return thumbprint_sha256(self.certificate)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def generate_private_key(key_size: int = DEFAULT_KEY_SIZE) -> rsa.RSAPrivateKey:
    """A new RSA key; only the sizes Entra accepts for app credentials are allowed."""
    if key_size not in ALLOWED_KEY_SIZES:
        raise CertificateError(
            f"key size {key_size} is not allowed; use one of {', '.join(map(str, ALLOWED_KEY_SIZES))}"
        )
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def generate_self_signed(
    subject_cn: str = DEFAULT_SUBJECT,
    *,
    key_size: int = DEFAULT_KEY_SIZE,
    valid_days: int = DEFAULT_VALIDITY_DAYS,
    not_before: dt.datetime | None = None,
    private_key: rsa.RSAPrivateKey | None = None,
) -> KeyPair:
    """A self-signed SHA-256 certificate like ``New-SelfSignedCertificate -KeySpec Signature``."""
    if valid_days < 1:
        raise CertificateError("validity must be at least one day")
    key = private_key or generate_private_key(key_size)
    start = not_before or (_utcnow() - dt.timedelta(minutes=5))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(private_key=key, certificate=cert)


def generate_ca(common_name: str = "meetgate sandbox CA", *, valid_days: int = 3650) -> KeyPair:
    """A small certificate authority for the sandbox's TLS."""
    key = generate_private_key(2048)
    start = _utcnow() - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(private_key=key, certificate=cert)


def issue_server_certificate(ca: KeyPair, hostnames: list[str], *, valid_days: int = 825) -> KeyPair:
    """A TLS server certificate signed by ``ca`` for the given DNS names and IP addresses."""
    key = generate_private_key(2048)
    start = _utcnow() - dt.timedelta(minutes=5)
    alt_names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=valid_days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )
    return KeyPair(private_key=key, certificate=cert)


# --- encodings and thumbprints -------------------------------------------------------------------


def certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def thumbprint_sha1(cert: x509.Certificate) -> str:
    """Upper-case hex SHA-1 of the DER certificate: the portal's and PowerShell's thumbprint."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - thumbprint, not security


def thumbprint_sha256(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex().upper()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def x5t(cert: x509.Certificate) -> str:
    """The ``x5t`` JWT header value (base64url SHA-1)."""
    return b64url(cert.fingerprint(hashes.SHA1()))  # noqa: S303 - thumbprint, not security


def x5t_s256(cert: x509.Certificate) -> str:
    """The ``x5t#S256`` JWT header value (base64url SHA-256)."""
    return b64url(cert.fingerprint(hashes.SHA256()))


def private_key_pem(key: rsa.RSAPrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the passphrase when one is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def pfx_bytes(pair: KeyPair, passphrase: bytes | None, friendly_name: str = DEFAULT_SUBJECT) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode(), pair.private_key, pair.certificate, None, encryption
    )


# --- loading ------------------------------------------------------------------------------------


def load_certificate_bytes(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError("not a PEM or DER X.509 certificate") from exc


def load_certificate(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read certificate {path}: {exc.strerror}") from exc
    try:
        return load_certificate_bytes(data)
    except CertificateError as exc:
        raise CertificateError(f"{path} is {exc}") from None


def load_private_key_bytes(data: bytes, passphrase: bytes | None = None) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as exc:
        if passphrase:
            raise CertificateError("the private key is not encrypted: drop the passphrase") from exc
        raise CertificateError(
            "the private key is encrypted: set the passphrase environment variable (passphrase_env)"
        ) from exc
    except ValueError as exc:
        raise CertificateError(
            "the private key could not be opened: wrong passphrase or not a PEM private key"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError("only RSA private keys are supported by Entra app credentials")
    return key


def load_private_key(path: Path, passphrase: bytes | None = None) -> rsa.RSAPrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read private key {path}: {exc.strerror}") from exc
    try:
        return load_private_key_bytes(data, passphrase)
    except CertificateError as exc:
        raise CertificateError(f"{path}: {exc}") from None


def load_pfx(path: Path, passphrase: bytes | None = None) -> KeyPair:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(data, passphrase or None)
    except ValueError as exc:
        if not passphrase:
            raise CertificateError(
                f"{path} could not be opened without a passphrase: set the passphrase environment "
                "variable (passphrase_env), or check that this is a PKCS#12 (.pfx) file"
            ) from exc
        raise CertificateError(f"{path}: wrong passphrase or not a PKCS#12 (.pfx) file") from exc
    if not isinstance(key, rsa.RSAPrivateKey) or cert is None:
        raise CertificateError(f"{path} must hold one RSA private key and its certificate")
    return KeyPair(private_key=key, certificate=cert)


def key_matches_certificate(key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bool:
    public = cert.public_key()
    return (
        isinstance(public, rsa.RSAPublicKey) and public.public_numbers() == key.public_key().public_numbers()
    )


# --- files --------------------------------------------------------------------------------------


def write_secret_file(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write key material with mode 0600 from the first byte (in a 0700 folder when new); refuse to
    overwrite unless ``force``. Atomic: with ``force`` the old key stays until the new one is complete
    (:func:`meetgate.private_files.write_private_file`)."""
    from meetgate.private_files import write_private_file

    try:
        write_private_file(path, data, replace=force)
    except FileExistsError:
        raise CertificateError(f"{path} exists; pass --force to overwrite it") from None


def write_public_file(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write a public file (certificate) with mode 0644; refuse to overwrite unless ``force``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not force:
        raise CertificateError(f"{path} exists; pass --force to overwrite it")
    path.write_bytes(data)
    path.chmod(0o644)


def file_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
