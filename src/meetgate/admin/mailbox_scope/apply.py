"""Carry out a mailbox-scope plan through a backend, and report each step's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from meetgate.admin.mailbox_scope.model import DesiredMailboxScope, ExchangeState
from meetgate.admin.mailbox_scope.planner import MailboxScopePlan, Step
from meetgate.admin.mailbox_scope.powershell import StepResult


class MailboxScopeBackend(Protocol):
    """Reads and changes RBAC for Applications (Exchange Online PowerShell, or the sandbox stand-in)."""

    name: str

    def read_state(self, desired: DesiredMailboxScope) -> ExchangeState: ...

    def apply(self, steps: Sequence[Step], attribute: str) -> list[StepResult]: ...

    def test_authorization(self, app_id: str, role: str, resources: Sequence[str]) -> dict[str, bool]: ...


@dataclass
class ApplyReport:
    plan_id: str
    results: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "planId": self.plan_id,
            "ok": self.ok,
            "done": sum(1 for r in self.results if r.ok),
            "failed": [
                {"action": r.step.action, "target": r.step.target, "error": r.error} for r in self.failed
            ],
            "steps": [{**r.step.to_dict(), "ok": r.ok, "error": r.error} for r in self.results],
        }


def apply_plan(plan: MailboxScopePlan, backend: MailboxScopeBackend) -> ApplyReport:
    """Run the plan's steps in order (one session); a re-plan afterwards resumes what failed."""
    return ApplyReport(plan.plan_id, backend.apply(plan.steps, plan.desired.attribute))
