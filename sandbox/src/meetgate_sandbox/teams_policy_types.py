"""The Teams policy types Graph's policy assignment routes take, and their built-in instances.

Graph's ``teamsPolicyUserAssignment`` (``/admin/teams/policy/userAssignments/assign``) names a policy by
``policyType`` and ``policyId``; ``getPolicyId(type=...,name=...)`` finds the id. Microsoft's pages
give the types as examples (TeamsMeetingPolicy, TeamsMeetingBroadcastPolicy, TeamsCallingPolicy); the
list below is the one Microsoft documents for Teams policy assignment (``New-CsGroupPolicyAssignment``)
plus ``ApplicationAccessPolicy`` — whose policies the sandbox's policy engine holds and enforces. The
other types are assignable and show in ``userConfigurations``, but nothing enforces them.

Every type has its ``Global`` instance; TeamsMeetingPolicy also has the presets every tenant has
(AllOn, RestrictedAnonymousAccess, AllOff, RestrictedAnonymousNoRecording, Default, Kiosk). Types
compare case-insensitively (the docs write both ``teamsMeetingPolicy`` and ``TeamsMeetingPolicy``).
"""

from __future__ import annotations

from meetgate_sandbox.http import GraphErrorResponse
from meetgate_sandbox.policy import POLICY_TYPE, opaque_policy_id, policy_key

GLOBAL = "Global"

POLICY_TYPES: tuple[str, ...] = (
    POLICY_TYPE,
    "CallingLineIdentity",
    "TeamsAppSetupPolicy",
    "TeamsAudioConferencingPolicy",
    "TeamsCallingPolicy",
    "TeamsCallParkPolicy",
    "TeamsChannelsPolicy",
    "TeamsComplianceRecordingPolicy",
    "TenantDialPlan",
    "TeamsMeetingBroadcastPolicy",
    "TeamsMeetingPolicy",
    "TeamsMessagingPolicy",
    "TeamsShiftsPolicy",
    "TeamsUpdateManagementPolicy",
    "TeamsVerticalPackagePolicy",
)
_BY_KEY = {t.casefold(): t for t in POLICY_TYPES}

#: instances besides ``Global`` that every tenant has, by type
BUILT_IN_INSTANCES: dict[str, tuple[str, ...]] = {
    "TeamsMeetingPolicy": (
        "AllOn",
        "RestrictedAnonymousAccess",
        "AllOff",
        "RestrictedAnonymousNoRecording",
        "Default",
        "Kiosk",
    ),
}


def canonical_type(policy_type: object) -> str | None:
    """The documented spelling of a policy type, or None when it is not one."""
    return _BY_KEY.get(policy_type.casefold()) if isinstance(policy_type, str) else None


def require_type(policy_type: object, where: str = "policyType") -> str:
    """The documented spelling of ``policy_type``, else Graph's 400 for an unknown type."""
    found = canonical_type(policy_type)
    if found is None:
        raise GraphErrorResponse(
            400,
            "BadRequest",
            f"{where}: the policy type {policy_type!r} is not supported. Supported types: "
            f"{', '.join(POLICY_TYPES)}.",
        )
    return found


def instances(policy_type: str) -> tuple[str, ...]:
    """The instances of a type other than ApplicationAccessPolicy (``Global`` first)."""
    return (GLOBAL, *BUILT_IN_INSTANCES.get(policy_type, ()))


def identity(name: str) -> str:
    """How Graph names an instance: ``Global``, else ``Tag:<name>``."""
    return GLOBAL if name.casefold() == GLOBAL.casefold() else f"Tag:{name}"


def find_instance(policy_type: str, name: str) -> str | None:
    """The instance of ``policy_type`` called ``name`` (``Tag:`` optional, any case), or None."""
    wanted = policy_key(name)
    return next((i for i in instances(policy_type) if i.casefold() == wanted), None)


def instance_id(tenant_id: str, policy_type: str, name: str) -> str:
    """The opaque ``policyId`` of an instance (stable per tenant, type and name)."""
    return opaque_policy_id(tenant_id, name, policy_type)


def instance_by_id(tenant_id: str, policy_type: str, policy_id: str) -> str | None:
    """The instance of ``policy_type`` whose ``policyId`` is ``policy_id``, or None."""
    return next(
        (i for i in instances(policy_type) if instance_id(tenant_id, policy_type, i) == policy_id), None
    )
