"""Control-API routes for Exchange Online: what ExchangeOnlineManagement PowerShell does in a real tenant.

| control API (under ``/_sandbox/tenants/{tid}/exchange``) | Exchange Online PowerShell |
|---|---|
| ``GET`` / ``POST /service-principals``, ``DELETE /service-principals/{identity}`` | ``Get-`` / ``New-`` / ``Remove-ServicePrincipal`` |
| ``GET`` / ``POST /management-scopes``, ``DELETE /management-scopes/{name}`` | ``Get-`` / ``New-`` / ``Remove-ManagementScope`` |
| ``GET`` / ``POST /role-assignments`` (``role``, ``app``, ``name``, one of ``customResourceScope``, ``recipientGroupScope``, ``recipientAdministrativeUnitScope``), ``DELETE /role-assignments/{name}`` | ``Get-`` / ``New-`` / ``Remove-ManagementRoleAssignment -App`` |
| ``GET /test-authorization?identity=…[&resource=…]`` | ``Test-ServicePrincipalAuthorization`` |
| ``GET /groups/{identity}`` | ``Get-Group`` (its ``DistinguishedName`` for ``MemberOfGroup`` filters) |
| ``GET /mailboxes``, ``PATCH /mailboxes/{user}`` (``customAttributes``, ``mailboxEnabled``) | ``Get-Mailbox``, ``Set-Mailbox -CustomAttributeN``; a user without a mailbox |
| ``GET`` / ``PUT /app-only-access/{appId}`` (``manageAsApp``, ``exchangeAdministrator``) | what ``Connect-ExchangeOnline -AppId`` needs: Exchange.ManageAsApp consented, the Exchange Administrator role |

Refusals are 400 ``BadRequest`` with Exchange's wording; unknown tenants 404.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox.calendar_api import CALENDAR_EXTENSION
from meetgate_sandbox.calendar_store import CalendarStore
from meetgate_sandbox.exchange_rbac import EXTENSION, ExchangeRbac, RbacError, group_dn
from meetgate_sandbox.http import GraphErrorResponse, json_object_body
from meetgate_sandbox.meetings_model import utcnow
from meetgate_sandbox.runtime import control_tenant, runtime_of
from meetgate_sandbox.state import Tenant

__all__ = ["routes"]


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _rbac(tenant: Tenant) -> ExchangeRbac:
    rbac = tenant.extensions[EXTENSION]
    assert isinstance(rbac, ExchangeRbac)
    return rbac


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise GraphErrorResponse(400, "BadRequest", f"{name} must be a non-empty string.")
    return value.strip()


def _refused(error: RbacError) -> GraphErrorResponse:
    return GraphErrorResponse(400, "BadRequest", str(error))


def _delay(request: Request) -> float:
    return runtime_of(request).mailbox_scope_delay()


async def list_pointers(request: Request) -> Response:
    rbac = _rbac(control_tenant(request))
    return _json({"value": [vars(item) for item in rbac.pointers.values()]})


async def new_pointer(request: Request) -> Response:
    rbac = _rbac(control_tenant(request))
    body = await json_object_body(request)
    try:
        pointer = rbac.new_service_principal(
            str(_text(body, "appId")),
            str(_text(body, "objectId")),
            _text(body, "displayName", required=False),
        )
    except RbacError as error:
        raise _refused(error) from None
    runtime_of(request).state.changed()
    return _json(vars(pointer), 201)


async def remove_pointer(request: Request) -> Response:
    rbac = _rbac(control_tenant(request))
    try:
        rbac.remove_service_principal(request.path_params["identity"])
    except RbacError as error:
        raise _refused(error) from None
    runtime_of(request).state.changed()
    return Response(status_code=204)


async def list_scopes(request: Request) -> Response:
    rbac = _rbac(control_tenant(request))
    return _json({"value": [vars(item) for item in rbac.scopes.values()]})


async def new_scope(request: Request) -> Response:
    rbac = _rbac(control_tenant(request))
    body = await json_object_body(request)
    try:
        scope = rbac.new_scope(str(_text(body, "name")), str(_text(body, "recipientRestrictionFilter")))
    except RbacError as error:
        raise _refused(error) from None
    runtime_of(request).state.changed()
    return _json(vars(scope), 201)


async def remove_scope(request: Request) -> Response:
    rbac = _rbac(control_tenant(request))
    try:
        rbac.remove_scope(request.path_params["name"])
    except RbacError as error:
        raise _refused(error) from None
    runtime_of(request).state.changed()
    return Response(status_code=204)


async def list_assignments(request: Request) -> Response:
    rbac = _rbac(control_tenant(request))
    return _json({"value": [vars(item) for item in rbac.assignments.values() if item.removed is None]})


async def new_assignment(request: Request) -> Response:
    rbac = _rbac(control_tenant(request))
    body = await json_object_body(request)
    try:
        assignment = rbac.new_assignment(
            role=str(_text(body, "role")),
            app=str(_text(body, "app")),
            name=_text(body, "name", required=False),
            custom_scope=_text(body, "customResourceScope", required=False),
            group_scope=_text(body, "recipientGroupScope", required=False),
            unit_scope=_text(body, "recipientAdministrativeUnitScope", required=False),
            now=utcnow(),
            delay_seconds=_delay(request),
        )
    except RbacError as error:
        raise _refused(error) from None
    runtime_of(request).state.changed()
    return _json(vars(assignment), 201)


async def remove_assignment(request: Request) -> Response:
    rbac = _rbac(control_tenant(request))
    try:
        rbac.remove_assignment(request.path_params["name"], now=utcnow(), delay_seconds=_delay(request))
    except RbacError as error:
        raise _refused(error) from None
    runtime_of(request).state.changed()
    return Response(status_code=204)


async def test_authorization(request: Request) -> Response:
    tenant = control_tenant(request)
    identity = request.query_params.get("identity")
    if not identity:
        raise GraphErrorResponse(
            400, "BadRequest", "identity is required (the app id, object id or display name)."
        )
    resource_key = request.query_params.get("resource")
    resource = tenant.find_user(resource_key) if resource_key else None
    if resource_key and resource is None:
        raise GraphErrorResponse(400, "BadRequest", f"The mailbox '{resource_key}' couldn't be found.")
    try:
        rows = _rbac(tenant).test_authorization(identity, resource)
    except RbacError as error:
        raise _refused(error) from None
    return _json({"value": rows})


async def get_group(request: Request) -> Response:
    tenant = control_tenant(request)
    identity = request.path_params["identity"].lower()
    for group in tenant.groups.values():
        if identity in (group.id.lower(), group.display_name.lower(), group.mail_nickname.lower()):
            return _json(
                {
                    "Name": group.mail_nickname,
                    "DisplayName": group.display_name,
                    "ExternalDirectoryObjectId": group.id,
                    "DistinguishedName": group_dn(tenant, group.id),
                }
            )
    raise GraphErrorResponse(
        404, "NotFound", f"The operation couldn't be performed because object '{identity}' couldn't be found."
    )


async def set_mailbox(request: Request) -> Response:
    tenant = control_tenant(request)
    user = tenant.find_user(request.path_params["user"])
    if user is None:
        raise GraphErrorResponse(
            404, "NotFound", f"The mailbox '{request.path_params['user']}' couldn't be found."
        )
    body = await json_object_body(request)
    attributes = body.get("customAttributes")
    if attributes is not None:
        if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
            raise GraphErrorResponse(400, "BadRequest", "customAttributes must map CustomAttributeN to text.")
        try:
            _rbac(tenant).set_attributes(user.id, attributes)
        except RbacError as error:
            raise _refused(error) from None
    enabled = body.get("mailboxEnabled")
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise GraphErrorResponse(400, "BadRequest", "mailboxEnabled must be true or false.")
        calendars = tenant.extensions[CALENDAR_EXTENSION]
        assert isinstance(calendars, CalendarStore)
        (calendars.without_mailbox.discard if enabled else calendars.without_mailbox.add)(user.id)
    runtime_of(request).state.changed()
    calendars = tenant.extensions[CALENDAR_EXTENSION]
    assert isinstance(calendars, CalendarStore)
    return _json(
        {
            "user": user.id,
            "customAttributes": _rbac(tenant).attributes.get(user.id, {}),
            "mailboxEnabled": user.id not in calendars.without_mailbox,
        }
    )


async def list_mailboxes(request: Request) -> Response:
    tenant = control_tenant(request)
    rbac = _rbac(tenant)
    calendars = tenant.extensions[CALENDAR_EXTENSION]
    assert isinstance(calendars, CalendarStore)
    return _json(
        {
            "value": [
                {
                    "user": user.id,
                    "userPrincipalName": user.user_principal_name,
                    "displayName": user.display_name,
                    "customAttributes": rbac.attributes.get(user.id, {}),
                }
                for user in tenant.users.values()
                if user.id not in calendars.without_mailbox
            ]
        }
    )


_ACCESS_KEYS = ("manageAsApp", "exchangeAdministrator")


def _access(rbac: ExchangeRbac, app_id: str) -> dict[str, Any]:
    held = rbac.app_only_access.get(app_id.lower(), {})
    return {"appId": app_id.lower(), **{key: bool(held.get(key)) for key in _ACCESS_KEYS}}


async def get_app_only_access(request: Request) -> Response:
    rbac = _rbac(control_tenant(request))
    return _json(_access(rbac, request.path_params["app_id"]))


async def put_app_only_access(request: Request) -> Response:
    rbac = _rbac(control_tenant(request))
    body = await json_object_body(request)
    unknown = sorted(set(body) - set(_ACCESS_KEYS))
    if unknown or not all(isinstance(body.get(key, False), bool) for key in _ACCESS_KEYS):
        raise GraphErrorResponse(
            400, "BadRequest", "Give manageAsApp and exchangeAdministrator as true or false."
        )
    app_id = request.path_params["app_id"].lower()
    rbac.app_only_access[app_id] = {key: bool(body.get(key, False)) for key in _ACCESS_KEYS}
    runtime_of(request).state.changed()
    return _json(_access(rbac, app_id))


def routes() -> list[BaseRoute]:
    """The ``/_sandbox/tenants/{tid}/exchange/...`` routes."""
    base = "/_sandbox/tenants/{tid}/exchange"
    return [
        Route(f"{base}/service-principals", list_pointers, methods=["GET"]),
        Route(f"{base}/service-principals", new_pointer, methods=["POST"]),
        Route(f"{base}/service-principals/{{identity}}", remove_pointer, methods=["DELETE"]),
        Route(f"{base}/management-scopes", list_scopes, methods=["GET"]),
        Route(f"{base}/management-scopes", new_scope, methods=["POST"]),
        Route(f"{base}/management-scopes/{{name}}", remove_scope, methods=["DELETE"]),
        Route(f"{base}/role-assignments", list_assignments, methods=["GET"]),
        Route(f"{base}/role-assignments", new_assignment, methods=["POST"]),
        Route(f"{base}/role-assignments/{{name}}", remove_assignment, methods=["DELETE"]),
        Route(f"{base}/test-authorization", test_authorization, methods=["GET"]),
        Route(f"{base}/groups/{{identity}}", get_group, methods=["GET"]),
        Route(f"{base}/mailboxes", list_mailboxes, methods=["GET"]),
        Route(f"{base}/mailboxes/{{user}}", set_mailbox, methods=["PATCH"]),
        Route(f"{base}/app-only-access/{{app_id}}", get_app_only_access, methods=["GET"]),
        Route(f"{base}/app-only-access/{{app_id}}", put_app_only_access, methods=["PUT"]),
    ]
