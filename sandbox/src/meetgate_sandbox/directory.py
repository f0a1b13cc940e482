"""Directory reads as Graph serves them: users, ``/me``, groups and (transitive) members.

Permission checks follow Graph: app-only callers need User.ReadBasic.All (basic properties only),
User.Read.All or Directory.Read.All for users, and Group.Read.All / GroupMember.Read.All /
Directory.Read.All for groups; otherwise 403 ``Authorization_RequestDenied``. ``/me`` needs a
delegated token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox import odata
from meetgate_sandbox.http import Caller, GraphErrorResponse, caller_of
from meetgate_sandbox.runtime import caller_tenant
from meetgate_sandbox.state import (
    BASIC_USER_PROPERTIES,
    DEFAULT_GROUP_PROPERTIES,
    DEFAULT_USER_PROPERTIES,
    Group,
    Tenant,
    User,
)

T = TypeVar("T")

#: what Graph sends for OData JSON
ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)


class ODataResponse(JSONResponse):
    media_type = ODATA_JSON


USER_FULL_ROLES = frozenset(
    {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
USER_BASIC_ROLES = frozenset({"User.ReadBasic.All"})
GROUP_ROLES = frozenset(
    {
        "Group.Read.All",
        "Group.ReadWrite.All",
        "GroupMember.Read.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
USER_FILTERABLE = {
    p: p
    for p in (
        "id",
        "userPrincipalName",
        "mail",
        "displayName",
        "accountEnabled",
        "givenName",
        "surname",
        "jobTitle",
        "department",
        "userType",
        "mailNickname",
        "usageLocation",
    )
}
GROUP_FILTERABLE = {
    p: p for p in ("id", "displayName", "mailNickname", "mail", "securityEnabled", "mailEnabled")
}
_ALL_USER_PROPERTIES = tuple(
    User(id="", display_name="", given_name="", surname="", user_principal_name="x@y").to_graph()
)
_ALL_GROUP_PROPERTIES = DEFAULT_GROUP_PROPERTIES


def denied() -> GraphErrorResponse:
    return GraphErrorResponse(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def _tenant(request: Request, caller: Caller) -> Tenant:
    return caller_tenant(request)[1]


def user_access(caller: Caller) -> str | None:
    """``full``, ``basic`` or None (no permission to read other users)."""
    granted = caller.roles if caller.is_app_only else caller.scopes
    if granted & USER_FULL_ROLES:
        return "full"
    if granted & USER_BASIC_ROLES:
        return "basic"
    return None


def _project(
    item: dict[str, Any], select: Sequence[str] | None, default: Sequence[str], basic: bool
) -> dict[str, Any]:
    keys = select or default
    return {k: (item.get(k) if not basic or k in BASIC_USER_PROPERTIES else None) for k in keys}


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _version(request: Request) -> str:
    return request.url.path.split("/", 2)[1]


def _context(request: Request, entity_set: str, select: Sequence[str] | None, single: bool = False) -> str:
    suffix = f"({','.join(select)})" if select else ""
    return (
        f"{_base(request)}/{_version(request)}/$metadata#{entity_set}{suffix}{'/$entity' if single else ''}"
    )


def _page(
    request: Request,
    items: Sequence[T],
    context: str,
    view: Callable[[T], dict[str, Any]],
) -> Response:
    """One page of ``items`` (only the page is rendered through ``view``), with Graph's next link."""
    params = request.query_params
    top = odata.parse_top(params.get("$top"))
    offset = odata.decode_skiptoken(params.get("$skiptoken"))
    body: dict[str, Any] = {"@odata.context": context}
    if params.get("$count", "").lower() == "true":
        # directory objects count only with advanced queries (Graph answers this text without the header)
        if request.headers.get("consistencylevel", "").lower() != "eventual":
            raise GraphErrorResponse(400, "Request_BadRequest", "$count is not currently supported.")
        body["@odata.count"] = len(items)
    if offset + top < len(items):
        body["@odata.nextLink"] = odata.next_link(
            _base(request), request.url.path, dict(params), offset + top
        )
    body["value"] = [view(item) for item in items[offset : offset + top]]
    return ODataResponse(body)


def _not_found(key: str) -> GraphErrorResponse:
    return GraphErrorResponse(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


# --- users ----------------------------------------------------------------------------------------


async def list_users(request: Request) -> Response:
    caller = caller_of(request)
    access = user_access(caller)
    if access is None:
        raise denied()
    tenant = _tenant(request, caller)
    params = request.query_params
    predicate = odata.parse_filter(params.get("$filter"), USER_FILTERABLE, "User")
    select = odata.parse_select(params.get("$select"), _ALL_USER_PROPERTIES, "microsoft.graph.user")
    users = [u for u in tenant.users.values() if predicate is None or predicate(u.to_graph())]
    return _page(
        request,
        users,
        _context(request, "users", select),
        lambda user: _project(user.to_graph(), select, DEFAULT_USER_PROPERTIES, access == "basic"),
    )


def _require_advanced_query(request: Request) -> None:
    """``$count`` segments are advanced queries: Graph answers them only with ``ConsistencyLevel: eventual``."""
    if request.headers.get("consistencylevel", "").lower() != "eventual":
        raise GraphErrorResponse(400, "Request_BadRequest", "$count is not currently supported.")


async def count_users(request: Request) -> Response:
    """``GET /users/$count``: the number of matching users as text (advanced queries only)."""
    caller = caller_of(request)
    if user_access(caller) is None:
        raise denied()
    _require_advanced_query(request)
    tenant = _tenant(request, caller)
    predicate = odata.parse_filter(request.query_params.get("$filter"), USER_FILTERABLE, "User")
    count = sum(1 for u in tenant.users.values() if predicate is None or predicate(u.to_graph()))
    return PlainTextResponse(str(count))


def _one_user(request: Request, caller: Caller, user: User) -> Response:
    select = odata.parse_select(
        request.query_params.get("$select"), _ALL_USER_PROPERTIES, "microsoft.graph.user"
    )
    basic = user_access(caller) == "basic" and caller.delegated_user_id != user.id
    body: dict[str, Any] = {"@odata.context": _context(request, "users", select, single=True)}
    body.update(_project(user.to_graph(), select, DEFAULT_USER_PROPERTIES, basic))
    return ODataResponse(body)


async def get_user(request: Request) -> Response:
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    key = request.path_params["user"]
    user = tenant.find_user(key)
    if user is not None and caller.delegated_user_id == user.id and "User.Read" in caller.scopes:
        return _one_user(request, caller, user)
    if user_access(caller) is None:
        raise denied()
    if user is None:
        raise _not_found(key)
    return _one_user(request, caller, user)


async def me(request: Request) -> Response:
    caller = caller_of(request)
    if caller.is_app_only:
        raise GraphErrorResponse(
            400, "BadRequest", "/me request is only valid with delegated authentication flow."
        )
    tenant = _tenant(request, caller)
    user = tenant.users.get(caller.delegated_user_id or "")
    if user is None:
        raise _not_found(caller.delegated_user_id or "")
    if not caller.scopes & {"User.Read", "User.ReadWrite", *USER_FULL_ROLES, *USER_BASIC_ROLES}:
        raise denied()
    return _one_user(request, caller, user)


# --- groups ---------------------------------------------------------------------------------------


def _require_groups(caller: Caller) -> None:
    granted = caller.roles if caller.is_app_only else caller.scopes
    if not granted & GROUP_ROLES:
        raise denied()


def _group(request: Request, tenant: Tenant) -> Group:
    key = request.path_params["group"]
    group = tenant.groups.get(key.lower())
    if group is None:
        raise _not_found(key)
    return group


async def list_groups(request: Request) -> Response:
    caller = caller_of(request)
    _require_groups(caller)
    tenant = _tenant(request, caller)
    params = request.query_params
    predicate = odata.parse_filter(params.get("$filter"), GROUP_FILTERABLE, "Group")
    select = odata.parse_select(params.get("$select"), _ALL_GROUP_PROPERTIES, "microsoft.graph.group")
    groups = [g for g in tenant.groups.values() if predicate is None or predicate(g.to_graph(tenant.domain))]

    def view(group: Group) -> dict[str, Any]:
        data = group.to_graph(tenant.domain)
        return {k: data.get(k) for k in (select or DEFAULT_GROUP_PROPERTIES)}

    return _page(request, groups, _context(request, "groups", select), view)


async def get_group(request: Request) -> Response:
    caller = caller_of(request)
    _require_groups(caller)
    tenant = _tenant(request, caller)
    group = _group(request, tenant)
    select = odata.parse_select(
        request.query_params.get("$select"), _ALL_GROUP_PROPERTIES, "microsoft.graph.group"
    )
    data = group.to_graph(tenant.domain)
    body: dict[str, Any] = {"@odata.context": _context(request, "groups", select, single=True)}
    body.update({k: data.get(k) for k in (select or DEFAULT_GROUP_PROPERTIES)})
    return ODataResponse(body)


def _member_view(
    tenant: Tenant, member: User | Group, select: Sequence[str] | None, basic: bool
) -> dict[str, Any]:
    if isinstance(member, User):
        data = _project(member.to_graph(), select, DEFAULT_USER_PROPERTIES, basic)
        return {"@odata.type": "#microsoft.graph.user", **data}
    group_data = member.to_graph(tenant.domain)
    return {
        "@odata.type": "#microsoft.graph.group",
        **{k: group_data.get(k) for k in (select or DEFAULT_GROUP_PROPERTIES)},
    }


def _cast(request: Request, members: Sequence[User | Group]) -> list[User | Group]:
    """Keep only the members of an OData type-cast segment (``.../microsoft.graph.user``), if any."""
    kind = request.path_params.get("kind")
    if kind is None:
        return list(members)
    if kind.lower() == "user":
        return [m for m in members if isinstance(m, User)]
    if kind.lower() == "group":
        return [m for m in members if isinstance(m, Group)]
    raise GraphErrorResponse(
        400, "BadRequest", f"Resource not found for the segment 'microsoft.graph.{kind}'."
    )


async def _members(request: Request, transitive: bool) -> Response:
    caller = caller_of(request)
    _require_groups(caller)
    tenant = _tenant(request, caller)
    group = _group(request, tenant)
    params = request.query_params
    if params.get("$filter") is not None:
        raise GraphErrorResponse(
            400,
            "Request_UnsupportedQuery",
            "Filtering group members needs the advanced query capabilities (ConsistencyLevel: eventual), "
            "which the sandbox does not emulate.",
        )
    known = tuple(dict.fromkeys([*_ALL_USER_PROPERTIES, *_ALL_GROUP_PROPERTIES]))
    select = odata.parse_select(params.get("$select"), known, "microsoft.graph.directoryObject")
    members = tenant.transitive_members(group) if transitive else tenant.direct_members(group)
    members = _cast(request, members)
    basic = user_access(caller) != "full"
    return _page(
        request,
        members,
        _context(request, "directoryObjects", select),
        lambda member: _member_view(tenant, member, select, basic),
    )


async def _count_members(request: Request, transitive: bool) -> Response:
    """``/groups/{id}/members/$count`` and ``/transitiveMembers/$count`` (advanced queries only)."""
    caller = caller_of(request)
    _require_groups(caller)
    tenant = _tenant(request, caller)
    group = _group(request, tenant)
    _require_advanced_query(request)
    members = tenant.transitive_members(group) if transitive else tenant.direct_members(group)
    return PlainTextResponse(str(len(members)))


async def group_members_count(request: Request) -> Response:
    return await _count_members(request, transitive=False)


async def group_transitive_members_count(request: Request) -> Response:
    return await _count_members(request, transitive=True)


async def _member_of(request: Request, transitive: bool) -> Response:
    """``/users/{id}/memberOf`` and ``/transitiveMemberOf``: the groups a user is in."""
    caller, tenant = caller_tenant(request)
    granted = caller.roles if caller.is_app_only else caller.scopes
    if not granted & (GROUP_ROLES | USER_FULL_ROLES):
        raise denied()
    key = request.path_params["user"]
    user = tenant.find_user(key)
    if user is None:
        raise _not_found(key)
    select = odata.parse_select(
        request.query_params.get("$select"), _ALL_GROUP_PROPERTIES, "microsoft.graph.directoryObject"
    )
    if transitive:
        groups = tenant.groups_of(user.id)
    else:
        groups = [g for g in tenant.groups.values() if user.id in g.member_ids]
    return _page(
        request,
        groups,
        _context(request, "directoryObjects", select),
        lambda group: _member_view(tenant, group, select, basic=False),
    )


async def user_member_of(request: Request) -> Response:
    return await _member_of(request, transitive=False)


async def user_transitive_member_of(request: Request) -> Response:
    return await _member_of(request, transitive=True)


async def group_members(request: Request) -> Response:
    return await _members(request, transitive=False)


async def group_transitive_members(request: Request) -> Response:
    return await _members(request, transitive=True)


def routes() -> list[BaseRoute]:
    result: list[BaseRoute] = []
    for version in ("v1.0", "beta"):
        v = f"/{version}"
        result += [
            Route(f"{v}/users", list_users, methods=["GET"]),
            Route(f"{v}/users/$count", count_users, methods=["GET"]),
            Route(f"{v}/users/{{user}}", get_user, methods=["GET"]),
            Route(f"{v}/users/{{user}}/memberOf", user_member_of, methods=["GET"]),
            Route(f"{v}/users/{{user}}/transitiveMemberOf", user_transitive_member_of, methods=["GET"]),
            Route(f"{v}/me", me, methods=["GET"]),
            Route(f"{v}/groups", list_groups, methods=["GET"]),
            Route(f"{v}/groups/{{group}}", get_group, methods=["GET"]),
            Route(f"{v}/groups/{{group}}/members/$count", group_members_count, methods=["GET"]),
            Route(
                f"{v}/groups/{{group}}/transitiveMembers/$count",
                group_transitive_members_count,
                methods=["GET"],
            ),
            Route(f"{v}/groups/{{group}}/members", group_members, methods=["GET"]),
            Route(f"{v}/groups/{{group}}/members/microsoft.graph.{{kind}}", group_members, methods=["GET"]),
            Route(
                f"{v}/groups/{{group}}/transitiveMembers/microsoft.graph.{{kind}}",
                group_transitive_members,
                methods=["GET"],
            ),
            Route(f"{v}/groups/{{group}}/transitiveMembers", group_transitive_members, methods=["GET"]),
        ]
    return result
