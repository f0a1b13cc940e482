"""Prove the calendar plane: Exchange says in scope / out of scope, then Graph agrees.

1. ``authorization``: ``Test-ServicePrincipalAuthorization -Resource`` for every organizer Exchange
   should count (must be in scope) and for every outside sample (must NOT be). The cmdlet bypasses
   Exchange's permission cache and ignores Entra grants.
2. ``entra_grant``: the app's token carries no tenant-wide Entra calendar permission (the union rule:
   such a grant reaches every mailbox whatever the scope says).
3. ``events``: a real event created (and deleted at once) in an approved organizer's calendar through
   meetgate's Graph client, and one refused (``MailboxAccessDenied``) in an outside mailbox. Graph
   follows Exchange's cache (documented 30 minutes to 2 hours), so this step polls until ``wait_seconds``
   have passed; ``pending`` means the cache has not caught up yet — run verify again later.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from meetgate.admin.mailbox_scope.apply import MailboxScopeBackend
from meetgate.admin.mailbox_scope.model import CACHE_MAX_SECONDS, CACHE_MIN_SECONDS, union_violation
from meetgate.admin.mailbox_scope.planner import MailboxScopePlan

Status = Literal["pass", "fail", "pending", "skip"]
ProbeOutcome = Literal["created", "denied", "error"]


class EventProbe(Protocol):
    """Try to create (then delete) a calendar event in ``organizer``'s mailbox."""

    def try_create(self, organizer: str) -> tuple[ProbeOutcome, str]:
        """("created" | "denied" | "error", detail)."""
        ...


@dataclass(frozen=True)
class VerifyCheck:
    name: str
    status: Status
    finding: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedy: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "finding": self.finding,
            "evidence": self.evidence,
            "remedy": self.remedy,
        }


@dataclass(frozen=True)
class VerifyReport:
    checks: tuple[VerifyCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.status in ("pass", "skip") for c in self.checks)

    @property
    def pending(self) -> bool:
        return any(c.status == "pending" for c in self.checks) and not any(
            c.status == "fail" for c in self.checks
        )

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "pending": self.pending, "checks": [c.to_dict() for c in self.checks]}


def check_authorization(
    plan: MailboxScopePlan, backend: MailboxScopeBackend, outside: Sequence[str]
) -> VerifyCheck:
    d = plan.desired
    inside = [u.upn or uid for uid, u in plan.organizers.in_scope.items()]
    unit_mode = d.administrative_unit is not None
    # administrative-unit mode: approved organizers outside the unit are expected out of scope (a warning)
    outside_unit = [u.upn or u.id for u in plan.organizers.outside_unit]
    nested = (
        []
        if unit_mode
        else [
            u.upn or uid for uid, u in plan.organizers.approved.items() if uid not in plan.organizers.in_scope
        ]
    )
    results = backend.test_authorization(d.app_id, d.role, [*inside, *nested, *outside])
    not_in = [r for r in inside if not results.get(r)]
    nested_out = [r for r in nested if not results.get(r)]
    leaked = [r for r in outside if results.get(r)]
    evidence: dict[str, Any] = {
        "in_scope_tested": len(inside),
        "outside_tested": list(outside),
        "not_in_scope": not_in,
        "nested_out_of_scope": nested_out,
        "outside_in_scope": leaked,
    }
    notes = []
    if unit_mode:
        evidence["administrative_unit"] = d.administrative_unit
        evidence["approved_outside_unit"] = outside_unit
        evidence["unit_members_not_approved"] = [u.upn or u.id for u in plan.organizers.unapproved_members]
        if outside_unit:
            notes.append(
                f"warning: {len(outside_unit)} approved organizer(s) are not members of administrative unit "
                f"{d.administrative_unit} and stay out of scope until an Entra admin adds them"
            )
        if plan.organizers.unknown_units:
            notes.append(f"administrative unit {d.administrative_unit} was not found")
    problems = []
    if unit_mode and plan.organizers.unknown_units:
        problems.append(f"administrative unit {d.administrative_unit} does not exist or cannot be read")
    if not inside:
        problems.append("no approved organizer to test")
    if not_in:
        problems.append(f"{len(not_in)} approved organizer(s) NOT in scope")
    if nested_out:
        problems.append(
            f"{len(nested_out)} nested group member(s) out of scope (Exchange counts direct members)"
        )
    if leaked:
        problems.append(f"{len(leaked)} mailbox(es) outside the approved list ARE in scope")
    if not outside:
        problems.append("no outside mailbox to test the negative case")
    if problems:
        return VerifyCheck(
            "authorization",
            "fail",
            "; ".join([*problems, *notes]),
            evidence,
            "run `meetgate mailbox-scope plan` and `apply`; check the scope's recipient filter and the "
            "organizers' tags, group or administrative unit membership; name outside samples with "
            "[mailbox_scope] outside or --outside",
        )
    return VerifyCheck(
        "authorization",
        "pass",
        "; ".join(
            [
                f"{len(inside)} approved organizer(s) in scope, {len(outside)} outside mailbox(es) out of scope",
                *notes,
            ]
        ),
        evidence,
    )


def check_entra_grant(roles: Sequence[str] | None) -> VerifyCheck:
    if roles is None:
        return VerifyCheck("entra_grant", "skip", "the app's Entra roles were not read")
    held = union_violation(roles)
    if held:
        return VerifyCheck(
            "entra_grant",
            "fail",
            f"the app holds the tenant-wide Entra permission(s) {', '.join(held)}: Entra grants and Exchange "
            "RBAC add up, so the mailbox scope limits nothing",
            {"entra_calendar_roles": list(held)},
            f"remove {', '.join(held)} from the app's API permissions and revoke its admin consent; "
            "the Exchange role assignment alone gives the scoped access",
        )
    return VerifyCheck(
        "entra_grant", "pass", "no tenant-wide Entra calendar permission", {"roles": sorted(roles)}
    )


def check_events(
    probe: EventProbe,
    organizer: str,
    outside: str,
    *,
    wait_seconds: float = 0.0,
    poll_seconds: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> VerifyCheck:
    """A created event for ``organizer`` and a refused one for ``outside``, polled until ``wait_seconds``."""
    deadline = clock() + wait_seconds
    attempts = 0
    while True:
        attempts += 1
        positive, positive_detail = probe.try_create(organizer)
        negative, negative_detail = probe.try_create(outside)
        evidence = {
            "organizer": organizer,
            "outside": outside,
            "positive": positive,
            "negative": negative,
            "attempts": attempts,
            "checked_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        if positive == "error" or negative == "error":
            detail = positive_detail if positive == "error" else negative_detail
            return VerifyCheck(
                "events",
                "fail",
                f"creating a test event failed: {detail}",
                evidence,
                "read the error; the organizer needs an Exchange Online mailbox and the Teams access policy",
            )
        if positive == "created" and negative == "denied":
            return VerifyCheck(
                "events",
                "pass",
                f"an event was created for {organizer} and refused for {outside}",
                evidence,
            )
        if clock() >= deadline:
            waiting = []
            if positive == "denied":
                waiting.append(f"{organizer} is still refused")
            if negative == "created":
                waiting.append(f"{outside} is still allowed")
            return VerifyCheck(
                "events",
                "pending",
                f"Graph does not follow the scope yet ({'; '.join(waiting)}): Exchange's permission cache takes "
                f"{CACHE_MIN_SECONDS // 60} minutes to {CACHE_MAX_SECONDS // 3600} hours",
                evidence,
                "run `meetgate mailbox-scope verify` again later, or wait with --wait 2h; if it lasts longer "
                "than 2 hours, check the Entra grants (the union rule) and the assignment",
            )
        sleep(max(0.0, min(poll_seconds, deadline - clock())))


def verify(
    plan: MailboxScopePlan,
    backend: MailboxScopeBackend,
    *,
    outside: Sequence[str],
    roles: Sequence[str] | None,
    probe: EventProbe | None,
    wait_seconds: float = 0.0,
    poll_seconds: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> VerifyReport:
    """Run the three checks (``events`` only when the first two pass and a probe is given)."""
    auth = check_authorization(plan, backend, outside)
    entra = check_entra_grant(roles)
    checks = [auth, entra]
    inside = [u.upn or uid for uid, u in plan.organizers.in_scope.items()]
    if probe is None:
        checks.append(VerifyCheck("events", "skip", "not asked (--no-events)"))
    elif auth.status != "pass" or entra.status == "fail" or not inside or not outside:
        checks.append(VerifyCheck("events", "skip", "not run: fix the checks above first"))
    else:
        checks.append(
            check_events(
                probe,
                inside[0],
                outside[0],
                wait_seconds=wait_seconds,
                poll_seconds=poll_seconds,
                clock=clock,
                sleep=sleep,
            )
        )
    return VerifyReport(tuple(checks))
