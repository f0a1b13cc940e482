"""The sandbox's TLS material: a private CA and a server certificate for the hosts it listens on.

Kept in the state folder (reused on restart, so a CA bundle handed to clients stays valid) or in a
temporary folder. Private keys are written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from meetgate import certificates

DEFAULT_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the CA certificate (the ``ca_bundle`` clients trust) and the server's key pair."""

    ca_certificate: Path
    server_certificate: Path
    server_key: Path


def _sans(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
    return names | set(ext.get_values_for_type(x509.DNSName))


def _server_cert_usable(path: Path, ca: x509.Certificate, hosts: set[str]) -> bool:
    try:
        cert = certificates.load_certificate(path)
    except certificates.CertificateError:
        return False
    remaining = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return cert.issuer == ca.subject and hosts <= _sans(cert) and remaining > dt.timedelta(days=7)


def _host_list(hosts: list[str]) -> list[str]:
    ordered = list(DEFAULT_HOSTS)
    for host in hosts:
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - listening on all interfaces: name the usual ones
            continue
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not host.replace("-", "").replace(".", "").isalnum():
                raise ValueError(f"not a valid host name for the TLS certificate: {host!r}") from None
        if host not in ordered:
            ordered.append(host)
    return ordered


def ensure_tls(directory: Path, hosts: list[str] | None = None) -> TlsFiles:
    """Load or create ``ca.pem`` / ``ca.key.pem`` / ``server.pem`` / ``server.key.pem`` in ``directory``.

    The CA is kept as long as its files exist; the server certificate is reissued when it is close to
    expiry or does not cover every host in ``hosts``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key.pem")
    ca_key_path = directory / "ca.key.pem"
    wanted = _host_list(hosts or [])
    if files.ca_certificate.exists() and ca_key_path.exists():
        ca = certificates.KeyPair(
            private_key=certificates.load_private_key(ca_key_path),
            certificate=certificates.load_certificate(files.ca_certificate),
        )
    else:
        ca = certificates.generate_ca()
        certificates.write_secret_file(ca_key_path, certificates.private_key_pem(ca.private_key), force=True)
        certificates.write_public_file(
            files.ca_certificate, certificates.certificate_pem(ca.certificate), force=True
        )
    if not (
        files.server_key.exists()
        and _server_cert_usable(files.server_certificate, ca.certificate, set(wanted))
    ):
        server = certificates.issue_server_certificate(ca, wanted)
        certificates.write_secret_file(
            files.server_key, certificates.private_key_pem(server.private_key), force=True
        )
        certificates.write_public_file(
            files.server_certificate, certificates.certificate_pem(server.certificate), force=True
        )
    return files
