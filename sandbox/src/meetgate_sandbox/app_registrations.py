"""Graph routes for app registrations: what ``meetgate setup app`` and ``meetgate cert`` call.

Under ``/v1.0`` and ``/beta``, over the tenant's :class:`~meetgate_sandbox.apps.AppRegistry`:

- ``/applications`` (GET with ``$filter``, ``$search``, ``$orderby``, ``$count``, ``$top``; POST),
  ``/applications/$count``, ``/applications/{id}`` and
  ``/applications(appId='…')`` (GET with ``$select``, PATCH, DELETE);
- ``/applications/{id}/addKey`` and ``/removeKey`` with a proof-of-possession JWT signed by a current
  certificate of the app (aud ``00000002-0000-0000-c000-000000000000``, iss = the application's object
  id, at most 10 minutes); ``/addPassword`` and ``/removePassword``;
- ``/servicePrincipals`` (GET with the same queries, POST), ``/servicePrincipals/$count``,
  ``/servicePrincipals/{id}``,
  ``/servicePrincipals(appId='…')``, ``/appRoleAssignedTo`` (GET, POST = admin consent, DELETE),
  ``/appRoleAssignments`` (GET);
- ``/me/memberOf/microsoft.graph.directoryRole`` (and ``transitiveMemberOf``) for delegated callers.

Who may do what, as Entra decides it: app-only callers need ``Application.ReadWrite.All`` to write
registrations and ``AppRoleAssignment.ReadWrite.All`` to grant consent (an app may roll its *own*
keys with addKey/removeKey without any permission); delegated callers need the matching scope *and*
a directory role — Global / Application / Cloud Application Administrator to write registrations,
Global or Privileged Role Administrator to grant Microsoft Graph app roles. Anything else is
``403 Authorization_RequestDenied`` and changes nothing.

``keyCredentials[].key`` is rendered only by a single-object GET with ``$select`` naming
keyCredentials, as Graph does; ``customKeyIdentifier`` is the base64 SHA-1 digest. Every change is
recorded as a ``directoryAudit`` in the tenant's provisioning extension.

The application, service principal and directory role routes are here; what they share (the
permission rules, the caller's tenant, audits, rendering) is in ``app_registrations_common``, the
key and password credentials (proof of possession, addKey...) in ``app_registrations_keys``.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox import app_registrations_query as query
from meetgate_sandbox.app_registrations_common import (
    APPLICATION_ADMINISTRATOR,
    CLOUD_APPLICATION_ADMINISTRATOR,
    CONSENT_PERMISSIONS,
    DIRECTORY_ROLES,
    GLOBAL_ADMINISTRATOR,
    GRAPH_CONSENT_ADMINS,
    PRIVILEGED_ROLE_ADMINISTRATOR,
    READ_PERMISSIONS,
    REGISTRATION_ADMINS,
    WRITE_PERMISSIONS,
    _application,
    _authorized,
    _bad,
    _collection,
    _context,
    _initiator,
    _json,
    _matching,
    _no_content,
    _not_found,
    _project,
    _record_credential_change,
    _require,
    _select,
    _service_principal,
    _tenant,
    directory_roles_of,
    extension,
    render_application,
    render_service_principal,
)
from meetgate_sandbox.app_registrations_keys import (
    PROOF_AUDIENCE,
    PROOF_MAX_LIFETIME,
    PROOF_SKEW,
    _set_key_credentials,
    add_key,
    add_password,
    remove_key,
    remove_password,
    verify_proof,
)
from meetgate_sandbox.apps import (
    GRAPH_APP_ID,
    Application,
    AppRoleAssignment,
    KeyCredential,
    ServicePrincipal,
    iso,
)
from meetgate_sandbox.http import GraphErrorResponse, caller_of, json_object_body
from meetgate_sandbox.state import Tenant

SIGN_IN_AUDIENCES = (
    "AzureADMyOrg",
    "AzureADMultipleOrgs",
    "AzureADandPersonalMicrosoftAccount",
    "PersonalMicrosoftAccount",
)


# --- applications ----------------------------------------------------------------------------


def _required_resource_access(tenant: Tenant, value: Any) -> list[dict[str, Any]]:
    message = "Invalid value specified for property 'requiredResourceAccess' of resource 'Application'."
    if not isinstance(value, list):
        raise _bad(message)
    graph_roles = {r["id"].lower() for r in tenant.apps.graph_service_principal.app_roles}
    out: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("resourceAppId"), str):
            raise _bad(message)
        accesses = item.get("resourceAccess") or []
        if not isinstance(accesses, list):
            raise _bad(message)
        clean = []
        for access in accesses:
            if not isinstance(access, dict) or access.get("type") not in ("Role", "Scope"):
                raise _bad(message)
            role_id = str(access.get("id", ""))
            if (
                item["resourceAppId"].lower() == GRAPH_APP_ID
                and access["type"] == "Role"
                and role_id.lower() not in graph_roles
            ):
                raise _bad(
                    f"Permission (scope or role) '{role_id}' is not defined on resource Microsoft Graph."
                )
            clean.append({"id": role_id, "type": access["type"]})
        out.append({"resourceAppId": item["resourceAppId"], "resourceAccess": clean})
    return out


async def list_applications(request: Request) -> Response:
    _, tenant = _authorized(request, READ_PERMISSIONS)
    items = _matching(
        request, (render_application(tenant, a) for a in tenant.apps.applications.values()), "Application"
    )
    return _collection(request, "applications", items)


async def count_applications(request: Request) -> Response:
    """``GET /applications/$count``: the number of matching applications as text (advanced query)."""
    _, tenant = _authorized(request, READ_PERMISSIONS)
    items = _matching(
        request, (render_application(tenant, a) for a in tenant.apps.applications.values()), "Application"
    )
    return PlainTextResponse(query.count(request, items))


async def create_application(request: Request) -> Response:
    caller, tenant = _authorized(request, WRITE_PERMISSIONS, REGISTRATION_ADMINS)
    body = await json_object_body(request)
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise _bad("Property 'displayName' is required and must be a non-empty string.")
    audience = body.get("signInAudience", "AzureADMyOrg")
    if audience not in SIGN_IN_AUDIENCES:
        raise _bad(f"Invalid value specified for property 'signInAudience': '{audience}'.")
    rra = _required_resource_access(tenant, body.get("requiredResourceAccess", []))
    keys: list[KeyCredential] = []
    if body.get("keyCredentials"):
        probe = Application(id="", app_id="", display_name=name, created=dt.datetime.now(dt.UTC))
        _set_key_credentials(probe, body["keyCredentials"])
        keys = probe.key_credentials
    app = tenant.apps.create_application(name.strip())
    app.sign_in_audience = audience
    app.required_resource_access = rra
    app.key_credentials = keys
    extension(tenant).record(
        "Add application",
        _initiator(request, tenant, caller),
        target_id=app.id,
        target_name=app.display_name,
        target_type="Application",
        operation="Add",
        modified={
            "AppId": (None, app.app_id),
            "AvailableToOtherTenants": (None, audience != "AzureADMyOrg"),
            "RequiredResourceAccess": (None, rra),
        },
    )
    data = render_application(tenant, app)
    return _json({"@odata.context": _context(request, "applications/$entity"), **data}, 201)


def _application_from_path(request: Request, tenant: Tenant) -> Application:
    if "app_id" in request.path_params:
        return _application(tenant, request.path_params["app_id"], by_app_id=True)
    return _application(tenant, request.path_params["object_id"])


async def get_application(request: Request) -> Response:
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    app = _application_from_path(request, tenant)
    if not (caller.is_app_only and caller.app_id.lower() == app.app_id.lower()):
        _require(tenant, caller, READ_PERMISSIONS)
    select = _select(request)
    with_keys = bool(select) and any(s.lower() == "keycredentials" for s in select or [])
    data = _project(render_application(tenant, app, with_keys=with_keys), select)
    return _json({"@odata.context": _context(request, "applications/$entity"), **data})


async def update_application(request: Request) -> Response:
    caller, tenant = _authorized(request, WRITE_PERMISSIONS, REGISTRATION_ADMINS)
    app = _application_from_path(request, tenant)
    body = await json_object_body(request)
    allowed = {"displayName", "signInAudience", "requiredResourceAccess", "keyCredentials"}
    for key in body:
        if key == "passwordCredentials":
            raise _bad(
                "Property 'passwordCredentials' cannot be updated this way; use addPassword / removePassword."
            )
        if key not in allowed:
            raise _bad(f"Property '{key}' does not exist on type 'microsoft.graph.application'.")
    # validate everything before changing anything
    name = body.get("displayName", app.display_name)
    if not isinstance(name, str) or not name.strip():
        raise _bad("Property 'displayName' must be a non-empty string.")
    audience = body.get("signInAudience", app.sign_in_audience)
    if audience not in SIGN_IN_AUDIENCES:
        raise _bad(f"Invalid value specified for property 'signInAudience': '{audience}'.")
    rra = (
        _required_resource_access(tenant, body["requiredResourceAccess"])
        if "requiredResourceAccess" in body
        else app.required_resource_access
    )
    keys = app.key_credentials
    if "keyCredentials" in body:
        probe = Application(id=app.id, app_id=app.app_id, display_name=app.display_name, created=app.created)
        probe.key_credentials = list(app.key_credentials)
        _set_key_credentials(probe, body["keyCredentials"])
        keys = probe.key_credentials
    initiator = _initiator(request, tenant, caller)
    ext = extension(tenant)
    general: dict[str, tuple[Any, Any]] = {}
    if name != app.display_name:
        general["DisplayName"] = (app.display_name, name)
    if audience != app.sign_in_audience:
        general["AvailableToOtherTenants"] = (
            app.sign_in_audience != "AzureADMyOrg",
            audience != "AzureADMyOrg",
        )
    if rra != app.required_resource_access:
        general["RequiredResourceAccess"] = (app.required_resource_access, rra)
    before_keys = [k.thumbprint_sha1 for k in app.key_credentials]
    app.display_name, app.sign_in_audience, app.required_resource_access = name, audience, rra
    app.key_credentials = keys
    if general:
        ext.record(
            "Update application",
            initiator,
            target_id=app.id,
            target_name=app.display_name,
            target_type="Application",
            operation="Update",
            modified=general,
        )
    after_keys = [k.thumbprint_sha1 for k in keys]
    if "keyCredentials" in body and before_keys != after_keys:
        _record_credential_change(request, tenant, caller, app, (before_keys, after_keys))
    return _no_content()


async def delete_application(request: Request) -> Response:
    caller, tenant = _authorized(request, WRITE_PERMISSIONS, REGISTRATION_ADMINS)
    app = _application_from_path(request, tenant)
    registry = tenant.apps
    sp = registry.service_principal_by_app_id(app.app_id)
    if sp is not None:
        for assignment_id in [
            a.id for a in registry.assignments.values() if sp.id in (a.principal_id, a.resource_id)
        ]:
            del registry.assignments[assignment_id]
        del registry.service_principals[sp.id]
    del registry.applications[app.id]
    extension(tenant).record(
        "Delete application",
        _initiator(request, tenant, caller),
        target_id=app.id,
        target_name=app.display_name,
        target_type="Application",
        operation="Delete",
    )
    return _no_content()


# --- service principals ----------------------------------------------------------------------


async def list_service_principals(request: Request) -> Response:
    _, tenant = _authorized(request, READ_PERMISSIONS)
    items = _matching(
        request,
        (render_service_principal(tenant, s) for s in tenant.apps.service_principals.values()),
        "ServicePrincipal",
    )
    return _collection(request, "servicePrincipals", items)


async def count_service_principals(request: Request) -> Response:
    """``GET /servicePrincipals/$count``: the number of matching service principals as text."""
    _, tenant = _authorized(request, READ_PERMISSIONS)
    items = _matching(
        request,
        (render_service_principal(tenant, s) for s in tenant.apps.service_principals.values()),
        "ServicePrincipal",
    )
    return PlainTextResponse(query.count(request, items))


async def create_service_principal(request: Request) -> Response:
    caller, tenant = _authorized(request, WRITE_PERMISSIONS, REGISTRATION_ADMINS)
    body = await json_object_body(request)
    app_id = body.get("appId")
    if not isinstance(app_id, str) or not app_id:
        raise _bad("Property 'appId' is required.")
    app = tenant.apps.application_by_app_id(app_id)
    if app is None:
        raise _bad(
            f"The appId '{app_id}' of the service principal does not reference a valid application object."
        )
    if tenant.apps.service_principal_by_app_id(app_id) is not None:
        raise GraphErrorResponse(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            "Another object with the same value for property servicePrincipalNames already exists.",
        )
    sp = tenant.apps.create_service_principal(app)
    extension(tenant).record(
        "Add service principal",
        _initiator(request, tenant, caller),
        target_id=sp.id,
        target_name=sp.display_name,
        target_type="ServicePrincipal",
        operation="Add",
        modified={"AppPrincipalId": (None, app.app_id)},
    )
    return _json(
        {
            "@odata.context": _context(request, "servicePrincipals/$entity"),
            **render_service_principal(tenant, sp),
        },
        201,
    )


def _sp_from_path(request: Request, tenant: Tenant) -> ServicePrincipal:
    if "app_id" in request.path_params:
        return _service_principal(tenant, request.path_params["app_id"], by_app_id=True)
    return _service_principal(tenant, request.path_params["sp_id"])


async def get_service_principal(request: Request) -> Response:
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    sp = _sp_from_path(request, tenant)
    if not (caller.is_app_only and caller.app_id.lower() == sp.app_id.lower()):
        _require(tenant, caller, READ_PERMISSIONS)
    data = _project(render_service_principal(tenant, sp), _select(request))
    return _json({"@odata.context": _context(request, "servicePrincipals/$entity"), **data})


async def list_assigned_to(request: Request) -> Response:
    _, tenant = _authorized(request, READ_PERMISSIONS | CONSENT_PERMISSIONS)
    sp = _sp_from_path(request, tenant)
    items = [a.to_graph() for a in tenant.apps.assignments.values() if a.resource_id == sp.id]
    return _json({"@odata.context": _context(request, "appRoleAssignments"), "value": items})


async def list_assignments(request: Request) -> Response:
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    sp = _sp_from_path(request, tenant)
    if not (caller.is_app_only and caller.service_principal_id == sp.id):
        _require(tenant, caller, READ_PERMISSIONS | CONSENT_PERMISSIONS)
    items = [a.to_graph() for a in tenant.apps.assignments.values() if a.principal_id == sp.id]
    return _json({"@odata.context": _context(request, "appRoleAssignments"), "value": items})


async def grant_app_role(request: Request) -> Response:
    """Admin consent to one application permission: an app role assignment on the resource."""
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    resource = _sp_from_path(request, tenant)
    admins = GRAPH_CONSENT_ADMINS if resource.app_id == GRAPH_APP_ID else REGISTRATION_ADMINS
    _require(tenant, caller, CONSENT_PERMISSIONS, admins)
    body = await json_object_body(request)
    principal_id, resource_id, role_id = (
        body.get("principalId"),
        body.get("resourceId"),
        body.get("appRoleId"),
    )
    if not all(isinstance(v, str) and v for v in (principal_id, resource_id, role_id)):
        raise _bad("Properties 'principalId', 'resourceId' and 'appRoleId' are required.")
    assert isinstance(principal_id, str) and isinstance(resource_id, str) and isinstance(role_id, str)
    if resource_id.lower() != resource.id.lower():
        raise _bad("The resourceId must be the service principal the assignment is posted to.")
    principal = tenant.apps.service_principals.get(
        principal_id.lower()
    ) or tenant.apps.service_principals.get(principal_id)
    if principal is None:
        raise _not_found(principal_id)
    role = next(
        (
            r
            for r in resource.app_roles
            if str(r.get("id", "")).lower() == role_id.lower()
            and "Application" in r.get("allowedMemberTypes", [])
        ),
        None,
    )
    if role is None:
        raise _bad("Permission being assigned was not found on application")
    for existing in tenant.apps.assignments.values():
        if (
            existing.principal_id == principal.id
            and existing.resource_id == resource.id
            and existing.app_role_id.lower() == role_id.lower()
        ):
            raise _bad("Permission being assigned already exists on the object")
    assignment = AppRoleAssignment(
        id=base64.urlsafe_b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes[:4]).decode().rstrip("="),
        app_role_id=str(role["id"]),
        principal_id=principal.id,
        principal_display_name=principal.display_name,
        resource_id=resource.id,
        resource_display_name=resource.display_name,
        created=dt.datetime.now(dt.UTC),
    )
    tenant.apps.assignments[assignment.id] = assignment
    extension(tenant).record(
        "Add app role assignment to service principal",
        _initiator(request, tenant, caller),
        target_id=principal.id,
        target_name=principal.display_name,
        target_type="ServicePrincipal",
        operation="Assign",
        modified={
            "AppRole.Id": (None, role["id"]),
            "AppRole.Value": (None, role.get("value")),
            "ServicePrincipal.DisplayName": (None, resource.display_name),
        },
    )
    return _json(
        {"@odata.context": _context(request, "appRoleAssignments/$entity"), **assignment.to_graph()}, 201
    )


async def revoke_app_role(request: Request) -> Response:
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    resource = _sp_from_path(request, tenant)
    admins = GRAPH_CONSENT_ADMINS if resource.app_id == GRAPH_APP_ID else REGISTRATION_ADMINS
    _require(tenant, caller, CONSENT_PERMISSIONS, admins)
    assignment_id = request.path_params["assignment_id"]
    assignment = tenant.apps.assignments.get(assignment_id)
    if assignment is None or assignment.resource_id != resource.id:
        raise _not_found(assignment_id)
    del tenant.apps.assignments[assignment_id]
    principal = tenant.apps.service_principals.get(assignment.principal_id)
    extension(tenant).record(
        "Remove app role assignment from service principal",
        _initiator(request, tenant, caller),
        target_id=assignment.principal_id,
        target_name=principal.display_name if principal else None,
        target_type="ServicePrincipal",
        operation="Unassign",
        modified={"AppRole.Id": (assignment.app_role_id, None)},
    )
    return _no_content()


# --- the signed-in user's directory roles ------------------------------------------------------


async def my_directory_roles(request: Request) -> Response:
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    if caller.is_app_only:
        raise _bad("/me request is only valid with delegated authentication flow.")
    roles = sorted(directory_roles_of(tenant, caller.delegated_user_id or ""))
    items = [
        {
            "@odata.type": "#microsoft.graph.directoryRole",
            "id": str(uuid.uuid5(uuid.UUID(DIRECTORY_ROLES[name]), tenant.id)),
            "deletedDateTime": None,
            "description": name,
            "displayName": name,
            "roleTemplateId": DIRECTORY_ROLES[name],
        }
        for name in roles
        if name in DIRECTORY_ROLES
    ]
    return _json({"@odata.context": _context(request, "directoryObjects"), "value": items})


# --- routes ----------------------------------------------------------------------------------

Endpoint = Callable[[Request], Awaitable[Response]]


def _dispatch(**by_method: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await by_method[request.method](request)

    return endpoint


def routes() -> list[BaseRoute]:
    table: list[tuple[str, dict[str, Endpoint]]] = [
        ("/applications", {"GET": list_applications, "POST": create_application}),
        ("/applications/$count", {"GET": count_applications}),
        (
            "/applications(appId='{app_id}')",
            {"GET": get_application, "PATCH": update_application, "DELETE": delete_application},
        ),
        (
            "/applications/{object_id}",
            {"GET": get_application, "PATCH": update_application, "DELETE": delete_application},
        ),
        ("/applications/{object_id}/addKey", {"POST": add_key}),
        ("/applications/{object_id}/removeKey", {"POST": remove_key}),
        ("/applications/{object_id}/addPassword", {"POST": add_password}),
        ("/applications/{object_id}/removePassword", {"POST": remove_password}),
        ("/servicePrincipals", {"GET": list_service_principals, "POST": create_service_principal}),
        ("/servicePrincipals/$count", {"GET": count_service_principals}),
        ("/servicePrincipals(appId='{app_id}')", {"GET": get_service_principal}),
        (
            "/servicePrincipals(appId='{app_id}')/appRoleAssignedTo",
            {"GET": list_assigned_to, "POST": grant_app_role},
        ),
        ("/servicePrincipals/{sp_id}", {"GET": get_service_principal}),
        ("/servicePrincipals/{sp_id}/appRoleAssignedTo", {"GET": list_assigned_to, "POST": grant_app_role}),
        ("/servicePrincipals/{sp_id}/appRoleAssignedTo/{assignment_id}", {"DELETE": revoke_app_role}),
        ("/servicePrincipals/{sp_id}/appRoleAssignments", {"GET": list_assignments}),
        ("/me/memberOf/microsoft.graph.directoryRole", {"GET": my_directory_roles}),
        ("/me/transitiveMemberOf/microsoft.graph.directoryRole", {"GET": my_directory_roles}),
    ]
    out: list[BaseRoute] = []
    for version in ("/v1.0", "/beta"):
        for path, methods in table:
            out.append(Route(version + path, _dispatch(**methods), methods=list(methods)))
    return out


__all__ = [
    "APPLICATION_ADMINISTRATOR",
    "CLOUD_APPLICATION_ADMINISTRATOR",
    "CONSENT_PERMISSIONS",
    "DIRECTORY_ROLES",
    "GLOBAL_ADMINISTRATOR",
    "GRAPH_CONSENT_ADMINS",
    "PRIVILEGED_ROLE_ADMINISTRATOR",
    "PROOF_AUDIENCE",
    "PROOF_MAX_LIFETIME",
    "PROOF_SKEW",
    "READ_PERMISSIONS",
    "REGISTRATION_ADMINS",
    "WRITE_PERMISSIONS",
    "add_key",
    "add_password",
    "directory_roles_of",
    "extension",
    "iso",
    "remove_key",
    "remove_password",
    "render_application",
    "routes",
    "verify_proof",
]
