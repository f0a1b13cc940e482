"""The sandbox's meeting, Teams policy and policy-control routes on a tiny Starlette app.

The bearer token of these tests is the name of a fake :class:`Caller` (the real auth middleware and
MSAL tokens are exercised by the integration tests over TLS).
"""

import datetime as dt
import urllib.parse

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.testclient import TestClient

from meetgate_sandbox.http import Caller, GraphErrorResponse, graph_error
from meetgate_sandbox.meeting_settings import MeetingSandboxSettings
from meetgate_sandbox.meetings import MeetingStore
from meetgate_sandbox.meetings_api import (
    MAX_ASSIGNMENTS_PER_REQUEST,
    DirectoryUser,
    meeting_routes,
    teams_policy_routes,
)
from meetgate_sandbox.policy import PolicyEngine
from meetgate_sandbox.policy_control import policy_control_routes

TENANT = "7d1e2c3b-0000-4000-8000-000000000001"
APP = "11111111-1111-4111-8111-111111111111"
OTHER_APP = "22222222-2222-4222-8222-222222222222"
PILOT = DirectoryUser("aaaaaaaa-0000-4000-8000-000000000001", "pilot@contoso.test", "Pilot User")
OTHER = DirectoryUser("aaaaaaaa-0000-4000-8000-000000000002", "other@contoso.test", "Other User")
MEMBER = DirectoryUser("aaaaaaaa-0000-4000-8000-000000000003", "member@contoso.test", "Group Member")
GROUP = "bbbbbbbb-0000-4000-8000-000000000001"

CALLERS = {
    "app": Caller(TENANT, APP, "sp-1", frozenset({"OnlineMeetings.ReadWrite.All", "User.Read.All"})),
    "reader": Caller(TENANT, APP, "sp-1", frozenset({"OnlineMeetings.Read.All"})),
    "norole": Caller(TENANT, APP, "sp-1", frozenset({"User.Read.All"})),
    "other-app": Caller(TENANT, OTHER_APP, "sp-2", frozenset({"OnlineMeetings.ReadWrite.All"})),
    "admin": Caller(TENANT, OTHER_APP, "sp-2", frozenset({"TeamsPolicyUserAssign.ReadWrite.All"})),
    "delegated": Caller(
        TENANT,
        OTHER_APP,
        "",
        frozenset(),
        delegated_user_id=OTHER.id,
        scopes=frozenset({"OnlineMeetings.ReadWrite"}),
    ),
}


class FakeBackend:
    def __init__(self) -> None:
        self.users = {u.id: u for u in (PILOT, OTHER, MEMBER)}
        self.groups = {GROUP: {MEMBER.id}}
        self.settings = MeetingSandboxSettings()
        self.store = MeetingStore(TENANT, seed=7)
        self.engine = PolicyEngine(
            TENANT, member_of=lambda user: [g for g, members in self.groups.items() if user in members]
        )
        self.changes = 0

    def user(self, tenant_id, id_or_upn):
        key = id_or_upn.lower()
        return self.users.get(key) or next(
            (u for u in self.users.values() if u.user_principal_name == key), None
        )

    def group(self, tenant_id, group_id):
        return group_id if group_id in self.groups else None

    def tenant_exists(self, tenant_id):
        return tenant_id == TENANT

    def meetings(self, tenant_id):
        return self.store

    def policy_engine(self, tenant_id):
        return self.engine

    def meeting_settings(self):
        return self.settings

    def changed(self, tenant_id):
        self.changes += 1


class FakeAuth(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token in CALLERS:
            request.state.caller = CALLERS[token]
        return await call_next(request)


async def _render_error(request, error: GraphErrorResponse):
    return graph_error(error.status, error.code, error.message, headers=error.headers)


@pytest.fixture
def backend():
    backend = FakeBackend()
    backend.engine.create_policy("Tag:TeamsMeetingsIntegration", [APP])
    backend.engine.grant_user(PILOT.id, "TeamsMeetingsIntegration")
    return backend


@pytest.fixture
def client(backend):
    app = Starlette(
        routes=[*meeting_routes(backend), *teams_policy_routes(backend), *policy_control_routes(backend)],
        middleware=[Middleware(FakeAuth)],
        exception_handlers={GraphErrorResponse: _render_error},
    )
    return TestClient(app, base_url="https://testserver")


def call(client, method, path, token="app", **kwargs):
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return client.request(method, path, headers=headers, **kwargs)


def meetings_of(user):
    return f"/v1.0/users/{user.id}/onlineMeetings"


def test_create_for_a_pilot_user(client):
    response = call(client, "POST", meetings_of(PILOT), json={"subject": "Hello"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["@odata.context"] == (
        f"https://testserver/v1.0/$metadata#users('{PILOT.id}')/onlineMeetings/$entity"
    )
    assert body["participants"]["organizer"]["identity"]["user"]["id"] == PILOT.id
    assert body["participants"]["organizer"]["upn"] == PILOT.user_principal_name
    assert body["subject"] == "Hello"


def test_beta_works_too(client):
    assert call(client, "POST", f"/beta/users/{PILOT.id}/onlineMeetings", json={}).status_code == 201


def test_no_policy_is_403_with_the_real_message(client):
    response = call(client, "POST", meetings_of(OTHER), json={})
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        "Forbidden",
        "No application access policy found for this app",
    )
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}
    # another app is not in the pilot's policy either
    assert call(client, "POST", meetings_of(PILOT), "other-app", json={}).status_code == 403


@pytest.mark.parametrize(
    ("variant", "code", "fragment"),
    [
        ("general", "General", "No application access policy found for this app."),
        ("suffix", "Forbidden", f"for this app {APP} on the user"),
        (
            "legacy",
            "Unauthorized",
            f"App {APP} is not authorized to Create meeting on behalf of user {OTHER.id}",
        ),
    ],
)
def test_policy_error_variants(client, backend, variant, code, fragment):
    backend.settings.update({"policyErrorVariant": variant})
    error = call(client, "POST", meetings_of(OTHER), json={}).json()["error"]
    assert error["code"] == code
    assert fragment in error["message"]


def test_every_meeting_call_is_subject_to_the_policy(client, backend):
    meeting = call(client, "POST", meetings_of(PILOT), json={"startDateTime": "2020-01-01T10:00:00Z"}).json()
    backend.engine.grant_user(PILOT.id, None)
    base = f"{meetings_of(PILOT)}/{meeting['id']}"
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"subject": "x"}),
        ("DELETE", base, None),
        ("GET", f"{base}/attendanceReports", None),
        ("POST", f"{meetings_of(PILOT)}/createOrGet", {"externalId": "e"}),
        ("GET", f"{meetings_of(PILOT)}?$filter=JoinWebUrl eq '{meeting['joinWebUrl']}'", None),
    ]:
        response = call(client, method, path, json=body)
        assert response.status_code == 403, (method, path)


def test_permissions(client):
    assert call(client, "POST", meetings_of(PILOT), "reader", json={}).status_code == 403
    assert call(client, "POST", meetings_of(PILOT), "norole", json={}).status_code == 403
    created = call(client, "POST", meetings_of(PILOT), json={}).json()
    assert call(client, "GET", f"{meetings_of(PILOT)}/{created['id']}", "reader").status_code == 200
    assert call(client, "GET", f"{meetings_of(PILOT)}/{created['id']}", "norole").status_code == 403
    assert call(client, "POST", meetings_of(PILOT), "nobody", json={}).status_code == 401


def test_unknown_organizer_and_upn_in_path(client, backend):
    response = call(
        client, "POST", "/v1.0/users/aaaaaaaa-0000-4000-8000-00000000ffff/onlineMeetings", json={}
    )
    assert response.status_code == 404
    by_upn = f"/v1.0/users/{PILOT.user_principal_name}/onlineMeetings"
    response = call(client, "POST", by_upn, json={})
    assert (response.status_code, response.json()["error"]["code"]) == (404, "NotFound")
    backend.settings.update({"upnInPath": "forbiddenEmpty"})
    response = call(client, "POST", by_upn, json={})
    assert (response.status_code, response.json()["error"]["message"]) == (403, "")
    backend.settings.update({"upnInPath": "resolve"})
    assert call(client, "POST", by_upn, json={}).status_code == 201
    with pytest.raises(ValueError, match="upnInPath"):
        backend.settings.update({"upnInPath": "maybe"})


def test_delegated_tokens_use_me_and_skip_the_policy(client):
    # OTHER has no policy, but delegated calls are not governed by it
    response = call(client, "POST", "/v1.0/me/onlineMeetings", "delegated", json={"subject": "mine"})
    assert response.status_code == 201
    body = response.json()
    assert body["participants"]["organizer"]["identity"]["user"]["id"] == OTHER.id
    assert body["@odata.context"].endswith("/$metadata#me/onlineMeetings/$entity")
    again = call(client, "GET", f"/v1.0/me/onlineMeetings/{body['id']}", "delegated")
    assert again.status_code == 200
    # ... and are limited to /me
    assert call(client, "POST", meetings_of(OTHER), "delegated", json={}).status_code == 403
    # app-only tokens cannot use /me
    response = call(client, "POST", "/v1.0/me/onlineMeetings", json={})
    assert response.status_code == 400
    assert (
        "/me request is only valid with delegated authentication flow" in response.json()["error"]["message"]
    )


def test_create_or_get_201_then_200(client):
    path = f"{meetings_of(PILOT)}/createOrGet"
    first = call(client, "POST", path, json={"externalId": "crm-42", "subject": "first"})
    second = call(client, "POST", path, json={"externalId": "crm-42", "subject": "second"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["subject"] == "first"
    assert call(client, "POST", path, json={"subject": "no id"}).status_code == 400


def test_find_by_join_url_and_meeting_id(client):
    meeting = call(client, "POST", meetings_of(PILOT), json={}).json()
    for name in ("JoinWebUrl", "joinWebUrl"):
        response = call(
            client, "GET", meetings_of(PILOT), params={"$filter": f"{name} eq '{meeting['joinWebUrl']}'"}
        )
        assert response.status_code == 200
        assert [m["id"] for m in response.json()["value"]] == [meeting["id"]]
    join_id = meeting["joinMeetingIdSettings"]["joinMeetingId"]
    response = call(
        client,
        "GET",
        meetings_of(PILOT),
        params={"$filter": f"joinMeetingIdSettings/joinMeetingId eq '{join_id}'"},
    )
    assert [m["id"] for m in response.json()["value"]] == [meeting["id"]]
    # the URL url-encoded inside the filter value works as well
    encoded = urllib.parse.quote(meeting["joinWebUrl"], safe="")
    response = call(client, "GET", meetings_of(PILOT), params={"$filter": f"JoinWebUrl eq '{encoded}'"})
    assert len(response.json()["value"]) == 1
    assert call(client, "GET", meetings_of(PILOT)).status_code == 400
    assert call(client, "GET", meetings_of(PILOT), params={"$filter": "subject eq 'x'"}).status_code == 400


def test_patch_delete_and_errors_are_graph_envelopes(client):
    meeting = call(client, "POST", meetings_of(PILOT), json={}).json()
    path = f"{meetings_of(PILOT)}/{meeting['id']}"
    response = call(client, "PATCH", path, json={"startDateTime": "2030-06-12T09:00:00Z"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    response = call(client, "PATCH", path, json={"subject": "changed"})
    assert (response.status_code, response.json()["subject"]) == (200, "changed")
    assert call(client, "PATCH", path, content=b"{not json").status_code == 400
    assert call(client, "DELETE", path).status_code == 204
    assert call(client, "GET", path).status_code == 404
    assert call(client, "DELETE", path).status_code == 404


def test_prefer_header_reveals_evolved_enum_members(client):
    meeting = call(
        client,
        "POST",
        meetings_of(PILOT),
        json={"lobbyBypassSettings": {"scope": "organizationExcludingGuests"}},
    ).json()
    assert meeting["lobbyBypassSettings"]["scope"] == "unknownFutureValue"
    path = f"{meetings_of(PILOT)}/{meeting['id']}"
    response = call(client, "GET", path, headers={"Prefer": "include-unknown-enum-members"})
    assert response.json()["lobbyBypassSettings"]["scope"] == "organizationExcludingGuests"


def test_attendance_reports(client):
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).isoformat()
    end = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    meeting = call(
        client,
        "POST",
        meetings_of(PILOT),
        json={
            "startDateTime": start,
            "endDateTime": end,
            "participants": {"attendees": [{"upn": "x@contoso.test"}]},
        },
    ).json()
    base = f"{meetings_of(PILOT)}/{meeting['id']}/attendanceReports"
    reports = call(client, "GET", base).json()["value"]
    assert len(reports) == 1
    assert "attendanceRecords" not in reports[0]
    report = call(client, "GET", f"{base}/{reports[0]['id']}", params={"$expand": "attendanceRecords"}).json()
    assert report["totalParticipantCount"] == 2
    assert {r["emailAddress"] for r in report["attendanceRecords"]} == {
        PILOT.user_principal_name,
        "x@contoso.test",
    }
    records = call(client, "GET", f"{base}/{reports[0]['id']}/attendanceRecords").json()["value"]
    assert records == report["attendanceRecords"]
    assert call(client, "GET", f"{base}/nope").status_code == 404


# ---- Graph Teams policy assignment ------------------------------------------------------------------


def test_get_policy_id_assign_and_user_configuration(client, backend):
    response = call(
        client,
        "GET",
        "/v1.0/admin/teams/policy/getPolicyId(type='ApplicationAccessPolicy',name='teamsmeetingsintegration')",
        "admin",
    )
    assert response.status_code == 200, response.text
    [detail] = response.json()["value"]
    assert detail["name"] == "Tag:TeamsMeetingsIntegration"
    policy_id = detail["policyId"]
    assignment = {
        "@odata.type": "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment",
        "userId": OTHER.id,
        "policyType": "ApplicationAccessPolicy",
        "policyId": policy_id,
    }
    response = call(
        client,
        "POST",
        "/v1.0/admin/teams/policy/userAssignments/assign",
        "admin",
        json={"value": [assignment]},
    )
    assert response.status_code == 204
    config = call(client, "GET", f"/v1.0/admin/teams/userConfigurations/{OTHER.id}", "admin").json()
    assert config["effectivePolicyAssignments"] == [
        {
            "policyType": "ApplicationAccessPolicy",
            "policyAssignment": {
                "displayName": "TeamsMeetingsIntegration",
                "assignmentType": "direct",
                "policyId": policy_id,
            },
        }
    ]
    assert call(client, "POST", meetings_of(OTHER), json={}).status_code == 201
    response = call(
        client,
        "POST",
        "/v1.0/admin/teams/policy/userAssignments/unassign",
        "admin",
        json={"value": [assignment]},
    )
    assert response.status_code == 204
    assert call(client, "POST", meetings_of(OTHER), json={}).status_code == 403
    config = call(client, "GET", f"/v1.0/admin/teams/userConfigurations/{OTHER.id}", "admin").json()
    assert config["effectivePolicyAssignments"] == []
    backend.settings.update({"userConfigurationShape": "wrapped"})
    wrapped = call(client, "GET", f"/v1.0/admin/teams/userConfigurations/{OTHER.id}", "admin").json()
    assert wrapped["value"]["id"] == OTHER.id


def test_teams_policy_endpoints_validate(client):
    assert (
        call(
            client,
            "GET",
            "/v1.0/admin/teams/policy/getPolicyId(type='ApplicationAccessPolicy',name='x')",
            "app",
        ).status_code
        == 403
    )
    assert (
        call(
            client,
            "GET",
            "/v1.0/admin/teams/policy/getPolicyId(type='ApplicationAccessPolicy',name='Missing')",
            "admin",
        ).status_code
        == 404
    )
    assert (
        call(
            client, "GET", "/v1.0/admin/teams/policy/getPolicyId(type='NoSuchPolicy',name='X')", "admin"
        ).status_code
        == 400
    )
    assign = "/v1.0/admin/teams/policy/userAssignments/assign"
    item = {"userId": OTHER.id, "policyType": "ApplicationAccessPolicy", "policyId": "nope"}
    assert call(client, "POST", assign, "admin", json={"value": [item]}).status_code == 404
    assert call(client, "POST", assign, "admin", json={"value": []}).status_code == 400
    too_many = [item] * (MAX_ASSIGNMENTS_PER_REQUEST + 1)
    assert call(client, "POST", assign, "admin", json={"value": too_many}).status_code == 400
    assert (
        call(client, "POST", assign, "admin", json={"value": [{**item, "userId": "someone@x"}]}).status_code
        == 400
    )


def test_group_membership_through_teams_config(client, backend):
    backend.engine.create_policy("GroupPolicy", [APP])
    backend.engine.grant_group(GROUP, "GroupPolicy", rank=1)
    config = call(client, "GET", f"/v1.0/admin/teams/userConfigurations/{MEMBER.id}", "admin").json()
    assignment = config["effectivePolicyAssignments"][0]["policyAssignment"]
    assert (assignment["assignmentType"], assignment["groupId"]) == ("group", GROUP)
    assert call(client, "POST", meetings_of(MEMBER), json={}).status_code == 201


# ---- control API ------------------------------------------------------------------------------------


CONTROL = f"/_sandbox/tenants/{TENANT}"


def test_control_policies_crud(client, backend):
    response = client.post(
        f"{CONTROL}/policies", json={"identity": "CRM", "appIds": [OTHER_APP], "description": "crm"}
    )
    assert response.status_code == 201
    assert response.json()["identity"] == "Tag:CRM"
    assert client.post(f"{CONTROL}/policies", json={"identity": "Tag:crm", "appIds": []}).status_code == 409
    names = [p["identity"] for p in client.get(f"{CONTROL}/policies").json()["value"]]
    assert names == ["Tag:CRM", "Tag:TeamsMeetingsIntegration"]
    response = client.patch(f"{CONTROL}/policies/Tag:CRM", json={"addAppIds": [APP]})
    assert response.json()["appIds"] == [OTHER_APP, APP]
    assert client.patch(f"{CONTROL}/policies/CRM", json={"bogus": 1}).status_code == 400
    assert client.delete(f"{CONTROL}/policies/crm").status_code == 204
    assert client.delete(f"{CONTROL}/policies/crm").status_code == 404
    assert client.get("/_sandbox/tenants/nope/policies").status_code == 404
    assert backend.changes >= 3


def test_control_grants_and_user_policy(client):
    client.post(f"{CONTROL}/policies", json={"identity": "Everyone", "appIds": [OTHER_APP]})
    client.post(f"{CONTROL}/policies", json={"identity": "Grouped", "appIds": [OTHER_APP]})
    response = client.post(f"{CONTROL}/policy-grants", json={"policyName": "Everyone", "global": True})
    assert response.json() == {"policyName": "Everyone", "global": True}
    response = client.post(
        f"{CONTROL}/policy-grants", json={"policyName": "Grouped", "group": GROUP, "rank": 1}
    )
    assert response.json()["rank"] == 1
    response = client.post(
        f"{CONTROL}/policy-grants",
        json={"policyName": "TeamsMeetingsIntegration", "user": MEMBER.user_principal_name},
    )
    assert response.json()["user"] == MEMBER.id
    grants = client.get(f"{CONTROL}/policy-grants").json()
    assert grants["global"] == "Everyone"
    assert grants["group"] == [{"group": GROUP, "rank": 1, "policyName": "Grouped"}]
    assert {
        "user": MEMBER.id,
        "policyName": "TeamsMeetingsIntegration",
        "userPrincipalName": MEMBER.user_principal_name,
    } in grants["direct"]
    view = client.get(f"{CONTROL}/users/{MEMBER.user_principal_name}/policy").json()
    assert (view["direct"], view["group"], view["global"], view["effective"]) == (
        "TeamsMeetingsIntegration",
        "Grouped",
        "Everyone",
        "TeamsMeetingsIntegration",
    )
    client.post(f"{CONTROL}/policy-grants", json={"policyName": None, "user": MEMBER.id})
    view = client.get(f"{CONTROL}/users/{MEMBER.id}/policy").json()
    assert (view["effective"], view["effectiveSource"]) == ("Grouped", "group")
    assert (
        client.post(f"{CONTROL}/policy-grants", json={"policyName": "X", "user": "ghost"}).status_code == 404
    )
    assert client.post(f"{CONTROL}/policy-grants", json={"policyName": "Grouped"}).status_code == 400
    assert client.post(f"{CONTROL}/policy-grants", json={"user": MEMBER.id}).status_code == 400


def test_attendee_without_upn_is_500_unless_switched_off(client, backend):
    body = {"participants": {"attendees": [{"identity": {"user": {"id": OTHER.id}}}]}}
    response = call(client, "POST", meetings_of(PILOT), json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (500, "UnknownError")
    backend.settings.update({"attendeeWithoutUpn": "accept"})
    assert call(client, "POST", meetings_of(PILOT), json=body).status_code == 201


def test_select_returns_only_the_named_properties(client):
    meeting = call(client, "POST", meetings_of(PILOT), json={"subject": "picked"}).json()
    path = f"{meetings_of(PILOT)}/{meeting['id']}"
    body = call(client, "GET", path, params={"$select": "subject,JoinWebUrl"}).json()
    assert set(body) == {"@odata.context", "subject", "joinWebUrl"}
    found = call(
        client,
        "GET",
        meetings_of(PILOT),
        params={"$filter": f"JoinWebUrl eq '{meeting['joinWebUrl']}'", "$select": "id"},
    ).json()
    assert found["value"] == [{"id": meeting["id"]}]
    response = call(client, "GET", path, params={"$select": "nope"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "BadRequest")
