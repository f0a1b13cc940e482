"""Desired state (what the policy file says) and tenant facts (what the tenant holds now).

Policy names are compared case-insensitively and without the ``Tag:`` prefix, as Teams does;
:func:`policy_key` gives the comparison key, :func:`tag_identity` the ``Tag:Name`` form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from meetgate.errors import MeetgateError

#: the ``mass-revoke`` warning: a plan revoking more than this share (in percent) of the current
#: direct holders, and at least :data:`MASS_REVOKE_MIN_USERS` of them, or every holder, needs its own
#: acknowledgement
MASS_REVOKE_PERCENT = 20.0
MASS_REVOKE_MIN_USERS = 2


class PolicyError(MeetgateError, ValueError):
    """Invalid desired state or an impossible request; ``remedy`` says what to do."""


def policy_name(identity: str) -> str:
    """``Tag:TeamsMeetingsIntegration`` → ``TeamsMeetingsIntegration`` (the -PolicyName form)."""
    text = identity.strip()
    return text[4:] if text.lower().startswith("tag:") else text


def tag_identity(identity: str) -> str:
    return f"Tag:{policy_name(identity)}"


def policy_key(identity: str | None) -> str | None:
    return policy_name(identity).lower() if identity else None


@dataclass(frozen=True)
class OrganizerSources:
    """Where approved organizers come from; any mix, united."""

    #: UPNs or object ids
    users: tuple[str, ...] = ()
    #: CSV files with a ``userPrincipalName``/``upn``/``id``/``objectId`` column (or one plain column)
    csv_files: tuple[Path, ...] = ()
    #: Entra group object ids, expanded transitively through Graph
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class DesiredPolicy:
    """The policy file: one policy, its app ids, and who may be an organizer through it."""

    identity: str
    app_ids: tuple[str, ...]
    description: str = ""
    organizers: OrganizerSources = field(default_factory=OrganizerSources)
    #: warn when a group's expansion grew by more than this percentage since the last apply …
    growth_warning_percent: float = 50.0
    #: … and by at least this many users
    growth_warning_min_users: int = 10
    #: warn (``mass-revoke``) when a plan revokes more than this percentage of the current holders …
    mass_revoke_percent: float = MASS_REVOKE_PERCENT
    #: … and at least this many of them (revoking every holder always warns)
    mass_revoke_min_users: int = MASS_REVOKE_MIN_USERS
    source: Path | None = None

    @property
    def name(self) -> str:
        return policy_name(self.identity)

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    id: str
    upn: str
    display_name: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class PolicyDefinition:
    identity: str
    app_ids: tuple[str, ...]
    description: str = ""

    @property
    def name(self) -> str:
        return policy_name(self.identity)

    def lists_any(self, app_ids: tuple[str, ...] | list[str]) -> bool:
        mine = {a.lower() for a in self.app_ids}
        return any(a.lower() in mine for a in app_ids)


@dataclass(frozen=True)
class GroupGrant:
    group_id: str
    policy: str
    rank: int
    #: transitive member user ids, when the reader knows them
    members: tuple[str, ...] = ()


@dataclass
class TenantPolicyState:
    """What the tenant holds now, as far as the policy is concerned."""

    #: policy key (lower-case name) → definition
    policies: dict[str, PolicyDefinition] = field(default_factory=dict)
    #: user id → policy name granted directly to that user
    direct: dict[str, str] = field(default_factory=dict)
    group_grants: list[GroupGrant] = field(default_factory=list)
    #: policy name granted tenant-wide (``-Global``), or None
    global_policy: str | None = None
    #: user id → UPN for users the reader saw (for display)
    upns: dict[str, str] = field(default_factory=dict)

    def policy(self, identity: str | None) -> PolicyDefinition | None:
        key = policy_key(identity)
        return self.policies.get(key) if key else None

    def effective(self, user_id: str) -> tuple[str | None, str]:
        """(policy name, source) with Teams' precedence: direct, group (lowest rank), global."""
        direct = self.direct.get(user_id)
        if direct:
            return direct, "direct"
        best: GroupGrant | None = None
        for grant in self.group_grants:
            if user_id in grant.members and (best is None or grant.rank < best.rank):
                best = grant
        if best is not None:
            return best.policy, f"group:{best.group_id}"
        if self.global_policy:
            return self.global_policy, "global"
        return None, "none"


def describe_global_grant(state: TenantPolicyState) -> str | None:
    """The tenant-wide (``-Global``) grant as a clause for messages; None when there is none.

    Teams reports a ``-Global`` grant as the tenant-wide instance named ``Global`` carrying the
    granted policy's app ids (the policy's own name is not kept), so that case names the app ids.
    """
    name = state.global_policy
    if not name:
        return None
    if policy_key(name) == "global":
        definition = state.policy(name)
        apps = ", ".join(definition.app_ids) if definition and definition.app_ids else "no app"
        return f"the tenant-wide (Global) instance lists app(s) {apps}"
    return f"the tenant-wide (Global) instance holds {policy_name(name)}"


@dataclass(frozen=True)
class ResolvedOrganizers:
    """The approved organizers as directory users, plus what could not be resolved."""

    #: user id → user (insertion order = first seen)
    users: Mapping[str, DirectoryUser]
    #: references (UPN, id, CSV row) that match no user
    unknown: tuple[str, ...] = ()
    #: group id → number of transitive user members now
    group_counts: Mapping[str, int] = field(default_factory=dict)
    #: group ids that do not exist
    unknown_groups: tuple[str, ...] = ()
