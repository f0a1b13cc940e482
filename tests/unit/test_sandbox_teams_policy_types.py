"""Graph Teams policy assignment with every documented policy type, not only ApplicationAccessPolicy:
getPolicyId of the built-in instances, assign / unassign, userConfigurations, and Graph's refusals."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient
from test_meetings_routes import APP, OTHER, PILOT, TENANT, FakeAuth, FakeBackend, _render_error, call

from meetgate_sandbox.http import GraphErrorResponse
from meetgate_sandbox.meetings_api import teams_policy_routes
from meetgate_sandbox.policy import PolicyEngine
from meetgate_sandbox.teams_policy_types import POLICY_TYPES, canonical_type, instance_id

ASSIGN = "/v1.0/admin/teams/policy/userAssignments/assign"
UNASSIGN = "/v1.0/admin/teams/policy/userAssignments/unassign"
ODATA_TYPE = "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment"


@pytest.fixture
def backend():
    backend = FakeBackend()
    backend.engine.create_policy("Tag:TeamsMeetingsIntegration", [APP])
    return backend


@pytest.fixture
def client(backend):
    app = Starlette(
        routes=teams_policy_routes(backend),
        middleware=[Middleware(FakeAuth)],
        exception_handlers={GraphErrorResponse: _render_error},
    )
    return TestClient(app, base_url="https://testserver")


def _policy_id(client, policy_type: str, name: str) -> str:
    response = call(
        client, "GET", f"/v1.0/admin/teams/policy/getPolicyId(type='{policy_type}',name='{name}')", "admin"
    )
    assert response.status_code == 200, response.text
    [detail] = response.json()["value"]
    return str(detail["policyId"])


def _item(user: str, policy_type: str, policy_id: str | None = None) -> dict[str, str]:
    item = {"@odata.type": ODATA_TYPE, "userId": user, "policyType": policy_type}
    return item if policy_id is None else {**item, "policyId": policy_id}


def test_get_policy_id_of_built_in_instances(client):
    response = call(
        client, "GET", "/v1.0/admin/teams/policy/getPolicyId(type='TeamsMeetingPolicy',name='AllOn')", "admin"
    )
    assert response.status_code == 200
    [detail] = response.json()["value"]
    assert detail["@odata.type"] == "#microsoft.graph.teamsAdministration.policyIdentifierDetail"
    assert detail["name"] == "Tag:AllOn"
    assert detail["policyId"] == instance_id(TENANT, "TeamsMeetingPolicy", "AllOn")
    # any case, Tag: optional; every type has its Global instance
    assert _policy_id(client, "teamsMeetingPolicy", "Tag:allon") == detail["policyId"]
    for policy_type in POLICY_TYPES[1:]:
        response = call(
            client,
            "GET",
            f"/v1.0/admin/teams/policy/getPolicyId(type='{policy_type}',name='Global')",
            "admin",
        )
        assert response.json()["value"][0]["name"] == "Global", policy_type
    ids = {_policy_id(client, t, "Global") for t in POLICY_TYPES[1:]}
    assert len(ids) == len(POLICY_TYPES) - 1  # one id per type


def test_unknown_types_and_instances_are_refused(client):
    unknown = call(
        client, "GET", "/v1.0/admin/teams/policy/getPolicyId(type='TeamsFooPolicy',name='Global')", "admin"
    )
    assert unknown.status_code == 400
    error = unknown.json()["error"]
    assert error["code"] == "BadRequest" and "TeamsFooPolicy" in error["message"]
    missing = call(
        client,
        "GET",
        "/v1.0/admin/teams/policy/getPolicyId(type='TeamsMessagingPolicy',name='AllOn')",
        "admin",
    )
    assert missing.status_code == 404
    global_id = _policy_id(client, "TeamsCallingPolicy", "Global")
    for body, status in [
        ({"value": [_item(OTHER.id, "NoSuchPolicy", global_id)]}, 400),
        ({"value": [_item(OTHER.id, "TeamsMessagingPolicy", global_id)]}, 404),  # another type's id
        ({"value": [_item(OTHER.id, "TeamsCallingPolicy", "nope")]}, 404),
        ({"value": [_item(OTHER.id, "TeamsCallingPolicy")]}, 404),
    ]:
        response = call(client, "POST", ASSIGN, "admin", json=body)
        assert response.status_code == status, body
        assert response.json()["error"]["message"].startswith("value[0]")
    refused = call(client, "POST", UNASSIGN, "admin", json={"value": [_item(OTHER.id, "TeamsFooPolicy")]})
    assert refused.status_code == 400
    denied = call(
        client, "GET", "/v1.0/admin/teams/policy/getPolicyId(type='TeamsMeetingPolicy',name='AllOn')", "app"
    )
    assert denied.status_code == 403


def test_assign_unassign_and_user_configuration(client, backend):
    all_on = _policy_id(client, "TeamsMeetingPolicy", "AllOn")
    calling = _policy_id(client, "TeamsCallingPolicy", "Global")
    access = _policy_id(client, "ApplicationAccessPolicy", "TeamsMeetingsIntegration")
    body = {
        "value": [
            _item(OTHER.id, "teamsmeetingpolicy", all_on),
            _item(OTHER.id, "TeamsCallingPolicy", calling),
            _item(OTHER.id, "ApplicationAccessPolicy", access),
        ]
    }
    assert call(client, "POST", ASSIGN, "admin", json=body).status_code == 204
    assert backend.engine.allows(OTHER.id, APP)  # the access policy is enforced; the others are kept
    config = call(client, "GET", f"/v1.0/admin/teams/userConfigurations/{OTHER.id}", "admin").json()
    by_type = {a["policyType"]: a["policyAssignment"] for a in config["effectivePolicyAssignments"]}
    assert by_type == {
        "ApplicationAccessPolicy": {
            "displayName": "TeamsMeetingsIntegration", "assignmentType": "direct", "policyId": access,
        },
        "TeamsCallingPolicy": {"displayName": "Global", "assignmentType": "direct", "policyId": calling},
        "TeamsMeetingPolicy": {"displayName": "AllOn", "assignmentType": "direct", "policyId": all_on},
    }  # fmt: skip
    # another instance of the same type replaces the first, as a direct grant does
    kiosk = _policy_id(client, "TeamsMeetingPolicy", "Kiosk")
    assert (
        call(
            client, "POST", ASSIGN, "admin", json={"value": [_item(OTHER.id, "TeamsMeetingPolicy", kiosk)]}
        ).status_code
        == 204
    )
    assert backend.engine.type_assignments_of(OTHER.id) == {
        "TeamsCallingPolicy": "Global",
        "TeamsMeetingPolicy": "Kiosk",
    }
    assert backend.engine.type_assignments_of(PILOT.id) == {}
    unassign = {"value": [_item(OTHER.id, "TeamsMeetingPolicy"), _item(OTHER.id, "TeamsCallingPolicy")]}
    assert call(client, "POST", UNASSIGN, "admin", json=unassign).status_code == 204
    config = call(client, "GET", f"/v1.0/admin/teams/userConfigurations/{OTHER.id}", "admin").json()
    assert [a["policyType"] for a in config["effectivePolicyAssignments"]] == ["ApplicationAccessPolicy"]
    assert backend.changes == 3


def test_a_refused_batch_changes_nothing(client, backend):
    all_on = _policy_id(client, "TeamsMeetingPolicy", "AllOn")
    body = {
        "value": [
            _item(OTHER.id, "TeamsMeetingPolicy", all_on),
            _item(OTHER.id, "TeamsCallingPolicy", "nope"),
        ]
    }
    response = call(client, "POST", ASSIGN, "admin", json=body)
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("value[1].policyId")
    assert backend.engine.type_assignments_of(OTHER.id) == {}


def test_type_assignments_persist_with_the_engine():
    engine = PolicyEngine(TENANT)
    engine.assign_type(OTHER.id.upper(), "TeamsMeetingPolicy", "AllOn")
    engine.assign_type(PILOT.id, "TeamsMessagingPolicy", "Global")
    engine.assign_type(PILOT.id, "TeamsMessagingPolicy", None)
    again = PolicyEngine(TENANT)
    again.load_dict(engine.to_dict())
    assert again.type_assignments_of(OTHER.id) == {"TeamsMeetingPolicy": "AllOn"}
    assert again.type_assignments == {"TeamsMeetingPolicy": {OTHER.id: "AllOn"}}
    old = PolicyEngine(TENANT)
    old.load_dict({"policies": [], "direct": {}, "groups": [], "global": None})  # saved before types existed
    assert old.type_assignments == {}


def test_canonical_type():
    assert canonical_type("teamsMeetingBroadcastPolicy") == "TeamsMeetingBroadcastPolicy"
    assert canonical_type("applicationaccesspolicy") == "ApplicationAccessPolicy"
    assert canonical_type("TeamsFooPolicy") is None and canonical_type(None) is None
