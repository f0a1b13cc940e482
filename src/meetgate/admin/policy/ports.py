"""The small ports the policy use cases need; backends and fakes implement them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from meetgate.admin.policy.model import DirectoryUser, PolicyDefinition, TenantPolicyState


class UserOp(NamedTuple):
    """One grant or revoke to carry out (a tuple: 100,000 of them are made in a plan)."""

    user_id: str
    upn: str
    action: str  # "grant" | "revoke"


class OpResult(NamedTuple):
    user_id: str
    action: str
    ok: bool
    error: str | None = None


class DirectoryPort(Protocol):
    """Resolve organizer references through the directory (Graph in production)."""

    def find_users(self, refs: Sequence[str]) -> dict[str, DirectoryUser]:
        """Map each reference (UPN or object id) that exists to its user; missing ones are absent."""
        ...

    def group_members(self, group_id: str) -> list[DirectoryUser] | None:
        """Transitive user members of a group; None when the group does not exist."""
        ...


class PolicyStatePort(Protocol):
    """Read what the tenant holds now."""

    def read_state(self, identity: str) -> TenantPolicyState: ...


class PolicyChangePort(Protocol):
    """Change the tenant: the policy definition and per-user grants."""

    #: backend name shown in reports
    name: str
    #: how many user operations one call to :meth:`apply_batch` should carry
    batch_size: int

    def ensure_policy(self, definition: PolicyDefinition) -> None:
        """Create the policy, or set its app ids and description when it exists."""
        ...

    def apply_batch(self, policy_name: str, ops: Sequence[UserOp]) -> list[OpResult]:
        """Grant ``policy_name`` / revoke (PolicyName $null); one result per op, failures included."""
        ...


class PolicyBackend(PolicyStatePort, PolicyChangePort, Protocol):
    """A backend reads and changes the tenant."""
