"""The OAuth 2.0 device authorization grant, as Entra runs it, with an approver the tests control.

- ``POST /{tenant}/oauth2/v2.0/devicecode`` (``client_id``, ``scope``) → ``device_code``,
  ``user_code``, ``verification_uri``, ``expires_in``, ``interval``, ``message``;
- the token endpoint's ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` answers
  ``authorization_pending`` (AADSTS70016) until the code is approved, then a delegated token with
  ``scp`` (never ``roles``); ``expired_token`` (AADSTS70020) after ``expires_in``;
  ``authorization_declined`` when declined. The token answer carries an ``id_token`` when
  ``openid`` was asked for, ``client_info`` when ``client_info=1`` was sent, and a ``refresh_token``
  when ``offline_access`` was asked for — what MSAL needs to keep the sign-in in its token cache;
- ``grant_type=refresh_token`` redeems such a refresh token (held in memory: a restarted sandbox
  forgets them, and the client signs in again) for a new access token and a new refresh token.

Nobody opens a browser in the sandbox: each tenant's device login setting decides. ``auto`` (the
default) approves at once as ``approveAs`` — the tenant's seeded admin when unset — so the demo needs
no human (its ``message`` then says so instead of asking anyone to open a browser); ``manual`` waits for ``POST /_sandbox/tenants/{tid}/device-codes/{userCode}/approve``;
``deny`` declines. Control routes:

- ``GET|PUT /_sandbox/tenants/{tid}/device-login`` ``{"mode": "auto|manual|deny", "approveAs": upn|id|null}``
- ``POST /_sandbox/tenants/{tid}/device-codes/{userCode}/approve`` ``{"user": upn|id}`` and ``/deny``
- ``PUT /_sandbox/tenants/{tid}/users/{user}/directory-roles`` ``{"roles": ["Application Administrator"]}``
- ``GET /_sandbox/tenants/{tid}/log/directory-audits`` — what the app registration routes changed.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import secrets
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox.app_registrations import DIRECTORY_ROLES, extension
from meetgate_sandbox.apps import FIRST_PARTY_PUBLIC_CLIENTS, GRAPH_APP_ID, GRAPH_RESOURCE
from meetgate_sandbox.control_api import issue_user_token, json_body, tenant_of
from meetgate_sandbox.directory_audit import DeviceLoginSettings, UserSignInDetail
from meetgate_sandbox.entra import (
    TokenFailure,
    _aadsts_body,
    authority_base,
    parse_form,
    tenant_not_found,
)
from meetgate_sandbox.http import REQUEST_IDS, GraphErrorResponse
from meetgate_sandbox.recording import TokenRecord, utc_stamp
from meetgate_sandbox.runtime import SandboxRuntime, runtime_of
from meetgate_sandbox.state import Tenant

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
EXPIRES_IN = 900
INTERVAL = 5
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
#: what ``https://graph.microsoft.com/.default`` stands for when a public client asks for it
DEFAULT_DELEGATED_SCOPES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "User.Read")
MODES = ("auto", "manual", "deny")
_SERVICE = "devicecodes"


@dataclass
class PendingCode:
    device_code: str
    user_code: str
    tenant_id: str
    client_id: str
    client_name: str
    scopes: tuple[str, ...]
    expires_at: dt.datetime
    status: str = "pending"  # pending | approved | declined | redeemed
    user_id: str | None = None
    #: the OpenID scopes asked for besides Graph's (``openid``, ``offline_access``...)
    oidc_scopes: tuple[str, ...] = ()


@dataclass
class RefreshGrant:
    """What a refresh token stands for: a user's consent to a client for some scopes."""

    tenant_id: str
    user_id: str
    client_id: str
    client_name: str
    scopes: tuple[str, ...]
    oidc_scopes: tuple[str, ...]
    expires_at: dt.datetime


#: refresh tokens live this long without use (Entra's default is 90 days; inactivity revokes them)
REFRESH_TOKEN_LIFETIME = dt.timedelta(days=90)


@dataclass
class DeviceCodes:
    """Outstanding device codes and refresh tokens, server-wide (in memory, not persisted)."""

    by_device_code: dict[str, PendingCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)

    def by_user_code(self, tenant_id: str, user_code: str) -> PendingCode | None:
        wanted = user_code.replace("-", "").upper()
        return next(
            (
                p
                for p in self.by_device_code.values()
                if p.tenant_id == tenant_id and p.user_code == wanted and p.status == "pending"
            ),
            None,
        )

    def prune(self, now: dt.datetime) -> None:
        stale = [k for k, p in self.by_device_code.items() if p.expires_at + dt.timedelta(minutes=5) < now]
        for key in stale:
            del self.by_device_code[key]


def device_codes(runtime: SandboxRuntime) -> DeviceCodes:
    codes = runtime.services.get(_SERVICE)
    if not isinstance(codes, DeviceCodes):
        codes = DeviceCodes()
        runtime.services[_SERVICE] = codes
    return codes


def _failure_response(request: Request, failure: TokenFailure) -> Response:
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    return JSONResponse(_aadsts_body(request, failure, correlation_id), status_code=failure.status)


def _client_name(tenant: Tenant, client_id: str) -> str | None:
    if client_id.lower() in FIRST_PARTY_PUBLIC_CLIENTS:
        return FIRST_PARTY_PUBLIC_CLIENTS[client_id.lower()]
    app = tenant.apps.application_by_app_id(client_id)
    return app.display_name if app else None


def delegated_scopes(scope: str) -> list[str]:
    """Graph scope names from a request's ``scope`` (resource prefix and OIDC scopes removed)."""
    names: list[str] = []
    for item in scope.split():
        if item in OIDC_SCOPES:
            continue
        name = item
        for prefix in (f"{GRAPH_RESOURCE}/", f"{GRAPH_APP_ID}/"):
            if item.lower().startswith(prefix.lower()):
                name = item[len(prefix) :]
        if "/" in name or not name:
            raise ValueError(item)
        if name == ".default":
            names.extend(s for s in DEFAULT_DELEGATED_SCOPES if s not in names)
        elif name not in names:
            names.append(name)
    if not names:
        names = ["User.Read"]
    return names


def _find_user(tenant: Tenant, key: str | None) -> str | None:
    if key is None:
        return tenant.admin_id
    user = tenant.find_user(key)
    return user.id if user else None


async def devicecode(request: Request) -> Response:
    runtime = runtime_of(request)
    key = request.path_params["tenant"]
    tenant = runtime.state.find_tenant(key)
    if tenant is None:
        return tenant_not_found(request, key)
    request.state.tenant_id = tenant.id
    form = parse_form(await request.body())
    client_id = form.get("client_id", "").strip()
    request.state.app_id = client_id or None
    if not client_id:
        return _failure_response(
            request,
            TokenFailure(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            ),
        )
    name = _client_name(tenant, client_id)
    if name is None:
        return _failure_response(
            request,
            TokenFailure(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant.display_name}'.",
                client_id,
            ),
        )
    try:
        scopes = delegated_scopes(form.get("scope", ""))
    except ValueError as exc:
        return _failure_response(
            request,
            TokenFailure(
                400,
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope {exc} is not valid.",
                client_id,
            ),
        )
    now = dt.datetime.now(dt.UTC)
    codes = device_codes(runtime)
    codes.prune(now)
    user_code = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(9))
    pending = PendingCode(
        device_code=secrets.token_urlsafe(48),
        user_code=user_code,
        tenant_id=tenant.id,
        client_id=client_id,
        client_name=name,
        scopes=tuple(scopes),
        expires_at=now + dt.timedelta(seconds=EXPIRES_IN),
        oidc_scopes=tuple(s for s in form.get("scope", "").split() if s in OIDC_SCOPES),
    )
    uri = f"{authority_base(request)}/devicelogin"
    message = f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."
    setting = extension(tenant).device_login
    if setting.mode == "auto":
        user_id = _find_user(tenant, setting.approve_as)
        if user_id is not None:
            pending.status, pending.user_id = "approved", user_id
            message = (
                f"The sandbox approved this sign-in as {tenant.users[user_id].user_principal_name} "
                "(device login mode auto): there is nothing to open or enter."
            )
    elif setting.mode == "deny":
        pending.status = "declined"
    codes.by_device_code[pending.device_code] = pending
    return JSONResponse(
        {
            "user_code": user_code,
            "device_code": pending.device_code,
            "verification_uri": uri,
            "expires_in": EXPIRES_IN,
            "interval": INTERVAL,
            "message": message,
        }
    )


def _token_record(request: Request, tenant: Tenant, grant_type: str, client_id: str | None) -> dict[str, Any]:
    """The sign-in log fields of a delegated token request (outcome added by the caller)."""
    request_id, _ = REQUEST_IDS.get()
    return {
        "time": utc_stamp(),
        "tenant_id": tenant.id,
        "grant_type": grant_type,
        "client_ip": request.client.host if request.client else "",
        "request_id": request_id,
        "correlation_id": request.headers.get("client-request-id") or request_id,
        "app_id": client_id,
        "credential_type": "delegated",
        "key_id": None,
        "thumbprint": None,
    }


def _remember_user(request: Request, tenant: Tenant, record: dict[str, Any], user_id: str) -> None:
    """Keep who signed in, and with which client, for the sign-in log (``/auditLogs/signIns``)."""
    extension(tenant).record_user_sign_in(
        UserSignInDetail(
            request_id=str(record["request_id"]),
            user_id=user_id,
            user_agent=request.headers.get("user-agent", ""),
            client_os=request.headers.get("x-client-os", ""),
        )
    )


async def device_code_token(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """The token endpoint's answer to ``grant_type=…device_code`` (called by the token route)."""
    runtime = runtime_of(request)
    client_id = form.get("client_id", "").strip() or None
    record = _token_record(request, tenant, GRANT_TYPE, client_id)

    def fail(failure: TokenFailure) -> Response:
        if failure.error != "authorization_pending":
            tenant.log.tokens.append(
                TokenRecord(**record, success=False, error_code=failure.code, error=failure.error)
            )
        return _failure_response(request, failure)

    code = form.get("device_code") or form.get("code")
    if not code:
        return fail(
            TokenFailure(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'device_code'.",
            )
        )
    pending = device_codes(runtime).by_device_code.get(code)
    if pending is None or pending.tenant_id != tenant.id or pending.status == "redeemed":
        return fail(
            TokenFailure(400, "invalid_grant", 70000, "Provided grant is invalid or malformed.", client_id)
        )
    if client_id and client_id.lower() != pending.client_id.lower():
        return fail(
            TokenFailure(
                400, "invalid_grant", 70000, "The device code was issued to another client.", client_id
            )
        )
    now = dt.datetime.now(dt.UTC)
    if now > pending.expires_at:
        return fail(
            TokenFailure(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
                client_id,
            )
        )
    if pending.status == "declined":
        return fail(
            TokenFailure(
                400, "authorization_declined", 70000, "The user declined to authorize the request.", client_id
            )
        )
    if pending.status != "approved" or pending.user_id is None:
        return fail(
            TokenFailure(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                client_id,
            )
        )
    user = tenant.users.get(pending.user_id)
    if user is not None:
        _remember_user(request, tenant, record, user.id)
    if user is None or not user.account_enabled:
        return fail(TokenFailure(400, "invalid_grant", 50057, "The user account is disabled.", client_id))
    pending.status = "redeemed"
    grant = RefreshGrant(
        tenant_id=tenant.id,
        user_id=user.id,
        client_id=pending.client_id,
        client_name=pending.client_name,
        scopes=pending.scopes,
        oidc_scopes=pending.oidc_scopes,
        expires_at=now + REFRESH_TOKEN_LIFETIME,
    )
    tenant.log.tokens.append(TokenRecord(**record, success=True, error_code=None, error=None))
    runtime.state.changed()
    return _delegated_answer(runtime, tenant, grant, client_info=form.get("client_info") == "1")


def _delegated_answer(
    runtime: SandboxRuntime, tenant: Tenant, grant: RefreshGrant, *, client_info: bool
) -> Response:
    """Entra's token answer for a user: access token, and what the OpenID scopes asked for."""
    user = tenant.users[grant.user_id]
    issued = issue_user_token(
        runtime,
        tenant,
        user,
        app_id=grant.client_id,
        app_name=grant.client_name,
        scopes=list(grant.scopes),
    )
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join(
            [f"{GRAPH_RESOURCE}/{s}" for s in grant.scopes]
            + [s for s in grant.oidc_scopes if s in ("openid", "profile", "email", "offline_access")]
        ),
        "expires_in": issued.expires_in,
        "ext_expires_in": issued.expires_in,
        "access_token": issued.access_token,
    }
    if "openid" in grant.oidc_scopes:
        body["id_token"] = runtime.issuer.issue_id_token(
            tenant_id=tenant.id,
            client_id=grant.client_id,
            user_id=user.id,
            upn=user.user_principal_name,
            name=user.display_name,
        )
    if client_info:
        info = json.dumps({"uid": user.id, "utid": tenant.id}, separators=(",", ":")).encode()
        body["client_info"] = base64.urlsafe_b64encode(info).decode().rstrip("=")
    if "offline_access" in grant.oidc_scopes:
        refresh_token = secrets.token_urlsafe(48)
        device_codes(runtime).refresh_tokens[refresh_token] = grant
        body["refresh_token"] = refresh_token
    return Response(
        json.dumps(body),
        media_type="application/json; charset=utf-8",
        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )


async def refresh_token_grant(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``grant_type=refresh_token``: a new access token (and refresh token) for a kept sign-in."""
    runtime = runtime_of(request)
    client_id = form.get("client_id", "").strip() or None
    record = _token_record(request, tenant, "refresh_token", client_id)

    def fail(failure: TokenFailure) -> Response:
        tenant.log.tokens.append(
            TokenRecord(**record, success=False, error_code=failure.code, error=failure.error)
        )
        runtime.state.changed()
        return _failure_response(request, failure)

    codes = device_codes(runtime)
    token = form.get("refresh_token", "")
    if not token:
        return fail(
            TokenFailure(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'refresh_token'.",
            )
        )
    grant = codes.refresh_tokens.get(token)
    now = dt.datetime.now(dt.UTC)
    if grant is None or grant.tenant_id != tenant.id:
        return fail(
            TokenFailure(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        )
    if client_id is None or client_id.lower() != grant.client_id.lower():
        return fail(
            TokenFailure(
                400,
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed. The refresh token was issued to another client.",
                client_id,
            )
        )
    if now > grant.expires_at:
        del codes.refresh_tokens[token]
        return fail(
            TokenFailure(
                400,
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity.",
                client_id,
            )
        )
    try:
        wanted = delegated_scopes(form.get("scope", ""))
    except ValueError as exc:
        return fail(
            TokenFailure(
                400,
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope {exc} is not valid.",
                client_id,
            )
        )
    missing = [s for s in wanted if s not in grant.scopes and s != "User.Read"]
    if missing:
        return fail(
            TokenFailure(
                400,
                "invalid_grant",
                65001,
                "The user or administrator has not consented to use the application with ID "
                f"'{grant.client_id}' named '{grant.client_name}'. Send an interactive authorization "
                f"request for this user and resource (missing: {', '.join(missing)}).",
                client_id,
            )
        )
    user = tenant.users.get(grant.user_id)
    if user is not None:
        _remember_user(request, tenant, record, user.id)
    if user is None or not user.account_enabled:
        del codes.refresh_tokens[token]
        return fail(TokenFailure(400, "invalid_grant", 50057, "The user account is disabled.", client_id))
    del codes.refresh_tokens[token]  # rotated: the answer carries its successor
    renewed = dataclasses.replace(grant, expires_at=now + REFRESH_TOKEN_LIFETIME)
    tenant.log.tokens.append(TokenRecord(**record, success=True, error_code=None, error=None))
    runtime.state.changed()
    return _delegated_answer(runtime, tenant, renewed, client_info=form.get("client_info") == "1")


# --- control API -------------------------------------------------------------------------------


async def get_device_login(request: Request) -> Response:
    return JSONResponse(extension(tenant_of(request)).device_login.to_dict())


async def put_device_login(request: Request) -> Response:
    tenant = tenant_of(request)
    body = await json_body(request)
    mode = body.get("mode", "auto")
    if mode not in MODES:
        raise GraphErrorResponse(400, "BadRequest", f"mode must be one of {', '.join(MODES)}")
    approve_as = body.get("approveAs")
    if approve_as is not None and (not isinstance(approve_as, str) or tenant.find_user(approve_as) is None):
        raise GraphErrorResponse(400, "BadRequest", f"approveAs {approve_as!r} is not a user of the tenant")
    ext = extension(tenant)
    ext.device_login = DeviceLoginSettings(mode, approve_as)
    runtime_of(request).state.changed()
    return JSONResponse(ext.device_login.to_dict())


async def decide_device_code(request: Request) -> Response:
    tenant = tenant_of(request)
    pending = device_codes(runtime_of(request)).by_user_code(tenant.id, request.path_params["user_code"])
    if pending is None:
        raise GraphErrorResponse(404, "NotFound", "no pending device code with that user code in this tenant")
    decision = request.path_params["decision"]
    if decision not in ("approve", "deny"):
        raise GraphErrorResponse(404, "NotFound", "use /approve or /deny")
    if decision == "deny":
        pending.status = "declined"
        return JSONResponse({"status": pending.status})
    body = await json_body(request)
    user_key = body.get("user")
    user_id = _find_user(tenant, user_key if isinstance(user_key, str) else None)
    if user_id is None:
        raise GraphErrorResponse(400, "BadRequest", f"user {user_key!r} is not a user of the tenant")
    pending.status, pending.user_id = "approved", user_id
    return JSONResponse({"status": pending.status, "userId": user_id})


async def put_directory_roles(request: Request) -> Response:
    tenant = tenant_of(request)
    user = tenant.find_user(request.path_params["user"])
    if user is None:
        raise GraphErrorResponse(404, "NotFound", "no such user in the tenant")
    body = await json_body(request)
    roles = body.get("roles", [])
    if not isinstance(roles, list) or any(r not in DIRECTORY_ROLES for r in roles):
        raise GraphErrorResponse(400, "BadRequest", f"roles must be a list of: {', '.join(DIRECTORY_ROLES)}")
    extension(tenant).directory_roles[user.id] = list(roles)
    runtime_of(request).state.changed()
    return JSONResponse({"userId": user.id, "roles": roles})


async def directory_audits(request: Request) -> Response:
    tenant = tenant_of(request)
    return JSONResponse({"value": list(extension(tenant).audits)})


def routes() -> list[BaseRoute]:
    t = "/_sandbox/tenants/{tid}"
    return [
        Route("/{tenant}/oauth2/v2.0/devicecode", devicecode, methods=["POST"]),
        Route(f"{t}/device-login", get_device_login, methods=["GET"]),
        Route(f"{t}/device-login", put_device_login, methods=["PUT"]),
        Route(f"{t}/device-codes/{{user_code}}/{{decision:str}}", decide_device_code, methods=["POST"]),
        Route(f"{t}/users/{{user}}/directory-roles", put_directory_roles, methods=["PUT"]),
        Route(f"{t}/log/directory-audits", directory_audits, methods=["GET"]),
    ]
