"""The graph backend's batching and the verify loop, with fakes of our own ports."""

from __future__ import annotations

from typing import Any

import pytest

from meetgate.admin.policy.apply import ApplyJournal, apply_plan
from meetgate.admin.policy.graph import GraphPolicyBackend
from meetgate.admin.policy.model import DesiredPolicy, OrganizerSources, PolicyDefinition, PolicyError
from meetgate.admin.policy.planner import build_plan, resolve_organizers
from meetgate.admin.policy.verify import ProbeResult, Subject, verify_enforcement
from meetgate.graph.errors import GraphError
from meetgate_sandbox.fakes.policy_tenant import FakePolicyTenant

APP = "11111111-2222-3333-4444-555555555555"


class FakeGraphError(GraphError):
    """A Graph refusal as the client raises it (status + message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status=status)


class FakeTeamsGraph:
    """Graph's Teams policy-assignment endpoints over a FakePolicyTenant (at most 20 per request)."""

    def __init__(self, tenant: FakePolicyTenant) -> None:
        self.tenant = tenant
        self.posts: list[int] = []

    def get(self, path: str, *args: Any, **kwargs: Any) -> Any:
        if path.startswith("/admin/teams/policy/getPolicyId"):
            name = path.split("name='")[1].rstrip("')")
            if name.lower() not in self.tenant.policies:
                raise FakeGraphError(404, "not found")
            return {"value": [{"name": f"Tag:{name}", "policyId": f"id-{name.lower()}"}]}
        uid = path.rsplit("/", 1)[1]
        held = self.tenant.direct.get(uid)
        assignments = (
            [
                {
                    "policyType": "ApplicationAccessPolicy",
                    "policyAssignment": {"displayName": held, "assignmentType": "direct"},
                }
            ]
            if held
            else []
        )
        return {"id": uid, "effectivePolicyAssignments": assignments}

    def post(self, path: str, *args: Any, json: Any = None, **kwargs: Any) -> Any:
        items = json["value"]
        if len(items) > 20:
            raise FakeGraphError(400, "Too many assignments in one request")
        self.posts.append(len(items))
        for item in items:
            if path.endswith("/assign"):
                self.tenant.direct[item["userId"]] = item["policyId"].removeprefix("id-")
            else:
                self.tenant.direct.pop(item["userId"], None)
        return None


def test_graph_backend_grants_in_requests_of_many_assignments(tmp_path):
    tenant = FakePolicyTenant.with_users(130)
    want = DesiredPolicy("Tag:P", (APP,), "", OrganizerSources(users=tuple(list(tenant.users)[:100])))
    graph = FakeTeamsGraph(tenant)
    backend = GraphPolicyBackend(
        graph, PolicyDefinition("Tag:P", (APP,)), users=lambda: tenant.users.values(), batch_size=20
    )
    with pytest.raises(PolicyError, match="no Graph API creates"):
        backend.ensure_policy(PolicyDefinition("Tag:P", (APP,)))
    tenant.ensure_policy(PolicyDefinition("Tag:P", (APP,)))  # created once through PowerShell
    tenant.grant(list(tenant.users)[120:125], "P")  # stray holders
    state = backend.read_state(want.identity)
    plan = build_plan(want, resolve_organizers(want, tenant), state)
    assert plan.policy.action == "none" and len(plan.grants) == 100 and len(plan.revokes) == 5
    report = apply_plan(plan, backend, ApplyJournal(tmp_path, want.identity))
    assert report.ok
    assert graph.posts == [20, 20, 20, 20, 20, 5]
    assert sorted(tenant.direct) == sorted(list(tenant.users)[:100])


def test_graph_backend_reports_a_refused_request_per_user(tmp_path):
    tenant = FakePolicyTenant.with_users(30)
    tenant.ensure_policy(PolicyDefinition("Tag:P", (APP,)))
    backend = GraphPolicyBackend(
        FakeTeamsGraph(tenant), PolicyDefinition("Tag:P", (APP,)), users=lambda: [], batch_size=25
    )
    want = DesiredPolicy("Tag:P", (APP,), "", OrganizerSources(users=tuple(tenant.users)))
    plan = build_plan(want, resolve_organizers(want, tenant), backend.read_state("Tag:P"))
    report = apply_plan(plan, backend, ApplyJournal(tmp_path, "Tag:P"))
    assert len(report.failed) == 25 and "Too many" in (report.failed[0].error or "")
    assert len(report.succeeded) == 5


class PropagatingProbe:
    """Approved users start being allowed after `delay` probes; others are always refused."""

    def __init__(self, approved: set[str], delay: int) -> None:
        self.approved, self.delay = approved, delay
        self.calls: dict[str, int] = {}
        self.live: set[str] = set()
        self.deleted: list[str] = []

    def probe(self, organizer_id: str) -> ProbeResult:
        n = self.calls[organizer_id] = self.calls.get(organizer_id, 0) + 1
        if organizer_id in self.approved and n > self.delay:
            mid = f"m-{organizer_id}-{n}"
            self.live.add(mid)
            return ProbeResult("allowed", mid)
        return ProbeResult("refused", None, "No application access policy found for this app")

    def delete(self, organizer_id: str, meeting_id: str) -> None:
        self.live.discard(meeting_id)
        self.deleted.append(meeting_id)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_verify_polls_until_propagated_and_cleans_up():
    probe = PropagatingProbe({"a"}, delay=3)
    clock = FakeClock()
    seen = []
    report = verify_enforcement(
        probe,
        [Subject("a", "a@x", "allowed"), Subject("b", "b@x", "refused")],
        timeout=600,
        interval=30,
        clock=clock,
        sleep=clock.sleep,
        progress=lambda done, total, elapsed: seen.append((done, total)),
    )
    assert report.ok and not report.timed_out
    assert probe.calls == {"a": 4, "b": 1}
    assert seen == [(1, 2), (1, 2), (1, 2), (2, 2)]
    assert probe.live == set() and report.meetings_created == report.meetings_deleted == 1


def test_verify_times_out_and_reports_who_is_not_enforced():
    probe = PropagatingProbe({"a", "b"}, delay=0)
    clock = FakeClock()
    report = verify_enforcement(
        probe, [Subject("b", "b@x", "refused")], timeout=100, interval=30, clock=clock, sleep=clock.sleep
    )
    assert not report.ok and report.timed_out
    assert report.results[0].last.outcome == "allowed"
    assert probe.live == set() and report.meetings_deleted == report.meetings_created >= 3


def test_verify_deletes_meetings_even_when_interrupted():
    probe = PropagatingProbe({"a"}, delay=0)

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    original = probe.delete
    failures = []

    def slow_delete(organizer_id: str, meeting_id: str) -> None:
        failures.append(meeting_id)
        original(organizer_id, meeting_id)

    probe.delete = slow_delete  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        verify_enforcement(
            probe,
            [Subject("a", "a@x", "allowed"), Subject("z", "z@x", "allowed")],
            timeout=600,
            interval=1,
            sleep=interrupt,
        )
    assert probe.live == set() and failures == ["m-a-1"]
