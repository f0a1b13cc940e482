"""Alerts, thresholds and what a monitoring run is about."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from meetgate.errors import MeetgateError

Severity = Literal["critical", "high", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "warning", "info")


class MonitorError(MeetgateError, ValueError):
    """Invalid monitoring input (thresholds file, sink URL...); ``remedy`` says what to do."""


@dataclass(frozen=True)
class Alert:
    """One thing an administrator should look at."""

    rule: str
    severity: Severity
    #: what happened, in one line
    title: str
    #: the records that show it (sign-in ids, audit ids, counts, users)
    evidence: tuple[str, ...]
    #: the first thing to check
    remedy: str
    #: what the alert is about (an IP, a consumer, an organizer, a key id)
    subject: str
    #: when it happened (the newest record that shows it)
    at: str = ""
    #: de-duplication scope: the same rule, subject and period make the same alert
    period: str = ""

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.rule}|{self.subject.lower()}|{self.period}".encode()).hexdigest()[:40]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "rule": self.rule,
            "severity": self.severity,
            "title": self.title,
            "evidence": list(self.evidence),
            "remedy": self.remedy,
            "subject": self.subject,
            "at": self.at,
            "period": self.period,
        }


@dataclass(frozen=True)
class Thresholds:
    """Rule thresholds. ``Thresholds.load(file)`` reads a TOML file: keys at the top level apply
    always, keys under ``[hypercare]`` replace them during the go-live hypercare window."""

    #: meetings created by the app in any hour (absolute ceiling)
    creations_per_hour: int = 200
    #: per organizer / per consumer: alert when an hour exceeds baseline hourly mean × this factor …
    baseline_factor: float = 5.0
    #: … and has at least this many creations (also the ceiling when there is no baseline yet)
    baseline_min_creations: int = 30
    #: days before the period that form the baseline
    baseline_days: int = 7
    #: failure classes: alert when the period holds at least this many
    policy_403: int = 3
    auth_401: int = 5
    throttled_429: int = 10
    server_5xx: int = 5
    #: failed sign-ins of the service principal in the period
    sign_in_failures: int = 3
    #: consumer calls for organizers outside its allowlist
    overreach: int = 1
    #: activity outside these local hours (start inclusive, end exclusive) is unusual
    active_hours: tuple[int, int] = (6, 20)
    #: UTC offset of the local hours, in hours
    utc_offset_hours: float = 0.0
    #: certificate expiry: warning within this many days, critical within ``certificate_critical_days``
    certificate_warning_days: int = 30
    certificate_critical_days: int = 7

    def failure_threshold(self, failure_class: str) -> int | None:
        value = getattr(self, failure_class, None)
        return int(value) if isinstance(value, int) else None

    @classmethod
    def from_mapping(
        cls, data: dict[str, Any], base: Thresholds | None = None, where: str = ""
    ) -> Thresholds:
        base = base or cls()
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "hypercare":
                continue
            if key not in known:
                raise MonitorError(
                    f"{where}unknown threshold {key!r}",
                    f"known thresholds: {', '.join(sorted(known))}",
                )
            current = getattr(base, key)
            if isinstance(current, tuple):
                if not (
                    isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)
                ):
                    raise MonitorError(
                        f"{where}{key} must be [start_hour, end_hour]", "e.g. active_hours = [7, 19]"
                    )
                if not (0 <= value[0] <= 24 and 0 <= value[1] <= 24):
                    raise MonitorError(f"{where}{key} hours must be within 0..24")
                values[key] = (int(value[0]), int(value[1]))
            elif isinstance(current, bool) or not isinstance(value, (int, float)) or isinstance(value, bool):
                raise MonitorError(f"{where}{key} must be a number, not {value!r}")
            elif value < 0:
                raise MonitorError(f"{where}{key} must not be negative")
            else:
                values[key] = type(current)(value)
        return dataclasses.replace(base, **values)

    @classmethod
    def load(cls, path: Path | None) -> tuple[Thresholds, Thresholds]:
        """(normal, hypercare) thresholds; the defaults when ``path`` is None."""
        if path is None:
            return cls(), HYPERCARE_DEFAULTS
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise MonitorError(f"cannot read thresholds file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise MonitorError(f"{path} is not valid TOML: {exc}") from None
        normal = cls.from_mapping(data, where=f"{path}: ")
        hyper_data = data.get("hypercare") or {}
        if not isinstance(hyper_data, dict):
            raise MonitorError(f"{path}: [hypercare] must be a table")
        hypercare = cls.from_mapping(hyper_data, tighten(normal), where=f"{path} [hypercare]: ")
        return normal, hypercare


def tighten(base: Thresholds) -> Thresholds:
    """The hypercare variant of ``base``: counts cut to a third or less, at least 1."""
    return dataclasses.replace(
        base,
        creations_per_hour=max(1, base.creations_per_hour // 4),
        baseline_factor=max(1.0, base.baseline_factor / 2),
        baseline_min_creations=max(1, base.baseline_min_creations // 3),
        policy_403=1,
        auth_401=max(1, base.auth_401 // 3),
        throttled_429=max(1, base.throttled_429 // 3),
        server_5xx=max(1, base.server_5xx // 3),
        sign_in_failures=1,
        certificate_warning_days=max(base.certificate_warning_days, 45),
    )


HYPERCARE_DEFAULTS = tighten(Thresholds())


@dataclass(frozen=True)
class MonitorScope:
    """What is watched: one app in one tenant."""

    tenant_id: str
    app_id: str
    application_object_id: str | None = None
    service_principal_id: str | None = None
    policy_name: str = "Tag:TeamsMeetingsIntegration"

    @property
    def ids(self) -> set[str]:
        return {i for i in (self.app_id, self.application_object_id, self.service_principal_id) if i}


@dataclass(frozen=True)
class CertificateStatus:
    thumbprint: str
    not_after: dt.datetime
    source: str = "profile"

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


@dataclass(frozen=True)
class PolicySnapshot:
    """Who holds the policy now, against the approved list."""

    taken_at: str
    policy: str
    #: user id -> (UPN, source: direct | group:<id> | global)
    holders: dict[str, tuple[str, str]] = field(default_factory=dict)
    approved: frozenset[str] = frozenset()
    global_grant: bool = False

    @property
    def beyond_approved(self) -> dict[str, tuple[str, str]]:
        return {uid: v for uid, v in self.holders.items() if uid not in self.approved}

    @property
    def missing(self) -> frozenset[str]:
        return self.approved - set(self.holders)

    def to_dict(self) -> dict[str, Any]:
        return {
            "takenAt": self.taken_at,
            "policy": self.policy,
            "holders": {k: list(v) for k, v in self.holders.items()},
            "approved": sorted(self.approved),
            "globalGrant": self.global_grant,
            "coverage": {
                "approved": len(self.approved),
                "holding": len(set(self.holders) & self.approved),
                "beyondApproved": len(self.beyond_approved),
                "missing": len(self.missing),
                "global": self.global_grant,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicySnapshot:
        return cls(
            taken_at=str(data.get("takenAt", "")),
            policy=str(data.get("policy", "")),
            holders={k: (str(v[0]), str(v[1])) for k, v in (data.get("holders") or {}).items()},
            approved=frozenset(data.get("approved") or ()),
            global_grant=bool(data.get("globalGrant")),
        )
