"""Directory reads: users (by id and UPN, $filter, $select, $top, paging), groups, nested members."""

from __future__ import annotations

import pytest

from conftest import Credentials, app_token
from meetgate import certificates


@pytest.fixture
def graph(sandbox, http, creds):
    token = app_token(sandbox, http, creds)

    def get(path: str, **params):
        return http.get(
            f"{sandbox.info.graph_url}{path}", params=params, headers={"Authorization": f"Bearer {token}"}
        )

    return get


def _token_with_roles(sandbox, http, sandbox_tenant, key_pair, roles):
    app = sandbox_tenant.control.register_app(
        sandbox_tenant.tenant_id,
        "limited",
        certificate_pem=certificates.certificate_pem(key_pair.certificate),
        roles=roles,
    )
    creds = Credentials(
        sandbox_tenant.tenant_id, app["appId"], app["objectId"], app["servicePrincipalId"], key_pair
    )
    return app_token(sandbox, http, creds)


def test_get_user_by_id_and_by_upn(graph, sandbox_tenant):
    user = sandbox_tenant.users[0]
    by_id = graph(f"/v1.0/users/{user.id}")
    assert by_id.status_code == 200
    body = by_id.json()
    assert body["userPrincipalName"] == user.upn
    assert body["@odata.context"].endswith("/v1.0/$metadata#users/$entity")
    assert by_id.headers["content-type"].startswith("application/json;odata.metadata=minimal")
    assert set(body) - {"@odata.context"} == {
        "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
        "preferredLanguage", "surname", "userPrincipalName", "id",
    }  # fmt: skip
    by_upn = graph(f"/v1.0/users/{user.upn.upper()}", **{"$select": "id,displayName,userPrincipalName"})
    assert by_upn.json()["id"] == user.id
    assert set(by_upn.json()) == {"@odata.context", "id", "displayName", "userPrincipalName"}


def test_seeded_directory_is_realistic(sandbox_tenant):
    assert sandbox_tenant.users[0].display_name == "Adele Vance"
    assert sandbox_tenant.users[0].upn == f"adele.vance@{sandbox_tenant.domain}"
    assert sandbox_tenant.admin_upn == f"admin@{sandbox_tenant.domain}"
    assert len(sandbox_tenant.users) == 12


def test_unknown_user_is_404_request_resource_not_found(graph):
    response = graph("/v1.0/users/nobody@example.com")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "Request_ResourceNotFound"
    assert error["message"].startswith("Resource 'nobody@example.com' does not exist")


def test_filters(graph, sandbox_tenant):
    first, second = sandbox_tenant.users[0], sandbox_tenant.users[1]
    eq = graph("/v1.0/users", **{"$filter": f"userPrincipalName eq '{first.upn}'"}).json()["value"]
    assert [u["id"] for u in eq] == [first.id]
    starts = graph("/v1.0/users", **{"$filter": "startswith(displayName,'adele')"}).json()["value"]
    assert [u["id"] for u in starts] == [first.id]
    in_list = graph("/v1.0/users", **{"$filter": f"id in ('{first.id}', '{second.id}')"}).json()["value"]
    assert {u["id"] for u in in_list} == {first.id, second.id}
    disabled = graph(
        "/v1.0/users", **{"$filter": "accountEnabled eq false", "$select": "id,accountEnabled"}
    ).json()
    assert disabled["value"] and all(u["accountEnabled"] is False for u in disabled["value"])
    both = graph(
        "/v1.0/users", **{"$filter": f"mail eq '{first.upn}' or displayName eq '{second.display_name}'"}
    )
    assert {u["id"] for u in both.json()["value"]} == {first.id, second.id}


def test_bad_queries_answer_graphs_errors(graph):
    unsupported = graph("/v1.0/users", **{"$filter": "aboutMe eq 'x'"})
    assert unsupported.status_code == 400
    assert unsupported.json()["error"]["code"] == "Request_UnsupportedQuery"
    syntax = graph("/v1.0/users", **{"$filter": "displayName eq"})
    assert syntax.status_code == 400
    assert syntax.json()["error"]["message"].startswith("Invalid filter clause")
    select = graph("/v1.0/users", **{"$select": "id,nosuch"})
    assert (
        select.json()["error"]["message"]
        == "Could not find a property named 'nosuch' on type 'microsoft.graph.user'."
    )
    top = graph("/v1.0/users", **{"$top": "1000"})
    assert top.status_code == 400
    assert "Must be between 1 and 999" in top.json()["error"]["message"]


def test_paging_follows_next_links_through_every_user(sandbox, http, creds, graph, sandbox_tenant):
    first = graph("/v1.0/users", **{"$top": "5", "$select": "id"})
    body = first.json()
    seen = [u["id"] for u in body["value"]]
    assert len(seen) == 5
    token = app_token(sandbox, http, creds)
    pages = 1
    while "@odata.nextLink" in body:
        assert "$top=5" in body["@odata.nextLink"]
        body = http.get(body["@odata.nextLink"], headers={"Authorization": f"Bearer {token}"}).json()
        seen += [u["id"] for u in body["value"]]
        pages += 1
    assert pages == 3  # 12 users + admin = 13
    # without ConsistencyLevel: eventual, Graph ignores $count=true (no @odata.count, no error)
    uncounted = graph("/v1.0/users", **{"$count": "true"})
    assert uncounted.status_code == 200
    assert "@odata.count" not in uncounted.json()
    assert len(seen) == len(set(seen)) == 13
    assert {u.id for u in sandbox_tenant.users} <= set(seen)


def test_user_readbasic_returns_basic_properties_only(sandbox, http, sandbox_tenant, key_pair):
    token = _token_with_roles(sandbox, http, sandbox_tenant, key_pair, ["User.ReadBasic.All"])
    user = sandbox_tenant.users[0]
    body = http.get(
        f"{sandbox.info.graph_url}/v1.0/users/{user.id}",
        params={"$select": "id,displayName,jobTitle,accountEnabled"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert body["displayName"] == user.display_name
    assert body["jobTitle"] is None
    assert body["accountEnabled"] is None


def test_no_directory_role_is_403(sandbox, http, sandbox_tenant, key_pair):
    token = _token_with_roles(sandbox, http, sandbox_tenant, key_pair, ["OnlineMeetings.ReadWrite.All"])
    for path in ("/v1.0/users", f"/v1.0/users/{sandbox_tenant.users[0].id}", "/v1.0/groups"):
        response = http.get(f"{sandbox.info.graph_url}{path}", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "Authorization_RequestDenied"
        assert response.json()["error"]["message"] == "Insufficient privileges to complete the operation."


def test_groups_members_and_transitive_members(graph, sandbox_tenant):
    groups = graph("/v1.0/groups").json()["value"]
    by_name = {g["displayName"]: g for g in groups}
    assert {"All Company", "Sales and Marketing", "Meeting Organizers", "Regional Managers"} <= set(by_name)
    regional = by_name["Regional Managers"]
    assert graph(f"/v1.0/groups/{regional['id']}").json()["displayName"] == "Regional Managers"
    direct = graph(f"/v1.0/groups/{regional['id']}/members").json()["value"]
    assert {m["@odata.type"] for m in direct} == {"#microsoft.graph.user", "#microsoft.graph.group"}
    assert [m["displayName"] for m in direct if m["@odata.type"] == "#microsoft.graph.group"] == [
        "Meeting Organizers"
    ]
    transitive = graph(f"/v1.0/groups/{regional['id']}/transitiveMembers", **{"$top": "3"})
    body = transitive.json()
    assert len(body["value"]) == 3 and "@odata.nextLink" in body
    everything = graph(f"/v1.0/groups/{regional['id']}/transitiveMembers", **{"$top": "999"}).json()["value"]
    names = {m["displayName"] for m in everything}
    # two levels of nesting: Regional Managers > Meeting Organizers > Sales and Marketing > Alex Wilber
    assert {"Meeting Organizers", "Sales and Marketing", "Alex Wilber"} <= names
    filtered = graph("/v1.0/groups", **{"$filter": "displayName eq 'all company'"}).json()["value"]
    assert [g["id"] for g in filtered] == [by_name["All Company"]["id"]]
    missing = graph("/v1.0/groups/00000000-0000-0000-0000-000000000000/members")
    assert missing.status_code == 404


def test_count_with_consistency_level(sandbox, http, creds, sandbox_tenant):
    token = app_token(sandbox, http, creds)
    response = http.get(
        f"{sandbox.info.graph_url}/v1.0/users",
        params={"$count": "true", "$filter": "accountEnabled eq true", "$top": "2"},
        headers={"Authorization": f"Bearer {token}", "ConsistencyLevel": "eventual"},
    )
    body = response.json()
    seeded = sandbox_tenant.control.tenant(sandbox_tenant.tenant_id)["users"]
    enabled = sum(1 for u in seeded if u["accountEnabled"]) + 1  # + the admin
    assert enabled < 13
    assert body["@odata.count"] == enabled
    assert len(body["value"]) == 2


def test_member_of_and_transitive_member_of(graph, sandbox_tenant):
    alex = sandbox_tenant.users[1]  # in Sales and Marketing, which is nested twice
    direct = graph(f"/v1.0/users/{alex.upn}/memberOf", **{"$select": "id,displayName"}).json()["value"]
    assert {g["displayName"] for g in direct} == {"All Company", "Sales and Marketing"}
    assert all(g["@odata.type"] == "#microsoft.graph.group" for g in direct)
    transitive = graph(f"/v1.0/users/{alex.id}/transitiveMemberOf").json()["value"]
    assert {g["displayName"] for g in transitive} == {
        "All Company", "Sales and Marketing", "Meeting Organizers", "Regional Managers",
    }  # fmt: skip
    assert graph("/v1.0/users/nobody@nowhere.test/memberOf").status_code == 404
