"""Administrative units: Graph's ``/directory/administrativeUnits`` reads and writes with their
permissions, the memberOf casts naming a user's units, the control API, and persistence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conftest import Hidden, acquire
from meetgate import certificates
from meetgate_sandbox.control import SandboxControlError
from meetgate_sandbox.state import AdministrativeUnit, Tenant

EVENTUAL = {"ConsistencyLevel": "eventual"}


@dataclass
class Graph:
    call: Callable[..., httpx.Response]
    tenant: dict[str, Any]
    control: Any

    def users(self) -> list[dict[str, Any]]:
        return list(self.tenant["users"])


@pytest.fixture(scope="module")
def graph(sandbox, sandbox_control, http, key_pair) -> Graph:
    tenant = sandbox_control.create_tenant(users=6, seed=3)
    certificate = certificates.certificate_pem(key_pair.certificate)
    credential = {
        "private_key": certificates.private_key_pem(key_pair.private_key).decode(),
        "thumbprint": key_pair.thumbprint_sha1,
    }
    tokens: dict[str, Hidden] = {}
    for label, roles in (
        ("reader", ["AdministrativeUnit.Read.All", "User.Read.All"]),
        ("writer", ["AdministrativeUnit.ReadWrite.All"]),
        ("none", ["User.Read.All"]),
    ):
        app = sandbox_control.register_app(
            tenant["tenantId"], f"AU {label}", certificate_pem=certificate, roles=roles
        )
        tokens[label] = Hidden(
            acquire(sandbox, http, tenant["tenantId"], app["appId"], credential)["access_token"]
        )

    def call(method: str, path: str, who: str = "reader", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[who]}", **kwargs.pop("headers", {})}
        return http.request(method, f"{sandbox.info.graph_url}/v1.0{path}", headers=headers, **kwargs)

    return Graph(call, tenant, sandbox_control)


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_create_add_members_list_and_get_through_graph(graph):
    created = graph.call(
        "POST",
        "/directory/administrativeUnits",
        "writer",
        json={"displayName": "Seattle District", "description": "Seattle", "visibility": "HiddenMembership"},
    )
    assert created.status_code == 201, created.text
    unit = created.json()
    assert unit["@odata.context"].endswith("/$metadata#directory/administrativeUnits/$entity")
    assert (unit["displayName"], unit["description"], unit["visibility"]) == (
        "Seattle District",
        "Seattle",
        "HiddenMembership",
    )
    first, second = graph.users()[:2]
    for user in (first, second):
        added = graph.call(
            "POST",
            f"/directory/administrativeUnits/{unit['id']}/members/$ref",
            "writer",
            json={"@odata.id": f"https://graph.microsoft.com/v1.0/users/{user['id']}"},
        )
        assert added.status_code == 204, added.text
    again = graph.call(
        "POST",
        f"/directory/administrativeUnits/{unit['id']}/members/$ref",
        "writer",
        json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{first['id']}"},
    )
    assert _error(again) == (400, "Request_BadRequest")
    got = graph.call("GET", f"/directory/administrativeUnits/{unit['id']}")
    assert got.status_code == 200 and got.json()["displayName"] == "Seattle District"
    listed = graph.call("GET", "/directory/administrativeUnits")
    assert unit["id"] in [item["id"] for item in listed.json()["value"]]
    filtered = graph.call(
        "GET", "/directory/administrativeUnits", params={"$filter": "displayName eq 'seattle district'"}
    )
    assert [item["id"] for item in filtered.json()["value"]] == [unit["id"]]
    wrong = graph.call("GET", "/directory/administrativeUnits", params={"$filter": "mail eq 'x'"})
    assert _error(wrong) == (400, "Request_UnsupportedQuery")
    members = graph.call("GET", f"/directory/administrativeUnits/{unit['id']}/members").json()["value"]
    assert [(m["@odata.type"], m["id"]) for m in members] == [
        ("#microsoft.graph.user", first["id"]),
        ("#microsoft.graph.user", second["id"]),
    ]
    removed = graph.call(
        "DELETE", f"/directory/administrativeUnits/{unit['id']}/members/{second['id']}/$ref", "writer"
    )
    assert removed.status_code == 204
    members = graph.call("GET", f"/directory/administrativeUnits/{unit['id']}/members").json()["value"]
    assert [m["id"] for m in members] == [first["id"]]


def test_permissions_and_unknown_units(graph):
    assert _error(graph.call("GET", "/directory/administrativeUnits", "none")) == (
        403,
        "Authorization_RequestDenied",
    )
    refused = graph.call("POST", "/directory/administrativeUnits", "reader", json={"displayName": "x"})
    assert _error(refused) == (403, "Authorization_RequestDenied")
    missing = "00000000-0000-0000-0000-000000000001"
    assert _error(graph.call("GET", f"/directory/administrativeUnits/{missing}")) == (
        404,
        "Request_ResourceNotFound",
    )
    bad = graph.call("POST", "/directory/administrativeUnits", "writer", json={"description": "no name"})
    assert _error(bad) == (400, "Request_BadRequest")


def test_member_of_casts_name_the_users_units(graph):
    user = graph.users()[3]
    unit = graph.control.request(
        "POST",
        f"/tenants/{graph.tenant['tenantId']}/administrative-units",
        json={"displayName": "Pilot", "members": [user["userPrincipalName"]]},
    )
    assert unit["memberIds"] == [user["id"]]
    for relation in ("memberOf", "transitiveMemberOf"):
        cast = graph.call("GET", f"/users/{user['id']}/{relation}/microsoft.graph.administrativeUnit")
        assert cast.status_code == 200, cast.text
        assert [(u["@odata.type"], u["id"]) for u in cast.json()["value"]] == [
            ("#microsoft.graph.administrativeUnit", unit["id"])
        ]
        counted = graph.call(
            "GET",
            f"/users/{user['id']}/{relation}/microsoft.graph.administrativeUnit/$count",
            headers=EVENTUAL,
        )
        assert counted.text == "1"
    other = graph.users()[4]
    assert (
        graph.call("GET", f"/users/{other['id']}/memberOf/microsoft.graph.administrativeUnit").json()["value"]
        == []
    )


def test_control_api_adds_removes_and_deletes(graph):
    base = f"/tenants/{graph.tenant['tenantId']}/administrative-units"
    unit = graph.control.request("POST", base, json={"displayName": "Control"})
    user = graph.users()[5]
    assert graph.control.request("POST", f"{base}/{unit['id']}/members", json={"id": user["id"]})[
        "memberIds"
    ] == [user["id"]]
    with pytest.raises(SandboxControlError) as refused:
        graph.control.request("POST", f"{base}/{unit['id']}/members", json={"id": user["id"]})
    assert refused.value.status == 400
    assert graph.control.request("DELETE", f"{base}/{unit['id']}/members/{user['id']}")["memberIds"] == []
    assert unit["id"] in [u["id"] for u in graph.control.request("GET", base)["value"]]
    graph.control.request("DELETE", f"{base}/{unit['id']}")
    with pytest.raises(SandboxControlError) as gone:
        graph.control.request("GET", f"{base}/{unit['id']}")
    assert gone.value.status == 404


def test_units_persist_with_the_tenant():
    tenant = Tenant("t", "contoso.onmicrosoft.com", "Contoso")
    tenant.administrative_units["u1"] = AdministrativeUnit("u1", "Pilot", "d", None, ["a", "b"])
    loaded = Tenant.from_dict(tenant.to_dict())
    assert loaded.administrative_units["u1"] == tenant.administrative_units["u1"]
    assert [unit.id for unit in loaded.administrative_units_of("b")] == ["u1"]
