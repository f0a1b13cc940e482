"""The Teams application access policy engine of one sandbox tenant.

What a real tenant does with ``New-/Set-/Remove-CsApplicationAccessPolicy`` and
``Grant-CsApplicationAccessPolicy``, and what Graph enforces on app-only online-meeting calls:

- a policy has an identity ``Tag:<Name>``, several app ids and a description; names compare
  case-insensitively and the ``Tag:`` prefix is optional on input;
- grants are direct (per user), per group with a rank, or tenant-wide (``Global``);
- a user has exactly one effective policy: the direct grant, else the group grant with the lowest
  rank among the user's groups, else the global grant; granting another policy replaces the old one;
  granting ``None`` revokes;
- changes reach *enforcement* only after a propagation delay (``policyDelaySeconds``; real tenants
  take up to 30 minutes), while the admin views (control API, Graph ``userConfigurations``) see
  them at once.

The delay is modelled with two copies of the grant state: ``admin`` (changed at once) and
``enforced`` (changed by a FIFO of pending operations, each applied when its time has come).
Every operation is a pure function of the state it is applied to, so applying the same operation to
both copies keeps them equal once the queue has drained.

Diagram of a call::

    Graph route ──► PolicyEngine.allows(user, app) ──► enforced state (after draining due ops)
    control API ──► PolicyEngine.grant/create/...  ──► admin state now, enforced state at now+delay
"""

from __future__ import annotations

import base64
import copy
import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

POLICY_TYPE = "ApplicationAccessPolicy"
TAG_PREFIX = "Tag:"


class PolicyEngineError(ValueError):
    """A policy operation was refused; ``status`` is the HTTP status the control API answers with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def policy_name(identity: str) -> str:
    """``Tag:Foo`` or ``Foo`` → ``Foo`` (the PolicyName PowerShell shows)."""
    name = identity.strip()
    if name[: len(TAG_PREFIX)].lower() == TAG_PREFIX.lower():
        name = name[len(TAG_PREFIX) :]
    return name.strip()


def policy_key(identity: str) -> str:
    """The case-insensitive lookup key of a policy identity or name."""
    return policy_name(identity).casefold()


def validate_policy_name(identity: str) -> str:
    name = policy_name(identity)
    if not name:
        raise PolicyEngineError(
            400, "BadRequest", "A policy identity needs a name, like 'Tag:TeamsMeetings'."
        )
    if len(name) > 256 or any(ch in name for ch in "\\/:*?\"<>|'"):
        raise PolicyEngineError(
            400,
            "BadRequest",
            f"Invalid policy name {name!r}: use at most 256 characters and none of \\ / : * ? \" < > | '.",
        )
    return name


def opaque_policy_id(tenant_id: str, name: str, policy_type: str = POLICY_TYPE) -> str:
    """A stable opaque id like the ones Graph's ``getPolicyId`` returns (43 base64url characters)."""
    digest = hashlib.sha256(f"{tenant_id}|{policy_type}|{name.casefold()}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Policy:
    name: str
    app_ids: list[str]
    description: str
    policy_id: str

    @property
    def identity(self) -> str:
        return f"{TAG_PREFIX}{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "policyName": self.name,
            "appIds": list(self.app_ids),
            "description": self.description,
            "policyId": self.policy_id,
        }


@dataclass
class GroupGrant:
    group_id: str
    policy_key: str
    rank: int


@dataclass
class GrantState:
    """Policies and grants. Keys of ``policies`` and the policy references are :func:`policy_key`."""

    policies: dict[str, Policy] = field(default_factory=dict)
    #: user object id (lower-case) → policy key
    direct: dict[str, str] = field(default_factory=dict)
    #: ordered by rank (1 = highest priority)
    groups: list[GroupGrant] = field(default_factory=list)
    global_policy: str | None = None


Operation = Callable[[GrantState], None]


@dataclass(frozen=True)
class EffectivePolicy:
    policy: Policy
    #: ``direct``, ``group`` or ``global``
    source: str
    group_id: str | None = None
    rank: int | None = None


def _normalise_app_ids(app_ids: Iterable[object]) -> list[str]:
    result: list[str] = []
    seen: set[str] = set()
    for app_id in app_ids:
        if not isinstance(app_id, str) or not app_id.strip():
            raise PolicyEngineError(
                400, "BadRequest", "appIds must be a list of application (client) id strings."
            )
        value = app_id.strip().lower()
        if value not in seen:
            seen.add(value)
            result.append(value)
    return result


def _renumber(groups: list[GroupGrant]) -> None:
    for index, grant in enumerate(groups, start=1):
        grant.rank = index


# ---- operations: pure functions of the state they are applied to ------------------------------------


def _op_put_policy(policy: Policy) -> Operation:
    def apply(state: GrantState) -> None:
        state.policies[policy.name.casefold()] = copy.deepcopy(policy)

    return apply


def _op_delete_policy(key: str) -> Operation:
    def apply(state: GrantState) -> None:
        state.policies.pop(key, None)
        state.direct = {user: k for user, k in state.direct.items() if k != key}
        state.groups = [g for g in state.groups if g.policy_key != key]
        _renumber(state.groups)
        if state.global_policy == key:
            state.global_policy = None

    return apply


def _op_grant_user(user_id: str, key: str | None) -> Operation:
    def apply(state: GrantState) -> None:
        if key is None:
            state.direct.pop(user_id, None)
        else:
            state.direct[user_id] = key

    return apply


def _op_grant_group(group_id: str, key: str | None, rank: int | None) -> Operation:
    def apply(state: GrantState) -> None:
        state.groups = [g for g in state.groups if g.group_id != group_id]
        if key is not None:
            position = len(state.groups) if rank is None else min(max(rank, 1) - 1, len(state.groups))
            state.groups.insert(position, GroupGrant(group_id, key, 0))
        _renumber(state.groups)

    return apply


def _op_grant_global(key: str | None) -> Operation:
    def apply(state: GrantState) -> None:
        state.global_policy = key

    return apply


def effective_in(
    state: GrantState, user_id: str, member_of: Callable[[str], Iterable[str]]
) -> EffectivePolicy | None:
    """Direct grant, else the lowest-ranked group grant among the user's groups, else global."""
    user_id = user_id.lower()
    key = state.direct.get(user_id)
    if key is not None and key in state.policies:
        return EffectivePolicy(state.policies[key], "direct")
    if state.groups:
        groups = {g.lower() for g in member_of(user_id)}
        for grant in state.groups:  # ordered by rank
            if grant.group_id in groups and grant.policy_key in state.policies:
                return EffectivePolicy(state.policies[grant.policy_key], "group", grant.group_id, grant.rank)
    if state.global_policy is not None and state.global_policy in state.policies:
        return EffectivePolicy(state.policies[state.global_policy], "global")
    return None


class PolicyEngine:
    """Policies and grants of one tenant, with delayed enforcement.

    ``member_of(user_id)`` returns the ids of the groups the user belongs to (transitively), and
    ``delay_seconds()`` the current propagation delay; ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        tenant_id: str,
        *,
        member_of: Callable[[str], Iterable[str]] = lambda _user: (),
        delay_seconds: Callable[[], float] = lambda: 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tenant_id = tenant_id
        self.member_of = member_of
        self.delay_seconds = delay_seconds
        self.clock = clock
        self.admin = GrantState()
        self.enforced = GrantState()
        self._pending: deque[tuple[float, Operation]] = deque()
        self._last_due = 0.0
        self._lock = threading.Lock()
        #: direct assignments of the other Teams policy types (Graph ``userAssignments``), which the
        #: sandbox records but does not enforce: policy type -> user object id (lower-case) -> instance
        self.type_assignments: dict[str, dict[str, str]] = {}

    # ---- other Teams policy types (assignments only) --------------------------------------------------

    def assign_type(self, user_id: str, policy_type: str, instance: str | None) -> None:
        """Assign (or, with None, unassign) an instance of another policy type to a user directly."""
        with self._lock:
            users = self.type_assignments.setdefault(policy_type, {})
            if instance is None:
                users.pop(user_id.lower(), None)
            else:
                users[user_id.lower()] = instance
            if not users:
                del self.type_assignments[policy_type]

    def type_assignments_of(self, user_id: str) -> dict[str, str]:
        """The user's direct assignments of the other policy types: policy type -> instance name."""
        with self._lock:
            wanted = user_id.lower()
            return {t: users[wanted] for t, users in sorted(self.type_assignments.items()) if wanted in users}

    # ---- mutation --------------------------------------------------------------------------------

    def _apply(self, operation: Operation) -> None:
        operation(self.admin)
        delay = max(0.0, float(self.delay_seconds()))
        if delay == 0.0 and not self._pending:
            operation(self.enforced)
            return
        # keep the queue in order even when the delay setting shrinks between two changes
        due = max(self.clock() + delay, self._last_due)
        self._last_due = due
        self._pending.append((due, operation))

    def _drain(self) -> None:
        if not self._pending:
            return
        now = self.clock()
        while self._pending and self._pending[0][0] <= now:
            _, operation = self._pending.popleft()
            operation(self.enforced)

    def _policy(self, identity: str) -> Policy:
        policy = self.admin.policies.get(policy_key(identity))
        if policy is None:
            raise PolicyEngineError(
                404,
                "NotFound",
                f"Cannot find policy {TAG_PREFIX}{policy_name(identity)} of type {POLICY_TYPE}: "
                "create it first (New-CsApplicationAccessPolicy).",
            )
        return policy

    def create_policy(self, identity: str, app_ids: Iterable[object], description: str = "") -> Policy:
        name = validate_policy_name(identity)
        if name.casefold() == "global":
            raise PolicyEngineError(
                409, "Conflict", "The Global policy instance always exists; grant with global=true."
            )
        with self._lock:
            if name.casefold() in self.admin.policies:
                existing = self.admin.policies[name.casefold()]
                raise PolicyEngineError(
                    409,
                    "Conflict",
                    f"A policy with identity {existing.identity} already exists: change it with PATCH "
                    "(Set-CsApplicationAccessPolicy) instead.",
                )
            policy = Policy(
                name=name,
                app_ids=_normalise_app_ids(app_ids),
                description=str(description or ""),
                policy_id=opaque_policy_id(self.tenant_id, name),
            )
            self._apply(_op_put_policy(policy))
            return copy.deepcopy(policy)

    def update_policy(
        self,
        identity: str,
        *,
        app_ids: Iterable[object] | None = None,
        add_app_ids: Iterable[object] = (),
        remove_app_ids: Iterable[object] = (),
        description: str | None = None,
    ) -> Policy:
        with self._lock:
            policy = copy.deepcopy(self._policy(identity))
            if app_ids is not None:
                policy.app_ids = _normalise_app_ids(app_ids)
            for app_id in _normalise_app_ids(add_app_ids):
                if app_id not in policy.app_ids:
                    policy.app_ids.append(app_id)
            removed = set(_normalise_app_ids(remove_app_ids))
            policy.app_ids = [a for a in policy.app_ids if a not in removed]
            if description is not None:
                policy.description = str(description)
            self._apply(_op_put_policy(policy))
            return copy.deepcopy(policy)

    def delete_policy(self, identity: str) -> None:
        """Remove a policy; its grants go with it (the users fall back to group/global grants)."""
        with self._lock:
            policy = self._policy(identity)
            self._apply(_op_delete_policy(policy.name.casefold()))

    def grant_user(self, user_id: str, identity: str | None) -> Policy | None:
        with self._lock:
            policy = None if identity is None else self._policy(identity)
            self._apply(_op_grant_user(user_id.lower(), None if policy is None else policy.name.casefold()))
            return copy.deepcopy(policy)

    def grant_group(self, group_id: str, identity: str | None, rank: int | None = None) -> Policy | None:
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
            raise PolicyEngineError(400, "BadRequest", "rank must be a whole number of at least 1 (1 wins).")
        with self._lock:
            policy = None if identity is None else self._policy(identity)
            if policy is not None and rank is None:
                raise PolicyEngineError(
                    400, "BadRequest", "A group grant needs a rank (1 = highest priority)."
                )
            key = None if policy is None else policy.name.casefold()
            self._apply(_op_grant_group(group_id.lower(), key, rank))
            return copy.deepcopy(policy)

    def grant_global(self, identity: str | None) -> Policy | None:
        with self._lock:
            policy = None if identity is None else self._policy(identity)
            self._apply(_op_grant_global(None if policy is None else policy.name.casefold()))
            return copy.deepcopy(policy)

    # ---- admin views (changes visible at once) ------------------------------------------------------

    def policies(self) -> list[Policy]:
        with self._lock:
            return [
                copy.deepcopy(p)
                for p in sorted(self.admin.policies.values(), key=lambda p: p.name.casefold())
            ]

    def policy(self, identity: str) -> Policy:
        with self._lock:
            return copy.deepcopy(self._policy(identity))

    def policy_by_id(self, policy_id: str) -> Policy | None:
        with self._lock:
            for policy in self.admin.policies.values():
                if policy.policy_id == policy_id:
                    return copy.deepcopy(policy)
            return None

    def grants(self) -> dict[str, Any]:
        """Every grant: ``{"direct": [{user, policyName}], "group": [{group, rank, policyName}], "global"}``."""
        with self._lock:
            state = self.admin
            return {
                "direct": [
                    {"user": user, "policyName": state.policies[key].name}
                    for user, key in sorted(state.direct.items())
                    if key in state.policies
                ],
                "group": [
                    {"group": g.group_id, "rank": g.rank, "policyName": state.policies[g.policy_key].name}
                    for g in state.groups
                    if g.policy_key in state.policies
                ],
                "global": None
                if state.global_policy is None or state.global_policy not in state.policies
                else state.policies[state.global_policy].name,
            }

    def direct_policy(self, user_id: str) -> Policy | None:
        with self._lock:
            key = self.admin.direct.get(user_id.lower())
            return None if key is None else copy.deepcopy(self.admin.policies.get(key))

    def group_policy(self, user_id: str) -> EffectivePolicy | None:
        with self._lock:
            groups = {g.lower() for g in self.member_of(user_id.lower())} if self.admin.groups else set()
            for grant in self.admin.groups:
                if grant.group_id in groups and grant.policy_key in self.admin.policies:
                    return EffectivePolicy(
                        copy.deepcopy(self.admin.policies[grant.policy_key]),
                        "group",
                        grant.group_id,
                        grant.rank,
                    )
            return None

    def global_policy(self) -> Policy | None:
        with self._lock:
            key = self.admin.global_policy
            return None if key is None else copy.deepcopy(self.admin.policies.get(key))

    def effective(self, user_id: str) -> EffectivePolicy | None:
        """The user's effective policy as the admin sees it (no delay)."""
        with self._lock:
            return effective_in(self.admin, user_id, self.member_of)

    # ---- enforcement (after the propagation delay) --------------------------------------------------

    def enforced_policy(self, user_id: str) -> EffectivePolicy | None:
        with self._lock:
            self._drain()
            return effective_in(self.enforced, user_id, self.member_of)

    def allows(self, user_id: str, app_id: str) -> bool:
        """Whether an app-only call by ``app_id`` on behalf of organizer ``user_id`` is allowed now."""
        with self._lock:
            self._drain()
            effective = effective_in(self.enforced, user_id, self.member_of)
            return effective is not None and app_id.lower() in effective.policy.app_ids

    def pending_changes(self) -> int:
        with self._lock:
            self._drain()
            return len(self._pending)

    # ---- persistence --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The admin state (pending changes are persisted as already applied)."""
        with self._lock:
            state = self.admin
            return {
                "policies": [p.to_json() for p in state.policies.values()],
                "direct": dict(state.direct),
                "groups": [
                    {"group": g.group_id, "policy": g.policy_key, "rank": g.rank} for g in state.groups
                ],
                "global": state.global_policy,
                "typeAssignments": {t: dict(users) for t, users in self.type_assignments.items()},
            }

    def load_dict(self, data: dict[str, Any]) -> None:
        state = GrantState()
        for item in data.get("policies", []):
            policy = Policy(
                name=item["policyName"],
                app_ids=list(item.get("appIds", [])),
                description=item.get("description", ""),
                policy_id=item.get("policyId") or opaque_policy_id(self.tenant_id, item["policyName"]),
            )
            state.policies[policy.name.casefold()] = policy
        state.direct = {str(k): str(v) for k, v in data.get("direct", {}).items()}
        state.groups = [GroupGrant(g["group"], g["policy"], int(g["rank"])) for g in data.get("groups", [])]
        state.groups.sort(key=lambda g: g.rank)
        state.global_policy = data.get("global")
        with self._lock:
            self.admin = state
            self.enforced = copy.deepcopy(state)
            self._pending.clear()
            self.type_assignments = {
                str(t): {str(u): str(n) for u, n in users.items()}
                for t, users in (data.get("typeAssignments") or {}).items()
            }
