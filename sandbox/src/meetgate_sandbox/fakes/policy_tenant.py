"""An in-memory tenant implementing every policy port of meetgate.admin.policy (unit tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from meetgate.admin.policy.model import (
    DirectoryUser,
    GroupGrant,
    PolicyDefinition,
    TenantPolicyState,
    policy_key,
    policy_name,
)
from meetgate.admin.policy.ports import OpResult, UserOp


@dataclass
class FakePolicyTenant:
    """Users, groups, policies and grants held in dictionaries; behaves like Teams' policy store."""

    users: dict[str, DirectoryUser] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    policies: dict[str, PolicyDefinition] = field(default_factory=dict)
    direct: dict[str, str] = field(default_factory=dict)
    group_grants: dict[str, tuple[str, int]] = field(default_factory=dict)
    global_policy: str | None = None
    name: str = "fake"
    batch_size: int = 100
    #: called before each op; raise to simulate a failure (or an interruption) for that op
    on_op: Callable[[UserOp], None] | None = None
    batches: list[int] = field(default_factory=list)
    _by_upn: dict[str, DirectoryUser] = field(default_factory=dict)

    @classmethod
    def with_users(cls, count: int, domain: str = "contoso.test") -> FakePolicyTenant:
        tenant = cls()
        for i in range(count):
            tenant.add_user(
                DirectoryUser(f"00000000-0000-4000-8000-{i:012d}", f"user{i}@{domain}", f"User {i}")
            )
        return tenant

    def add_user(self, user: DirectoryUser) -> DirectoryUser:
        self.users[user.id] = user
        self._by_upn[user.upn.lower()] = user
        return user

    # DirectoryPort
    def find_users(self, refs: Sequence[str]) -> dict[str, DirectoryUser]:
        out: dict[str, DirectoryUser] = {}
        users, by_upn = self.users, self._by_upn
        for ref in refs:
            user = users.get(ref) or by_upn.get(ref.lower())
            if user is not None:
                out[ref] = user
        return out

    def group_members(self, group_id: str) -> list[DirectoryUser] | None:
        members = self.groups.get(group_id)
        if members is None:
            return None
        return [self.users[m] for m in members if m in self.users]

    # PolicyStatePort
    def read_state(self, identity: str) -> TenantPolicyState:
        return TenantPolicyState(
            policies={policy_key(p.identity) or "": p for p in self.policies.values()},
            direct=dict(self.direct),
            group_grants=[
                GroupGrant(gid, pol, rank, tuple(self.groups.get(gid, ())))
                for gid, (pol, rank) in self.group_grants.items()
            ],
            global_policy=self.global_policy,
            upns={uid: u.upn for uid, u in self.users.items()},
        )

    # PolicyChangePort
    def ensure_policy(self, definition: PolicyDefinition) -> None:
        self.policies[policy_key(definition.identity) or ""] = definition

    def apply_batch(self, policy_name_: str, ops: Sequence[UserOp]) -> list[OpResult]:
        self.batches.append(len(ops))
        results = []
        for op in ops:
            try:
                if self.on_op is not None:
                    self.on_op(op)
                if op.user_id not in self.users:
                    raise LookupError(f"user {op.user_id} not found")
                if op.action == "grant":
                    if policy_key(policy_name_) not in self.policies:
                        raise LookupError(f"policy {policy_name_} not found")
                    self.direct[op.user_id] = policy_name(policy_name_)
                else:
                    self.direct.pop(op.user_id, None)
                results.append(OpResult(op.user_id, op.action, True))
            except (LookupError, ValueError) as exc:
                results.append(OpResult(op.user_id, op.action, False, str(exc)))
        return results

    def grant(self, user_ids: Iterable[str], policy: str) -> None:
        for uid in user_ids:
            self.direct[uid] = policy_name(policy)
