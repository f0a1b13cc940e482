"""Directory reads as Graph serves them: users, ``/me``, groups and (transitive) members.

Permission checks follow Graph: app-only callers need User.ReadBasic.All (basic properties only),
User.Read.All or Directory.Read.All for users, and Group.Read.All / GroupMember.Read.All /
Directory.Read.All for groups; otherwise 403 ``Authorization_RequestDenied``. ``/me`` needs a
delegated token.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox import app_registrations, odata
from meetgate_sandbox.app_registrations_common import DIRECTORY_ROLES, directory_roles_of
from meetgate_sandbox.directory_schema import (
    COLLECTIONS,
    DEFAULT_GROUP_PROPERTIES,
    ENDSWITH,
    EXCHANGE_GROUP_PROPERTIES,
    GROUP_FILTERABLE,
    GROUP_ORDERBY,
    GROUP_PROPERTIES,
    USER_FILTERABLE,
    USER_ORDERBY,
    USER_PROPERTIES,
    group_resource,
    user_resource,
)
from meetgate_sandbox.http import Caller, GraphErrorResponse, caller_of
from meetgate_sandbox.runtime import caller_tenant
from meetgate_sandbox.state import BASIC_USER_PROPERTIES, DEFAULT_USER_PROPERTIES, Group, Tenant, User

T = TypeVar("T")
Member = User | Group

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
USER_SCHEMA = odata.Schema("User", USER_FILTERABLE, COLLECTIONS, ENDSWITH, USER_ORDERBY)
GROUP_SCHEMA = odata.Schema("Group", GROUP_FILTERABLE, COLLECTIONS, ENDSWITH, GROUP_ORDERBY)
#: members and memberOf hold users and groups: the union of both
OBJECT_SCHEMA = odata.Schema(
    "DirectoryObject",
    tuple(dict.fromkeys([*USER_FILTERABLE, *GROUP_FILTERABLE])),
    COLLECTIONS,
    ENDSWITH,
    {"displayName": True},
)
_OBJECT_PROPERTIES = tuple(dict.fromkeys([*USER_PROPERTIES, *GROUP_PROPERTIES]))
#: the directoryObject types a cast segment may name (the sandbox's directory holds users and groups)
DIRECTORY_TYPES = {
    t.lower(): t
    for t in (
        "user",
        "group",
        "device",
        "orgContact",
        "servicePrincipal",
        "application",
        "directoryRole",
        "administrativeUnit",
    )
}
#: what a user can be a member of
MEMBER_OF_TYPES = frozenset({"group", "directoryrole", "administrativeunit"})


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
    # directory objects count only in advanced queries; without the header Graph ignores $count=true
    if params.get("$count", "").lower() == "true" and odata.is_eventual(request.headers):
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


def _query(
    request: Request,
    items: Sequence[T],
    schema: odata.Schema,
    resource: Callable[[T], dict[str, Any]],
    *,
    reference: bool = False,
    counting: bool = False,
) -> list[T]:
    """``items`` kept by ``$filter`` and ``$search`` and sorted by ``$orderby``, as Graph's rules allow.

    ``reference``: a relationship (members, memberOf), where any ``$filter`` is an advanced query.
    ``counting``: a ``/$count`` segment, which stands for ``$count=true`` (the header suffices).
    """
    params, headers = request.query_params, request.headers
    advanced = odata.is_eventual(headers) if counting else odata.is_advanced(headers, params)
    text = params.get("$filter")
    if reference and text is not None and not advanced:
        raise GraphErrorResponse(
            400,
            "Request_UnsupportedQuery",
            "The specified filter to the reference property query is currently not supported.",
        )
    predicate = odata.parse_filter(text, schema, advanced=advanced)
    search = odata.parse_search(params.get("$search"), schema, headers)
    order = params.get("$orderby")
    if predicate is None and search is None and order is None:
        return list(items)
    resources = [(item, resource(item)) for item in items]
    kept = [
        pair
        for pair in resources
        if (predicate is None or predicate(pair[1])) and (search is None or search(pair[1]))
    ]
    combined = predicate is not None or search is not None
    ordered = odata.order_items(
        kept, order, schema, advanced=advanced, combined=combined, key=lambda pair: pair[1]
    )
    return [item for item, _ in ordered]


def _require_advanced_query(request: Request) -> None:
    """``$count`` segments are advanced queries: Graph answers them only with ``ConsistencyLevel: eventual``."""
    if not odata.is_eventual(request.headers):
        raise GraphErrorResponse(400, "Request_BadRequest", "$count is not currently supported.")


def _count(
    request: Request,
    items: Sequence[T],
    schema: odata.Schema,
    resource: Callable[[T], dict[str, Any]],
    *,
    reference: bool = False,
) -> Response:
    """A ``/$count`` segment: the number of matching items as text (advanced queries only)."""
    _require_advanced_query(request)
    matching = _query(request, items, schema, resource, reference=reference, counting=True)
    return PlainTextResponse(str(len(matching)))


# --- users ----------------------------------------------------------------------------------------


def _users_in(tenant: Tenant) -> list[User]:
    return list(tenant.users.values())


async def list_users(request: Request) -> Response:
    caller = caller_of(request)
    access = user_access(caller)
    if access is None:
        raise denied()
    tenant = _tenant(request, caller)
    select = odata.parse_select(request.query_params.get("$select"), USER_PROPERTIES, "microsoft.graph.user")
    users = _query(request, _users_in(tenant), USER_SCHEMA, user_resource)
    return _page(
        request,
        users,
        _context(request, "users", select),
        lambda user: _project(user_resource(user), select, DEFAULT_USER_PROPERTIES, access == "basic"),
    )


async def count_users(request: Request) -> Response:
    """``GET /users/$count``: the number of matching users as text (advanced queries only)."""
    caller = caller_of(request)
    if user_access(caller) is None:
        raise denied()
    return _count(request, _users_in(_tenant(request, caller)), USER_SCHEMA, user_resource)


def _one_user(request: Request, caller: Caller, user: User) -> Response:
    select = odata.parse_select(request.query_params.get("$select"), USER_PROPERTIES, "microsoft.graph.user")
    basic = user_access(caller) == "basic" and caller.delegated_user_id != user.id
    body: dict[str, Any] = {"@odata.context": _context(request, "users", select, single=True)}
    body.update(_project(user_resource(user), select, DEFAULT_USER_PROPERTIES, basic))
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


def _select_groups(request: Request, known: Sequence[str], type_name: str) -> list[str] | None:
    """``$select`` on a collection holding groups: the Exchange-backed properties are refused there."""
    select = odata.parse_select(request.query_params.get("$select"), known, type_name)
    if select and EXCHANGE_GROUP_PROPERTIES.intersection(select):
        raise GraphErrorResponse(501, "NotImplemented", "This operation target is not yet supported.")
    return select


def _group_view(tenant: Tenant, group: Group, select: Sequence[str] | None) -> dict[str, Any]:
    data = group_resource(group, tenant.domain)
    return {k: data.get(k) for k in (select or DEFAULT_GROUP_PROPERTIES)}


async def list_groups(request: Request) -> Response:
    caller = caller_of(request)
    _require_groups(caller)
    tenant = _tenant(request, caller)
    select = _select_groups(request, GROUP_PROPERTIES, "microsoft.graph.group")
    groups = _query(
        request, list(tenant.groups.values()), GROUP_SCHEMA, lambda g: group_resource(g, tenant.domain)
    )
    return _page(
        request, groups, _context(request, "groups", select), lambda g: _group_view(tenant, g, select)
    )


async def count_groups(request: Request) -> Response:
    """``GET /groups/$count`` (advanced queries only)."""
    caller = caller_of(request)
    _require_groups(caller)
    tenant = _tenant(request, caller)
    groups = list(tenant.groups.values())
    return _count(request, groups, GROUP_SCHEMA, lambda g: group_resource(g, tenant.domain))


async def get_group(request: Request) -> Response:
    caller = caller_of(request)
    _require_groups(caller)
    tenant = _tenant(request, caller)
    group = _group(request, tenant)
    select = odata.parse_select(
        request.query_params.get("$select"), GROUP_PROPERTIES, "microsoft.graph.group"
    )
    body: dict[str, Any] = {"@odata.context": _context(request, "groups", select, single=True)}
    if select and EXCHANGE_GROUP_PROPERTIES.intersection(select):
        # read from the group's mailbox, which only Microsoft 365 groups have; the answer names the id
        if not group.unified:
            raise GraphErrorResponse(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            )
        select = ["id", *(p for p in select if p != "id")]
    body.update(_group_view(tenant, group, select))
    return ODataResponse(body)


# --- relationships: members, memberOf, with type casts ---------------------------------------------


def _member_view(tenant: Tenant, member: Member, select: Sequence[str] | None, basic: bool) -> dict[str, Any]:
    if isinstance(member, User):
        data = _project(user_resource(member), select, DEFAULT_USER_PROPERTIES, basic)
        return {"@odata.type": "#microsoft.graph.user", **data}
    return {"@odata.type": "#microsoft.graph.group", **_group_view(tenant, member, select)}


def _cast_type(request: Request, allowed: frozenset[str] | None = None) -> str | None:
    """The type of an OData cast segment (``.../microsoft.graph.user`` -> ``user``), if any."""
    kind = request.path_params.get("kind")
    if kind is None:
        return None
    lowered = str(kind).lower()
    if lowered not in DIRECTORY_TYPES or (allowed is not None and lowered not in allowed):
        raise GraphErrorResponse(
            400, "BadRequest", f"Resource not found for the segment 'microsoft.graph.{kind}'."
        )
    return lowered


def _of_type(members: Sequence[Member], kind: str | None) -> list[Member]:
    if kind is None:
        return list(members)
    if kind == "user":
        return [m for m in members if isinstance(m, User)]
    if kind == "group":
        return [m for m in members if isinstance(m, Group)]
    return []  # devices, contacts and (served apart) roles and administrative units


class _Relationship:
    """A members / memberOf request: the related objects, their type cast, schema and views."""

    def __init__(self, request: Request, tenant: Tenant, objects: Sequence[Member], kind: str | None) -> None:
        self.request = request
        self.tenant = tenant
        self.kind = kind
        self.objects = _of_type(objects, kind)
        self.schema = {"user": USER_SCHEMA, "group": GROUP_SCHEMA}.get(kind or "", OBJECT_SCHEMA)
        #: the user whose memberships these are (memberOf), if any
        self.user: User | None = None

    def resource(self, member: Member) -> dict[str, Any]:
        if isinstance(member, User):
            return user_resource(member)
        return group_resource(member, self.tenant.domain)

    def matching(self) -> list[Member]:
        return _query(self.request, self.objects, self.schema, self.resource, reference=True)

    def count(self) -> Response:
        return _count(self.request, self.objects, self.schema, self.resource, reference=True)

    def page(self, basic: bool, *, directory_ids: bool = False) -> Response:
        """One page of the related objects.

        ``directory_ids``: a cast of group members read as an advanced query names each object as the
        directory service does, with ``@odata.id`` (its ``/v2/{tenant}/directoryObjects/...`` address)
        and ``organizationId`` (as the docs' examples of those responses show).
        """
        known, type_name, entity_set = {
            "user": (USER_PROPERTIES, "microsoft.graph.user", "users"),
            "group": (GROUP_PROPERTIES, "microsoft.graph.group", "groups"),
        }.get(self.kind or "", (_OBJECT_PROPERTIES, "microsoft.graph.directoryObject", "directoryObjects"))
        select = _select_groups(self.request, known, type_name)
        addressed = (
            directory_ids and self.kind is not None and not select and odata.is_eventual(self.request.headers)
        )

        def view(member: Member) -> dict[str, Any]:
            data = _member_view(self.tenant, member, select, basic)
            if not addressed:
                return data
            kind = "User" if isinstance(member, User) else "Group"
            address = f"{_base(self.request)}/v2/{self.tenant.id}/directoryObjects/{member.id}"
            return {
                "@odata.type": data.pop("@odata.type"),
                "@odata.id": f"{address}/Microsoft.DirectoryServices.{kind}",
                "organizationId": self.tenant.id,
                **data,
            }

        return _page(self.request, self.matching(), _context(self.request, entity_set, select), view)


def _members(request: Request, transitive: bool) -> tuple[_Relationship, Caller]:
    caller = caller_of(request)
    _require_groups(caller)
    tenant = _tenant(request, caller)
    group = _group(request, tenant)
    kind = _cast_type(request)
    members = tenant.transitive_members(group) if transitive else tenant.direct_members(group)
    return _Relationship(request, tenant, members, kind), caller


async def group_members(request: Request) -> Response:
    relationship, caller = _members(request, transitive=False)
    return relationship.page(basic=user_access(caller) != "full", directory_ids=True)


async def group_transitive_members(request: Request) -> Response:
    relationship, caller = _members(request, transitive=True)
    return relationship.page(basic=user_access(caller) != "full", directory_ids=True)


async def group_members_count(request: Request) -> Response:
    """``/groups/{id}/members/$count`` (also after a cast; advanced queries only)."""
    return _members(request, transitive=False)[0].count()


async def group_transitive_members_count(request: Request) -> Response:
    return _members(request, transitive=True)[0].count()


def _member_of(request: Request, transitive: bool) -> _Relationship:
    """``/users/{id}/memberOf`` and ``/transitiveMemberOf`` (or ``/me/…``): the groups a user is in.

    A signed-in user reads their own with User.Read, as Graph allows.
    """
    caller, tenant = caller_tenant(request)
    key = request.path_params.get("user")
    if key is None:  # /me/...
        if caller.is_app_only:
            raise GraphErrorResponse(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        key = caller.delegated_user_id or ""
    user = tenant.find_user(key)
    granted = caller.roles if caller.is_app_only else caller.scopes
    own = user is not None and user.id == caller.delegated_user_id and "User.Read" in granted
    if not own and not granted & (GROUP_ROLES | USER_FULL_ROLES):
        raise denied()
    if user is None:
        raise _not_found(key)
    kind = _cast_type(request, MEMBER_OF_TYPES)
    if transitive:
        groups = tenant.groups_of(user.id)
    else:
        groups = [g for g in tenant.groups.values() if user.id in g.member_ids]
    relationship = _Relationship(request, tenant, groups, kind)
    relationship.user = user
    return relationship


def _role_objects(tenant: Tenant, user_id: str) -> list[dict[str, Any]]:
    """The directoryRole objects a user holds (roles do not nest: direct and transitive alike)."""
    return [
        {
            "@odata.type": "#microsoft.graph.directoryRole",
            "id": str(uuid.uuid5(uuid.UUID(DIRECTORY_ROLES[name]), tenant.id)),
            "deletedDateTime": None,
            "description": name,
            "displayName": name,
            "roleTemplateId": DIRECTORY_ROLES[name],
        }
        for name in sorted(directory_roles_of(tenant, user_id))
        if name in DIRECTORY_ROLES
    ]


async def _roles_cast(request: Request, *, count: bool) -> Response | None:
    """A ``…/memberOf/microsoft.graph.directoryRole`` request: the user's directory roles, else None.

    ``/me/…`` is served as the app registration routes serve it (any delegated caller, own roles).
    """
    if str(request.path_params.get("kind", "")).lower() != "directoryrole":
        return None
    if "user" not in request.path_params and not count:
        return await app_registrations.my_directory_roles(request)
    relationship = _member_of(request, transitive=False)  # the caller's checks, the user's existence
    assert relationship.user is not None
    roles = _role_objects(relationship.tenant, relationship.user.id)
    if count:
        _require_advanced_query(request)
        return PlainTextResponse(str(len(roles)))
    return _page(request, roles, _context(request, "directoryRoles", None), lambda role: role)


def _units_cast(request: Request, *, count: bool) -> Response | None:
    """A ``…/memberOf/microsoft.graph.administrativeUnit`` request: the units holding the user, else None.

    Units hold their members directly (no nesting), so direct and transitive alike.
    """
    if str(request.path_params.get("kind", "")).lower() != "administrativeunit":
        return None
    relationship = _member_of(request, transitive=False)  # the caller's checks, the user's existence
    assert relationship.user is not None
    units = [
        {"@odata.type": "#microsoft.graph.administrativeUnit", **unit.to_graph()}
        for unit in relationship.tenant.administrative_units_of(relationship.user.id)
    ]
    if count:
        _require_advanced_query(request)
        return PlainTextResponse(str(len(units)))
    return _page(request, units, _context(request, "directory/administrativeUnits", None), lambda unit: unit)


async def _special_cast(request: Request, *, count: bool) -> Response | None:
    return await _roles_cast(request, count=count) or _units_cast(request, count=count)


async def user_member_of(request: Request) -> Response:
    return await _special_cast(request, count=False) or _member_of(request, transitive=False).page(
        basic=False
    )


async def user_transitive_member_of(request: Request) -> Response:
    return await _special_cast(request, count=False) or _member_of(request, transitive=True).page(basic=False)


async def user_member_of_count(request: Request) -> Response:
    return await _special_cast(request, count=True) or _member_of(request, transitive=False).count()


async def user_transitive_member_of_count(request: Request) -> Response:
    return await _special_cast(request, count=True) or _member_of(request, transitive=True).count()


def routes() -> list[BaseRoute]:
    result: list[BaseRoute] = []
    cast = "microsoft.graph.{kind}"
    relationships = (
        ("users/{user}/memberOf", user_member_of, user_member_of_count),
        ("users/{user}/transitiveMemberOf", user_transitive_member_of, user_transitive_member_of_count),
        ("me/memberOf", user_member_of, user_member_of_count),
        ("me/transitiveMemberOf", user_transitive_member_of, user_transitive_member_of_count),
        ("groups/{group}/members", group_members, group_members_count),
        ("groups/{group}/transitiveMembers", group_transitive_members, group_transitive_members_count),
    )
    for version in ("v1.0", "beta"):
        v = f"/{version}"
        result += [
            Route(f"{v}/users", list_users, methods=["GET"]),
            Route(f"{v}/users/$count", count_users, methods=["GET"]),
            Route(f"{v}/users/{{user}}", get_user, methods=["GET"]),
            Route(f"{v}/me", me, methods=["GET"]),
            Route(f"{v}/groups", list_groups, methods=["GET"]),
            Route(f"{v}/groups/$count", count_groups, methods=["GET"]),
            Route(f"{v}/groups/{{group}}", get_group, methods=["GET"]),
        ]
        for path, listing, counting in relationships:
            result += [
                Route(f"{v}/{path}", listing, methods=["GET"]),
                Route(f"{v}/{path}/$count", counting, methods=["GET"]),
                Route(f"{v}/{path}/{cast}", listing, methods=["GET"]),
                Route(f"{v}/{path}/{cast}/$count", counting, methods=["GET"]),
            ]
    return result
