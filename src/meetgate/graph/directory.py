"""Users and groups: look-ups, UPN → object id resolution (cached), listing with paging.

Graph's onlineMeetings paths need the organizer's *object id*; a UPN there fails. Callers may still
name organizers by UPN: :meth:`DirectoryService.resolve_user_id` turns it into the id once
(``GET /users/{upn}?$select=id,displayName,userPrincipalName``) and caches it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from meetgate.graph.auth import USER_READ_ROLES
from meetgate.graph.errors import MeetingRuleError
from meetgate.graph.http import GraphCallContext
from meetgate.graph.models import User
from meetgate.graph.ops import Op, Operation, run_async, run_sync

if TYPE_CHECKING:
    from meetgate.graph.http import AsyncGraphHttp, GraphHttp

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
USER_SELECT = "id,displayName,userPrincipalName,mail,accountEnabled,userType"
#: any one of these lets the client read an administrative unit's members
UNIT_READ_ROLES = (
    "AdministrativeUnit.Read.All",
    "AdministrativeUnit.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)


def _unit_members(unit_id: str) -> tuple[str, GraphCallContext]:
    context = GraphCallContext(
        operation=f"list members of administrative unit {unit_id}", required_roles=UNIT_READ_ROLES
    )
    return f"/directory/administrativeUnits/{quote(unit_id, safe='')}/members", context


def is_object_id(value: str) -> bool:
    return bool(_GUID.match(value))


def check_user_ref(value: str, what: str = "user") -> str:
    """A user reference must be an object id (GUID) or a UPN (name@domain)."""
    text = (value or "").strip()
    if not text:
        raise MeetingRuleError(f"the {what} is empty", remedy=f"Give the {what}'s UPN or object id.")
    if "/" in text or "?" in text or "#" in text or " " in text:
        raise MeetingRuleError(
            f"{what} {text!r} is neither an object id nor a UPN",
            remedy=f"Give the {what}'s UPN (name@domain) or object id (a GUID).",
        )
    return text


class UserIdCache:
    """UPN (case-insensitive) → object id, bounded, thread-safe. Shared by sync and async services."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._data: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, upn: str) -> str | None:
        key = upn.lower()
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, upn: str, object_id: str) -> None:
        with self._lock:
            self._data[upn.lower()] = object_id
            self._data.move_to_end(upn.lower())
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def forget(self, upn: str) -> None:
        with self._lock:
            self._data.pop(upn.lower(), None)

    def __len__(self) -> int:
        return len(self._data)


def user_path(id_or_upn: str) -> str:
    return f"/users/{quote(id_or_upn, safe='@')}"


def get_user_op(id_or_upn: str, *, as_organizer: bool = False) -> Operation[User]:
    ref = check_user_ref(id_or_upn, "organizer" if as_organizer else "user")
    context = GraphCallContext(
        operation=f"look up {'organizer' if as_organizer else 'user'} {ref}",
        organizer=ref if as_organizer else None,
        user=ref,
        required_roles=USER_READ_ROLES,
    )
    data = yield Op("GET", user_path(ref), params={"$select": USER_SELECT}, context=context)
    return User.model_validate(data)


def resolve_user_id_op(cache: UserIdCache, id_or_upn: str, *, as_organizer: bool = False) -> Operation[str]:
    ref = check_user_ref(id_or_upn, "organizer" if as_organizer else "user")
    if "@" not in ref:
        return ref
    cached = cache.get(ref)
    if cached is not None:
        return cached
    user = yield from get_user_op(ref, as_organizer=as_organizer)
    cache.put(ref, user.id)
    return user.id


def _list_params(filter: str | None, select: str | None, top: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {"$select": select or USER_SELECT}
    if filter:
        params["$filter"] = filter
    if top:
        params["$top"] = str(top)
    return params


def _is_user(item: dict[str, Any]) -> bool:
    kind = item.get("@odata.type")
    return kind in (None, "#microsoft.graph.user")


class DirectoryService:
    """Users and groups, synchronously."""

    def __init__(self, http: GraphHttp, cache: UserIdCache | None = None) -> None:
        self._http = http
        self.cache = cache if cache is not None else UserIdCache()

    def get_user(self, id_or_upn: str) -> User:
        return run_sync(self._http, get_user_op(id_or_upn))

    def resolve_user_id(self, id_or_upn: str, *, as_organizer: bool = False) -> str:
        """The object id for an id or UPN (UPNs resolved once, then cached)."""
        return run_sync(self._http, resolve_user_id_op(self.cache, id_or_upn, as_organizer=as_organizer))

    def list_users(
        self, filter: str | None = None, select: str | None = None, top: int | None = None
    ) -> Iterator[User]:
        context = GraphCallContext(operation="list users", required_roles=USER_READ_ROLES)
        for item in self._http.iterate("/users", params=_list_params(filter, select, top), context=context):
            yield User.model_validate(item)

    def group_members(self, group_id: str, transitive: bool = True) -> Iterator[User]:
        relation = "transitiveMembers" if transitive else "members"
        context = GraphCallContext(
            operation=f"list members of group {group_id}", required_roles=USER_READ_ROLES
        )
        path = f"/groups/{quote(group_id, safe='')}/{relation}"
        for item in self._http.iterate(path, params={"$select": USER_SELECT}, context=context):
            if _is_user(item) and item.get("id"):
                yield User.model_validate(item)

    def administrative_unit_members(self, unit_id: str) -> Iterator[User]:
        """The users among an administrative unit's (direct) members; Graph's 404 when it does not exist."""
        path, context = _unit_members(unit_id)
        for item in self._http.iterate(path, params={"$select": USER_SELECT}, context=context):
            if _is_user(item) and item.get("id"):
                yield User.model_validate(item)


class AsyncDirectoryService:
    """Users and groups, asynchronously (same operations as :class:`DirectoryService`)."""

    def __init__(self, http: AsyncGraphHttp, cache: UserIdCache | None = None) -> None:
        self._http = http
        self.cache = cache if cache is not None else UserIdCache()

    async def get_user(self, id_or_upn: str) -> User:
        return await run_async(self._http, get_user_op(id_or_upn))

    async def resolve_user_id(self, id_or_upn: str, *, as_organizer: bool = False) -> str:
        return await run_async(
            self._http, resolve_user_id_op(self.cache, id_or_upn, as_organizer=as_organizer)
        )

    async def list_users(
        self, filter: str | None = None, select: str | None = None, top: int | None = None
    ) -> AsyncIterator[User]:
        context = GraphCallContext(operation="list users", required_roles=USER_READ_ROLES)
        async for item in self._http.iterate(
            "/users", params=_list_params(filter, select, top), context=context
        ):
            yield User.model_validate(item)

    async def group_members(self, group_id: str, transitive: bool = True) -> AsyncIterator[User]:
        relation = "transitiveMembers" if transitive else "members"
        context = GraphCallContext(
            operation=f"list members of group {group_id}", required_roles=USER_READ_ROLES
        )
        path = f"/groups/{quote(group_id, safe='')}/{relation}"
        async for item in self._http.iterate(path, params={"$select": USER_SELECT}, context=context):
            if _is_user(item) and item.get("id"):
                yield User.model_validate(item)

    async def administrative_unit_members(self, unit_id: str) -> AsyncIterator[User]:
        path, context = _unit_members(unit_id)
        async for item in self._http.iterate(path, params={"$select": USER_SELECT}, context=context):
            if _is_user(item) and item.get("id"):
                yield User.model_validate(item)
