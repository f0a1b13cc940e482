"""The sandbox's Exchange calendars over real TLS with real MSAL tokens: events, series, invitations,
cancellations, extended properties, the Teams meeting behind an online event, and the two planes
(Entra Calendars.* grants and Exchange RBAC for Applications) that decide which mailboxes an app reaches."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import httpx
import pytest

from conftest import Credentials, app_token
from meetgate import certificates
from meetgate_sandbox.control import SandboxControlError

EXTERNAL_ID = "String {6c4a3b34-2d4f-4b1e-9a55-1f1e7b0c6a01} Name meetgateExternalId"
RBAC = "/tenants/{tid}/exchange"


class Graph:
    def __init__(self, http: httpx.Client, base: str, token: str) -> None:
        self.http, self.base, self.token = http, base, token

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.http.request(method, f"{self.base}/v1.0{path}", headers=headers, **kwargs)


def _app(sandbox_tenant, key_pair, roles: list[str]) -> Credentials:
    app = sandbox_tenant.control.register_app(
        sandbox_tenant.tenant_id,
        "Calendar tests",
        certificate_pem=certificates.certificate_pem(key_pair.certificate),
        roles=roles,
    )
    return Credentials(
        sandbox_tenant.tenant_id, app["appId"], app["objectId"], app["servicePrincipalId"], key_pair
    )


@pytest.fixture
def tenant_wide(sandbox, http, sandbox_tenant, key_pair) -> tuple[Graph, Credentials]:
    """An app holding Calendars.ReadWrite as an Entra application permission (every mailbox)."""
    creds = _app(
        sandbox_tenant, key_pair, ["Calendars.ReadWrite", "User.Read.All", "OnlineMeetings.ReadWrite.All"]
    )
    return Graph(http, sandbox.info.graph_url, app_token(sandbox, http, creds)), creds


def _users(sandbox_tenant) -> list[dict[str, Any]]:
    users = sandbox_tenant.control.tenant(sandbox_tenant.tenant_id)["users"]
    return [user for user in users if user["accountEnabled"]]


def _event(**extra: Any) -> dict[str, Any]:
    return {
        "subject": "Admissions interview",
        "body": {"contentType": "HTML", "content": "<p>Bring your portfolio.</p>"},
        "start": {"dateTime": "2030-07-01T09:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2030-07-01T09:30:00", "timeZone": "W. Europe Standard Time"},
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
        **extra,
    }


def test_an_online_event_reaches_the_attendees_calendars_with_a_teams_join_url(sandbox_tenant, tenant_wide):
    graph, _ = tenant_wide
    organizer, attendee = _users(sandbox_tenant)[:2]
    body = _event(
        attendees=[
            {
                "emailAddress": {"address": attendee["userPrincipalName"], "name": "Candidate"},
                "type": "required",
            },
            {"emailAddress": {"address": "someone@example.org"}, "type": "optional"},
        ],
        transactionId="7E163156-7762-4BEB-A1C6-729EA81755A7",
    )
    created = graph("POST", f"/users/{organizer['userPrincipalName']}/events", json=body)
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["type"] == "singleInstance" and event["isOrganizer"] is True
    assert event["transactionId"] == body["transactionId"]
    assert event["start"] == {"dateTime": "2030-07-01T07:00:00.0000000", "timeZone": "UTC"}
    assert event["originalStartTimeZone"] == "W. Europe Standard Time"
    join_url = event["onlineMeeting"]["joinUrl"]
    assert join_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    assert join_url in event["body"]["content"]
    assert event["responseStatus"]["response"] == "organizer"
    assert [a["status"]["response"] for a in event["attendees"]] == ["none", "none"]

    copies = graph("GET", f"/users/{attendee['id']}/events").json()["value"]
    assert len(copies) == 1
    copy = copies[0]
    assert copy["id"] != event["id"] and copy["iCalUId"] == event["iCalUId"]
    assert copy["isOrganizer"] is False and copy["responseStatus"]["response"] == "notResponded"
    assert copy["onlineMeeting"]["joinUrl"] == join_url

    # the meeting behind the event is a real onlineMeeting, found by its join URL
    found = graph(
        "GET",
        f"/users/{organizer['id']}/onlineMeetings",
        params={"$filter": f"JoinWebUrl eq '{join_url}'"},
    )
    # ... which the Teams application access policy governs: this app has none yet
    assert found.status_code == 403


def test_prefer_outlook_timezone_and_a_missing_time_window(sandbox_tenant, tenant_wide):
    graph, _ = tenant_wide
    organizer = _users(sandbox_tenant)[0]
    event = graph("POST", f"/users/{organizer['id']}/events", json=_event()).json()
    pacific = graph(
        "GET",
        f"/users/{organizer['id']}/events/{event['id']}",
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
    ).json()
    assert pacific["start"] == {
        "dateTime": "2030-07-01T00:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    missing = graph("GET", f"/users/{organizer['id']}/calendarView")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "ErrorInvalidParameter"
    assert "StartDateTime and EndDateTime" in missing.json()["error"]["message"]


def test_an_extended_property_finds_the_event_a_lost_answer_made(sandbox_tenant, tenant_wide):
    graph, _ = tenant_wide
    organizer = _users(sandbox_tenant)[0]
    marker = {"singleValueExtendedProperties": [{"id": EXTERNAL_ID, "value": "booking-42"}]}
    first = graph("POST", f"/users/{organizer['id']}/events", json=_event(transactionId="tx-1", **marker))
    assert first.status_code == 201
    assert "singleValueExtendedProperties" not in first.json()
    # by default the sandbox does not deduplicate transactionId: a blind retry makes a second event,
    # which is why a client looks for its marker before it retries
    query = f"singleValueExtendedProperties/Any(ep: ep/id eq '{EXTERNAL_ID}' and ep/value eq 'booking-42')"
    found = graph("GET", f"/users/{organizer['id']}/events", params={"$filter": query}).json()["value"]
    assert [item["id"] for item in found] == [first.json()["id"]]
    expanded = graph(
        "GET",
        f"/users/{organizer['id']}/events/{first.json()['id']}",
        params={"$expand": f"singleValueExtendedProperties($filter=id eq '{EXTERNAL_ID}')"},
    ).json()
    assert expanded["singleValueExtendedProperties"] == [{"id": EXTERNAL_ID, "value": "booking-42"}]
    nothing = graph("GET", f"/users/{organizer['id']}/events", params={"$filter": query.replace("42", "43")})
    assert nothing.json()["value"] == []


def test_transaction_id_dedupe_when_switched_on(sandbox_tenant, sandbox_control, tenant_wide):
    graph, _ = tenant_wide
    organizer = _users(sandbox_tenant)[0]
    before = sandbox_control.settings()["transactionIdDuplicate"]
    sandbox_control.request("PUT", "/settings", json={"transactionIdDuplicate": "returnExisting"})
    try:
        one = graph("POST", f"/users/{organizer['id']}/events", json=_event(transactionId="tx-2")).json()
        two = graph("POST", f"/users/{organizer['id']}/events", json=_event(transactionId="tx-2")).json()
    finally:
        sandbox_control.request("PUT", "/settings", json={"transactionIdDuplicate": before})
    assert one["id"] == two["id"]


def test_a_weekly_series_its_instances_one_moved_and_one_cancelled(sandbox_tenant, tenant_wide):
    graph, _ = tenant_wide
    organizer, attendee = _users(sandbox_tenant)[:2]
    series = graph(
        "POST",
        f"/users/{organizer['id']}/events",
        json=_event(
            start={"dateTime": "2030-07-01T09:00:00", "timeZone": "UTC"},
            end={"dateTime": "2030-07-01T10:00:00", "timeZone": "UTC"},
            attendees=[{"emailAddress": {"address": attendee["userPrincipalName"]}}],
            recurrence={
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "daysOfWeek": ["monday"],
                    "firstDayOfWeek": "sunday",
                },
                "range": {"type": "numbered", "startDate": "2030-07-01", "numberOfOccurrences": 4},
            },
        ),
    )
    assert series.status_code == 201, series.text
    master = series.json()
    assert master["type"] == "seriesMaster"
    assert master["recurrence"]["range"]["numberOfOccurrences"] == 4
    window = {"startDateTime": "2030-06-01T00:00:00Z", "endDateTime": "2030-09-01T00:00:00Z"}
    path = f"/users/{organizer['id']}/events/{master['id']}/instances"
    instances = graph("GET", path, params=window).json()["value"]
    assert [item["start"]["dateTime"][:10] for item in instances] == [
        "2030-07-01",
        "2030-07-08",
        "2030-07-15",
        "2030-07-22",
    ]
    assert {item["type"] for item in instances} == {"occurrence"}
    assert {item["seriesMasterId"] for item in instances} == {master["id"]}
    assert len({item["iCalUId"] for item in instances}) == 4

    moved = graph(
        "PATCH",
        f"/users/{organizer['id']}/events/{instances[1]['id']}",
        json={"start": {"dateTime": "2030-07-09T15:00:00", "timeZone": "UTC"}},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["type"] == "exception"
    assert moved.json()["end"]["dateTime"].startswith("2030-07-09T16:00:00")
    cancelled = graph(
        "POST", f"/users/{organizer['id']}/events/{instances[2]['id']}/cancel", json={"comment": "Holiday"}
    )
    assert cancelled.status_code == 202

    after = graph("GET", path, params=window).json()["value"]
    assert [(item["start"]["dateTime"][:13], item["type"]) for item in after] == [
        ("2030-07-01T09", "occurrence"),
        ("2030-07-09T15", "exception"),
        ("2030-07-22T09", "occurrence"),
    ]
    # the attendee's calendar view holds the same series, with the change
    view = graph("GET", f"/users/{attendee['id']}/calendarView", params=window).json()["value"]
    assert [item["start"]["dateTime"][:13] for item in view] == [
        "2030-07-01T09",
        "2030-07-09T15",
        "2030-07-22T09",
    ]
    assert all(item["isOrganizer"] is False for item in view)


def test_cancel_is_for_the_organizer_and_marks_the_attendee_copy(sandbox_tenant, tenant_wide):
    graph, _ = tenant_wide
    organizer, attendee = _users(sandbox_tenant)[:2]
    event = graph(
        "POST",
        f"/users/{organizer['id']}/events",
        json=_event(attendees=[{"emailAddress": {"address": attendee["userPrincipalName"]}}]),
    ).json()
    copy = graph("GET", f"/users/{attendee['id']}/events").json()["value"][0]
    refused = graph("POST", f"/users/{attendee['id']}/events/{copy['id']}/cancel", json={})
    assert refused.status_code == 400
    assert "You need to be an organizer to cancel a meeting" in refused.json()["error"]["message"]

    assert (
        graph(
            "POST", f"/users/{organizer['id']}/events/{event['id']}/cancel", json={"comment": "Sorry"}
        ).status_code
        == 202
    )
    assert graph("GET", f"/users/{organizer['id']}/events/{event['id']}").status_code == 404
    marked = graph("GET", f"/users/{attendee['id']}/events/{copy['id']}").json()
    assert marked["isCancelled"] is True and marked["subject"] == "Canceled: Admissions interview"


def test_what_exchange_refuses(sandbox_tenant, sandbox_control, tenant_wide):
    graph, _ = tenant_wide
    organizer = _users(sandbox_tenant)[0]
    unknown = graph("POST", "/users/nobody@contoso.example/events", json=_event())
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "ErrorInvalidUser"
    typo = graph("POST", f"/users/{organizer['id']}/events", json=_event(subjekt="x"))
    assert typo.status_code == 400 and typo.json()["error"]["code"] == "RequestBodyRead"
    weekly = _event(
        recurrence={
            "pattern": {"type": "weekly", "interval": 1},
            "range": {"type": "noEnd", "startDate": "2030-07-01"},
        }
    )
    no_days = graph("POST", f"/users/{organizer['id']}/events", json=weekly)
    assert no_days.status_code == 400 and "daysOfWeek is required" in no_days.json()["error"]["message"]
    missing = graph("GET", f"/users/{organizer['id']}/events/AAMkADnothingAAA=")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ErrorItemNotFound"
    sandbox_control.request(
        "PATCH",
        f"/tenants/{sandbox_tenant.tenant_id}/exchange/mailboxes/{organizer['id']}",
        json={"mailboxEnabled": False},
    )
    no_mailbox = graph("POST", f"/users/{organizer['id']}/events", json=_event())
    assert no_mailbox.status_code == 404
    assert no_mailbox.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"


# ---- RBAC for Applications -----------------------------------------------------------------------


@pytest.fixture
def scoped(sandbox, http, sandbox_tenant, key_pair) -> tuple[Graph, Credentials]:
    """An app with no Entra calendar grant: Exchange RBAC decides which mailboxes it reaches."""
    creds = _app(sandbox_tenant, key_pair, ["User.Read.All", "Group.Read.All"])
    return Graph(http, sandbox.info.graph_url, app_token(sandbox, http, creds)), creds


def _rbac(control, tenant_id: str, method: str, path: str, **kwargs: Any) -> Any:
    return control.request(method, RBAC.format(tid=tenant_id) + path, **kwargs)


def test_rbac_scope_by_group_reaches_members_only_and_test_authorization_agrees(
    sandbox_tenant, sandbox_control, scoped
):
    graph, creds = scoped
    tid = sandbox_tenant.tenant_id
    groups = graph("GET", "/groups", params={"$filter": "displayName eq 'Meeting Organizers'"}).json()[
        "value"
    ]
    group = groups[0]
    members = graph("GET", f"/groups/{group['id']}/members").json()["value"]
    direct = {m["id"] for m in members if m["@odata.type"] == "#microsoft.graph.user"}
    inside_id = sorted(direct)[0]
    outside = next(u for u in _users(sandbox_tenant) if u["id"] not in direct)
    dn = _rbac(sandbox_control, tid, "GET", f"/groups/{group['id']}")["DistinguishedName"]
    assert dn.startswith("CN=") and "OU=Microsoft Exchange Hosted Organizations" in dn

    assert graph("POST", f"/users/{inside_id}/events", json=_event()).status_code == 403
    _rbac(
        sandbox_control,
        tid,
        "POST",
        "/service-principals",
        json={"appId": creds.app_id, "objectId": creds.service_principal_id, "displayName": "Calendar tests"},
    )
    _rbac(
        sandbox_control,
        tid,
        "POST",
        "/management-scopes",
        json={"name": "Organizers", "recipientRestrictionFilter": f"MemberOfGroup -eq '{dn}'"},
    )
    assignment = _rbac(
        sandbox_control,
        tid,
        "POST",
        "/role-assignments",
        json={
            "role": "Application Calendars.ReadWrite",
            "app": creds.service_principal_id,
            "customResourceScope": "Organizers",
        },
    )
    assert assignment["scope_type"] == "CustomRecipientScope"

    assert graph("POST", f"/users/{inside_id}/events", json=_event()).status_code == 201
    refused = graph("POST", f"/users/{outside['id']}/events", json=_event())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "ErrorAccessDenied"

    rows_in = _rbac(
        sandbox_control,
        tid,
        "GET",
        "/test-authorization",
        params={"identity": creds.app_id, "resource": inside_id},
    )
    rows_out = _rbac(
        sandbox_control,
        tid,
        "GET",
        "/test-authorization",
        params={"identity": creds.app_id, "resource": outside["id"]},
    )
    assert [row["InScope"] for row in rows_in["value"]] == [True]
    assert [row["InScope"] for row in rows_out["value"]] == [False]


def test_rbac_scope_by_administrative_unit_reaches_its_members_only(sandbox_tenant, sandbox_control, scoped):
    graph, creds = scoped
    tid = sandbox_tenant.tenant_id
    inside, outside = _users(sandbox_tenant)[:2]
    unit = sandbox_control.request(
        "POST",
        f"/tenants/{tid}/administrative-units",
        json={"displayName": "Calendar pilot", "members": [inside["id"]]},
    )
    _rbac(
        sandbox_control,
        tid,
        "POST",
        "/service-principals",
        json={"appId": creds.app_id, "objectId": creds.service_principal_id, "displayName": "Calendar tests"},
    )
    assignment = _rbac(
        sandbox_control,
        tid,
        "POST",
        "/role-assignments",
        json={
            "role": "Application Calendars.ReadWrite",
            "app": creds.service_principal_id,
            "recipientAdministrativeUnitScope": unit["id"],
        },
    )
    assert (assignment["scope_type"], assignment["scope"]) == ("AdministrativeUnit", unit["id"])
    assert graph("POST", f"/users/{inside['id']}/events", json=_event()).status_code == 201
    refused = graph("POST", f"/users/{outside['id']}/events", json=_event())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "ErrorAccessDenied"
    [row] = _rbac(
        sandbox_control,
        tid,
        "GET",
        "/test-authorization",
        params={"identity": creds.app_id, "resource": outside["userPrincipalName"]},
    )["value"]
    assert (row["ScopeType"], row["AllowedResourceScope"], row["InScope"]) == (
        "AdministrativeUnit",
        unit["id"],
        False,
    )
    with pytest.raises(SandboxControlError) as unknown:
        _rbac(
            sandbox_control,
            tid,
            "POST",
            "/role-assignments",
            json={
                "role": "Application Calendars.Read",
                "app": creds.service_principal_id,
                "recipientAdministrativeUnitScope": "00000000-0000-0000-0000-00000000abcd",
            },
        )
    assert unknown.value.status == 400 and "administrative unit" in unknown.value.message


def test_entra_grant_and_rbac_add_up(sandbox, http, sandbox_tenant, sandbox_control, key_pair):
    """A tenant-wide Entra Calendars.ReadWrite voids the Exchange scope: every mailbox is reachable."""
    creds = _app(sandbox_tenant, key_pair, ["Calendars.ReadWrite"])
    graph = Graph(http, sandbox.info.graph_url, app_token(sandbox, http, creds))
    tid = sandbox_tenant.tenant_id
    _rbac(
        sandbox_control,
        tid,
        "POST",
        "/service-principals",
        json={"appId": creds.app_id, "objectId": creds.service_principal_id},
    )
    _rbac(
        sandbox_control,
        tid,
        "POST",
        "/management-scopes",
        json={"name": "Nobody", "recipientRestrictionFilter": "CustomAttribute1 -eq 'none'"},
    )
    _rbac(
        sandbox_control,
        tid,
        "POST",
        "/role-assignments",
        json={
            "role": "Application Calendars.ReadWrite",
            "app": creds.app_id,
            "customResourceScope": "Nobody",
        },
    )
    anyone = _users(sandbox_tenant)[3]
    assert graph("POST", f"/users/{anyone['id']}/events", json=_event()).status_code == 201


def test_rbac_custom_attribute_scope_and_the_cache_delay(sandbox_tenant, sandbox_control, scoped):
    graph, creds = scoped
    tid = sandbox_tenant.tenant_id
    user = _users(sandbox_tenant)[4]
    _rbac(
        sandbox_control,
        tid,
        "PATCH",
        f"/mailboxes/{user['id']}",
        json={"customAttributes": {"CustomAttribute1": "meetgate"}},
    )
    _rbac(
        sandbox_control,
        tid,
        "POST",
        "/service-principals",
        json={"appId": creds.app_id, "objectId": creds.service_principal_id},
    )
    _rbac(
        sandbox_control,
        tid,
        "POST",
        "/management-scopes",
        json={"name": "Tagged", "recipientRestrictionFilter": "CustomAttribute1 -eq 'meetgate'"},
    )
    before = sandbox_control.settings()["mailboxScopeDelaySeconds"]
    sandbox_control.request("PUT", "/settings", json={"mailboxScopeDelaySeconds": 1.5})
    try:
        _rbac(
            sandbox_control,
            tid,
            "POST",
            "/role-assignments",
            json={
                "role": "Application Calendars.ReadWrite",
                "app": creds.app_id,
                "customResourceScope": "Tagged",
            },
        )
        # Test-ServicePrincipalAuthorization bypasses the cache; Graph waits for it
        rows = _rbac(
            sandbox_control,
            tid,
            "GET",
            "/test-authorization",
            params={"identity": creds.app_id, "resource": user["id"]},
        )
        assert rows["value"][0]["InScope"] is True
        assert graph("POST", f"/users/{user['id']}/events", json=_event()).status_code == 403
        deadline = time.monotonic() + 30
        while graph("POST", f"/users/{user['id']}/events", json=_event()).status_code != 201:
            assert time.monotonic() < deadline, "the role assignment never reached the cache"
            time.sleep(0.2)
    finally:
        sandbox_control.request("PUT", "/settings", json={"mailboxScopeDelaySeconds": before})


def test_rbac_refusals_say_what_to_do(sandbox_tenant, sandbox_control, scoped):
    _, creds = scoped
    tid = sandbox_tenant.tenant_id
    with pytest.raises(SandboxControlError, match="New-ServicePrincipal"):
        _rbac(
            sandbox_control,
            tid,
            "POST",
            "/role-assignments",
            json={"role": "Application Calendars.ReadWrite", "app": creds.app_id},
        )
    with pytest.raises(SandboxControlError, match="Enterprise applications"):
        _rbac(
            sandbox_control,
            tid,
            "POST",
            "/service-principals",
            json={"appId": creds.app_id, "objectId": creds.object_id},
        )
    _rbac(
        sandbox_control,
        tid,
        "POST",
        "/service-principals",
        json={"appId": creds.app_id, "objectId": creds.service_principal_id},
    )
    with pytest.raises(SandboxControlError, match="application role"):
        _rbac(
            sandbox_control,
            tid,
            "POST",
            "/role-assignments",
            json={"role": "Mail Recipients", "app": creds.app_id},
        )
    with pytest.raises(SandboxControlError, match="not valid"):
        _rbac(
            sandbox_control,
            tid,
            "POST",
            "/management-scopes",
            json={"name": "Bad", "recipientRestrictionFilter": "Department -eq"},
        )


def test_a_join_url_in_the_query_is_percent_encoded_by_clients(sandbox_tenant, tenant_wide):
    """Sanity: the extended property filter survives URL encoding of colons, slashes and spaces."""
    graph, _ = tenant_wide
    organizer = _users(sandbox_tenant)[0]
    marker = {"singleValueExtendedProperties": [{"id": EXTERNAL_ID, "value": "a/b:c d"}]}
    graph("POST", f"/users/{organizer['id']}/events", json=_event(**marker))
    query = f"singleValueExtendedProperties/Any(ep: ep/id eq '{EXTERNAL_ID}' and ep/value eq 'a/b:c d')"
    url = f"/users/{organizer['id']}/events?$filter={urllib.parse.quote(query, safe='')}"
    assert len(graph("GET", url).json()["value"]) == 1


def test_the_realistic_profile_draws_the_documented_exchange_cache_delay():
    from meetgate_sandbox.realistic import RealisticDraws

    draws = RealisticDraws(seed=3, time_compression=300)
    delays = [draws.mailbox_scope_delay_seconds() for _ in range(200)]
    assert all(30 * 60 / 300 <= delay <= 120 * 60 / 300 for delay in delays)
    again = RealisticDraws(seed=3, time_compression=300)
    assert [again.mailbox_scope_delay_seconds() for _ in range(200)] == delays
