"""What Exchange holds for the app now (``status``) and how it differs from the file (``drift``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from meetgate.admin.mailbox_scope.model import CACHE_MAX_SECONDS, ExchangeState
from meetgate.admin.mailbox_scope.planner import MailboxScopePlan, is_our_assignment


@dataclass(frozen=True)
class ScopeStatus:
    pointer: dict[str, str] | None
    scope: dict[str, str] | None
    assignment: dict[str, Any] | None
    other_assignments: list[dict[str, Any]]
    tagged: int
    in_sync: bool
    drift: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pointer": self.pointer,
            "scope": self.scope,
            "assignment": self.assignment,
            "otherAssignments": self.other_assignments,
            "tagged": self.tagged,
            "inSync": self.in_sync,
            "drift": self.drift,
            "notes": self.notes,
        }


def _age_seconds(created: str | None, now: dt.datetime) -> float | None:
    if not created:
        return None
    try:
        when = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (now - when).total_seconds()


def scope_status(
    plan: MailboxScopePlan, state: ExchangeState, *, now: dt.datetime | None = None
) -> ScopeStatus:
    """The app's pointer, the scope, its assignment (with the cache caveat) and the drift from ``plan``."""
    moment = now or dt.datetime.now(dt.UTC)
    d = plan.desired
    pointer = state.pointer(d.app_id)
    scope = None if d.mode == "administrative_unit" else state.scope(d.scope_name)
    ours = None
    others = []
    for a in state.assignments_of(pointer):
        row = {
            "name": a.name,
            "role": a.role,
            "scopeType": a.scope_type,
            "scope": a.scope,
            "created": a.created,
        }
        if ours is None and is_our_assignment(d, a.role, a.scope_type, a.scope):
            ours = row
        else:
            others.append(row)
    notes = []
    if ours is not None:
        age = _age_seconds(ours.get("created"), moment)
        if age is not None and age < CACHE_MAX_SECONDS:
            notes.append(
                f"the assignment is {int(age // 60)} minute(s) old: Graph may not follow it until Exchange's "
                "cache refreshes (30 minutes to 2 hours)"
            )
    if d.mode == "group":
        notes.append("Exchange's MemberOfGroup counts the group's direct members only")
    if d.mode == "administrative_unit":
        org = plan.organizers
        notes.append(
            f"the scope is administrative unit {d.administrative_unit}: {len(org.unit_members or {})} user "
            f"member(s), {len(org.outside_unit)} approved organizer(s) outside it (an Entra admin keeps its "
            "membership; meetgate does not change it)"
        )
    return ScopeStatus(
        pointer=None
        if pointer is None
        else {"appId": pointer.app_id, "objectId": pointer.object_id, "displayName": pointer.display_name},
        scope=None if scope is None else {"name": scope.name, "recipientFilter": scope.recipient_filter},
        assignment=ours,
        other_assignments=others,
        tagged=len(state.tagged),
        in_sync=not plan.has_changes,
        drift=[s.to_dict() for s in plan.steps],
        notes=notes,
    )
