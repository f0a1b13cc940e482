"""Entra ID's endpoints for a tenant: OpenID discovery, signing keys and the v2.0 token endpoint.

The token endpoint does what Entra does for ``client_credentials``: it finds the tenant (by id or
domain) and the app, then verifies the client assertion for real against the app's registered key
credentials (RS256 with ``x5t``, PS256 with ``x5t#S256``, optional ``x5c``), or checks a client
secret, and answers either a token or Entra's error body with the same AADSTS codes and texts.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox.apps import GRAPH_APP_ID, GRAPH_RESOURCE, Application, KeyCredential, ServicePrincipal
from meetgate_sandbox.http import REQUEST_IDS
from meetgate_sandbox.recording import TokenRecord, utc_stamp
from meetgate_sandbox.runtime import runtime_of
from meetgate_sandbox.state import Tenant

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: clock skew Entra tolerates on client assertion times
ASSERTION_SKEW = dt.timedelta(minutes=5)
GRAPH_DEFAULT_SCOPES = {
    f"{GRAPH_RESOURCE}/.default",
    f"{GRAPH_RESOURCE}//.default",
    f"{GRAPH_APP_ID}/.default",
}
_DOCS_CERT = (
    "https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials"
)


def authority_base(request: Request) -> str:
    """``https://host:port`` as the client addressed us (the ``aud`` of its assertions uses it)."""
    return f"{request.url.scheme}://{request.url.netloc}"


@dataclass
class TokenFailure(Exception):
    """An AADSTS error answer."""

    status: int
    error: str
    code: int
    message: str
    app_id: str | None = None
    credential_type: str | None = None
    key_id: str | None = None
    thumbprint: str | None = None


def _aadsts_body(request: Request, failure: TokenFailure, correlation_id: str) -> dict[str, Any]:
    request_id, _ = REQUEST_IDS.get()
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": failure.error,
        "error_description": (
            f"AADSTS{failure.code}: {failure.message}\r\nTrace ID: {request_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}"
        ),
        "error_codes": [failure.code],
        "timestamp": stamp,
        "trace_id": request_id,
        "correlation_id": correlation_id,
        "error_uri": f"{authority_base(request)}/error?code={failure.code}",
    }


def tenant_not_found(request: Request, tenant: str) -> Response:
    failure = TokenFailure(
        400,
        "invalid_request",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud. Check with your subscription administrator, this may happen if there "
        "are no active subscriptions for the tenant.",
    )
    _, client_request_id = REQUEST_IDS.get()
    return JSONResponse(_aadsts_body(request, failure, client_request_id), status_code=400)


# --- discovery ------------------------------------------------------------------------------------


async def openid_configuration(request: Request) -> Response:
    runtime = runtime_of(request)
    key = request.path_params["tenant"]
    tenant = runtime.state.find_tenant(key)
    if tenant is None:
        return tenant_not_found(request, key)
    base = f"{authority_base(request)}/{tenant.id}"
    return JSONResponse(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{GRAPH_RESOURCE}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "tid",
                "ver",
                "oid",
            ],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "NA",
            "cloud_instance_name": request.url.netloc,
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }
    )


async def jwks(request: Request) -> Response:
    runtime = runtime_of(request)
    key = request.path_params["tenant"]
    # one signing key for every tenant: the multi-tenant authorities serve it too (Graph's notification
    # validation tokens are checked against common's keys)
    if key.lower() not in ("common", "organizations") and runtime.state.find_tenant(key) is None:
        return tenant_not_found(request, key)
    return JSONResponse(runtime.issuer.jwks())


# --- token endpoint -------------------------------------------------------------------------------


def parse_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` token request body: first value per name, {} if not UTF-8."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return {k: v[0] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items() if v}


def _missing(
    name: str, status: int = 400, error: str = "invalid_request", code: int = 900144
) -> TokenFailure:
    return TokenFailure(
        status, error, code, f"The request body must contain the following parameter: '{name}'."
    )


def _fmt_key_time(value: dt.datetime) -> str:
    return value.strftime("%m/%d/%Y %H:%M:%S")


def _key_reason(reason: str, thumb: str, app_id: str, found: KeyCredential | None = None) -> str:
    found_text = (
        f"Found key 'Start={_fmt_key_time(found.start)}, End={_fmt_key_time(found.end)}', " if found else ""
    )
    return (
        f"[Reason - {reason}, Thumbprint of key used by client: '{thumb}', {found_text}Please visit the Azure "
        f"Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{app_id}'. Review "
        "the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the "
        "corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?"
        "view=graph-rest-1.0&tabs=http to build a query request URL, such as "
        f"'https://graph.microsoft.com/beta/applications/{app_id}']."
    )


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _allowed_audiences(request: Request, tenant: Tenant, path_tenant: str) -> set[str]:
    base = authority_base(request)
    names = {tenant.id, tenant.domain, path_tenant}
    return {f"{base}/{n}/oauth2/v2.0/token" for n in names} | {f"{base}/{n}/oauth2/token" for n in names}


def verify_assertion(
    request: Request, tenant: Tenant, app: Application, assertion: str, path_tenant: str
) -> KeyCredential:
    """The key credential that signed a valid assertion, else :class:`TokenFailure` (700027...)."""
    malformed = TokenFailure(
        400, "invalid_request", 50027, "JWT token is invalid or malformed.", app.app_id, "certificate"
    )
    try:
        header = jwt.get_unverified_header(assertion)
        jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise malformed from None
    alg = header.get("alg")
    if alg not in ("RS256", "PS256"):
        raise TokenFailure(
            401,
            "invalid_client",
            5002738,
            f"Invalid JWT token. '{alg}' is not a supported signature algorithm. Supported signing "
            "algorithms are: 'RS256, PS256'",
            app.app_id,
            "certificate",
        )
    x5t = header.get("x5t")
    x5t_s256 = header.get("x5t#S256")
    key: KeyCredential | None = None
    try:
        if isinstance(x5t_s256, str):
            digest = _b64url_decode(x5t_s256).hex().upper()
            key = next((k for k in app.verify_credentials if k.thumbprint_sha256 == digest), None)
            thumb = key.thumbprint_sha1 if key else digest
        elif isinstance(x5t, str):
            thumb = _b64url_decode(x5t).hex().upper()
            key = next((k for k in app.verify_credentials if k.thumbprint_sha1 == thumb), None)
        else:
            raise TokenFailure(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation. "
                + _key_reason("The key was not found.", "", app.app_id),
                app.app_id,
                "certificate",
            )
    except (binascii.Error, ValueError):
        raise malformed from None

    def key_failure(message: str, reason: str, found: KeyCredential | None = None) -> TokenFailure:
        return TokenFailure(
            401,
            "invalid_client",
            700027,
            f"{message} {_key_reason(reason, thumb, app.app_id, found)}",
            app.app_id,
            "certificate",
            found.key_id if found else None,
            thumb,
        )

    if key is None:
        raise key_failure(
            "The certificate with identifier used to sign the client assertion is not registered on application.",
            "The key was not found.",
        )
    x5c = header.get("x5c")
    if x5c is not None:
        leaf = x5c[0] if isinstance(x5c, list) and x5c else x5c
        try:
            leaf_der = base64.b64decode("".join(str(leaf).split()), validate=True)
        except (binascii.Error, ValueError):
            raise malformed from None
        if hashlib.sha256(leaf_der).hexdigest().upper() != key.thumbprint_sha256:
            raise key_failure(
                "Client assertion failed signature validation.",
                "The certificate in the x5c header does not match the thumbprint in the header.",
                key,
            )
    now = dt.datetime.now(dt.UTC)
    if not key.valid_at(now):
        raise key_failure("Client assertion failed signature validation.", "The key used is expired.", key)
    public_key = key.certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise key_failure(
            "Client assertion failed signature validation.", "The key type is not supported.", key
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            public_key,
            algorithms=[alg],
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError:
        raise key_failure(
            "Client assertion failed signature validation.",
            "The provided signature value did not match the expected signature value.",
            key,
        ) from None
    except jwt.InvalidTokenError:
        raise malformed from None
    iss, sub = claims.get("iss"), claims.get("sub")
    if str(iss).lower() != app.app_id.lower() or str(sub).lower() != app.app_id.lower():
        raise TokenFailure(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the "
            f"documentation at {_DOCS_CERT} .",
            app.app_id,
            "certificate",
            key.key_id,
            thumb,
        )
    aud = claims.get("aud")
    audiences = {aud} if isinstance(aud, str) else set(aud or [])
    if not audiences & _allowed_audiences(request, tenant, path_tenant):
        raise TokenFailure(
            401,
            "invalid_client",
            700027,
            "Client assertion contains an invalid audience. The 'aud' claim must be the token endpoint "
            f"'{authority_base(request)}/{tenant.id}/oauth2/v2.0/token'. Review the documentation at "
            f"{_DOCS_CERT} .",
            app.app_id,
            "certificate",
            key.key_id,
            thumb,
        )
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if not isinstance(exp, int | float):
        raise malformed
    expires = dt.datetime.fromtimestamp(exp, dt.UTC)
    starts = dt.datetime.fromtimestamp(nbf, dt.UTC) if isinstance(nbf, int | float) else None
    if expires + ASSERTION_SKEW < now or (starts is not None and starts - ASSERTION_SKEW > now):

        def stamp(value: dt.datetime) -> str:
            return value.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")

        raise TokenFailure(
            401,
            "invalid_client",
            700024,
            f"Client assertion is not within its valid time range. Current time: {stamp(now)}, assertion "
            f"valid from {stamp(starts) if starts else '(none)'}, expiry time of assertion {stamp(expires)}. "
            f"Review the documentation at {_DOCS_CERT} .",
            app.app_id,
            "certificate",
            key.key_id,
            thumb,
        )
    return key


def _check_secret(app: Application, secret: str) -> str:
    """keyId of the matching password credential, else :class:`TokenFailure` (7000215 / 7000222)."""
    now = dt.datetime.now(dt.UTC)
    for credential in app.password_credentials:
        if credential.matches(secret):
            if not credential.start <= now <= credential.end:
                raise TokenFailure(
                    401,
                    "invalid_client",
                    7000222,
                    f"The provided client secret keys for app '{app.app_id}' are expired. Visit the Azure "
                    "portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider "
                    "using certificate credentials for added security: https://aka.ms/certCreds.",
                    app.app_id,
                    "secret",
                    credential.key_id,
                )
            return credential.key_id
    raise TokenFailure(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
        f"value, not the client secret ID, for a secret added to app '{app.app_id}'.",
        app.app_id,
        "secret",
    )


def _client_credentials(
    request: Request, tenant: Tenant, form: dict[str, str], path_tenant: str
) -> tuple[Application, ServicePrincipal, str, str]:
    """(app, service principal, credential type, key id) of an authenticated client."""
    client_id = form.get("client_id", "").strip()
    if not client_id:
        raise _missing("client_id")
    app = tenant.apps.application_by_app_id(client_id)
    sp = tenant.apps.service_principal_by_app_id(client_id)
    if app is None or sp is None:
        raise TokenFailure(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{tenant.display_name}'. "
            "This can happen if the application has not been installed by the administrator of the tenant or "
            "consented to by any user in the tenant. You may have sent your authentication request to the "
            "wrong tenant.",
            client_id,
        )
    scope = form.get("scope", "")
    if not scope:
        raise _missing("scope")
    scopes = scope.split()
    if len(scopes) != 1 or scopes[0] not in GRAPH_DEFAULT_SCOPES:
        raise TokenFailure(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid.",
            client_id,
        )
    if not sp.account_enabled:
        raise TokenFailure(
            400,
            "unauthorized_client",
            7000112,
            f"Application '{app.app_id}'({app.display_name}) is disabled.",
            client_id,
        )
    assertion = form.get("client_assertion")
    secret = form.get("client_secret")
    if assertion is not None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise TokenFailure(
                400,
                "invalid_request",
                50027,
                f"JWT token is invalid or malformed. The client_assertion_type must be '{ASSERTION_TYPE}'.",
                client_id,
                "certificate",
            )
        key = verify_assertion(request, tenant, app, assertion, path_tenant)
        return app, sp, "certificate", key.key_id
    if secret is not None:
        return app, sp, "secret", _check_secret(app, secret)
    raise TokenFailure(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        client_id,
    )


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def token(request: Request) -> Response:
    runtime = runtime_of(request)
    path_tenant = request.path_params["tenant"]
    tenant = runtime.state.find_tenant(path_tenant)
    if tenant is None:
        return tenant_not_found(request, path_tenant)
    request.state.tenant_id = tenant.id
    request_id, _ = REQUEST_IDS.get()
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    form = parse_form(await request.body())
    grant_type = form.get("grant_type", "")
    request.state.app_id = form.get("client_id") or None
    record: dict[str, Any] = {
        "time": utc_stamp(),
        "tenant_id": tenant.id,
        "grant_type": grant_type,
        "client_ip": _client_ip(request),
        "request_id": request_id,
        "correlation_id": correlation_id,
    }
    if grant_type == "urn:ietf:params:oauth:grant-type:device_code":
        from meetgate_sandbox.devicecode import device_code_token

        return await device_code_token(request, tenant, form)
    if grant_type == "refresh_token":
        from meetgate_sandbox.devicecode import refresh_token_grant

        return await refresh_token_grant(request, tenant, form)
    try:
        if not grant_type:
            raise _missing("grant_type")
        if grant_type != "client_credentials":
            raise TokenFailure(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
                form.get("client_id"),
            )
        app, sp, credential_type, key_id = _client_credentials(request, tenant, form, path_tenant)
    except TokenFailure as failure:
        tenant.log.tokens.append(
            TokenRecord(
                **record,
                app_id=failure.app_id,
                success=False,
                credential_type=failure.credential_type,
                key_id=failure.key_id,
                thumbprint=failure.thumbprint,
                error_code=failure.code,
                error=failure.error,
            )
        )
        runtime.state.changed()
        return JSONResponse(_aadsts_body(request, failure, correlation_id), status_code=failure.status)
    roles = tenant.apps.granted_roles(sp.id)
    lifetime = runtime.access_token_lifetime()
    issued = runtime.issuer.issue_app_token(
        tenant_id=tenant.id,
        app_id=app.app_id,
        app_display_name=app.display_name,
        service_principal_id=sp.id,
        roles=roles,
        certificate=credential_type == "certificate",
        lifetime=lifetime,
    )
    thumbprint = None
    if credential_type == "certificate":
        thumbprint = next((k.thumbprint_sha1 for k in app.key_credentials if k.key_id == key_id), None)
    tenant.log.tokens.append(
        TokenRecord(
            **record,
            app_id=app.app_id,
            success=True,
            credential_type=credential_type,
            key_id=key_id,
            thumbprint=thumbprint,
            error_code=None,
            error=None,
            roles=tuple(roles),
        )
    )
    runtime.state.changed()
    return Response(
        json.dumps(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": issued.access_token,
            }
        ),
        media_type="application/json; charset=utf-8",
        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", jwks, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    ]
