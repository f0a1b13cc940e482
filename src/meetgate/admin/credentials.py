"""Runbook step 3: the app's certificate — made, uploaded, watched, rotated, removed.

- :func:`create_certificate` replaces ``New-SelfSignedCertificate`` + ``Export-Certificate``: it
  checks every target file first, so an existing file without ``force`` changes nothing.
- :func:`meetgate.admin.credential_status.certificate_status` (its own module) turns the app's key
  and password credentials and the local key file into findings.
- :func:`upload_certificate` / :func:`remove_certificate` edit the whole ``keyCredentials`` list
  (Graph has no per-item PATCH) keeping every other credential.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from meetgate import certificates as certs
from meetgate.errors import MeetgateError
from meetgate.graph.applications import KeyCredential

if TYPE_CHECKING:
    from meetgate.graph.applications import ApplicationsService

EXPIRY_WARNING_DAYS = 30
EXPIRY_NOTICE_DAYS = 90
SECRET_KEY_MODE = 0o600


class CredentialChangeError(MeetgateError, ValueError):
    """A credential change was refused; nothing was changed."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# --- cert new ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateFiles:
    key_path: Path
    certificate_path: Path  # PEM
    cer_path: Path  # DER, what the portal uploads
    pfx_path: Path | None = None

    def all(self) -> list[Path]:
        return [p for p in (self.key_path, self.certificate_path, self.cer_path, self.pfx_path) if p]


def certificate_files(directory: Path, name: str, *, pfx: bool = False) -> CertificateFiles:
    if not name or "/" in name or name.startswith("."):
        raise certs.CertificateError(f"{name!r} is not a usable file name for the certificate")
    return CertificateFiles(
        key_path=directory / f"{name}.key.pem",
        certificate_path=directory / f"{name}.pem",
        cer_path=directory / f"{name}.cer",
        pfx_path=directory / f"{name}.pfx" if pfx else None,
    )


@dataclass(frozen=True)
class NewCertificate:
    files: CertificateFiles
    subject: str
    key_size: int
    not_before: dt.datetime
    not_after: dt.datetime
    thumbprint_sha1: str
    thumbprint_sha256: str
    key_encrypted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "key_size": self.key_size,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "thumbprint_sha1": self.thumbprint_sha1,
            "thumbprint_sha256": self.thumbprint_sha256,
            "key_encrypted": self.key_encrypted,
            "files": {
                "key": str(self.files.key_path),
                "certificate_pem": str(self.files.certificate_path),
                "certificate_cer": str(self.files.cer_path),
                "pfx": str(self.files.pfx_path) if self.files.pfx_path else None,
            },
        }


def subject_common_name(subject: str) -> str:
    """``CN=Name`` or ``Name`` → ``Name``."""
    value = subject.strip()
    if value.upper().startswith("CN="):
        value = value[3:].strip()
    if not value or "," in value or "=" in value:
        raise certs.CertificateError(
            f"subject {subject!r} must be a single common name such as CN=TeamsMeetingsIntegration"
        )
    return value


def create_certificate(
    directory: Path,
    *,
    name: str = certs.DEFAULT_SUBJECT,
    subject: str = f"CN={certs.DEFAULT_SUBJECT}",
    key_size: int = certs.DEFAULT_KEY_SIZE,
    valid_days: int = certs.DEFAULT_VALIDITY_DAYS,
    passphrase: bytes | None = None,
    pfx: bool = False,
    force: bool = False,
) -> NewCertificate:
    """A new self-signed RSA / SHA-256 certificate written as ``.key.pem`` (0600), ``.pem``, ``.cer``
    and optionally ``.pfx`` (0600). Every file is checked before any is written."""
    common_name = subject_common_name(subject)
    if key_size not in certs.ALLOWED_KEY_SIZES:
        raise certs.CertificateError(
            f"key size {key_size} is not allowed; use one of {', '.join(map(str, certs.ALLOWED_KEY_SIZES))}"
        )
    if not 1 <= valid_days <= 3650:
        raise certs.CertificateError("validity must be between 1 and 3650 days")
    files = certificate_files(directory, name, pfx=pfx)
    if not force:
        existing = [str(p) for p in files.all() if p.exists()]
        if existing:
            raise certs.CertificateError(
                f"{', '.join(existing)} already exist(s); nothing was written. "
                "Pass --force to overwrite, or choose another --name / --out"
            )
    pair = certs.generate_self_signed(common_name, key_size=key_size, valid_days=valid_days)
    certs.write_secret_file(files.key_path, certs.private_key_pem(pair.private_key, passphrase), force=force)
    certs.write_public_file(files.certificate_path, certs.certificate_pem(pair.certificate), force=force)
    certs.write_public_file(files.cer_path, certs.certificate_der(pair.certificate), force=force)
    if files.pfx_path:
        certs.write_secret_file(
            files.pfx_path, certs.pfx_bytes(pair, passphrase, friendly_name=common_name), force=force
        )
    return NewCertificate(
        files=files,
        subject=f"CN={common_name}",
        key_size=key_size,
        not_before=pair.certificate.not_valid_before_utc,
        not_after=pair.certificate.not_valid_after_utc,
        thumbprint_sha1=pair.thumbprint_sha1,
        thumbprint_sha256=pair.thumbprint_sha256,
        key_encrypted=passphrase is not None,
    )


# --- local key and certificate -----------------------------------------------------------------


@dataclass(frozen=True)
class LocalCertificate:
    """What the profile's key and certificate files hold (never the key itself)."""

    key_path: Path | None
    certificate_path: Path | None
    key_mode: int | None = None
    thumbprint_sha1: str | None = None
    thumbprint_sha256: str | None = None
    not_after: dt.datetime | None = None
    key_matches: bool | None = None
    #: why the files could not be read (a message without secrets), else None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_path": str(self.key_path) if self.key_path else None,
            "certificate_path": str(self.certificate_path) if self.certificate_path else None,
            "key_mode": f"{self.key_mode:o}" if self.key_mode is not None else None,
            "thumbprint_sha1": self.thumbprint_sha1,
            "thumbprint_sha256": self.thumbprint_sha256,
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "key_matches": self.key_matches,
            "error": self.error,
        }


def inspect_local_certificate(
    *,
    key_path: Path | None = None,
    certificate_path: Path | None = None,
    pfx_path: Path | None = None,
    passphrase: bytes | None = None,
) -> LocalCertificate:
    """Read the profile's credential files; problems are reported in ``error``, never raised."""
    path = pfx_path or key_path
    mode = certs.file_mode(path) if path and path.exists() else None
    try:
        if pfx_path:
            pair = certs.load_pfx(pfx_path, passphrase)
            key, cert = pair.private_key, pair.certificate
        else:
            if key_path is None or certificate_path is None:
                return LocalCertificate(
                    key_path, certificate_path, mode, error="the profile names no key/certificate files"
                )
            cert = certs.load_certificate(certificate_path)
            key = certs.load_private_key(key_path, passphrase)
    except certs.CertificateError as exc:
        return LocalCertificate(pfx_path or key_path, certificate_path, mode, error=str(exc))
    return LocalCertificate(
        key_path=pfx_path or key_path,
        certificate_path=certificate_path,
        key_mode=mode,
        thumbprint_sha1=certs.thumbprint_sha1(cert),
        thumbprint_sha256=certs.thumbprint_sha256(cert),
        not_after=cert.not_valid_after_utc,
        key_matches=certs.key_matches_certificate(key, cert),
    )


# --- upload / remove ---------------------------------------------------------------------------


class KeyCredentialStore(Protocol):
    """The application's ``keyCredentials`` (implemented by ``ApplicationsService``)."""

    def get_key_credentials(self, object_id: str) -> list[KeyCredential]: ...

    def set_key_credentials(self, object_id: str, credentials: Sequence[KeyCredential]) -> None: ...


@dataclass(frozen=True)
class CredentialChange:
    action: Literal["upload", "remove", "none"]
    thumbprint_sha1: str
    detail: str
    kept: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "changed": self.action != "none",
            "thumbprint_sha1": self.thumbprint_sha1,
            "detail": self.detail,
            "kept": list(self.kept),
        }


def key_credential_for(certificate: Any, display_name: str | None = None) -> KeyCredential:
    """The ``keyCredentials`` entry for an X.509 certificate (public part only)."""
    return KeyCredential(
        type="AsymmetricX509Cert",
        usage="Verify",
        key=base64.b64encode(certs.certificate_der(certificate)).decode("ascii"),
        display_name=display_name or certificate.subject.rfc4514_string(),
        start_date_time=certificate.not_valid_before_utc,
        end_date_time=certificate.not_valid_after_utc,
    )


def upload_certificate(
    store: KeyCredentialStore,
    application_object_id: str,
    certificate: Any,
    *,
    now: dt.datetime | None = None,
) -> CredentialChange:
    """Add ``certificate`` to the app's key credentials, keeping all others; no-op when present."""
    when = now or _now()
    thumbprint = certs.thumbprint_sha1(certificate)
    if certificate.not_valid_after_utc <= when:
        raise CredentialChangeError(
            f"certificate {thumbprint} expired on {certificate.not_valid_after_utc:%Y-%m-%d}",
            "make a new one with `meetgate cert new`",
        )
    current = store.get_key_credentials(application_object_id)
    kept = tuple(kc.thumbprint_sha1 or kc.key_id or "?" for kc in current)
    if thumbprint in kept:
        return CredentialChange("none", thumbprint, "already uploaded", kept)
    _require_keys(current)
    store.set_key_credentials(application_object_id, [*current, key_credential_for(certificate)])
    return CredentialChange("upload", thumbprint, f"added; kept {len(current)} other credential(s)", kept)


def _require_keys(current: Sequence[KeyCredential]) -> None:
    """Graph replaces ``keyCredentials`` as a whole: sending back an entry without its ``key`` could
    drop it, so a list read without keys is never written back."""
    missing = [kc.key_id or "?" for kc in current if not kc.key]
    if missing:
        raise CredentialChangeError(
            f"Graph did not return the certificate data of key credential(s) {', '.join(missing)}; "
            "rewriting keyCredentials could drop them, so nothing was changed",
            "use `--self` (addKey / removeKey with a proof) or the portal's Certificates & secrets page",
        )


def normalise_thumbprint(value: str) -> str:
    text = value.replace(":", "").replace(" ", "").strip().upper()
    if len(text) != 40 or any(ch not in "0123456789ABCDEF" for ch in text):
        raise CredentialChangeError(
            f"{value!r} is not a SHA-1 thumbprint (40 hex characters)",
            "copy it from `meetgate cert status`",
        )
    return text


def remove_certificate(
    store: KeyCredentialStore,
    application_object_id: str,
    thumbprint: str,
    *,
    in_use: str | None = None,
    force: bool = False,
) -> CredentialChange:
    """Remove one certificate by thumbprint, keeping all others.

    Refuses to remove the certificate the profile signs with (``in_use``) unless ``force``.
    """
    target = normalise_thumbprint(thumbprint)
    current = store.get_key_credentials(application_object_id)
    present = [kc.thumbprint_sha1 for kc in current]
    if target not in present:
        listed = ", ".join(p or "?" for p in present) or "none"
        raise CredentialChangeError(
            f"no certificate with thumbprint {target} on the application (present: {listed})",
            "check the thumbprint with `meetgate cert status`",
        )
    if in_use and target == in_use.upper() and not force:
        raise CredentialChangeError(
            f"certificate {target} is the one this profile signs in with; removing it would break the app",
            "rotate first (`meetgate cert rotate`), or pass --force",
        )
    remaining = [kc for kc in current if kc.thumbprint_sha1 != target]
    _require_keys(remaining)
    store.set_key_credentials(application_object_id, remaining)
    kept = tuple(kc.thumbprint_sha1 or kc.key_id or "?" for kc in remaining)
    return CredentialChange("remove", target, f"removed; kept {len(remaining)} credential(s)", kept)


# --- rotate --------------------------------------------------------------------------------------


class CredentialWriter(Protocol):
    """Adds and removes the app's certificates: as an administrator (whole-list PATCH) or as the
    app itself (addKey / removeKey with a proof of possession)."""

    def add(self, certificate: Any) -> CredentialChange: ...

    def remove(self, thumbprint: str, *, in_use: str | None = None) -> CredentialChange: ...


class AdminCredentialWriter:
    """Writes through ``keyCredentials`` PATCH (needs Application.ReadWrite.All + an admin role)."""

    def __init__(self, store: KeyCredentialStore, application_object_id: str) -> None:
        self._store = store
        self._object_id = application_object_id

    def add(self, certificate: Any) -> CredentialChange:
        return upload_certificate(self._store, self._object_id, certificate)

    def remove(self, thumbprint: str, *, in_use: str | None = None) -> CredentialChange:
        return remove_certificate(self._store, self._object_id, thumbprint, in_use=in_use)


class KeyRoller(KeyCredentialStore, Protocol):
    def add_key(self, object_id: str, credential: KeyCredential, proof: str) -> KeyCredential: ...

    def remove_key(self, object_id: str, key_id: str, proof: str) -> None: ...


ProofSigner = Any  # a certificates.KeyPair: signs the proof JWT


class SelfServiceCredentialWriter:
    """The app rolls its own keys with addKey / removeKey: no directory permission needed, only a
    proof signed by a currently valid certificate of the app (``signer``)."""

    def __init__(self, roller: KeyRoller, application_object_id: str, signer: ProofSigner) -> None:
        self._roller = roller
        self._object_id = application_object_id
        self.signer = signer

    def _proof(self) -> str:
        from meetgate.graph.applications import key_proof

        return key_proof(self.signer.private_key, self.signer.certificate, self._object_id)

    def add(self, certificate: Any) -> CredentialChange:
        thumbprint = certs.thumbprint_sha1(certificate)
        self._roller.add_key(self._object_id, key_credential_for(certificate), self._proof())
        return CredentialChange("upload", thumbprint, "added with addKey (proof signed by the current key)")

    def remove(self, thumbprint: str, *, in_use: str | None = None) -> CredentialChange:
        target = normalise_thumbprint(thumbprint)
        if in_use and target == in_use.upper():
            raise CredentialChangeError(
                f"certificate {target} is the one this profile signs in with",
                "rotate first (`meetgate cert rotate`)",
            )
        current = self._roller.get_key_credentials(self._object_id)
        match = next((kc for kc in current if kc.thumbprint_sha1 == target), None)
        if match is None or not match.key_id:
            raise CredentialChangeError(
                f"no certificate with thumbprint {target} on the application",
                "check the thumbprint with `meetgate cert status`",
            )
        self._roller.remove_key(self._object_id, match.key_id, self._proof())
        kept = tuple(kc.thumbprint_sha1 or kc.key_id or "?" for kc in current if kc is not match)
        return CredentialChange("remove", target, "removed with removeKey", kept)


@dataclass(frozen=True)
class RotationResult:
    new: NewCertificate
    added: CredentialChange
    #: roles of the token taken with the new certificate
    verified_roles: tuple[str, ...]
    previous_thumbprint: str | None
    removed: CredentialChange | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "new": self.new.to_dict(),
            "added": self.added.to_dict(),
            "verified_roles": list(self.verified_roles),
            "previous_thumbprint": self.previous_thumbprint,
            "removed": self.removed.to_dict() if self.removed else None,
        }


def rotate_certificate(
    writer: CredentialWriter,
    *,
    directory: Path,
    name: str,
    previous_thumbprint: str | None,
    verify: Any,
    switch_profile: Any,
    remove_old: bool = False,
    subject: str = f"CN={certs.DEFAULT_SUBJECT}",
    key_size: int = certs.DEFAULT_KEY_SIZE,
    valid_days: int = certs.DEFAULT_VALIDITY_DAYS,
    passphrase: bytes | None = None,
    attempts: int = 5,
    sleep: Any = None,
    on_new_signer: Any = None,
    grace_seconds: float = 0.0,
) -> RotationResult:
    """New certificate → added next to the old one (overlapping validity) → a token taken with it
    (``verify(files) -> roles``, retried while the new key propagates) → ``switch_profile(files)`` →
    the old certificate removed only when ``remove_old``, ``grace_seconds`` after the switch (so a
    process that read the profile just before the switch can still sign in). The old one keeps
    working until then."""
    import time

    pause = sleep or time.sleep
    made = create_certificate(
        directory, name=name, subject=subject, key_size=key_size, valid_days=valid_days, passphrase=passphrase
    )
    cert = certs.load_certificate(made.files.certificate_path)
    added = writer.add(cert)
    roles: tuple[str, ...] = ()
    last: Exception | None = None
    for attempt in range(max(1, attempts)):
        try:
            roles = tuple(verify(made.files))
            last = None
            break
        except Exception as exc:  # the token error is reported below with what to do
            last = exc
            if attempt + 1 < attempts:
                pause(min(2.0**attempt, 30.0))
    if last is not None:
        raise CredentialChangeError(
            f"the new certificate {made.thumbprint_sha1} was added but no token could be taken with it: {last}",
            "the profile still uses the old certificate; retry `meetgate cert rotate` later (Entra may take a "
            f"few minutes to propagate a new key) or remove it: `meetgate cert remove --thumbprint {made.thumbprint_sha1}`",
        )
    switch_profile(made.files)
    removed = None
    if remove_old and previous_thumbprint and previous_thumbprint != made.thumbprint_sha1:
        if grace_seconds > 0:
            pause(grace_seconds)
        if on_new_signer is not None:
            on_new_signer(made.files)
        removed = writer.remove(previous_thumbprint, in_use=made.thumbprint_sha1)
    return RotationResult(made, added, roles, previous_thumbprint, removed)


if TYPE_CHECKING:  # mypy checks that the Graph service implements the ports above

    def _store(service: ApplicationsService) -> KeyRoller:
        return service
