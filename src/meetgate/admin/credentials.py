"""Runbook step 3: the app's certificate — made, uploaded, watched, rotated, removed.

- :func:`create_certificate` replaces ``New-SelfSignedCertificate`` + ``Export-Certificate``: it
  checks every target file first, so an existing file without ``force`` changes nothing.
- :func:`certificate_status` turns the app's key and password credentials (and the local key file)
  into findings: expired, expiring within 30 / 90 days, client secrets present, key file mode,
  local certificate not uploaded.
- :func:`upload_certificate` / :func:`remove_certificate` edit the whole ``keyCredentials`` list
  (Graph has no per-item PATCH) keeping every other credential.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from meetgate import certificates as certs
from meetgate.admin.findings import Finding, sort_findings
from meetgate.errors import MeetgateError
from meetgate.graph.applications import KeyCredential, PasswordCredential

if TYPE_CHECKING:
    from meetgate.graph.applications import ApplicationsService

EXPIRY_WARNING_DAYS = 30
EXPIRY_NOTICE_DAYS = 90
SECRET_KEY_MODE = 0o600

CredentialState = Literal["valid", "expiring", "expired", "not_yet_valid"]


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


# --- cert status -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialStatus:
    kind: Literal["certificate", "client_secret"]
    key_id: str | None
    display_name: str | None
    thumbprint_sha1: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    days_left: int | None
    state: CredentialState

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key_id": self.key_id,
            "display_name": self.display_name,
            "thumbprint_sha1": self.thumbprint_sha1,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "days_left": self.days_left,
            "state": self.state,
        }


@dataclass(frozen=True)
class CertificateStatusReport:
    credentials: tuple[CredentialStatus, ...]
    local: LocalCertificate | None
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "credentials": [c.to_dict() for c in self.credentials],
            "local": self.local.to_dict() if self.local else None,
            "findings": [f.to_dict() for f in self.findings],
        }


def _state(start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime) -> CredentialState:
    if start is not None and _aware(start) > now:
        return "not_yet_valid"
    if end is not None and _aware(end) <= now:
        return "expired"
    if end is not None and _aware(end) - now <= dt.timedelta(days=EXPIRY_NOTICE_DAYS):
        return "expiring"
    return "valid"


def _days_left(end: dt.datetime | None, now: dt.datetime) -> int | None:
    if end is None:
        return None
    return (_aware(end) - now).days


def credential_statuses(
    key_credentials: Sequence[KeyCredential],
    password_credentials: Sequence[PasswordCredential],
    now: dt.datetime,
) -> list[CredentialStatus]:
    out = [
        CredentialStatus(
            "certificate",
            kc.key_id,
            kc.display_name,
            kc.thumbprint_sha1,
            kc.start_date_time,
            kc.end_date_time,
            _days_left(kc.end_date_time, now),
            _state(kc.start_date_time, kc.end_date_time, now),
        )
        for kc in key_credentials
    ]
    out += [
        CredentialStatus(
            "client_secret",
            pc.key_id,
            pc.display_name,
            None,
            pc.start_date_time,
            pc.end_date_time,
            _days_left(pc.end_date_time, now),
            _state(pc.start_date_time, pc.end_date_time, now),
        )
        for pc in password_credentials
    ]
    return sorted(
        out, key=lambda c: (c.kind, _aware(c.end) if c.end else dt.datetime.max.replace(tzinfo=dt.UTC))
    )


def certificate_status(
    key_credentials: Sequence[KeyCredential],
    password_credentials: Sequence[PasswordCredential],
    *,
    local: LocalCertificate | None = None,
    now: dt.datetime | None = None,
    app_id: str | None = None,
    profile_client_id: str | None = None,
) -> CertificateStatusReport:
    """Findings over the app's credentials and the local key file (pure). With ``app_id`` (the
    application's) and ``profile_client_id`` (what the profile signs in as), a mismatch is an error:
    the checked application is not the one the integration uses."""
    when = now or _now()
    statuses = credential_statuses(key_credentials, password_credentials, when)
    findings: list[Finding] = []
    if app_id and profile_client_id and app_id.lower() != profile_client_id.lower():
        findings.append(
            Finding(
                "error",
                "profile.client_id_mismatch",
                f"the profile's client_id {profile_client_id} is not this application's ({app_id}): "
                "the integration signs in as another app, and these findings are not about it",
                "set client_id to the application's id (`meetgate setup app` writes it), or correct "
                "application_object_id",
                subject=profile_client_id,
            )
        )
    certificates = [c for c in statuses if c.kind == "certificate"]
    usable = [c for c in certificates if c.state in ("valid", "expiring")]
    if not certificates:
        findings.append(
            Finding(
                "error",
                "certificate.none",
                "the application has no certificate",
                "run `meetgate cert new` then `meetgate cert upload`",
            )
        )
    elif not usable:
        findings.append(
            Finding(
                "error",
                "certificate.none_valid",
                "no certificate on the application is currently valid",
                "run `meetgate cert new` then `meetgate cert upload` as an administrator",
            )
        )
    for c in certificates:
        subject = c.thumbprint_sha1 or c.key_id
        if c.state == "expired":
            findings.append(
                Finding(
                    "warning",
                    "certificate.expired",
                    f"certificate {subject} expired on {c.end:%Y-%m-%d}",
                    f"remove it: `meetgate cert remove --thumbprint {subject}`",
                    subject=subject,
                )
            )
        elif c.state == "expiring" and c.days_left is not None:
            within = EXPIRY_WARNING_DAYS if c.days_left < EXPIRY_WARNING_DAYS else EXPIRY_NOTICE_DAYS
            findings.append(
                Finding(
                    "warning" if within == EXPIRY_WARNING_DAYS else "info",
                    f"certificate.expiring_{within}d",
                    f"certificate {subject} expires in {c.days_left} days ({c.end:%Y-%m-%d})",
                    "rotate it: `meetgate cert rotate`",
                    subject=subject,
                )
            )
        elif c.state == "not_yet_valid":
            findings.append(
                Finding(
                    "info",
                    "certificate.not_yet_valid",
                    f"certificate {subject} is valid only from {c.start:%Y-%m-%d %H:%M}",
                    None,
                    subject=subject,
                )
            )
    for s in (c for c in statuses if c.kind == "client_secret"):
        label = s.display_name or s.key_id or "client secret"
        expired = s.state == "expired"
        findings.append(
            Finding(
                "warning",
                "client_secret.expired" if expired else "client_secret.present",
                f"client secret {label} "
                + (
                    "expired"
                    if expired
                    else f"is present (expires {s.end:%Y-%m-%d})"
                    if s.end
                    else "is present"
                ),
                "the runbook recommends certificates only: remove the secret under "
                "Certificates & secrets once nothing uses it",
                subject=s.key_id,
            )
        )
    if local is not None:
        findings += _local_findings(local, certificates)
    return CertificateStatusReport(tuple(statuses), local, tuple(sort_findings(findings)))


def _local_findings(local: LocalCertificate, certificates: Sequence[CredentialStatus]) -> list[Finding]:
    out: list[Finding] = []
    where = str(local.key_path) if local.key_path else "the key file"
    if local.key_mode is not None and local.key_mode & 0o077:
        out.append(
            Finding(
                "error",
                "local_key.mode",
                f"{where} has mode {local.key_mode:o}: readable by others than its owner",
                f"chmod 600 {where}",
                subject=where,
            )
        )
    if local.error:
        out.append(
            Finding(
                "error",
                "local_key.unreadable",
                f"the profile's certificate files cannot be used: {local.error}",
                "fix the paths in the profile or the passphrase environment variable",
                subject=where,
            )
        )
        return out
    if local.key_matches is False:
        out.append(
            Finding(
                "error",
                "local_key.mismatch",
                f"{where} is not the private key of {local.certificate_path}",
                "point private_key_path and certificate_path at the same pair",
                subject=where,
            )
        )
    uploaded = {c.thumbprint_sha1 for c in certificates if c.thumbprint_sha1}
    if local.thumbprint_sha1 and local.thumbprint_sha1 not in uploaded:
        out.append(
            Finding(
                "error",
                "local_certificate.not_uploaded",
                f"the local certificate {local.thumbprint_sha1} is not on the application",
                "run `meetgate cert upload`",
                subject=local.thumbprint_sha1,
            )
        )
    return out


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
