"""Desired ``[mailbox_scope]`` + what Exchange holds → the ordered steps that make them equal.

Pure except :func:`resolve_scope_organizers`, which asks the directory. The steps, in the order they
must run: the service principal pointer, the mailbox tags (attribute mode), removal of assignments
that would widen or replace the scope, the scope itself (re-created when its filter changed; none in
administrative-unit mode), the one role assignment (``-CustomResourceScope``, or
``-RecipientAdministrativeUnitScope``). The administrative unit's membership is the Entra admin's:
the plan warns about approved organizers outside it and members who are not approved, and changes
neither. A plan with no steps means the tenant matches the file (``drift`` is a non-empty plan).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from meetgate.admin.mailbox_scope.model import DesiredMailboxScope, ExchangeState, MailboxScopeError
from meetgate.admin.policy.model import DesiredPolicy, DirectoryUser
from meetgate.admin.policy.planner import resolve_organizers

StepAction = Literal[
    "new-service-principal",
    "tag",
    "untag",
    "remove-assignment",
    "remove-scope",
    "new-scope",
    "new-assignment",
]
#: application roles that grant calendar access (an assignment of one of them beside ours widens it)
CALENDAR_GRANTING_ROLES = frozenset(
    {"application calendars.read", "application calendars.readwrite", "application exchange full access"}
)
SAMPLE = 20


class ScopeDirectory(Protocol):
    """The directory the calendar plane needs (Graph in production)."""

    def find_users(self, refs: Sequence[str]) -> dict[str, DirectoryUser]: ...

    def group_members(self, group_id: str) -> list[DirectoryUser] | None:
        """Transitive user members; None when the group does not exist."""
        ...

    def direct_members(self, group_id: str) -> list[DirectoryUser] | None:
        """Direct user members (what Exchange's MemberOfGroup counts); None when it does not exist."""
        ...

    def sample_users(self, limit: int) -> list[DirectoryUser]:
        """Some enabled users of the tenant (for out-of-scope samples)."""
        ...

    def unit_members(self, unit_id: str) -> list[DirectoryUser] | None:
        """An administrative unit's user members (what -RecipientAdministrativeUnitScope counts); None
        when the unit does not exist."""
        ...


@dataclass(frozen=True)
class Step:
    action: StepAction
    target: str
    detail: str = ""
    #: what the cmdlet needs: name → value
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str:
        return dict(self.params)[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class ScopeWarning:
    code: str
    message: str
    remedy: str
    sample: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "remedy": self.remedy,
            "sample": list(self.sample),
        }


@dataclass(frozen=True)
class ScopeOrganizers:
    """The approved organizers (who the file means) and who Exchange will count in scope."""

    #: user id → user: every approved organizer (groups expanded transitively)
    approved: Mapping[str, DirectoryUser]
    #: group mode: the group's direct members (Exchange's MemberOfGroup); administrative-unit mode:
    #: the approved ones who are members of the unit; else the approved ones
    in_scope: Mapping[str, DirectoryUser]
    unknown: tuple[str, ...] = ()
    unknown_groups: tuple[str, ...] = ()
    #: administrative-unit mode: every user member of the unit (in scope, approved or not)
    unit_members: Mapping[str, DirectoryUser] | None = None
    unknown_units: tuple[str, ...] = ()

    @property
    def outside_unit(self) -> list[DirectoryUser]:
        """Approved organizers Exchange will NOT count (administrative-unit mode: not in the unit)."""
        if self.unit_members is None:
            return []
        return [u for uid, u in self.approved.items() if uid not in self.unit_members]

    @property
    def unapproved_members(self) -> list[DirectoryUser]:
        """Members of the administrative unit who are not approved organizers (in scope all the same)."""
        if self.unit_members is None:
            return []
        return [u for uid, u in self.unit_members.items() if uid not in self.approved]

    def covered(self) -> list[str]:
        """Ids and UPNs of everyone approved or in scope: never picked as an outside sample."""
        people = {**self.approved, **(self.unit_members or {})}
        return [*people, *(u.upn for u in people.values() if u.upn)]


@dataclass
class MailboxScopePlan:
    desired: DesiredMailboxScope
    service_principal_id: str
    recipient_filter: str
    organizers: ScopeOrganizers
    steps: list[Step] = field(default_factory=list)
    warnings: list[ScopeWarning] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.steps)

    @property
    def plan_id(self) -> str:
        body = json.dumps([s.to_dict() for s in self.steps], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:12]

    def count(self, action: StepAction) -> int:
        return sum(1 for s in self.steps if s.action == action)

    def to_dict(self) -> dict[str, Any]:
        d = self.desired
        return {
            "planId": self.plan_id,
            "appId": d.app_id,
            "servicePrincipalId": self.service_principal_id,
            "mode": d.mode,
            "administrativeUnit": d.administrative_unit,
            "scopeName": d.scope_name,
            "recipientFilter": self.recipient_filter,
            "role": d.role,
            "assignmentName": d.assignment_name,
            "organizersFrom": d.organizers_from,
            "approved": len(self.organizers.approved),
            "inScope": len(self.organizers.in_scope),
            "changes": len(self.steps),
            "steps": [s.to_dict() for s in self.steps],
            "warnings": [w.to_dict() for w in self.warnings],
        }


def resolve_scope_organizers(desired: DesiredMailboxScope, directory: ScopeDirectory) -> ScopeOrganizers:
    """Who is approved (transitively) and who Exchange will count (direct members in group mode)."""
    if desired.group is not None:
        members = directory.group_members(desired.group)
        direct = directory.direct_members(desired.group)
        if members is None or direct is None:
            return ScopeOrganizers({}, {}, (), (desired.group,))
        return ScopeOrganizers({u.id: u for u in members}, {u.id: u for u in direct})
    as_policy = DesiredPolicy("Tag:mailbox-scope", (desired.app_id,), organizers=desired.organizers)
    resolved = resolve_organizers(as_policy, directory)
    users = {uid: user for uid, user in resolved.users.items()}
    if desired.administrative_unit is not None:
        found = directory.unit_members(desired.administrative_unit)
        if found is None:
            return ScopeOrganizers(
                users, {}, resolved.unknown, resolved.unknown_groups, {}, (desired.administrative_unit,)
            )
        in_unit_ids = {u.id: u for u in found}
        in_unit = {uid: user for uid, user in users.items() if uid in in_unit_ids}
        return ScopeOrganizers(users, in_unit, resolved.unknown, resolved.unknown_groups, in_unit_ids)
    return ScopeOrganizers(users, users, resolved.unknown, resolved.unknown_groups)


def _pointer_step(desired: DesiredMailboxScope, state: ExchangeState, sp_id: str, name: str) -> list[Step]:
    if state.pointer(desired.app_id) is not None:
        return []
    return [
        Step(
            "new-service-principal",
            desired.app_id,
            f"pointer to the enterprise application {sp_id}",
            (("AppId", desired.app_id), ("ObjectId", sp_id), ("DisplayName", name)),
        )
    ]


def _tag_steps(desired: DesiredMailboxScope, organizers: ScopeOrganizers, state: ExchangeState) -> list[Step]:
    if desired.mode != "attribute":
        return []
    steps = [
        Step("tag", user.upn or uid, f"{desired.attribute} = {desired.tag}", (("Identity", uid),))
        for uid, user in organizers.approved.items()
        if uid.lower() not in {k.lower() for k in state.tagged}
    ]
    approved = {k.lower() for k in organizers.approved}
    steps += [
        Step("untag", upn or uid, f"{desired.attribute} cleared", (("Identity", uid),))
        for uid, upn in state.tagged.items()
        if uid.lower() not in approved
    ]
    return steps


def build_plan(
    desired: DesiredMailboxScope,
    organizers: ScopeOrganizers,
    state: ExchangeState,
    *,
    service_principal_id: str,
    display_name: str = "meetgate",
) -> MailboxScopePlan:
    """The steps from ``state`` to ``desired``, with the warnings a reviewer must read."""
    if not service_principal_id:
        raise MailboxScopeError(
            "the enterprise application's object id is not known",
            "run `meetgate setup app` (it writes service_principal_id to the profile) or set it in meetgate.toml",
        )
    recipient_filter = desired.recipient_filter(state.group_dn)
    plan = MailboxScopePlan(desired, service_principal_id, recipient_filter, organizers)
    plan.steps += _pointer_step(desired, state, service_principal_id, display_name)
    pointer = state.pointer(desired.app_id)
    if pointer is not None and pointer.object_id.lower() != service_principal_id.lower():
        plan.warnings.append(
            ScopeWarning(
                "pointer-mismatch",
                f"Exchange's service principal for app {desired.app_id} names object id {pointer.object_id}, "
                f"not the enterprise application {service_principal_id}",
                "Remove-ServicePrincipal it and apply again: the pointer must use the Object ID from "
                "Enterprise applications, not from App registrations",
            )
        )
    plan.steps += _tag_steps(desired, organizers, state)
    scope = state.scope(desired.scope_name)
    recreate_scope = scope is not None and scope.recipient_filter != recipient_filter
    ours_found = False
    extra: list[Step] = []
    removals: list[Step] = []
    unit_mode = desired.administrative_unit is not None
    if unit_mode:
        recreate_scope = False  # no management scope: the unit is the scope
    for assignment in state.assignments_of(pointer):
        is_ours = is_our_assignment(desired, assignment.role, assignment.scope_type, assignment.scope)
        if is_ours and not ours_found and not recreate_scope:
            ours_found = True
            continue
        if is_ours or assignment.role.lower() in CALENDAR_GRANTING_ROLES:
            step = Step(
                "remove-assignment",
                assignment.name,
                f"{assignment.role} over {assignment.scope or 'the whole organization'}",
                (("Identity", assignment.name),),
            )
            (removals if is_ours else extra).append(step)
    if recreate_scope:
        # a scope used by an assignment cannot be removed: every user of it goes first
        used = {s.target.lower() for s in removals + extra}
        removals += [
            Step(
                "remove-assignment",
                a.name,
                f"{a.role} over {a.scope} (the scope is re-created)",
                (("Identity", a.name),),
            )
            for a in state.assignments
            if (a.scope or "").lower() == desired.scope_name.lower() and a.name.lower() not in used
        ]
    if extra:
        plan.warnings.append(
            ScopeWarning(
                "extra-assignment",
                f"the app holds {len(extra)} other calendar role assignment(s) that reach mailboxes outside "
                "the scope; the plan removes them",
                "review them (Get-ManagementRoleAssignment -RoleAssignee <app>) before apply",
                tuple(s.target for s in extra[:SAMPLE]),
            )
        )
    removals = extra + removals
    plan.steps += removals
    if recreate_scope:
        assert scope is not None
        plan.steps.append(
            Step(
                "remove-scope",
                scope.name,
                f"filter {scope.recipient_filter!r} is replaced",
                (("Identity", scope.name),),
            )
        )
    if (scope is None or recreate_scope) and not unit_mode:
        plan.steps.append(
            Step(
                "new-scope",
                desired.scope_name,
                recipient_filter,
                (("Name", desired.scope_name), ("RecipientRestrictionFilter", recipient_filter)),
            )
        )
    if not ours_found:
        over = (
            ("RecipientAdministrativeUnitScope", str(desired.administrative_unit))
            if unit_mode
            else ("CustomResourceScope", desired.scope_name)
        )
        plan.steps.append(
            Step(
                "new-assignment",
                desired.assignment_name,
                f"{desired.role} over "
                + (f"administrative unit {desired.administrative_unit}" if unit_mode else desired.scope_name),
                (
                    ("Name", desired.assignment_name),
                    ("App", service_principal_id),
                    ("Role", desired.role),
                    over,
                ),
            )
        )
    _organizer_warnings(plan)
    return plan


def is_our_assignment(desired: DesiredMailboxScope, role: str, scope_type: str, scope: str | None) -> bool:
    """Whether an assignment is the one ``desired`` asks for (its role over its scope or unit)."""
    if role.lower() != desired.role.lower():
        return False
    if desired.administrative_unit is not None:
        return scope_type == "AdministrativeUnit" and (scope or "").lower() == desired.administrative_unit
    return scope_type == "CustomRecipientScope" and (scope or "").lower() == desired.scope_name.lower()


def _unit_warnings(plan: MailboxScopePlan) -> None:
    org, unit = plan.organizers, plan.desired.administrative_unit
    if org.unknown_units:
        plan.warnings.append(
            ScopeWarning(
                "unknown-administrative-unit",
                f"administrative unit {unit} does not exist (or the app may not read it)",
                "fix administrative_unit in the policy file; reading it needs AdministrativeUnit.Read.All",
                org.unknown_units,
            )
        )
        return
    outside = [u.upn or u.id for u in org.outside_unit]
    if outside:
        plan.warnings.append(
            ScopeWarning(
                "organizers-outside-unit",
                f"{len(outside)} approved organizer(s) are not members of administrative unit {unit}: they "
                "will be OUT of scope",
                "an Entra admin adds them to the administrative unit (meetgate does not change its membership)",
                tuple(outside[:SAMPLE]),
            )
        )
    extra = [u.upn or u.id for u in org.unapproved_members]
    if extra:
        plan.warnings.append(
            ScopeWarning(
                "unit-members-not-approved",
                f"{len(extra)} member(s) of administrative unit {unit} are not approved organizers: the app "
                "reaches their calendars too",
                "remove them from the administrative unit, or approve them in the policy file",
                tuple(extra[:SAMPLE]),
            )
        )


def _organizer_warnings(plan: MailboxScopePlan) -> None:
    org, desired = plan.organizers, plan.desired
    if org.unknown:
        plan.warnings.append(
            ScopeWarning(
                "unknown-organizers",
                f"{len(org.unknown)} organizer reference(s) match no user",
                "fix or remove them in the policy file",
                org.unknown[:SAMPLE],
            )
        )
    if org.unknown_groups:
        plan.warnings.append(
            ScopeWarning(
                "unknown-groups",
                f"group(s) {', '.join(org.unknown_groups)} do not exist",
                "fix the group object id in the policy file",
                org.unknown_groups,
            )
        )
    if not org.approved and not org.unknown_groups:
        plan.warnings.append(
            ScopeWarning(
                "no-organizers", "no approved organizer: the scope holds no mailbox", "list organizers"
            )
        )
    if desired.mode == "administrative_unit":
        _unit_warnings(plan)
    if desired.mode == "group":
        nested = [u.upn or uid for uid, u in org.approved.items() if uid not in org.in_scope]
        plan.warnings.append(
            ScopeWarning(
                "nested-members",
                f"Exchange's MemberOfGroup counts direct members only: {len(nested)} member(s) of nested groups "
                "will be OUT of scope"
                if nested
                else "Exchange's MemberOfGroup counts direct members only: members of nested groups are out of scope",
                "add them to the group directly, or list the organizers instead of `group` (they are then tagged)",
                tuple(nested[:SAMPLE]),
            )
        )
