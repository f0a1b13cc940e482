"""What the app registration routes share: who may do what, the caller's tenant, audit records,
Graph's answers and OData helpers, and how an application renders.

The permission and directory role sets below are Entra's rules as :mod:`meetgate_sandbox.app_registrations`
describes them; the provisioning extension (directory audits, directory roles) is :func:`extension`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from meetgate_sandbox import app_registrations_query as query
from meetgate_sandbox.apps import Application, KeyCredential, ServicePrincipal
from meetgate_sandbox.directory_audit import (
    CERTIFICATES_AND_SECRETS,
    EXTENSION,
    Initiator,
    ProvisioningExtension,
)
from meetgate_sandbox.http import Caller, GraphErrorResponse, caller_of
from meetgate_sandbox.runtime import runtime_of
from meetgate_sandbox.state import Tenant

#: directory role template ids (stable across tenants)
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
APPLICATION_ADMINISTRATOR = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
CLOUD_APPLICATION_ADMINISTRATOR = "158c047a-c907-4556-b7ef-446551a6b5f7"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
DIRECTORY_ROLES = {
    "Global Administrator": GLOBAL_ADMINISTRATOR,
    "Application Administrator": APPLICATION_ADMINISTRATOR,
    "Cloud Application Administrator": CLOUD_APPLICATION_ADMINISTRATOR,
    "Privileged Role Administrator": PRIVILEGED_ROLE_ADMINISTRATOR,
}
REGISTRATION_ADMINS = frozenset(
    {"Global Administrator", "Application Administrator", "Cloud Application Administrator"}
)
GRAPH_CONSENT_ADMINS = frozenset({"Global Administrator", "Privileged Role Administrator"})

READ_PERMISSIONS = frozenset(
    {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
WRITE_PERMISSIONS = frozenset({"Application.ReadWrite.All", "Directory.ReadWrite.All"})
CONSENT_PERMISSIONS = frozenset({"AppRoleAssignment.ReadWrite.All"})

_SELECT_ALWAYS = ("id",)


# --- helpers -------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json"
    )


def _no_content() -> Response:
    return Response(status_code=204)


def _bad(message: str) -> GraphErrorResponse:
    return GraphErrorResponse(400, "Request_BadRequest", message)


def _denied() -> GraphErrorResponse:
    return GraphErrorResponse(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def _not_found(key: str) -> GraphErrorResponse:
    return GraphErrorResponse(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def _context(request: Request, what: str) -> str:
    version = request.url.path.split("/")[1]
    return f"https://graph.microsoft.com/{version}/$metadata#{what}"


def _tenant(request: Request, caller: Caller) -> Tenant:
    tenant = runtime_of(request).state.tenants.get(caller.tenant_id)
    if tenant is None:
        raise GraphErrorResponse(401, "InvalidAuthenticationToken", "Access token validation failure.")
    return tenant


def extension(tenant: Tenant) -> ProvisioningExtension:
    ext = tenant.extensions.get(EXTENSION)
    if not isinstance(ext, ProvisioningExtension):
        ext = ProvisioningExtension()
        tenant.extensions[EXTENSION] = ext
    return ext


def directory_roles_of(tenant: Tenant, user_id: str) -> set[str]:
    """Directory role names of a user: the tenant's admin is a Global Administrator."""
    roles = set(extension(tenant).directory_roles.get(user_id, []))
    if tenant.admin_id and user_id == tenant.admin_id:
        roles.add("Global Administrator")
    return roles


def _require(
    tenant: Tenant, caller: Caller, permissions: frozenset[str], admin_roles: frozenset[str] | None = None
) -> None:
    if caller.is_app_only:
        if not caller.roles & permissions:
            raise _denied()
        return
    if not caller.scopes & (permissions | {"Directory.AccessAsUser.All"}):
        raise _denied()
    if (
        admin_roles is not None
        and not directory_roles_of(tenant, caller.delegated_user_id or "") & admin_roles
    ):
        raise _denied()


def _authorized(
    request: Request, permissions: frozenset[str], admin_roles: frozenset[str] | None = None
) -> tuple[Caller, Tenant]:
    """The caller and its tenant, once the caller holds one of ``permissions`` (see :func:`_require`)."""
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    _require(tenant, caller, permissions, admin_roles)
    return caller, tenant


def _initiator(request: Request, tenant: Tenant, caller: Caller) -> Initiator:
    """Who a directory audit names: the signed-in user (with the client's IP address) for a delegated
    token, else the calling application and its service principal."""
    if caller.delegated_user_id:
        user = tenant.users.get(caller.delegated_user_id)
        return Initiator(
            user_id=caller.delegated_user_id,
            user_principal_name=user.user_principal_name if user else None,
            display_name=user.display_name if user else None,
            ip_address=request.client.host if request.client else None,
        )
    sp = tenant.apps.service_principal_by_app_id(caller.app_id)
    app = tenant.apps.application_by_app_id(caller.app_id)
    return Initiator(
        app_id=caller.app_id,
        service_principal_id=caller.service_principal_id,
        display_name=sp.display_name if sp else (app.display_name if app else None),
        service_principal_name=sp.display_name if sp else None,
    )


def _record_credential_change(
    request: Request, tenant: Tenant, caller: Caller, app: Application, key_description: tuple[Any, Any]
) -> None:
    """Audit one change to an application's certificates or secrets (``KeyDescription`` before, after)."""
    extension(tenant).record(
        CERTIFICATES_AND_SECRETS,
        _initiator(request, tenant, caller),
        target_id=app.id,
        target_name=app.display_name,
        target_type="Application",
        operation="Update",
        modified={"KeyDescription": key_description},
    )


def _matching(request: Request, items: Iterable[dict[str, Any]], resource: str) -> list[dict[str, Any]]:
    """The items the request's ``$filter``, ``$search`` and ``$orderby`` keep (see app_registrations_query)."""
    filterable = (
        query.SERVICE_PRINCIPAL_FILTERABLE if resource == "ServicePrincipal" else query.APPLICATION_FILTERABLE
    )
    return query.matching(request, items, resource, filterable)


def _select(request: Request) -> list[str] | None:
    raw = request.query_params.get("$select")
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _project(item: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if not select:
        return item
    wanted = {s.lower() for s in select} | set(_SELECT_ALWAYS)
    return {k: v for k, v in item.items() if k.lower() in wanted}


def _collection(request: Request, what: str, items: list[dict[str, Any]]) -> Response:
    """A list answer: the items projected to the request's ``$select``, under Graph's envelope."""
    select = _select(request)
    body = query.page(request, [_project(i, select) for i in items], _context(request, what))
    return _json(body)


def _guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- rendering -------------------------------------------------------------------------------


def _key_graph(key: KeyCredential, *, with_key: bool) -> dict[str, Any]:
    data = key.to_graph()
    data["customKeyIdentifier"] = base64.b64encode(
        hashlib.sha1(key.der, usedforsecurity=False).digest()
    ).decode()
    if not with_key:
        data["key"] = None
    return data


_NO_INFO = dict.fromkeys(
    ("termsOfServiceUrl", "supportUrl", "privacyStatementUrl", "marketingUrl", "logoUrl")
)

#: the rest of Graph's application property set, as a new registration has it: the sandbox does not
#: model these, but Graph always returns them (Microsoft's documented get/create responses show them)
APPLICATION_DEFAULTS: dict[str, Any] = {
    "deletedDateTime": None,
    "isFallbackPublicClient": None,
    "applicationTemplateId": None,
    "identifierUris": [],
    "disabledByMicrosoftStatus": None,
    "isDeviceOnlyAuthSupported": None,
    "groupMembershipClaims": None,
    "optionalClaims": None,
    "addIns": [],
    "tags": [],
    "tokenEncryptionKeyId": None,
    "api": {
        "requestedAccessTokenVersion": None,
        "acceptMappedClaims": None,
        "knownClientApplications": [],
        "oauth2PermissionScopes": [],
        "preAuthorizedApplications": [],
    },
    "appRoles": [],
    "publicClient": {"redirectUris": []},
    "info": _NO_INFO,
    "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
    "web": {
        "redirectUris": [],
        "homePageUrl": None,
        "logoutUrl": None,
        "implicitGrantSettings": {"enableIdTokenIssuance": False, "enableAccessTokenIssuance": False},
    },
}

#: likewise for a service principal (``appDisplayName``, ``publisherName`` and ``signInAudience``
#: come from the application and its tenant when it is one of the tenant's own)
SERVICE_PRINCIPAL_DEFAULTS: dict[str, Any] = {
    "deletedDateTime": None,
    "addIns": [],
    "alternativeNames": [],
    "appDescription": None,
    "appDisplayName": None,
    "applicationTemplateId": None,
    "appRoleAssignmentRequired": False,
    "description": None,
    "disabledByMicrosoftStatus": None,
    "endpoints": [],
    "homepage": None,
    "info": _NO_INFO,
    "keyCredentials": [],
    "loginUrl": None,
    "logoutUrl": None,
    "notes": None,
    "notificationEmailAddresses": [],
    "oauth2PermissionScopes": [],
    "passwordCredentials": [],
    "preferredSingleSignOnMode": None,
    "preferredTokenSigningKeyThumbprint": None,
    "publisherName": None,
    "replyUrls": [],
    "resourceSpecificApplicationPermissions": [],
    "samlSingleSignOnSettings": None,
    "signInAudience": None,
    "tags": [],
    "tokenEncryptionKeyId": None,
    "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
}


def render_application(tenant: Tenant, app: Application, *, with_keys: bool = False) -> dict[str, Any]:
    """An application as Graph returns it: what the sandbox models over Graph's other defaults."""
    data = {**copy.deepcopy(APPLICATION_DEFAULTS), **app.to_graph(tenant.domain)}
    data["keyCredentials"] = [_key_graph(k, with_key=with_keys) for k in app.key_credentials]
    return data


def render_service_principal(tenant: Tenant, sp: ServicePrincipal) -> dict[str, Any]:
    """A service principal as Graph returns it (see :data:`SERVICE_PRINCIPAL_DEFAULTS`)."""
    data = {**copy.deepcopy(SERVICE_PRINCIPAL_DEFAULTS), **sp.to_graph()}
    app = tenant.apps.application_by_app_id(sp.app_id)
    if app is not None:
        data.update(
            appDisplayName=app.display_name,
            publisherName=tenant.display_name,
            signInAudience=app.sign_in_audience,
        )
    elif sp.display_name:
        data.update(appDisplayName=sp.display_name, signInAudience="AzureADMultipleOrgs")
    return data


def _application(tenant: Tenant, key: str, *, by_app_id: bool = False) -> Application:
    app = tenant.apps.application_by_app_id(key) if by_app_id else tenant.apps.applications.get(key.lower())
    if app is None and not by_app_id:
        app = tenant.apps.applications.get(key)
    if app is None:
        raise _not_found(key)
    return app


def _service_principal(tenant: Tenant, key: str, *, by_app_id: bool = False) -> ServicePrincipal:
    sp = (
        tenant.apps.service_principal_by_app_id(key)
        if by_app_id
        else tenant.apps.service_principals.get(key.lower()) or tenant.apps.service_principals.get(key)
    )
    if sp is None:
        raise _not_found(key)
    return sp
