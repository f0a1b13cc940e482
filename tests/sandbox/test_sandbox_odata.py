"""OData fidelity: ``$count`` as a path segment on directory collections."""

from __future__ import annotations

from conftest import app_token


def test_users_count_segment_needs_eventual_consistency(sandbox, http, creds, sandbox_tenant):
    token = app_token(sandbox, http, creds)
    url = f"{sandbox.info.graph_url}/v1.0/users/$count"
    plain = http.get(url, headers={"Authorization": f"Bearer {token}"})
    assert plain.status_code == 400
    assert plain.json()["error"]["code"] == "Request_BadRequest"
    assert plain.json()["error"]["message"] == "$count is not currently supported."
    counted = http.get(url, headers={"Authorization": f"Bearer {token}", "ConsistencyLevel": "eventual"})
    assert counted.status_code == 200
    assert counted.headers["content-type"].startswith("text/plain")
    assert int(counted.text) >= len(sandbox_tenant.users)


def test_group_members_count_segments(sandbox, http, creds):
    token = app_token(sandbox, http, creds)
    base = sandbox.info.graph_url
    auth = {"Authorization": f"Bearer {token}"}
    groups = http.get(f"{base}/v1.0/groups", headers=auth).json()["value"]
    regional = next(g for g in groups if g["displayName"] == "Regional Managers")
    eventual = {**auth, "ConsistencyLevel": "eventual"}
    for segment in ("members", "transitiveMembers"):
        listed = http.get(
            f"{base}/v1.0/groups/{regional['id']}/{segment}", headers=auth, params={"$top": "999"}
        )
        counted = http.get(f"{base}/v1.0/groups/{regional['id']}/{segment}/$count", headers=eventual)
        assert counted.status_code == 200
        assert int(counted.text) == len(listed.json()["value"])
        assert (
            http.get(f"{base}/v1.0/groups/{regional['id']}/{segment}/$count", headers=auth).status_code == 400
        )


def test_path_segments_are_case_insensitive(sandbox, http, creds, sandbox_tenant):
    token = app_token(sandbox, http, creds)
    auth = {"Authorization": f"Bearer {token}"}
    base = sandbox.info.graph_url
    assert http.get(f"{base}/v1.0/Users", headers=auth).status_code == 200
    user = sandbox_tenant.users[0]
    assert http.get(f"{base}/v1.0/USERS/{user.id}/memberof", headers=auth).status_code == 200


def test_member_type_cast_segments(sandbox, http, creds):
    token = app_token(sandbox, http, creds)
    auth = {"Authorization": f"Bearer {token}"}
    base = sandbox.info.graph_url
    groups = http.get(f"{base}/v1.0/groups", headers=auth).json()["value"]
    regional = next(g for g in groups if g["displayName"] == "Regional Managers")
    users = http.get(
        f"{base}/v1.0/groups/{regional['id']}/transitiveMembers/microsoft.graph.user", headers=auth
    )
    assert users.status_code == 200
    assert {m["@odata.type"] for m in users.json()["value"]} == {"#microsoft.graph.user"}
    nested = http.get(f"{base}/v1.0/groups/{regional['id']}/members/microsoft.graph.group", headers=auth)
    assert [m["displayName"] for m in nested.json()["value"]] == ["Meeting Organizers"]
