"""Graph's advanced queries on the directory: what needs ``ConsistencyLevel: eventual`` (and
``$count=true``), what is refused without, and with Graph's words; ``$search``, ``$orderby``, lambda
filters, casts and ``$count`` segments on memberOf, unknown segments, and the documented properties."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conftest import Hidden, acquire
from meetgate import certificates
from meetgate_sandbox.directory_schema import DEFAULT_GROUP_PROPERTIES
from meetgate_sandbox.odata import ADVANCED_QUERIES_URL

EVENTUAL = {"ConsistencyLevel": "eventual"}


def needs_advanced(operator: str) -> str:
    return (
        f"Operator '{operator}' is not supported because the required parameters might be missing. "
        "Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
        f"Refer to {ADVANCED_QUERIES_URL} for more information"
    )


@dataclass
class Directory:
    get: Callable[..., httpx.Response]
    tenant: dict[str, Any]
    #: a delegated token (User.Read) for a user id
    delegated: Callable[[str], str]

    def user(self, display_name: str) -> dict[str, Any]:
        return next(u for u in self.tenant["users"] if u["displayName"] == display_name)

    def group(self, display_name: str) -> str:
        return next(str(g["id"]) for g in self.tenant["groups"] if g["displayName"] == display_name)


@pytest.fixture(scope="module")
def directory(sandbox, sandbox_control, http, key_pair) -> Directory:
    tenant = sandbox_control.create_tenant(users=12, seed=7)
    app = sandbox_control.register_app(
        tenant["tenantId"],
        "Advanced queries",
        certificate_pem=certificates.certificate_pem(key_pair.certificate),
        roles=["User.Read.All", "Group.Read.All"],
    )
    credential = {
        "private_key": certificates.private_key_pem(key_pair.private_key).decode(),
        "thumbprint": key_pair.thumbprint_sha1,
    }
    result = acquire(sandbox, http, tenant["tenantId"], app["appId"], credential)
    token = Hidden(result["access_token"])

    def get(path: str, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
        sent = {"Authorization": f"Bearer {token}", **(headers or {})}
        return http.get(f"{sandbox.info.graph_url}/v1.0{path}", params=params, headers=sent)

    def delegated(user_id: str) -> str:
        return Hidden(
            sandbox_control.delegated_token(tenant["tenantId"], user_id, app["appId"], ["User.Read"])
        )

    return Directory(get, tenant, delegated)


def _error(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def _names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["displayName"] for item in response.json()["value"]]


# --- $filter: ne, not, endsWith are advanced ------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "operator"),
    [
        ("accountEnabled ne true", "ne"),
        ("not(accountEnabled eq true)", "not"),
        ("not startswith(displayName,'a')", "not"),
        ("endswith(mail,'@example.com')", "endsWith"),
    ],
)
def test_advanced_operators_are_refused_without_both_parameters(directory, expression, operator):
    expected = (400, "Request_UnsupportedQuery", needs_advanced(operator))
    assert _error(directory.get("/users", **{"$filter": expression})) == expected
    # the header alone is not enough, nor $count=true alone
    assert _error(directory.get("/users", EVENTUAL, **{"$filter": expression})) == expected
    assert _error(directory.get("/users", **{"$filter": expression, "$count": "true"})) == expected


def test_advanced_operators_work_with_both_parameters(directory):
    def advanced(expression: str) -> list[str]:
        return _names(directory.get("/users", EVENTUAL, **{"$filter": expression, "$count": "true"}))

    everyone = advanced("accountEnabled eq true or accountEnabled eq false")
    disabled = _names(directory.get("/users", **{"$filter": "accountEnabled eq false"}))
    assert sorted(advanced("accountEnabled ne true")) == sorted(disabled)
    assert "Adele Vance" not in advanced("not startswith(displayName,'adele')")
    assert len(advanced("not startswith(displayName,'adele')")) == len(everyone) - 1
    domain = directory.tenant["domain"]
    assert sorted(advanced(f"endswith(mail,'@{domain.upper()}')")) == sorted(everyone)
    assert advanced("endswith(userPrincipalName,'vance@" + domain + "')") == ["Adele Vance"]


def test_a_count_segment_stands_for_count_true(directory):
    domain = directory.tenant["domain"]
    counted = directory.get("/users/$count", EVENTUAL, **{"$filter": f"endswith(mail,'@{domain}')"})
    everyone = directory.get("/users", **{"$top": "999"}).json()["value"]
    assert (counted.status_code, counted.text) == (200, str(len(everyone)))
    regional = directory.group("Regional Managers")
    members = {"$filter": "startswith(displayName,'meeting')"}
    assert directory.get(f"/groups/{regional}/members/$count", EVENTUAL, **members).text == "1"


def test_endswith_takes_only_the_documented_properties(directory):
    response = directory.get("/users", EVENTUAL, **{"$filter": "endswith(displayName,'e')", "$count": "true"})
    assert _error(response) == (
        400,
        "Request_UnsupportedQuery",
        "Unsupported or invalid query filter clause specified for property 'displayName' of resource 'User'.",
    )


def test_lambda_any_on_collections(directory):
    unified = directory.get("/groups", **{"$filter": "groupTypes/any(c:c eq 'Unified')"})
    assert _names(unified) == ["All Company"]
    everyone = _names(directory.get("/users", **{"$top": "999"}))
    smtp = directory.get(
        "/users", **{"$filter": "proxyAddresses/any(x:startswith(x,'smtp:'))", "$top": "999"}
    )
    assert sorted(_names(smtp)) == sorted(everyone)
    adele = directory.user("Adele Vance")
    by_im = directory.get("/users", **{"$filter": f"imAddresses/any(i:i eq '{adele['userPrincipalName']}')"})
    assert _names(by_im) == ["Adele Vance"]
    assert _names(directory.get("/users", **{"$filter": "otherMails/any(m:m eq 'x@example.com')"})) == []
    # not on a lambda is advanced, like every not
    negated = {"$filter": "not groupTypes/any(c:c eq 'Unified')", "$count": "true"}
    assert "All Company" not in _names(directory.get("/groups", EVENTUAL, **negated))


def test_collections_need_a_lambda_and_lambdas_need_collections(directory):
    for path, expression, prop, resource in (
        ("/groups", "groupTypes eq 'Unified'", "groupTypes", "Group"),
        ("/users", "displayName/any(c:c eq 'x')", "displayName", "User"),
    ):
        assert _error(directory.get(path, **{"$filter": expression})) == (
            400,
            "Request_UnsupportedQuery",
            f"Unsupported or invalid query filter clause specified for property '{prop}' of resource "
            f"'{resource}'.",
        )


# --- $search -------------------------------------------------------------------------------------


def test_search_needs_eventual_consistency(directory):
    response = directory.get("/users", **{"$search": '"displayName:adele"'})
    assert _error(response) == (
        400,
        "Request_UnsupportedQuery",
        "Request with $search query parameter only works through MSGraph with a special request header: "
        "'ConsistencyLevel: eventual'",
    )


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ('"displayName:vance"', ["Adele Vance"]),
        ('"displayName:ADELE"', ["Adele Vance"]),
        ('"displayName:wil"', ["Alex Wilber"]),  # each word of the value starts with a searched token
        ('"displayName:ilber"', []),  # not a substring match
        ('"displayName:vance adele"', ["Adele Vance"]),  # tokens in any order
        ('"displayName:adele" AND "displayName:wilber"', []),
        ('"displayName:adele" OR "displayName:wilber"', ["Adele Vance", "Alex Wilber"]),
        ('("displayName:adele" OR "displayName:alex") AND "jobTitle:retail"', ["Adele Vance"]),
        ('"mail:adele.v"', ["Adele Vance"]),  # other properties: startsWith
    ],
)
def test_search_users(directory, search, expected):
    query = {"$search": search, "$orderby": "displayName", "$count": "true"}
    found = directory.get("/users", EVENTUAL, **query)
    assert _names(found) == expected


def test_search_groups_by_description_and_with_filter(directory):
    found = directory.get("/groups", EVENTUAL, **{"$search": '"description:engineers"'})
    assert _names(found) == ["Customer Support"]
    both = {"$search": '"displayName:company"', "$filter": "mailEnabled eq true"}
    assert _names(directory.get("/groups", EVENTUAL, **both)) == ["All Company"]


def test_search_syntax_errors(directory):
    for search in ('"displayName:adele" and "displayName:x"', "displayName:adele", '"adele"'):
        response = directory.get("/users", EVENTUAL, **{"$search": search})
        assert response.status_code == 400, search
        assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


# --- $orderby ------------------------------------------------------------------------------------


def test_orderby_display_name_and_upn_by_default(directory):
    names = _names(directory.get("/users", **{"$orderby": "displayName", "$top": "999"}))
    assert names == sorted(names, key=str.lower)
    descending = _names(directory.get("/users", **{"$orderby": "displayName desc", "$top": "999"}))
    assert descending == names[::-1]
    upns = directory.get("/users", **{"$orderby": "userPrincipalName", "$select": "userPrincipalName"})
    listed = [u["userPrincipalName"] for u in upns.json()["value"]]
    assert listed == sorted(listed, key=str.lower)
    groups = _names(directory.get("/groups", **{"$orderby": "displayName"}))
    assert groups == sorted(groups, key=str.lower)


def test_orderby_refusals(directory):
    sorting = (400, "Request_UnsupportedQuery", "Sorting not supported for current query.")
    with_filter = {"$orderby": "displayName", "$filter": "accountEnabled eq true"}
    assert _error(directory.get("/users", **with_filter)) == sorting
    assert directory.get("/users", EVENTUAL, **with_filter, **{"$count": "true"}).status_code == 200
    with_search = {"$orderby": "displayName", "$search": '"displayName:a"'}
    assert _error(directory.get("/users", EVENTUAL, **with_search)) == sorting
    assert directory.get("/users", EVENTUAL, **with_search, **{"$count": "true"}).status_code == 200
    assert _error(directory.get("/users", **{"$orderby": "createdDateTime"})) == sorting  # advanced only
    assert directory.get("/users", EVENTUAL, **{"$orderby": "createdDateTime", "$count": "true"}).is_success
    assert _error(directory.get("/users", **{"$orderby": "jobTitle"})) == sorting


def test_next_links_keep_filter_search_and_order(directory):
    query = {
        "$search": '"displayName:a" OR "displayName:l" OR "displayName:m"',
        "$filter": "accountEnabled eq true",
        "$orderby": "displayName desc",
        "$count": "true",
        "$top": "2",
    }
    first = directory.get("/users", EVENTUAL, **query)
    body = first.json()
    names = [u["displayName"] for u in body["value"]]
    total = body["@odata.count"]
    while "@odata.nextLink" in body:
        link = httpx.URL(body["@odata.nextLink"])
        assert link.params["$orderby"] == "displayName desc" and link.params["$search"] == query["$search"]
        params = dict(link.params)
        body = directory.get("/users", EVENTUAL, **params).json()
        names += [u["displayName"] for u in body["value"]]
    assert len(names) == total > 2
    assert names == sorted(names, key=str.lower, reverse=True)


def test_count_true_without_the_header_is_ignored(directory):
    response = directory.get("/users", **{"$count": "true", "$top": "1"})
    assert response.status_code == 200
    assert "@odata.count" not in response.json()


# --- casts and $count on relationships -----------------------------------------------------------


def test_member_of_casts_and_counts(directory):
    alex = directory.user("Alex Wilber")["id"]  # in Sales and Marketing, nested twice
    groups = directory.get(f"/users/{alex}/transitiveMemberOf/microsoft.graph.group")
    assert groups.json()["@odata.context"].endswith("/$metadata#groups")
    assert len(_names(groups)) == 4
    for relation, expected in (("memberOf", 2), ("transitiveMemberOf", 4)):
        for cast in ("", "/microsoft.graph.group"):
            counted = directory.get(f"/users/{alex}/{relation}{cast}/$count", EVENTUAL)
            assert (counted.status_code, counted.text) == (200, str(expected))
            assert counted.headers["content-type"].startswith("text/plain")
            refused = directory.get(f"/users/{alex}/{relation}{cast}/$count")
            assert _error(refused) == (400, "Request_BadRequest", "$count is not currently supported.")
        # Alex holds no directory role, and a seeded tenant has no administrative units: nothing in them
        for kind in ("directoryRole", "administrativeUnit"):
            assert _names(directory.get(f"/users/{alex}/{relation}/microsoft.graph.{kind}")) == []
    assert _error(directory.get(f"/users/{alex}/memberOf/microsoft.graph.user")) == (
        400,
        "BadRequest",
        "Resource not found for the segment 'microsoft.graph.user'.",
    )


def test_member_of_cast_to_directory_roles(directory):
    admin = directory.tenant["adminId"]
    for relation in ("memberOf", "transitiveMemberOf"):
        roles = directory.get(f"/users/{admin}/{relation}/microsoft.graph.directoryRole")
        assert roles.json()["@odata.context"].endswith("/$metadata#directoryRoles")
        assert [(r["@odata.type"], r["displayName"]) for r in roles.json()["value"]] == [
            ("#microsoft.graph.directoryRole", "Global Administrator")
        ]
        counted = directory.get(f"/users/{admin}/{relation}/microsoft.graph.directoryRole/$count", EVENTUAL)
        assert counted.text == "1"


def test_me_member_of_for_a_signed_in_user(directory):
    alex = directory.user("Alex Wilber")["id"]
    token = directory.delegated(alex)
    own = {"Authorization": f"Bearer {token}", **EVENTUAL}
    found = directory.get("/me/transitiveMemberOf/microsoft.graph.group", own, **{"$count": "true"})
    assert found.json()["@odata.count"] == 4
    assert directory.get("/me/memberOf/$count", own).text == "2"
    assert _error(directory.get("/me/memberOf")) == (
        400,
        "BadRequest",
        "/me request is only valid with delegated authentication flow.",
    )
    # User.Read reads one's own memberships, not another user's
    adele = directory.user("Adele Vance")["id"]
    other = directory.get(f"/users/{adele}/memberOf", {"Authorization": f"Bearer {token}"})
    assert other.status_code == 403


def test_member_of_search_filter_and_select_after_a_cast(directory):
    alex = directory.user("Alex Wilber")["id"]
    query = {"$search": '"displayName:managers"', "$select": "displayName,id", "$count": "true"}
    found = directory.get(f"/users/{alex}/transitiveMemberOf/microsoft.graph.group", EVENTUAL, **query)
    assert found.json()["@odata.context"].endswith("/$metadata#groups(displayName,id)")
    assert found.json()["@odata.count"] == 1
    assert found.json()["value"] == [
        {
            "@odata.type": "#microsoft.graph.group",
            "displayName": "Regional Managers",
            "id": directory.group("Regional Managers"),
        }
    ]


def test_member_counts_after_a_cast(directory):
    regional = directory.group("Regional Managers")
    users = _names(directory.get(f"/groups/{regional}/transitiveMembers/microsoft.graph.user"))
    counted = directory.get(f"/groups/{regional}/transitiveMembers/microsoft.graph.user/$count", EVENTUAL)
    assert counted.text == str(len(users))
    direct_groups = directory.get(f"/groups/{regional}/members/microsoft.graph.group/$count", EVENTUAL)
    assert direct_groups.text == "1"  # Meeting Organizers
    assert directory.get(f"/groups/{regional}/members/microsoft.graph.user/$count").status_code == 400


def test_filter_on_members_is_an_advanced_query(directory):
    regional = directory.group("Regional Managers")
    query = {"$filter": "startswith(displayName,'meeting')"}
    refused = (
        400,
        "Request_UnsupportedQuery",
        "The specified filter to the reference property query is currently not supported.",
    )
    assert _error(directory.get(f"/groups/{regional}/members", **query)) == refused
    assert _error(directory.get(f"/groups/{regional}/members", EVENTUAL, **query)) == refused
    found = directory.get(f"/groups/{regional}/members", EVENTUAL, **query, **{"$count": "true"})
    assert _names(found) == ["Meeting Organizers"]
    assert found.json()["@odata.count"] == 1


def test_member_casts_in_advanced_queries_carry_directory_ids(directory):
    regional = directory.group("Regional Managers")
    found = directory.get(
        f"/groups/{regional}/transitiveMembers/microsoft.graph.group", EVENTUAL, **{"$count": "true"}
    )
    group = found.json()["value"][0]
    assert group["organizationId"] == directory.tenant["tenantId"]
    assert group["@odata.id"].endswith(
        f"/v2/{directory.tenant['tenantId']}/directoryObjects/{group['id']}/Microsoft.DirectoryServices.Group"
    )
    plain = directory.get(f"/groups/{regional}/transitiveMembers/microsoft.graph.group").json()["value"][0]
    assert "@odata.id" not in plain and "organizationId" not in plain


# --- unknown segments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "segment"),
    [
        ("/nosuch", "nosuch"),
        ("/nosuch/deeper", "nosuch"),
        ("/users/{user}/xyz", "xyz"),
        ("/groups/{group}/members/$count/extra", "extra"),
    ],
)
def test_unknown_segment_is_named(directory, path, segment):
    path = path.format(user=directory.user("Adele Vance")["id"], group=directory.group("All Company"))
    assert _error(directory.get(path)) == (
        400,
        "BadRequest",
        f"Resource not found for the segment '{segment}'.",
    )


# --- documented properties -----------------------------------------------------------------------


def test_user_address_and_other_documented_properties(directory):
    adele = directory.user("Adele Vance")["id"]
    fields = "displayName,givenName,postalCode,city,country,streetAddress,employeeId,onPremisesSyncEnabled"
    body = directory.get(f"/users/{adele}", **{"$select": fields}).json()
    assert body["postalCode"] == "98052" and body["city"] == "Redmond"
    assert body["country"] == "United States" and body["streetAddress"] == "One Microsoft Way"
    assert body["employeeId"] is None and body["onPremisesSyncEnabled"] is None
    identities = directory.get(f"/users/{adele}", **{"$select": "identities,proxyAddresses"}).json()
    upn = directory.user("Adele Vance")["userPrincipalName"]
    assert identities["proxyAddresses"] == [f"SMTP:{upn}"]
    assert identities["identities"][0]["issuerAssignedId"] == upn


def test_groups_default_and_full_property_sets(directory):
    listed = directory.get("/groups").json()["value"]
    assert all(list(g) == list(DEFAULT_GROUP_PROPERTIES) for g in listed)
    everyone = next(g for g in listed if g["displayName"] == "All Company")
    assert everyone["proxyAddresses"] == [f"SMTP:{everyone['mail']}"]
    assert everyone["securityIdentifier"].startswith("S-1-12-1-")
    assert everyone["renewedDateTime"] == everyone["createdDateTime"]
    assert everyone["resourceBehaviorOptions"] == [] and everyone["onPremisesProvisioningErrors"] == []


def test_exchange_backed_group_properties(directory):
    exchange = "allowExternalSenders,autoSubscribeNewMembers,isSubscribedByMail,unseenCount"
    everyone = directory.get(f"/groups/{directory.group('All Company')}", **{"$select": exchange})
    assert everyone.status_code == 200
    body = everyone.json()
    assert body["@odata.context"].endswith(f"$metadata#groups({exchange})/$entity")
    assert {k: v for k, v in body.items() if not k.startswith("@")} == {
        "id": directory.group("All Company"),
        "allowExternalSenders": False,
        "autoSubscribeNewMembers": False,
        "isSubscribedByMail": False,
        "unseenCount": 0,
    }
    # a security group has no mailbox; and lists do not serve these properties at all
    security = directory.get(f"/groups/{directory.group('Regional Managers')}", **{"$select": exchange})
    assert _error(security) == (
        404,
        "MailboxNotEnabledForRESTAPI",
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
    )
    listed = directory.get("/groups", **{"$select": "displayName,unseenCount"})
    assert _error(listed) == (501, "NotImplemented", "This operation target is not yet supported.")
