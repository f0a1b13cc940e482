"""Online meetings and the application access policy over real TLS with real MSAL tokens."""

from __future__ import annotations

import base64
import datetime as dt
import re
import time
import urllib.parse
from contextlib import contextmanager

import httpx
import pytest

from conftest import app_token, msal_app
from meetgate import certificates
from meetgate_sandbox.control import SandboxControlError

POLICY = "TeamsMeetingsIntegration"


def _token_for(sandbox, http, app) -> str:
    credential = {
        "private_key": app.private_key_path.read_text(),
        "public_certificate": app.certificate_path.read_text(),
    }
    result = msal_app(sandbox, http, app.tenant_id, app.client_id, credential).acquire_token_for_client(
        ["https://graph.microsoft.com/.default"]
    )
    assert "access_token" in result, result.get("error_description")
    return str(result["access_token"])


class Graph:
    """A tiny Graph client for the tests: one token, the sandbox's URL, httpx over the sandbox CA."""

    def __init__(self, http: httpx.Client, base: str, token: str) -> None:
        self.http, self.base, self.token = http, base, token

    def __call__(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.http.request(method, f"{self.base}/v1.0{path}", headers=headers, **kwargs)

    def meetings(self, user_id: str) -> str:
        return f"/users/{user_id}/onlineMeetings"


@pytest.fixture
def graph(sandbox, http, sandbox_app) -> Graph:
    return Graph(http, sandbox.info.graph_url, _token_for(sandbox, http, sandbox_app))


@contextmanager
def settings(control, **body):
    """Server-wide settings for one test, restored afterwards."""
    before = control.settings()
    control.request("PUT", "/settings", json=body)
    try:
        yield
    finally:
        control.request("PUT", "/settings", json={k: before[k] for k in body})


def _wait_until(check, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "the policy change never reached enforcement"
        time.sleep(0.05)
    return time.monotonic() - started


def test_pilot_user_gets_a_well_formed_meeting(sandbox, sandbox_app, graph):
    assert sandbox_app.policy_granted
    pilot = sandbox_app.pilot_users[0]
    response = graph(
        "POST",
        graph.meetings(pilot.id),
        json={
            "subject": "Admissions interview",
            "startDateTime": "2030-07-01T09:00:00+02:00",
            "endDateTime": "2030-07-01T09:30:00+02:00",
            "participants": {"attendees": [{"upn": "guest@example.com", "role": "attendee"}]},
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["request-id"]
    meeting = response.json()
    assert meeting["@odata.context"] == (
        f"{sandbox.info.graph_url}/v1.0/$metadata#users('{pilot.id}')/onlineMeetings/$entity"
    )
    raw = base64.b64decode(meeting["id"]).decode()
    assert re.fullmatch(rf"1\*{pilot.id}\*0\*\*19:meeting_[A-Za-z0-9=]+@thread\.v2", raw)
    context = f"%7b%22Tid%22%3a%22{sandbox_app.tenant_id}%22%2c%22Oid%22%3a%22{pilot.id}%22%7d"
    assert meeting["joinWebUrl"].startswith("https://teams.microsoft.com/l/meetup-join/19%3ameeting_")
    assert meeting["joinWebUrl"].endswith(f"%40thread.v2/0?context={context}")
    assert meeting["joinUrl"] == meeting["joinWebUrl"]
    assert meeting["chatInfo"]["threadId"] == raw.split("**", 1)[1]
    assert (meeting["startDateTime"], meeting["endDateTime"]) == (
        "2030-07-01T07:00:00.0000000Z",
        "2030-07-01T07:30:00.0000000Z",
    )
    assert meeting["joinMeetingIdSettings"]["joinMeetingId"].isdigit()
    assert meeting["joinMeetingIdSettings"]["passcode"]
    assert meeting["audioConferencing"]["tollNumber"]
    assert meeting["audioConferencing"]["dialinUrl"].startswith("https://dialin.teams.microsoft.com/")
    assert meeting["participants"]["organizer"]["identity"]["user"]["id"] == pilot.id
    assert meeting["participants"]["organizer"]["upn"] == pilot.upn
    assert meeting["participants"]["attendees"][0]["upn"] == "guest@example.com"


def test_organizer_without_the_policy_gets_the_real_403(sandbox_app, graph):
    response = graph("POST", graph.meetings(sandbox_app.other_users[0].id), json={})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error == {
        **error,
        "code": "Forbidden",
        "message": "No application access policy found for this app",
    }
    assert error["innerError"]["request-id"] == response.headers["request-id"]


def test_policy_error_variant_is_selectable(sandbox_app, graph):
    with settings(sandbox_app.control, policyErrorVariant="legacy"):
        response = graph("POST", graph.meetings(sandbox_app.other_users[0].id), json={})
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (403, "Unauthorized")
    assert error["message"] == (
        f"App {sandbox_app.client_id} is not authorized to Create meeting on behalf of user "
        f"{sandbox_app.other_users[0].id}"
    )
    with pytest.raises(SandboxControlError):
        sandbox_app.control.request("PUT", "/settings", json={"policyErrorVariant": "nope"})


def test_grant_then_revoke_with_a_propagation_delay(sandbox_app, graph):
    control, tenant, user = sandbox_app.control, sandbox_app.tenant_id, sandbox_app.other_users[0]
    path = graph.meetings(user.id)
    with settings(control, policyDelaySeconds=0.5):
        control.grant_policy(tenant, POLICY, user=user.upn)
        # the admin sees the grant at once; enforcement does not
        view = control.user_policy(tenant, user.id)
        assert (view["direct"], view["effective"], view["enforced"]) == (POLICY, POLICY, None)
        assert graph("POST", path, json={}).status_code == 403
        waited = _wait_until(lambda: graph("POST", path, json={}).status_code == 201)
        assert waited >= 0.3
        control.grant_policy(tenant, None, user=user.id)
        assert control.user_policy(tenant, user.id)["effective"] is None
        assert graph("POST", path, json={}).status_code == 201  # still allowed until it propagates
        _wait_until(lambda: graph("POST", path, json={}).status_code == 403)


def test_granting_another_policy_replaces_the_old_one(sandbox_app, graph):
    control, tenant, pilot = sandbox_app.control, sandbox_app.tenant_id, sandbox_app.pilot_users[0]
    control.create_policy(tenant, "Tag:OtherVendor", ["00000000-0000-4000-8000-00000000abcd"])
    assert graph("POST", graph.meetings(pilot.id), json={}).status_code == 201
    control.grant_policy(tenant, "OtherVendor", user=pilot.id)
    assert graph("POST", graph.meetings(pilot.id), json={}).status_code == 403
    # one policy listing both apps serves both vendors
    control.update_policy(tenant, "Tag:OtherVendor", addAppIds=[sandbox_app.client_id])
    assert graph("POST", graph.meetings(pilot.id), json={}).status_code == 201
    grants = control.policy_grants(tenant)["direct"]
    assert {g["userPrincipalName"]: g["policyName"] for g in grants}[pilot.upn] == "OtherVendor"


def test_create_or_get_is_idempotent(sandbox_app, graph):
    path = f"{graph.meetings(sandbox_app.pilot_users[0].id)}/createOrGet"
    first = graph("POST", path, json={"externalId": "booking-17", "subject": "first"})
    second = graph("POST", path, json={"externalId": "booking-17", "subject": "second"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["subject"] == "first"
    start = dt.datetime.fromisoformat(first.json()["startDateTime"].replace("0Z", "+00:00"))
    end = dt.datetime.fromisoformat(first.json()["endDateTime"].replace("0Z", "+00:00"))
    assert end - start == dt.timedelta(hours=1)
    other = graph(
        "POST",
        f"{graph.meetings(sandbox_app.pilot_users[1].id)}/createOrGet",
        json={"externalId": "booking-17"},
    )
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]
    missing = graph("POST", path, json={"subject": "no external id"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "BadRequest")


def test_every_patch_rule(sandbox_app, graph):
    pilot, other = sandbox_app.pilot_users
    created = graph(
        "POST",
        graph.meetings(pilot.id),
        json={
            "participants": {"attendees": [{"upn": "a@example.com"}, {"upn": "b@example.com"}]},
            "anonymizeIdentityForRoles": ["attendee"],
        },
    ).json()
    path = f"{graph.meetings(pilot.id)}/{created['id']}"

    def patch(body):
        return graph("PATCH", path, json=body)

    assert patch({"startDateTime": "2030-08-01T10:00:00Z"}).status_code == 400
    assert patch({"endDateTime": "2030-08-01T10:00:00Z"}).status_code == 400
    moved = patch({"startDateTime": "2030-08-01T10:00:00Z", "endDateTime": "2030-08-01T11:00:00Z"})
    assert moved.status_code == 200
    assert moved.json()["startDateTime"] == "2030-08-01T10:00:00.0000000Z"
    body = {"participants": {"organizer": {"identity": {"user": {"id": other.id}}}}}
    assert patch(body).status_code == 400
    replaced = patch({"participants": {"attendees": [{"upn": "c@example.com", "role": "presenter"}]}}).json()
    assert [(a["upn"], a["role"]) for a in replaced["participants"]["attendees"]] == [
        ("c@example.com", "presenter")
    ]
    assert patch({"joinMeetingIdSettings": {"isPasscodeRequired": False}}).status_code == 400
    unchanged = {"joinMeetingIdSettings": created["joinMeetingIdSettings"], "subject": "same id settings"}
    assert patch(unchanged).status_code == 200
    assert patch({"anonymizeIdentityForRoles": []}).status_code == 400
    assert patch({"allowedPresenters": "speakers"}).status_code == 400
    final = graph("GET", path).json()
    assert final["subject"] == "same id settings"
    assert final["anonymizeIdentityForRoles"] == ["attendee"]
    assert final["joinMeetingIdSettings"] == created["joinMeetingIdSettings"]


def test_find_by_join_url_and_by_meeting_id(sandbox_app, graph):
    path = graph.meetings(sandbox_app.pilot_users[0].id)
    meeting = graph("POST", path, json={"subject": "find me"}).json()
    found = graph("GET", path, params={"$filter": f"JoinWebUrl eq '{meeting['joinWebUrl']}'"})
    assert found.status_code == 200
    assert [m["id"] for m in found.json()["value"]] == [meeting["id"]]
    # the query string built by hand, the join URL url-encoded as the docs show
    encoded = urllib.parse.quote(f"JoinWebUrl eq '{meeting['joinWebUrl']}'", safe="")
    by_hand = graph("GET", f"{path}?$filter={encoded}")
    assert [m["id"] for m in by_hand.json()["value"]] == [meeting["id"]]
    join_id = meeting["joinMeetingIdSettings"]["joinMeetingId"]
    by_id = graph("GET", path, params={"$filter": f"joinMeetingIdSettings/joinMeetingId eq '{join_id}'"})
    assert [m["subject"] for m in by_id.json()["value"]] == ["find me"]
    assert graph("GET", path).status_code == 400


def test_delete_then_404(sandbox_app, graph):
    path = graph.meetings(sandbox_app.pilot_users[0].id)
    meeting = graph("POST", path, json={}).json()
    assert graph("DELETE", f"{path}/{meeting['id']}").status_code == 204
    gone = graph("GET", f"{path}/{meeting['id']}")
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "NotFound")


def test_attendance_report_once_the_meeting_started(sandbox_app, graph):
    pilot = sandbox_app.pilot_users[0]
    now = dt.datetime.now(dt.UTC)
    meeting = graph(
        "POST",
        graph.meetings(pilot.id),
        json={
            "startDateTime": (now - dt.timedelta(hours=2)).isoformat(),
            "endDateTime": (now - dt.timedelta(hours=1)).isoformat(),
            "participants": {"attendees": [{"upn": "student@example.com"}]},
        },
    ).json()
    base = f"{graph.meetings(pilot.id)}/{meeting['id']}/attendanceReports"
    [report] = graph("GET", base).json()["value"]
    detail = graph("GET", f"{base}/{report['id']}", params={"$expand": "attendanceRecords"}).json()
    assert detail["totalParticipantCount"] == 2
    emails = sorted(r["emailAddress"] for r in detail["attendanceRecords"])
    assert emails == sorted([pilot.upn, "student@example.com"])
    future = graph("POST", graph.meetings(pilot.id), json={"startDateTime": "2099-01-01T00:00:00Z"}).json()
    assert graph("GET", f"{graph.meetings(pilot.id)}/{future['id']}/attendanceReports").json()["value"] == []
    # attendance is governed by the policy too
    sandbox_app.control.grant_policy(sandbox_app.tenant_id, None, user=pilot.id)
    assert graph("GET", base).status_code == 403


def test_upn_in_the_path_is_404_unless_switched(sandbox_app, graph):
    path = graph.meetings(sandbox_app.pilot_users[0].upn)
    response = graph("POST", path, json={})
    assert (response.status_code, response.json()["error"]["code"]) == (404, "NotFound")
    control = sandbox_app.control
    try:
        assert control.set_settings(upn_in_path="resolve")["upnInPath"] == "resolve"
        assert graph("POST", path, json={}).status_code == 201
    finally:
        control.set_settings(upn_in_path="notFound")
    assert control.policy(sandbox_app.tenant_id, "teamsmeetingsintegration")["appIds"] == [
        sandbox_app.client_id
    ]


def test_delegated_token_is_not_subject_to_the_policy_and_limited_to_me(sandbox, http, sandbox_app):
    user = sandbox_app.other_users[0]  # no policy
    token = sandbox_app.control.delegated_token(
        sandbox_app.tenant_id, user.id, sandbox_app.client_id, ["OnlineMeetings.ReadWrite"]
    )
    graph = Graph(http, sandbox.info.graph_url, token)
    created = graph("POST", "/me/onlineMeetings", json={"subject": "delegated"})
    assert created.status_code == 201, created.text
    assert created.json()["participants"]["organizer"]["identity"]["user"]["id"] == user.id
    assert graph("GET", f"/me/onlineMeetings/{created.json()['id']}").status_code == 200
    assert graph("POST", graph.meetings(user.id), json={}).status_code == 403
    app_only = Graph(http, sandbox.info.graph_url, _token_for(sandbox, http, sandbox_app))
    assert app_only("POST", "/me/onlineMeetings", json={}).status_code == 400


def test_group_rank_and_global_semantics(sandbox, http, creds, sandbox_tenant):
    control, tenant = sandbox_tenant.control, sandbox_tenant.tenant_id
    graph = Graph(http, sandbox.info.graph_url, app_token(sandbox, http, creds))
    groups = {g["displayName"]: g["id"] for g in graph("GET", "/groups").json()["value"]}
    inner, outer = groups["Sales and Marketing"], groups["Regional Managers"]
    members = graph("GET", f"/groups/{inner}/transitiveMembers").json()["value"]
    user = next(m["id"] for m in members if m["@odata.type"] == "#microsoft.graph.user")
    managed = {m["id"] for m in graph("GET", f"/groups/{outer}/transitiveMembers").json()["value"]}
    assert user in managed  # Sales and Marketing ⊂ Meeting Organizers ⊂ Regional Managers
    loner = next(u.id for u in sandbox_tenant.users if u.id not in managed)
    control.create_policy(tenant, "Tag:Allowed", [creds.app_id])
    control.create_policy(tenant, "Tag:Blocked", ["00000000-0000-4000-8000-00000000abcd"])

    def status(user_id):
        return graph("POST", graph.meetings(user_id), json={}).status_code

    assert status(user) == 403
    control.grant_policy(tenant, "Allowed", group=outer, rank=1)
    assert status(user) == 201  # through nested groups
    control.grant_policy(tenant, "Blocked", group=inner, rank=1)  # takes rank 1, the other moves to 2
    assert [(g["policyName"], g["rank"]) for g in control.policy_grants(tenant)["group"]] == [
        ("Blocked", 1),
        ("Allowed", 2),
    ]
    assert status(user) == 403  # the lowest rank wins
    control.grant_policy(tenant, "Allowed", group=outer, rank=1)
    assert status(user) == 201
    control.grant_policy(tenant, "Blocked", user=user)
    assert status(user) == 403  # direct beats group
    control.grant_policy(tenant, None, user=user)
    assert status(user) == 201
    assert status(loner) == 403
    control.grant_policy(tenant, "Allowed", global_=True)
    assert status(loner) == 201
    view = control.user_policy(tenant, loner)
    assert (view["global"], view["effective"], view["effectiveSource"]) == ("Allowed", "Allowed", "global")
    control.grant_policy(tenant, None, global_=True)
    assert status(loner) == 403


def test_graph_policy_assignment_endpoints(sandbox, http, sandbox_app, graph, tmp_path):
    control, tenant, user = sandbox_app.control, sandbox_app.tenant_id, sandbox_app.other_users[0]
    pair = certificates.generate_self_signed("policy-admin")
    admin_app = control.register_app(
        tenant,
        "Policy automation",
        certificate_pem=certificates.certificate_pem(pair.certificate),
        roles=["TeamsPolicyUserAssign.ReadWrite.All"],
    )
    credential = {
        "private_key": certificates.private_key_pem(pair.private_key).decode(),
        "thumbprint": pair.thumbprint_sha1,
    }
    result = msal_app(sandbox, http, tenant, admin_app["appId"], credential).acquire_token_for_client(
        ["https://graph.microsoft.com/.default"]
    )
    admin = Graph(http, sandbox.info.graph_url, result["access_token"])
    found = admin("GET", f"/admin/teams/policy/getPolicyId(type='ApplicationAccessPolicy',name='{POLICY}')")
    assert found.status_code == 200, found.text
    [detail] = found.json()["value"]
    assert detail["name"] == f"Tag:{POLICY}"
    assignment = {
        "@odata.type": "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment",
        "userId": user.id,
        "policyType": "ApplicationAccessPolicy",
        "policyId": detail["policyId"],
    }
    assert (
        admin("POST", "/admin/teams/policy/userAssignments/assign", json={"value": [assignment]}).status_code
        == 204
    )
    config = admin("GET", f"/admin/teams/userConfigurations/{user.id}").json()
    assert config["effectivePolicyAssignments"][0]["policyAssignment"]["displayName"] == POLICY
    assert graph("POST", graph.meetings(user.id), json={}).status_code == 201
    unassign = admin("POST", "/admin/teams/policy/userAssignments/unassign", json={"value": [assignment]})
    assert unassign.status_code == 204
    assert graph("POST", graph.meetings(user.id), json={}).status_code == 403
    # the meetings app itself lacks TeamsPolicyUserAssign.ReadWrite.All
    assert graph("GET", f"/admin/teams/userConfigurations/{user.id}").status_code == 403


def test_meetings_and_policies_survive_a_restart(tmp_path):
    from meetgate_sandbox.control import SandboxControl
    from meetgate_sandbox.server import SandboxOptions, SandboxServer

    options = SandboxOptions(state_dir=tmp_path / "state", users=5)
    with (
        SandboxServer(options) as server,
        SandboxControl(server.info.control_url, server.info.ca_bundle) as c,
    ):
        tenant, user = server.info.tenant_id, server.info.users[0]
        c.create_policy(tenant, "Tag:Kept", ["11111111-1111-4111-8111-111111111111"])
        c.grant_policy(tenant, "Kept", user=user.id)
    with (
        SandboxServer(options) as server,
        SandboxControl(server.info.control_url, server.info.ca_bundle) as c,
    ):
        assert c.user_policy(server.info.tenant_id, user.upn)["effective"] == "Kept"
        assert c.policies(server.info.tenant_id)["value"][0]["identity"] == "Tag:Kept"
