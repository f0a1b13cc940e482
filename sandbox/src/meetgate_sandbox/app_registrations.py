"""Graph routes for app registrations: what ``meetgate setup app`` and ``meetgate cert`` call.

Under ``/v1.0`` and ``/beta``, over the tenant's :class:`~meetgate_sandbox.apps.AppRegistry`:

- ``/applications`` (GET with ``$filter`` on displayName / appId, POST), ``/applications/{id}`` and
  ``/applications(appId='…')`` (GET with ``$select``, PATCH, DELETE);
- ``/applications/{id}/addKey`` and ``/removeKey`` with a proof-of-possession JWT signed by a current
  certificate of the app (aud ``00000002-0000-0000-c000-000000000000``, iss = the application's object
  id, at most 10 minutes); ``/addPassword`` and ``/removePassword``;
- ``/servicePrincipals`` (GET with ``$filter``, POST), ``/servicePrincipals/{id}``,
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
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from meetgate import certificates
from meetgate_sandbox import odata
from meetgate_sandbox.apps import (
    GRAPH_APP_ID,
    Application,
    AppRoleAssignment,
    KeyCredential,
    PasswordCredential,
    ServicePrincipal,
    iso,
    parse_iso,
)
from meetgate_sandbox.directory_audit import (
    CERTIFICATES_AND_SECRETS,
    EXTENSION,
    Initiator,
    ProvisioningExtension,
)
from meetgate_sandbox.http import Caller, GraphErrorResponse, caller_of
from meetgate_sandbox.runtime import runtime_of
from meetgate_sandbox.state import Tenant

PROOF_AUDIENCE = "00000002-0000-0000-c000-000000000000"
PROOF_MAX_LIFETIME = dt.timedelta(minutes=10)
PROOF_SKEW = dt.timedelta(minutes=5)
SIGN_IN_AUDIENCES = (
    "AzureADMyOrg",
    "AzureADMultipleOrgs",
    "AzureADandPersonalMicrosoftAccount",
    "PersonalMicrosoftAccount",
)

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

_FILTERABLE = {"displayName": "displayName", "appId": "appId", "id": "id"}
_SELECT_ALWAYS = ("id",)


# --- helpers -------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json"
    )


def _no_content() -> Response:
    return Response(status_code=204)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise GraphErrorResponse(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set.",
        ) from None
    if not isinstance(data, dict):
        raise GraphErrorResponse(400, "BadRequest", "The request body must be a JSON object.")
    return data


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


def _initiator(tenant: Tenant, caller: Caller) -> Initiator:
    if caller.delegated_user_id:
        user = tenant.users.get(caller.delegated_user_id)
        return Initiator(
            user_id=caller.delegated_user_id,
            user_principal_name=user.user_principal_name if user else None,
            display_name=user.display_name if user else None,
        )
    app = tenant.apps.application_by_app_id(caller.app_id)
    return Initiator(
        app_id=caller.app_id,
        service_principal_id=caller.service_principal_id,
        display_name=app.display_name if app else None,
    )


def _record_credential_change(
    tenant: Tenant, caller: Caller, app: Application, key_description: tuple[Any, Any]
) -> None:
    """Audit one change to an application's certificates or secrets (``KeyDescription`` before, after)."""
    extension(tenant).record(
        CERTIFICATES_AND_SECRETS,
        _initiator(tenant, caller),
        target_id=app.id,
        target_name=app.display_name,
        target_type="Application",
        operation="Update",
        modified={"KeyDescription": key_description},
    )


def _matching(request: Request, items: Iterable[dict[str, Any]], resource: str) -> list[dict[str, Any]]:
    predicate = odata.parse_filter(request.query_params.get("$filter"), _FILTERABLE, resource)
    return [item for item in items if predicate is None or predicate(item)]


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
    return _json({"@odata.context": _context(request, what), "value": [_project(i, select) for i in items]})


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


def render_application(tenant: Tenant, app: Application, *, with_keys: bool = False) -> dict[str, Any]:
    data = app.to_graph(tenant.domain)
    data["keyCredentials"] = [_key_graph(k, with_key=with_keys) for k in app.key_credentials]
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


# --- key credentials -------------------------------------------------------------------------


def _parse_key_credential(data: Any, existing: dict[str, KeyCredential]) -> KeyCredential:
    if not isinstance(data, dict):
        raise _bad("Invalid value specified for property 'keyCredentials' of resource 'Application'.")
    key_id = data.get("keyId")
    raw = data.get("key")
    if raw in (None, "") and isinstance(key_id, str) and key_id in existing:
        return existing[key_id]  # an existing credential sent back without its key: kept as it is
    if (
        data.get("type", "AsymmetricX509Cert") != "AsymmetricX509Cert"
        or data.get("usage", "Verify") != "Verify"
    ):
        raise _bad("Only key credentials of type 'AsymmetricX509Cert' with usage 'Verify' are supported.")
    if not isinstance(raw, str) or not raw:
        raise _bad("Key credential property 'key' is required (the base64 DER certificate).")
    try:
        cert = certificates.load_certificate_bytes(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, certificates.CertificateError):
        raise _bad("Invalid certificate: the key value must be a base64 encoded X.509 certificate.") from None
    try:
        start = parse_iso(data["startDateTime"]) if data.get("startDateTime") else None
        end = parse_iso(data["endDateTime"]) if data.get("endDateTime") else None
    except (TypeError, ValueError):
        raise _bad("Invalid value specified for property 'startDateTime' or 'endDateTime'.") from None
    if end is not None and end > cert.not_valid_after_utc + dt.timedelta(seconds=1):
        raise _bad("Key credential end date is invalid: it is later than the certificate's expiry.")
    if start is not None and start < cert.not_valid_before_utc - dt.timedelta(seconds=1):
        raise _bad("Key credential start date is invalid: it is earlier than the certificate's start.")
    if isinstance(key_id, str) and key_id and not _guid(key_id):
        raise _bad("Invalid value specified for property 'keyId'.")
    credential = KeyCredential.from_certificate(cert, start=start, end=end, key_id=key_id or None)
    if data.get("displayName"):
        credential.display_name = str(data["displayName"])
    return credential


def _set_key_credentials(app: Application, items: Any) -> tuple[list[str], list[str]]:
    if not isinstance(items, list):
        raise _bad("Invalid value specified for property 'keyCredentials' of resource 'Application'.")
    existing = {k.key_id: k for k in app.key_credentials}
    parsed = [_parse_key_credential(item, existing) for item in items]
    ids = [k.key_id for k in parsed]
    if len(set(ids)) != len(ids):
        raise _bad("Key credentials contain duplicate keyId values.")
    before = [k.thumbprint_sha1 for k in app.key_credentials]
    app.key_credentials = parsed
    return before, [k.thumbprint_sha1 for k in parsed]


def verify_proof(app: Application, proof: Any, now: dt.datetime | None = None) -> KeyCredential:
    """The current certificate of ``app`` that signed ``proof``; else 400 (UNCONFIRMED wording)."""
    when = now or dt.datetime.now(dt.UTC)
    if not isinstance(proof, str) or proof.count(".") != 2:
        raise _bad(
            "Proof of possession is required: a JWT signed by a current certificate of the application."
        )
    try:
        header = jwt.get_unverified_header(proof)
    except jwt.InvalidTokenError:
        raise _bad("Proof of possession is not a valid JWT.") from None
    valid = [k for k in app.key_credentials if k.valid_at(when)]
    if not valid:
        raise _bad(
            "The application has no valid certificate to verify the proof of possession; "
            "use Update application (PATCH keyCredentials) instead."
        )
    candidates = valid
    if isinstance(header.get("x5t"), str):
        try:
            thumb = base64.urlsafe_b64decode(header["x5t"] + "=" * (-len(header["x5t"]) % 4)).hex().upper()
        except (binascii.Error, ValueError):
            raise _bad("Proof of possession has an invalid x5t header.") from None
        candidates = [k for k in valid if k.thumbprint_sha1 == thumb]
    for key in candidates:
        public = key.certificate.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            continue
        try:
            claims: dict[str, Any] = jwt.decode(
                proof,
                public,
                algorithms=["RS256", "PS256"],
                audience=PROOF_AUDIENCE,
                issuer=app.id,
                leeway=PROOF_SKEW,
                options={"require": ["aud", "iss", "nbf", "exp"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError as exc:
            raise _bad(f"Proof of possession is invalid: {exc}.") from None
        if float(claims["exp"]) - float(claims["nbf"]) > PROOF_MAX_LIFETIME.total_seconds() + 1:
            raise _bad("Proof of possession is invalid: its lifetime must not exceed 10 minutes.")
        return key
    raise _bad(
        "Proof of possession is invalid: it is not signed by a current certificate of the application."
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


async def create_application(request: Request) -> Response:
    caller, tenant = _authorized(request, WRITE_PERMISSIONS, REGISTRATION_ADMINS)
    body = await _body(request)
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
        _initiator(tenant, caller),
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
    body = await _body(request)
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
    initiator = _initiator(tenant, caller)
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
        _record_credential_change(tenant, caller, app, (before_keys, after_keys))
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
        _initiator(tenant, caller),
        target_id=app.id,
        target_name=app.display_name,
        target_type="Application",
        operation="Delete",
    )
    return _no_content()


def _may_roll_own_keys(caller: Caller, app: Application) -> bool:
    return caller.is_app_only and caller.app_id.lower() == app.app_id.lower()


def _key_roll_target(request: Request, tenant: Tenant, caller: Caller) -> Application:
    """The application of an addKey / removeKey call, once the caller may change its keys.

    An app may roll its own keys (the proof of possession is its authority); anyone else needs
    write permission and, signed in as a user, a registration admin role.
    """
    app = _application(tenant, request.path_params["object_id"])
    if not _may_roll_own_keys(caller, app):
        _require(tenant, caller, WRITE_PERMISSIONS | {"Application.ReadWrite.OwnedBy"}, REGISTRATION_ADMINS)
    return app


async def add_key(request: Request) -> Response:
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    app = _key_roll_target(request, tenant, caller)
    body = await _body(request)
    if body.get("passwordCredential") not in (None, {}):
        raise _bad("Only key credentials of type 'AsymmetricX509Cert' are supported by the sandbox's addKey.")
    verify_proof(app, body.get("proof"))
    new = _parse_key_credential(body.get("keyCredential"), {})
    if any(k.thumbprint_sha1 == new.thumbprint_sha1 for k in app.key_credentials):
        raise _bad("A key credential with the same certificate already exists on the application.")
    before = [k.thumbprint_sha1 for k in app.key_credentials]
    app.key_credentials = [*app.key_credentials, new]
    _record_credential_change(tenant, caller, app, (before, [k.thumbprint_sha1 for k in app.key_credentials]))
    return _json(
        {
            "@odata.context": _context(request, "microsoft.graph.keyCredential"),
            **_key_graph(new, with_key=False),
        }
    )


async def remove_key(request: Request) -> Response:
    caller = caller_of(request)
    tenant = _tenant(request, caller)
    app = _key_roll_target(request, tenant, caller)
    body = await _body(request)
    key_id = body.get("keyId")
    if not isinstance(key_id, str) or not key_id:
        raise _bad("Property 'keyId' is required.")
    verify_proof(app, body.get("proof"))
    if key_id not in {k.key_id for k in app.key_credentials}:
        raise _not_found(key_id)
    before = [k.thumbprint_sha1 for k in app.key_credentials]
    app.key_credentials = [k for k in app.key_credentials if k.key_id != key_id]
    _record_credential_change(tenant, caller, app, (before, [k.thumbprint_sha1 for k in app.key_credentials]))
    return _no_content()


async def add_password(request: Request) -> Response:
    caller, tenant = _authorized(request, WRITE_PERMISSIONS, REGISTRATION_ADMINS)
    app = _application(tenant, request.path_params["object_id"])
    body = await _body(request)
    spec = body.get("passwordCredential") or {}
    if not isinstance(spec, dict):
        raise _bad("Invalid value specified for property 'passwordCredential'.")
    try:
        end = parse_iso(spec["endDateTime"]) if spec.get("endDateTime") else None
        start = parse_iso(spec["startDateTime"]) if spec.get("startDateTime") else None
    except (TypeError, ValueError):
        raise _bad("Invalid value specified for property 'endDateTime' or 'startDateTime'.") from None
    credential, secret = PasswordCredential.generate(
        display_name=str(spec.get("displayName") or ""), start=start, end=end
    )
    app.password_credentials = [*app.password_credentials, credential]
    _record_credential_change(
        tenant, caller, app, (None, f"[KeyIdentifier={credential.key_id},KeyType=Password]")
    )
    data = credential.to_graph()
    data["secretText"] = secret
    return _json({"@odata.context": _context(request, "microsoft.graph.passwordCredential"), **data})


async def remove_password(request: Request) -> Response:
    caller, tenant = _authorized(request, WRITE_PERMISSIONS, REGISTRATION_ADMINS)
    app = _application(tenant, request.path_params["object_id"])
    body = await _body(request)
    key_id = body.get("keyId")
    if key_id not in {p.key_id for p in app.password_credentials}:
        raise _not_found(str(key_id))
    app.password_credentials = [p for p in app.password_credentials if p.key_id != key_id]
    _record_credential_change(tenant, caller, app, (f"[KeyIdentifier={key_id},KeyType=Password]", None))
    return _no_content()


# --- service principals ----------------------------------------------------------------------


async def list_service_principals(request: Request) -> Response:
    _, tenant = _authorized(request, READ_PERMISSIONS)
    items = _matching(
        request, (s.to_graph() for s in tenant.apps.service_principals.values()), "ServicePrincipal"
    )
    return _collection(request, "servicePrincipals", items)


async def create_service_principal(request: Request) -> Response:
    caller, tenant = _authorized(request, WRITE_PERMISSIONS, REGISTRATION_ADMINS)
    body = await _body(request)
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
        _initiator(tenant, caller),
        target_id=sp.id,
        target_name=sp.display_name,
        target_type="ServicePrincipal",
        operation="Add",
        modified={"AppPrincipalId": (None, app.app_id)},
    )
    return _json({"@odata.context": _context(request, "servicePrincipals/$entity"), **sp.to_graph()}, 201)


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
    data = _project(sp.to_graph(), _select(request))
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
    body = await _body(request)
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
        _initiator(tenant, caller),
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
        _initiator(tenant, caller),
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


__all__ = ["iso", "render_application", "routes", "verify_proof"]
