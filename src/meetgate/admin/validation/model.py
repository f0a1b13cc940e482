"""What a validation run produces: each check's :class:`CheckResult` (``pass``, ``warn``, ``fail``
or ``skip``, with finding, evidence and remedy), the whole :class:`ValidationRun` kept in the store, and
the checks' names and titles in the order they run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Status = Literal["pass", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip")

#: the checks, in the order they run
CHECKS: tuple[tuple[str, str], ...] = (
    ("configuration", "Configuration complete and consistent"),
    ("certificate", "Certificate usable and registered"),
    ("token", "App-only token with the certificate"),
    ("permissions", "Application permissions"),
    ("organizer_lookup", "Organizer lookup"),
    ("policy_positive", "Policy positive test (pilot organizers)"),
    ("policy_negative", "Policy negative test (users not covered)"),
    ("teams_powershell", "Teams PowerShell app-only connection"),
    ("graph_reachability", "Graph reachability and throttling headroom"),
)
#: the calendar plane's checks: run (after policy_negative) only when the policy file scopes calendar
#: placement ([mailbox_scope]); without it a run holds exactly :data:`CHECKS`
CALENDAR_CHECKS: tuple[tuple[str, str], ...] = (
    ("calendar_positive", "Calendar positive test (pilot organizers' mailboxes, both planes)"),
    ("calendar_negative", "Calendar negative test (a mailbox outside the scope)"),
)
#: run (after the calendar checks) only when the profile enables meeting artifacts (``artifacts``)
ARTIFACT_CHECKS: tuple[tuple[str, str], ...] = (
    ("artifacts", "Meeting artifacts: permission and a read per enabled kind"),
)
TITLES = dict((*CHECKS, *CALENDAR_CHECKS, *ARTIFACT_CHECKS))


@dataclass(frozen=True)
class Outcome:
    """One named check's outcome: what validation checks (step 6) and go-live items (step 8) share.
    ``evidence`` holds ids, times and request ids — never a secret; ``remedy`` says what to do."""

    name: str
    status: Status
    finding: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    remedy: str | None = None
    #: the titles of this kind of outcome, by name
    titles: ClassVar[Mapping[str, str]] = {}

    @property
    def title(self) -> str:
        return self.titles.get(self.name, self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "finding": self.finding,
            "evidence": dict(self.evidence),
            "remedy": self.remedy,
        }


@dataclass(frozen=True)
class CheckResult(Outcome):
    """One validation check's outcome, with its duration and whether it blocks the later checks."""

    duration_ms: float = 0.0
    #: a failure that makes later checks meaningless (they are skipped)
    blocking: bool = False
    titles: ClassVar[Mapping[str, str]] = TITLES

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "duration_ms": round(self.duration_ms, 1), "blocking": self.blocking}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        status = str(data.get("status"))
        if status not in STATUSES:
            raise ValueError(f"unknown check status {status!r}")
        return cls(
            name=str(data["name"]),
            status=status,
            finding=str(data.get("finding", "")),
            evidence=dict(data.get("evidence") or {}),
            remedy=data.get("remedy", data.get("fix")),
            duration_ms=float(data.get("duration_ms") or 0.0),
            blocking=bool(data.get("blocking", False)),
        )


def overall_status(checks: Sequence[CheckResult]) -> Literal["pass", "warn", "fail"]:
    statuses = {c.status for c in checks}
    if "fail" in statuses:
        return "fail"
    if "warn" in statuses:
        return "warn"
    return "pass"


@dataclass(frozen=True)
class ValidationRun:
    """A whole run: kept in the store so `meetgate golive` can cite it."""

    id: str
    started_at: dt.datetime
    finished_at: dt.datetime
    tenant_id: str | None
    client_id: str | None
    profile: str
    pilot: tuple[str, ...]
    negative: tuple[str, ...]
    checks: tuple[CheckResult, ...]

    @property
    def status(self) -> Literal["pass", "warn", "fail"]:
        return overall_status(self.checks)

    @property
    def ok(self) -> bool:
        """No check failed (warnings allowed)."""
        return self.status != "fail"

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    def passed(self, name: str) -> bool:
        result = self.check(name)
        return result is not None and result.status in ("pass", "warn")

    @property
    def covers_policy_tests(self) -> bool:
        """Both the positive and the negative policy tests ran and passed."""
        return self.passed("policy_positive") and self.passed("policy_negative")

    @property
    def covers_calendar_tests(self) -> bool:
        """Both calendar tests ran and passed (they run only when calendar placement is scoped)."""
        return self.passed("calendar_positive") and self.passed("calendar_negative")

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.checks if c.status == s) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_ms": round((self.finished_at - self.started_at).total_seconds() * 1000, 1),
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "profile": self.profile,
            "pilot": list(self.pilot),
            "negative": list(self.negative),
            "counts": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationRun:
        return cls(
            id=str(data["id"]),
            started_at=dt.datetime.fromisoformat(str(data["started_at"])),
            finished_at=dt.datetime.fromisoformat(str(data["finished_at"])),
            tenant_id=data.get("tenant_id"),
            client_id=data.get("client_id"),
            profile=str(data.get("profile", "default")),
            pilot=tuple(data.get("pilot") or ()),
            negative=tuple(data.get("negative") or ()),
            checks=tuple(CheckResult.from_dict(c) for c in data.get("checks") or ()),
        )
