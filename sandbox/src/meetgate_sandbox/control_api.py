"""The control API under ``/_sandbox/`` (test and admin use only; no auth; 127.0.0.1 by default).

Tenants, app registrations (what ``meetgate setup app`` later does through Graph), delegated tokens,
faults, settings and the activity logs. Errors use Graph's envelope so one parser reads everything.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from meetgate import certificates
from meetgate_sandbox.apps import KeyCredential, PasswordCredential, UnknownRoleError, parse_iso
from meetgate_sandbox.faults import FaultSettings, SandboxSettings, SettingsError
from meetgate_sandbox.http import GraphErrorResponse, json_object_body
from meetgate_sandbox.runtime import SandboxRuntime, runtime_of
from meetgate_sandbox.state import StateError, Tenant, User
from meetgate_sandbox.tokens import IssuedToken

MAX_LOG_LIMIT = 5000


def bad_request(message: str) -> GraphErrorResponse:
    return GraphErrorResponse(400, "BadRequest", message)


async def json_body(request: Request) -> dict[str, Any]:
    """The control API's JSON object body (its own wording of the 400s)."""
    return await json_object_body(
        request, invalid_json="the body is not valid JSON", not_an_object="the body must be a JSON object"
    )


def tenant_of(request: Request) -> Tenant:
    key = request.path_params["tid"]
    tenant = runtime_of(request).state.find_tenant(key)
    if tenant is None:
        raise GraphErrorResponse(
            404, "NotFound", f"no sandbox tenant {key!r}; create one with POST /_sandbox/tenants"
        )
    return tenant


def issue_user_token(
    runtime: SandboxRuntime, tenant: Tenant, user: User, *, app_id: str, app_name: str, scopes: list[str]
) -> IssuedToken:
    """A delegated Graph token of ``user`` for the app, with the server's access token lifetime
    (drawn from 60-90 minutes under the realistic profile)."""
    return runtime.issuer.issue_delegated_token(
        tenant_id=tenant.id,
        app_id=app_id,
        app_display_name=app_name,
        user_id=user.id,
        upn=user.user_principal_name,
        name=user.display_name,
        given_name=user.given_name,
        family_name=user.surname,
        scopes=scopes,
        lifetime=runtime.access_token_lifetime(),
    )


def _str_field(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise bad_request(f"{key} is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise bad_request(f"{key} must be a non-empty string")
    return value


def _time_field(data: dict[str, Any], key: str) -> dt.datetime | None:
    value = _str_field(data, key)
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise bad_request(f"{key} must be an ISO 8601 date-time such as 2026-01-31T00:00:00Z") from None


def _roles_field(data: dict[str, Any]) -> list[str]:
    roles = data.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise bad_request("roles must be a list of permission names such as 'OnlineMeetings.ReadWrite.All'")
    return roles


# --- tenants --------------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    state = runtime_of(request).state
    return JSONResponse(
        {
            "status": "ok",
            "tenants": len(state.tenants),
            "defaultTenantId": state.default_tenant_id,
            "features": sorted(state.extension_names),
            "inFlight": runtime_of(request).in_flight,
        }
    )


async def list_tenants(request: Request) -> Response:
    state = runtime_of(request).state
    return JSONResponse(
        {
            "value": [
                {"tenantId": t.id, "domain": t.domain, "displayName": t.display_name}
                for t in state.all_tenants()
            ]
        }
    )


async def create_tenant(request: Request) -> Response:
    data = await json_body(request)
    unknown = sorted(set(data) - {"users", "domain", "seed"})
    if unknown:
        raise bad_request(f"unknown field(s) {unknown}; known: users, domain, seed")
    try:
        tenant = runtime_of(request).state.create_tenant(
            users=data.get("users", 50), domain=_str_field(data, "domain"), seed_value=data.get("seed")
        )
    except StateError as exc:
        status = 409 if "already used" in str(exc) else 400
        raise GraphErrorResponse(status, "Conflict" if status == 409 else "BadRequest", str(exc)) from None
    return JSONResponse(tenant.summary(), status_code=201)


async def get_tenant(request: Request) -> Response:
    return JSONResponse(tenant_of(request).summary())


# --- apps -----------------------------------------------------------------------------------------


def _app_view(tenant: Tenant, app_id: str) -> dict[str, Any]:
    app = tenant.apps.application_by_app_id(app_id)
    sp = tenant.apps.service_principal_by_app_id(app_id)
    assert app is not None and sp is not None
    return {
        "appId": app.app_id,
        "objectId": app.id,
        "servicePrincipalId": sp.id,
        "displayName": app.display_name,
        "accountEnabled": sp.account_enabled,
        "roles": tenant.apps.granted_roles(sp.id),
        "keyCredentials": [k.to_graph() for k in app.key_credentials],
        "passwordCredentials": [p.to_graph() for p in app.password_credentials],
    }


def _certificate_field(data: dict[str, Any], key: str = "certificatePem") -> KeyCredential | None:
    pem = _str_field(data, key)
    if pem is None:
        return None
    try:
        cert = certificates.load_certificate_bytes(pem.encode())
    except certificates.CertificateError as exc:
        raise bad_request(f"{key}: {exc}") from None
    return KeyCredential.from_certificate(
        cert, start=_time_field(data, "startDateTime"), end=_time_field(data, "endDateTime")
    )


async def register_app(request: Request) -> Response:
    tenant = tenant_of(request)
    data = await json_body(request)
    unknown = sorted(set(data) - {"displayName", "certificatePem", "withSecret", "roles"})
    if unknown:
        raise bad_request(
            f"unknown field(s) {unknown}; known: displayName, certificatePem, withSecret, roles"
        )
    name = _str_field(data, "displayName", required=True)
    assert name is not None
    roles = _roles_field(data)
    with_secret = data.get("withSecret", False)
    if not isinstance(with_secret, bool):
        raise bad_request("withSecret must be true or false")
    key = _certificate_field({"certificatePem": data.get("certificatePem")})
    try:
        for role in roles:
            tenant.apps.role_id(role)
    except UnknownRoleError as exc:
        raise bad_request(str(exc)) from None
    app = tenant.apps.create_application(name, roles=roles)
    sp = tenant.apps.create_service_principal(app)
    for role in roles:
        tenant.apps.assign_role(sp, role)
    body = {"appId": app.app_id, "objectId": app.id, "servicePrincipalId": sp.id, "roles": sorted(roles)}
    if key is not None:
        app.key_credentials.append(key)
        body["keyId"] = key.key_id
    if with_secret:
        credential, secret = PasswordCredential.generate()
        app.password_credentials.append(credential)
        body["clientSecret"] = secret
        body["secretKeyId"] = credential.key_id
    runtime_of(request).state.changed()
    return JSONResponse(body, status_code=201)


def _app_of(request: Request, tenant: Tenant) -> str:
    app_id = request.path_params["app_id"]
    app = tenant.apps.application_by_app_id(app_id)
    if app is None or tenant.apps.service_principal_by_app_id(app_id) is None:
        raise GraphErrorResponse(404, "NotFound", f"no app {app_id!r} in tenant {tenant.id}")
    return app.app_id


async def list_apps(request: Request) -> Response:
    tenant = tenant_of(request)
    return JSONResponse({"value": [_app_view(tenant, a.app_id) for a in tenant.apps.applications.values()]})


async def get_app(request: Request) -> Response:
    tenant = tenant_of(request)
    return JSONResponse(_app_view(tenant, _app_of(request, tenant)))


async def patch_app(request: Request) -> Response:
    """``{"accountEnabled": false}`` disables the service principal (AADSTS7000112 afterwards);
    ``{"roles": [...]}`` grants more application permissions."""
    tenant = tenant_of(request)
    app_id = _app_of(request, tenant)
    data = await json_body(request)
    unknown = sorted(set(data) - {"accountEnabled", "roles"})
    if unknown:
        raise bad_request(f"unknown field(s) {unknown}; known: accountEnabled, roles")
    sp = tenant.apps.service_principal_by_app_id(app_id)
    assert sp is not None
    if "accountEnabled" in data:
        if not isinstance(data["accountEnabled"], bool):
            raise bad_request("accountEnabled must be true or false")
        sp.account_enabled = data["accountEnabled"]
    try:
        for role in _roles_field(data):
            tenant.apps.assign_role(sp, role)
    except UnknownRoleError as exc:
        raise bad_request(str(exc)) from None
    runtime_of(request).state.changed()
    return JSONResponse(_app_view(tenant, app_id))


async def add_certificate(request: Request) -> Response:
    """``{"certificatePem", "startDateTime"?, "endDateTime"?}`` adds a key credential."""
    tenant = tenant_of(request)
    app = tenant.apps.application_by_app_id(_app_of(request, tenant))
    assert app is not None
    data = await json_body(request)
    key = _certificate_field(data)
    if key is None:
        raise bad_request("certificatePem is required")
    app.key_credentials.append(key)
    runtime_of(request).state.changed()
    return JSONResponse(key.to_graph(), status_code=201)


async def add_secret(request: Request) -> Response:
    """``{"displayName"?, "startDateTime"?, "endDateTime"?}`` adds a client secret; the text is shown once."""
    tenant = tenant_of(request)
    app = tenant.apps.application_by_app_id(_app_of(request, tenant))
    assert app is not None
    data = await json_body(request)
    credential, secret = PasswordCredential.generate(
        display_name=_str_field(data, "displayName") or "sandbox secret",
        start=_time_field(data, "startDateTime"),
        end=_time_field(data, "endDateTime"),
    )
    app.password_credentials.append(credential)
    runtime_of(request).state.changed()
    return JSONResponse({**credential.to_graph(), "secretText": secret}, status_code=201)


# --- delegated tokens -----------------------------------------------------------------------------


async def delegated_token(request: Request) -> Response:
    runtime = runtime_of(request)
    tenant = tenant_of(request)
    user = tenant.find_user(request.path_params["user"])
    if user is None:
        raise GraphErrorResponse(
            404, "NotFound", f"no user {request.path_params['user']!r} in tenant {tenant.id}"
        )
    data = await json_body(request)
    app_id = _str_field(data, "appId", required=True)
    assert app_id is not None
    app = tenant.apps.application_by_app_id(app_id)
    if app is None:
        raise GraphErrorResponse(404, "NotFound", f"no app {app_id!r} in tenant {tenant.id}")
    scopes = data.get("scopes", ["User.Read"])
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
        raise bad_request("scopes must be a non-empty list of delegated permission names such as 'User.Read'")
    issued = issue_user_token(
        runtime, tenant, user, app_id=app.app_id, app_name=app.display_name, scopes=scopes
    )
    return JSONResponse(
        {"token_type": "Bearer", "expires_in": issued.expires_in, "access_token": issued.access_token}
    )


# --- server-wide settings -------------------------------------------------------------------------


async def get_faults(request: Request) -> Response:
    return JSONResponse(runtime_of(request).state.faults.to_dict())


async def put_faults(request: Request) -> Response:
    runtime = runtime_of(request)
    try:
        runtime.state.faults = FaultSettings.from_dict(await json_body(request))
    except SettingsError as exc:
        raise bad_request(str(exc)) from None
    runtime.state.changed()
    return JSONResponse(runtime.state.faults.to_dict())


async def get_settings(request: Request) -> Response:
    return JSONResponse(runtime_of(request).state.settings.to_dict())


#: settings whose change restarts the realistic profile (fresh draws from its seed, full buckets)
PROFILE_KEYS = frozenset({"profile", "timeCompression", "profileSeed", "throttleScale"})


async def put_settings(request: Request) -> Response:
    runtime = runtime_of(request)
    body = await json_body(request)
    try:
        runtime.state.settings = SandboxSettings.from_dict(body, runtime.state.settings)
    except SettingsError as exc:
        raise bad_request(str(exc)) from None
    if PROFILE_KEYS & set(body):
        runtime.realistic_runtime = None
    runtime.state.changed()
    return JSONResponse(runtime.state.settings.to_dict())


# --- logs -----------------------------------------------------------------------------------------


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "1000")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LOG_LIMIT:
        raise bad_request(f"limit must be an integer between 1 and {MAX_LOG_LIMIT}")
    return int(raw)


async def request_log(request: Request) -> Response:
    tenant = tenant_of(request)
    limit = _limit(request)
    app_id = request.query_params.get("appId")
    items = [
        r.to_dict() for r in tenant.log.requests if not app_id or (r.app_id or "").lower() == app_id.lower()
    ]
    return JSONResponse({"value": items[-limit:]})


async def token_log(request: Request) -> Response:
    tenant = tenant_of(request)
    limit = _limit(request)
    app_id = request.query_params.get("appId")
    items = [
        t.to_dict() for t in tenant.log.tokens if not app_id or (t.app_id or "").lower() == app_id.lower()
    ]
    return JSONResponse({"value": items[-limit:]})


async def unattributed_log(request: Request) -> Response:
    limit = _limit(request)
    items = [r.to_dict() for r in runtime_of(request).state.unattributed.requests]
    return JSONResponse({"value": items[-limit:]})


def routes() -> list[BaseRoute]:
    t = "/_sandbox/tenants/{tid}"
    return [
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/tenants", list_tenants, methods=["GET"]),
        Route("/_sandbox/tenants", create_tenant, methods=["POST"]),
        Route(t, get_tenant, methods=["GET"]),
        Route(f"{t}/apps", list_apps, methods=["GET"]),
        Route(f"{t}/apps", register_app, methods=["POST"]),
        Route(f"{t}/apps/{{app_id}}", get_app, methods=["GET"]),
        Route(f"{t}/apps/{{app_id}}", patch_app, methods=["PATCH"]),
        Route(f"{t}/apps/{{app_id}}/certificates", add_certificate, methods=["POST"]),
        Route(f"{t}/apps/{{app_id}}/secrets", add_secret, methods=["POST"]),
        Route(f"{t}/users/{{user}}/delegated-token", delegated_token, methods=["POST"]),
        Route(f"{t}/log/requests", request_log, methods=["GET"]),
        Route(f"{t}/log/tokens", token_log, methods=["GET"]),
        Route("/_sandbox/log/requests", unattributed_log, methods=["GET"]),
        Route("/_sandbox/faults", get_faults, methods=["GET"]),
        Route("/_sandbox/faults", put_faults, methods=["PUT"]),
        Route("/_sandbox/settings", get_settings, methods=["GET"]),
        Route("/_sandbox/settings", put_settings, methods=["PUT"]),
    ]
