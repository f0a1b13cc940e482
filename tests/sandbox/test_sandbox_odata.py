"""OData fidelity: ``$count`` as a path segment on directory collections."""

from __future__ import annotations

from conftest import app_token


def test_users_count_segment_needs_eventual_consistency(sandbox, http, creds, sandbox_tenant):
    token = app_token(sandbox, http, creds)
    url = f"{sandbox.info.graph_url}/v1.0/users/$count"
    plain = http.get(url, headers={"Authorization": f"Bearer {token}"})
    assert plain.status_code == 400
    assert plain.json()["error"]["code"] == "Request_BadRequest"
    counted = http.get(url, headers={"Authorization": f"Bearer {token}", "ConsistencyLevel": "eventual"})
    assert counted.status_code == 200
    assert counted.headers["content-type"].startswith("text/plain")
    assert int(counted.text) >= len(sandbox_tenant.users)
