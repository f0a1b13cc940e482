"""Runbook step 3, watched: the app's key and password credentials (and the local key file) as
findings — expired, expiring within 30 / 90 days, client secrets present, key file mode, local
certificate not uploaded (``meetgate cert status``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from meetgate.admin.credentials import (
    EXPIRY_NOTICE_DAYS,
    EXPIRY_WARNING_DAYS,
    LocalCertificate,
    _aware,
    _now,
)
from meetgate.admin.findings import Finding, sort_findings
from meetgate.graph.applications import KeyCredential, PasswordCredential

CredentialState = Literal["valid", "expiring", "expired", "not_yet_valid"]


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
