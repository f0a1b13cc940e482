"""Graph adapters: the ``graph`` backend, the directory port and the verify probe.

They depend on the Graph client only structurally (small protocols below), so this module imports
nothing of ``meetgate.graph``; the CLI hands in a real ``GraphClient``.

The ``graph`` backend grants through the Teams policy-assignment endpoints
(``POST /admin/teams/policy/userAssignments/assign`` and ``/unassign``, many assignments per request,
``policyId`` from ``getPolicyId``). Whether the real service accepts ``ApplicationAccessPolicy`` there
is UNCONFIRMED; no Graph API creates or changes the policy itself, so the policy must exist (create
it with the powershell or script backend), and its app ids cannot be read back through Graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from meetgate.admin.policy.model import (
    DirectoryUser,
    PolicyDefinition,
    PolicyError,
    TenantPolicyState,
    policy_key,
    policy_name,
)
from meetgate.admin.policy.ports import OpResult, UserOp
from meetgate.admin.policy.verify import ProbeResult
from meetgate.graph.errors import GraphError

POLICY_TYPE = "ApplicationAccessPolicy"
ASSIGNMENT_TYPE = "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment"
#: assignments per request (the sandbox refuses more than 20, as we assume the service does)
GRAPH_BATCH = 20


class JsonHttp(Protocol):
    def get(self, path: str, *args: Any, **kwargs: Any) -> Any: ...

    def post(self, path: str, *args: Any, **kwargs: Any) -> Any: ...


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _is_graph_error(exc: Exception) -> bool:
    return isinstance(exc, GraphError)


def _user(obj: Any) -> DirectoryUser:
    def attr(*names: str) -> Any:
        for name in names:
            value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
            if value is not None:
                return value
        return None

    enabled = attr("account_enabled", "accountEnabled")
    return DirectoryUser(
        str(attr("id")).lower(),
        str(attr("user_principal_name", "userPrincipalName", "upn") or ""),
        str(attr("display_name", "displayName") or ""),
        True if enabled is None else bool(enabled),
    )


class DirectoryLike(Protocol):
    def get_user(self, id_or_upn: str) -> Any: ...

    def list_users(
        self, filter: str | None = None, select: str | None = None, top: int | None = None
    ) -> Iterable[Any]: ...

    def group_members(self, group_id: str, transitive: bool = True) -> Iterable[Any]: ...


@dataclass
class GraphDirectory:
    """DirectoryPort over Graph: a few references are looked up one by one, many by listing users."""

    directory: DirectoryLike
    list_threshold: int = 200

    def find_users(self, refs: Sequence[str]) -> dict[str, DirectoryUser]:
        out: dict[str, DirectoryUser] = {}
        if len(refs) > self.list_threshold:
            by_key: dict[str, DirectoryUser] = {}
            for raw in self.directory.list_users(select="id,userPrincipalName,displayName,accountEnabled"):
                user = _user(raw)
                by_key[user.id] = user
                by_key[user.upn.lower()] = user
            return {ref: by_key[ref.lower()] for ref in refs if ref.lower() in by_key}
        for ref in refs:
            try:
                out[ref] = _user(self.directory.get_user(ref))
            except Exception as exc:
                if _is_graph_error(exc) and _status(exc) == 404:
                    continue
                raise
        return out

    def group_members(self, group_id: str) -> list[DirectoryUser] | None:
        try:
            return [_user(u) for u in self.directory.group_members(group_id, transitive=True)]
        except Exception as exc:
            if _is_graph_error(exc) and _status(exc) == 404:
                return None
            raise


@dataclass
class GraphPolicyBackend:
    """Grants and revokes through Graph's Teams policy assignment, ``batch_size`` users per request."""

    http: JsonHttp
    definition: PolicyDefinition
    users: Callable[[], Iterable[DirectoryUser]]
    batch_size: int = GRAPH_BATCH
    name: str = "graph"
    requests: list[int] = field(default_factory=list)
    _policy_id: str | None = None

    def policy_id(self, identity: str) -> str | None:
        name = policy_name(identity).replace("'", "''")
        try:
            data = self.http.get(f"/admin/teams/policy/getPolicyId(type='{POLICY_TYPE}',name='{name}')")
        except Exception as exc:
            if _is_graph_error(exc) and _status(exc) == 404:
                return None
            raise
        values = data.get("value", data) if isinstance(data, dict) else data
        for item in values if isinstance(values, list) else [values]:
            if isinstance(item, dict) and item.get("policyId"):
                return str(item["policyId"])
        return None

    def read_state(self, identity: str) -> TenantPolicyState:
        """Per-user ``userConfigurations`` (one request per user): fine for pilots, slow for 100k users."""
        state = TenantPolicyState()
        self._policy_id = self.policy_id(identity)
        if self._policy_id is not None:
            # Graph cannot read a policy's app ids: assume the file's (verify proves them)
            state.policies[policy_key(identity) or ""] = self.definition
        for user in self.users():
            state.upns[user.id] = user.upn
            data = self.http.get(f"/admin/teams/userConfigurations/{user.id}")
            entity = data.get("value", data) if isinstance(data, dict) else {}
            for item in entity.get("effectivePolicyAssignments", []) if isinstance(entity, dict) else []:
                if str(item.get("policyType", "")).lower() != POLICY_TYPE.lower():
                    continue
                assignment = item.get("policyAssignment", {})
                if str(assignment.get("assignmentType", "")).lower() == "direct":
                    state.direct[user.id] = policy_name(str(assignment.get("displayName", "")))
        return state

    def ensure_policy(self, definition: PolicyDefinition) -> None:
        raise PolicyError(
            f"no Graph API creates or changes an application access policy ({definition.identity})",
            "create it once with `meetgate policy apply --backend powershell` or `meetgate policy script`, "
            "then use the graph backend for the assignments",
        )

    def apply_batch(self, policy_name_: str, ops: Sequence[UserOp]) -> list[OpResult]:
        if self._policy_id is None:
            self._policy_id = self.policy_id(policy_name_)
        results: list[OpResult] = []
        for action in ("grant", "revoke"):
            subset = [op for op in ops if op.action == action]
            if not subset:
                continue
            if action == "grant" and self._policy_id is None:
                results += [
                    OpResult(op.user_id, action, False, f"policy {policy_name_} not found") for op in subset
                ]
                continue
            body = {
                "value": [
                    {"@odata.type": ASSIGNMENT_TYPE, "userId": op.user_id, "policyType": POLICY_TYPE}
                    | ({"policyId": str(self._policy_id)} if action == "grant" else {})
                    for op in subset
                ]
            }
            path = "/admin/teams/policy/userAssignments/" + ("assign" if action == "grant" else "unassign")
            self.requests.append(len(subset))
            try:
                self.http.post(path, json=body)
            except Exception as exc:
                if not _is_graph_error(exc):
                    raise
                results += [OpResult(op.user_id, action, False, str(exc)) for op in subset]
                continue
            results += [OpResult(op.user_id, action, True) for op in subset]
        return results


def _short(exc: Exception) -> str:
    """``403 Forbidden: No application access policy found for this app`` from a client error."""
    status, code = getattr(exc, "status", None), getattr(exc, "code", None)
    message = str(getattr(exc, "message", None) or str(exc).splitlines()[0])
    if message.startswith("Graph refused") and ": " in message:
        message = message.rsplit(": ", 1)[1]  # the client's context prefix; the table names the organizer
    prefix = " ".join(str(p) for p in (status, code) if p)
    return f"{prefix}: {message}" if prefix else str(message)


@dataclass
class GraphMeetingProbe:
    """MeetingProbe over the client's meetings service: create → allowed; the policy 403 → refused."""

    create: Callable[[str], Any]
    remove: Callable[[str, str], None]
    #: the client's AccessPolicyMissing exception class
    policy_refusal: type[Exception]

    def probe(self, organizer_id: str) -> ProbeResult:
        try:
            meeting = self.create(organizer_id)
        except Exception as exc:
            if isinstance(exc, self.policy_refusal):
                return ProbeResult("refused", None, _short(exc))
            if _is_graph_error(exc):
                return ProbeResult("error", None, _short(exc))
            raise
        return ProbeResult("allowed", str(getattr(meeting, "id", "")) or None, "meeting created")

    def delete(self, organizer_id: str, meeting_id: str) -> None:
        self.remove(organizer_id, meeting_id)
