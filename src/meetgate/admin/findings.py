"""Findings: what a check saw that an administrator should know, with what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    #: ``error`` blocks the integration, ``warning`` needs attention soon, ``info`` is context.
    severity: Severity
    #: stable machine code, e.g. ``certificate.expired``
    code: str
    message: str
    remedy: str | None = None
    #: what the finding is about (a thumbprint, a key id, a permission, a file)
    subject: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (_ORDER[f.severity], f.code, f.subject or ""))


def worst(findings: list[Finding]) -> Severity | None:
    return min((f.severity for f in findings), key=_ORDER.__getitem__, default=None)
