"""Administrative units: Graph's ``/directory/administrativeUnits`` and the control API that fills them.

Graph (v1.0 and beta), as documented:

| request | permission (application) |
|---|---|
| ``GET /directory/administrativeUnits``, ``GET …/{id}``, ``GET …/{id}/members`` | AdministrativeUnit.Read.All, Directory.Read.All (or the ReadWrite ones) |
| ``POST /directory/administrativeUnits`` (201 with the unit) | AdministrativeUnit.ReadWrite.All, Directory.ReadWrite.All |
| ``POST …/{id}/members/$ref`` (``{"@odata.id": ".../users/{id}"}``, 204), ``DELETE …/{id}/members/{member}/$ref`` | AdministrativeUnit.ReadWrite.All, Directory.ReadWrite.All |

Control API (under ``/_sandbox/tenants/{tid}``): ``GET`` / ``POST /administrative-units``
(``displayName``, optional ``description``, ``visibility``, ``members``: ids or UPNs), ``GET`` /
``DELETE /administrative-units/{id}``, ``POST /administrative-units/{id}/members`` (``{"id": …}``) and
``DELETE /administrative-units/{id}/members/{member}``.

Membership is direct: a group in a unit does not bring its members (what Exchange's
``-RecipientAdministrativeUnitScope`` counts are the unit's user members).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox import odata
from meetgate_sandbox.directory import (
    ODataResponse,
    _context,
    _not_found,
    _page,
    _query,
    _Relationship,
    denied,
    user_access,
)
from meetgate_sandbox.http import GraphErrorResponse, caller_of, json_object_body
from meetgate_sandbox.runtime import caller_tenant, control_tenant, runtime_of
from meetgate_sandbox.state import AdministrativeUnit, Group, Tenant, User

__all__ = ["READ_ROLES", "WRITE_ROLES", "routes"]

WRITE_ROLES = frozenset({"AdministrativeUnit.ReadWrite.All", "Directory.ReadWrite.All"})
READ_ROLES = frozenset({"AdministrativeUnit.Read.All", "Directory.Read.All", *WRITE_ROLES})
_VISIBILITIES = ("Public", "HiddenMembership")
#: what ``$filter`` / ``$orderby`` take on the collection (the documented filterable properties)
UNIT_SCHEMA = odata.Schema(
    "AdministrativeUnit",
    ("id", "description", "displayName", "isMemberManagementRestricted", "membershipType", "visibility"),
    frozenset(),
    frozenset(),
    {"displayName": True},
)
_REFERENCE = re.compile(r"/(?:users|groups|directoryObjects)/([^/?#]+)/?$", re.IGNORECASE)


def _require(request: Request, roles: frozenset[str]) -> Tenant:
    caller, tenant = caller_tenant(request)
    granted = caller.roles if caller.is_app_only else caller.scopes
    if not granted & roles:
        raise denied()
    return tenant


def _unit(tenant: Tenant, key: str) -> AdministrativeUnit:
    unit = tenant.administrative_units.get(key.lower())
    if unit is None:
        raise _not_found(key)
    return unit


def _view(unit: AdministrativeUnit) -> dict[str, Any]:
    return unit.to_graph()


def _member(tenant: Tenant, key: str) -> User | Group | None:
    return tenant.find_user(key) or tenant.groups.get(key.lower())


def _bad(message: str) -> GraphErrorResponse:
    return GraphErrorResponse(400, "Request_BadRequest", message)


def _create(tenant: Tenant, body: dict[str, Any]) -> AdministrativeUnit:
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise _bad("Invalid value specified for property 'displayName' of resource 'AdministrativeUnit'.")
    description = body.get("description")
    visibility = body.get("visibility")
    if description is not None and not isinstance(description, str):
        raise _bad("Invalid value specified for property 'description' of resource 'AdministrativeUnit'.")
    if visibility is not None and visibility not in _VISIBILITIES:
        raise _bad("Invalid value specified for property 'visibility' of resource 'AdministrativeUnit'.")
    unit = AdministrativeUnit(str(uuid.uuid4()), name.strip(), description, visibility)
    tenant.administrative_units[unit.id] = unit
    return unit


def _add_member(tenant: Tenant, unit: AdministrativeUnit, key: str) -> None:
    member = _member(tenant, key)
    if member is None:
        raise _not_found(key)
    if member.id in unit.member_ids:
        raise _bad(
            "One or more added object references already exist for the following modified properties: 'members'."
        )
    unit.member_ids.append(member.id)


def _remove_member(tenant: Tenant, unit: AdministrativeUnit, key: str) -> None:
    member = _member(tenant, key)
    if member is None or member.id not in unit.member_ids:
        raise _not_found(key)
    unit.member_ids.remove(member.id)


# --- Graph -----------------------------------------------------------------------------------------


async def list_units(request: Request) -> Response:
    tenant = _require(request, READ_ROLES)
    units = _query(request, list(tenant.administrative_units.values()), UNIT_SCHEMA, _view)
    return _page(request, units, _context(request, "directory/administrativeUnits", None), _view)


async def create_unit(request: Request) -> Response:
    tenant = _require(request, WRITE_ROLES)
    unit = _create(tenant, await json_object_body(request))
    runtime_of(request).state.changed()
    body = {"@odata.context": _context(request, "directory/administrativeUnits", None, single=True)}
    return ODataResponse({**body, **_view(unit)}, status_code=201)


async def get_unit(request: Request) -> Response:
    tenant = _require(request, READ_ROLES)
    unit = _unit(tenant, request.path_params["unit"])
    body = {"@odata.context": _context(request, "directory/administrativeUnits", None, single=True)}
    return ODataResponse({**body, **_view(unit)})


async def list_members(request: Request) -> Response:
    tenant = _require(request, READ_ROLES)
    unit = _unit(tenant, request.path_params["unit"])
    members = [m for m in (_member(tenant, mid) for mid in unit.member_ids) if m is not None]
    relationship = _Relationship(request, tenant, members, None)
    return relationship.page(basic=user_access(caller_of(request)) != "full")


async def add_member_ref(request: Request) -> Response:
    tenant = _require(request, WRITE_ROLES)
    unit = _unit(tenant, request.path_params["unit"])
    body = await json_object_body(request)
    reference = body.get("@odata.id")
    match = _REFERENCE.search(reference) if isinstance(reference, str) else None
    if match is None:
        raise _bad("Invalid object identifier '@odata.id'.")
    _add_member(tenant, unit, match.group(1))
    runtime_of(request).state.changed()
    return Response(status_code=204)


async def remove_member_ref(request: Request) -> Response:
    tenant = _require(request, WRITE_ROLES)
    unit = _unit(tenant, request.path_params["unit"])
    _remove_member(tenant, unit, request.path_params["member"])
    runtime_of(request).state.changed()
    return Response(status_code=204)


# --- control API -----------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _control_view(unit: AdministrativeUnit) -> dict[str, Any]:
    return {**_view(unit), "memberIds": list(unit.member_ids)}


async def control_list(request: Request) -> Response:
    tenant = control_tenant(request)
    return _json({"value": [_control_view(unit) for unit in tenant.administrative_units.values()]})


async def control_create(request: Request) -> Response:
    tenant = control_tenant(request)
    body = await json_object_body(request)
    members = body.pop("members", [])
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise _bad("members must be a list of user or group ids (or UPNs).")
    unknown = [m for m in members if _member(tenant, m) is None]
    if unknown:
        raise _not_found(unknown[0])
    unit = _create(tenant, body)
    for key in dict.fromkeys(members):
        member = _member(tenant, key)
        if member is not None and member.id not in unit.member_ids:
            unit.member_ids.append(member.id)
    runtime_of(request).state.changed()
    return _json(_control_view(unit), 201)


async def control_get(request: Request) -> Response:
    tenant = control_tenant(request)
    return _json(_control_view(_unit(tenant, request.path_params["unit"])))


async def control_delete(request: Request) -> Response:
    tenant = control_tenant(request)
    unit = _unit(tenant, request.path_params["unit"])
    del tenant.administrative_units[unit.id]
    runtime_of(request).state.changed()
    return Response(status_code=204)


async def control_add_member(request: Request) -> Response:
    tenant = control_tenant(request)
    unit = _unit(tenant, request.path_params["unit"])
    body = await json_object_body(request)
    key = body.get("id")
    if not isinstance(key, str) or not key.strip():
        raise _bad("id must name a user or group (object id or UPN).")
    _add_member(tenant, unit, key.strip())
    runtime_of(request).state.changed()
    return _json(_control_view(unit))


async def control_remove_member(request: Request) -> Response:
    tenant = control_tenant(request)
    unit = _unit(tenant, request.path_params["unit"])
    _remove_member(tenant, unit, request.path_params["member"])
    runtime_of(request).state.changed()
    return _json(_control_view(unit))


def routes() -> list[BaseRoute]:
    """Graph's ``/directory/administrativeUnits`` routes and the control API's ``/administrative-units``."""
    result: list[BaseRoute] = []
    for version in ("v1.0", "beta"):
        base = f"/{version}/directory/administrativeUnits"
        result += [
            Route(base, list_units, methods=["GET"]),
            Route(base, create_unit, methods=["POST"]),
            Route(f"{base}/{{unit}}", get_unit, methods=["GET"]),
            Route(f"{base}/{{unit}}/members", list_members, methods=["GET"]),
            Route(f"{base}/{{unit}}/members/$ref", add_member_ref, methods=["POST"]),
            Route(f"{base}/{{unit}}/members/{{member}}/$ref", remove_member_ref, methods=["DELETE"]),
        ]
    control = "/_sandbox/tenants/{tid}/administrative-units"
    result += [
        Route(control, control_list, methods=["GET"]),
        Route(control, control_create, methods=["POST"]),
        Route(f"{control}/{{unit}}", control_get, methods=["GET"]),
        Route(f"{control}/{{unit}}", control_delete, methods=["DELETE"]),
        Route(f"{control}/{{unit}}/members", control_add_member, methods=["POST"]),
        Route(f"{control}/{{unit}}/members/{{member}}", control_remove_member, methods=["DELETE"]),
    ]
    return result
