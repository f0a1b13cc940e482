"""Graph's ``/subscriptions`` routes (``/v1.0`` and ``/beta``).

``POST /subscriptions`` (201), ``GET /subscriptions`` (the calling app's), ``GET`` / ``PATCH`` (renew:
200) / ``DELETE`` (204) ``/subscriptions/{id}``, ``POST /subscriptions/{id}/reauthorize`` (204).
Order of checks on create: body → required fields → resource (known, its version) → changeType →
URLs → clientState → expirationDateTime (past, maximum, raised to 45 minutes,
``lifecycleNotificationUrl`` beyond one hour for Teams artifacts) → resource data encryption →
permission → the resource (user, meeting) → the Teams application access policy → the validation
handshake of ``notificationUrl`` and then of ``lifecycleNotificationUrl``. Delivery is
:mod:`~meetgate_sandbox.notifications_delivery`, the control API :mod:`~meetgate_sandbox.subscriptions_control`.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import urllib.parse
import uuid
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox import subscriptions_control
from meetgate_sandbox.exchange_rbac import mailbox_permitted
from meetgate_sandbox.http import Caller, GraphErrorResponse, json_object_body
from meetgate_sandbox.meetings import MeetingStore
from meetgate_sandbox.notifications_delivery import sandbox_now, trust
from meetgate_sandbox.policy import PolicyEngine
from meetgate_sandbox.runtime import caller_tenant, runtime_of
from meetgate_sandbox.state import Tenant
from meetgate_sandbox.subscriptions import (
    CHANGE_TYPES,
    LIFECYCLE_REQUIRED_MESSAGE,
    MIN_MINUTES,
    ResourceRule,
    Subscription,
    SubscriptionStore,
    load_encryption_certificate,
    match_key,
    parse_time,
    resource_rule,
    store_of,
)

__all__ = ["graph_routes", "routes"]

MAX_CLIENT_STATE = 128
MAX_PER_MAILBOX = 1000
TLS_VERSIONS = ("v1_0", "v1_1", "v1_2", "v1_3")
HANDSHAKE_FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK to "
    "validation request."
)
HANDSHAKE_MISMATCH = (
    "Subscription validation request failed. Response must exactly match validationToken query parameter."
)
FORBIDDEN = "Operation: Create; Exception: [Status Code: Forbidden; Reason: {reason}]"


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _invalid(message: str, code: str = "InvalidRequest") -> GraphErrorResponse:
    return GraphErrorResponse(400, code, message)


# ---- validation -----------------------------------------------------------------------------------


def _check_url(name: str, value: Any, store: SubscriptionStore) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{name} must be an absolute https URL.")
    parts = urllib.parse.urlsplit(value)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and loopback and store.settings.allow_http_loopback:
        return value
    raise _invalid(f"Invalid {name} '{value}': the URL must use the HTTPS protocol.", "ValidationError")


def _expiration(
    value: Any, rule: ResourceRule, store: SubscriptionStore, now: dt.datetime, lifecycle: str | None
) -> dt.datetime:
    if not isinstance(value, str):
        raise _invalid("expirationDateTime is a required property for subscription creation.")
    try:
        expiration = parse_time(value)
    except ValueError:
        raise _invalid(f"The expirationDateTime value '{value}' is not a valid DateTimeOffset.") from None
    if expiration <= now:
        raise GraphErrorResponse(400, "ExtensionError", "Subscription expiration must be in the future.")
    maximum = int(getattr(store.settings, rule.max_minutes_setting))
    if expiration > now + dt.timedelta(minutes=maximum):
        raise GraphErrorResponse(
            400, "ExtensionError", f"Subscription expiration can only be {maximum} minutes in the future."
        )
    expiration = max(expiration, now + dt.timedelta(minutes=MIN_MINUTES))
    if rule.lifecycle_beyond_hour and lifecycle is None and expiration > now + dt.timedelta(hours=1):
        raise _invalid(LIFECYCLE_REQUIRED_MESSAGE, "ValidationError")
    return expiration


def _forbidden(reason: str) -> GraphErrorResponse:
    return GraphErrorResponse(403, "ExtensionError", FORBIDDEN.format(reason=reason))


def _authorize(
    caller: Caller, tenant: Tenant, rule: ResourceRule, ids: dict[str, str], now: dt.datetime
) -> tuple[str, str | None]:
    """The resource's match key (user keys as ids) and the organizer the Teams policy is checked for."""
    granted = caller.roles if caller.is_app_only else caller.scopes
    user_id: str | None = None
    if rule.user_group is not None:
        key = ids.get(rule.user_group) or caller.delegated_user_id
        if key is None:
            raise _invalid("/me is only valid with delegated authentication flow.")
        user = tenant.find_user(key)
        if user is None:
            raise GraphErrorResponse(404, "ResourceNotFound", f"The user '{key}' was not found.")
        user_id = user.id
    rbac = (
        rule.kind == "events"
        and caller.is_app_only
        and user_id is not None
        and any(mailbox_permitted(tenant, caller.app_id, p, user_id, now) for p in rule.permissions)
    )
    if not set(rule.permissions) & granted and not rbac:
        wanted = " or ".join(rule.permissions)
        raise _forbidden(f"The app needs the permission {wanted} to subscribe to this resource.")
    if not caller.is_app_only and user_id is not None and user_id != caller.delegated_user_id:
        raise _forbidden("The signed-in user may subscribe only to their own resources.")
    policy_user = user_id
    meetings = tenant.extensions.get("meetings")
    if "meeting" in ids or "url" in ids:
        found = []
        if isinstance(meetings, MeetingStore):
            if "url" in ids:
                found = meetings.find_in_tenant(join_url=urllib.parse.unquote(ids["url"]))
            else:
                found = [m for m in meetings.snapshot() if m.id == ids["meeting"]]
        if not found:
            raise GraphErrorResponse(404, "ResourceNotFound", "The online meeting was not found.")
        policy_user = found[0].organizer_id
    if rule.teams_policy and caller.is_app_only and policy_user is not None:
        engine = tenant.extensions.get("policy")
        if not isinstance(engine, PolicyEngine) or not engine.allows(policy_user, caller.app_id):
            raise _forbidden(f"No application access policy found for this app {caller.app_id} on the user.")
    if user_id is not None and "user" in ids:
        ids = {**ids, "user": user_id}  # a UPN in the resource matches changes by the user's id
    resource = f"users/{user_id}/events" if rule.kind == "events" else _resource_path(rule, ids)
    return match_key(resource), policy_user


def _resource_path(rule: ResourceRule, ids: dict[str, str]) -> str:
    if "url" in ids:
        return f"communications/onlineMeetings/?$filter=JoinWebUrl eq '{ids['url']}'"
    if "meeting" in ids:
        return f"communications/onlineMeetings/{ids['meeting']}/{rule.kind}"
    artifact = "Transcripts" if rule.kind == "transcripts" else "Recordings"
    if "user" in ids:
        return f"users/{ids['user']}/onlineMeetings/getAll{artifact}"
    return (
        "communications/callRecords"
        if rule.kind == "callRecords"
        else f"communications/onlineMeetings/getAll{artifact}"
    )


async def _handshake(url: str, store: SubscriptionStore, verify: ssl.SSLContext | bool) -> None:
    """Graph's validation request: POST ``url?validationToken=…``; the answer must be 200 with the
    decoded token as its body, within ``validationTimeoutSeconds``."""
    token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
    parts = urllib.parse.urlsplit(url)
    query = "&".join(q for q in (parts.query, urllib.parse.urlencode({"validationToken": token})) if q)
    target = urllib.parse.urlunsplit(parts._replace(query=query))
    try:
        # straight to the endpoint, as Graph connects (no proxy from the environment)
        async with httpx.AsyncClient(
            timeout=store.settings.validation_timeout_seconds, verify=verify, trust_env=False
        ) as client:
            response = await client.post(
                target, content=b"", headers={"Content-Type": "text/plain; charset=utf-8"}
            )
    except httpx.HTTPError:
        raise _invalid(HANDSHAKE_FAILED, "ValidationError") from None
    if response.status_code != 200:
        raise _invalid(HANDSHAKE_FAILED, "ValidationError")
    if response.text != token:
        raise _invalid(HANDSHAKE_MISMATCH, "ValidationError")


def _text(body: dict[str, Any], name: str, limit: int | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a string.")
    if limit is not None and len(value) > limit:
        raise _invalid(f"{name} must be at most {limit} characters.", "ValidationError")
    return value


# ---- Graph routes ---------------------------------------------------------------------------------


def _version(request: Request) -> str:
    return "beta" if request.url.path.startswith("/beta/") else "v1.0"


def _context(request: Request, suffix: str = "") -> str:
    return f"https://graph.microsoft.com/{_version(request)}/$metadata#subscriptions{suffix}"


async def create_subscription(request: Request) -> Response:
    caller, tenant = caller_tenant(request)
    runtime = runtime_of(request)
    store = store_of(tenant)
    body = await json_object_body(request)
    for name in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
        if body.get(name) in (None, ""):
            raise _invalid(f"{name} is a required property for subscription creation.")
    resource = _text(body, "resource") or ""
    found = resource_rule(resource)
    if found is None or (found[0].beta_only and _version(request) != "beta"):
        raise _invalid(
            f"The resource '{resource}' is not supported for change notifications.", "ExtensionError"
        )
    rule, ids = found
    change_type = _text(body, "changeType") or ""
    kinds = [part.strip() for part in change_type.split(",")]
    for kind in kinds:
        if kind not in CHANGE_TYPES or kind not in rule.change_types:
            raise _invalid(
                f"The changeType '{kind}' is not supported for the resource '{resource}'; "
                f"supported: {', '.join(rule.change_types)}.",
                "ValidationError",
            )
    notification_url = _check_url("notificationUrl", body.get("notificationUrl"), store)
    lifecycle = body.get("lifecycleNotificationUrl")
    lifecycle_url = None if lifecycle is None else _check_url("lifecycleNotificationUrl", lifecycle, store)
    client_state = _text(body, "clientState", MAX_CLIENT_STATE)
    tls = _text(body, "latestSupportedTlsVersion") or "v1_2"
    if tls not in TLS_VERSIONS:
        raise _invalid(f"latestSupportedTlsVersion must be one of {', '.join(TLS_VERSIONS)}.")
    now = sandbox_now(runtime)
    expiration = _expiration(body.get("expirationDateTime"), rule, store, now, lifecycle_url)
    include = body.get("includeResourceData", False)
    if not isinstance(include, bool):
        raise _invalid("includeResourceData must be true or false.")
    certificate = _text(body, "encryptionCertificate")
    certificate_id = _text(body, "encryptionCertificateId", 128)
    if include:
        if not certificate:
            raise _invalid(
                "encryptionCertificate is required when includeResourceData is true.", "ValidationError"
            )
        if not certificate_id:
            raise _invalid(
                "encryptionCertificateId is required when includeResourceData is true.", "ValidationError"
            )
        try:
            load_encryption_certificate(certificate)
        except ValueError as error:
            raise _invalid(f"The encryptionCertificate is not valid: {error}.", "ValidationError") from None
    key, policy_user = _authorize(caller, tenant, rule, ids, now)
    if rule.kind == "events" and sum(s.key == key for s in store.live(now)) >= MAX_PER_MAILBOX:
        raise _forbidden(f"The mailbox already has {MAX_PER_MAILBOX} active subscriptions.")
    await _handshake(notification_url, store, trust(runtime))
    if lifecycle_url is not None:
        await _handshake(lifecycle_url, store, trust(runtime))
    sub = Subscription(
        id=store.new_id(),
        resource=resource,
        change_type=",".join(kinds),
        notification_url=notification_url,
        expiration=expiration,
        application_id=caller.app_id,
        creator_id=caller.service_principal_id if caller.is_app_only else str(caller.delegated_user_id),
        version=_version(request),
        client_state=client_state,
        lifecycle_notification_url=lifecycle_url,
        include_resource_data=include,
        encryption_certificate=certificate,
        encryption_certificate_id=certificate_id,
        latest_supported_tls_version=tls,
        key=key,
        policy_user_id=policy_user,
    )
    store.subscriptions[sub.id] = sub
    runtime.state.changed()
    return _json({"@odata.context": _context(request, "/$entity"), **sub.to_json()}, 201)


def _own(request: Request) -> tuple[Caller, Tenant, SubscriptionStore, Subscription]:
    caller, tenant = caller_tenant(request)
    store = store_of(tenant)
    store.live(sandbox_now(runtime_of(request)))
    sub_id = request.path_params["id"]
    sub = store.subscriptions.get(sub_id)
    if sub is None or sub.application_id != caller.app_id:
        raise GraphErrorResponse(404, "ResourceNotFound", f"The subscription '{sub_id}' was not found.")
    return caller, tenant, store, sub


async def list_subscriptions(request: Request) -> Response:
    caller, tenant = caller_tenant(request)
    subs = store_of(tenant).live(sandbox_now(runtime_of(request)))
    return _json(
        {
            "@odata.context": _context(request),
            "value": [s.to_json() for s in subs if s.application_id == caller.app_id],
        }
    )


async def get_subscription(request: Request) -> Response:
    _, _, _, sub = _own(request)
    return _json({"@odata.context": _context(request, "/$entity"), **sub.to_json()})


async def update_subscription(request: Request) -> Response:
    _, _, store, sub = _own(request)
    runtime = runtime_of(request)
    body = await json_object_body(request)
    unknown = sorted(set(body) - {"expirationDateTime", "notificationUrl", "@odata.type"})
    if unknown:
        raise _invalid(
            f"Only expirationDateTime and notificationUrl can be updated, not {', '.join(unknown)}."
        )
    found = resource_rule(sub.resource)
    assert found is not None
    expiration = sub.expiration
    if "expirationDateTime" in body:
        now = sandbox_now(runtime)
        expiration = _expiration(
            body["expirationDateTime"], found[0], store, now, sub.lifecycle_notification_url
        )
    url = sub.notification_url
    if "notificationUrl" in body:
        url = _check_url("notificationUrl", body["notificationUrl"], store)
        if url != sub.notification_url:
            await _handshake(url, store, trust(runtime))
    sub.expiration, sub.notification_url = expiration, url
    sub.reauthorization_required = False
    runtime.state.changed()
    return _json({"@odata.context": _context(request, "/$entity"), **sub.to_json()})


async def delete_subscription(request: Request) -> Response:
    _, _, store, sub = _own(request)
    del store.subscriptions[sub.id]
    runtime_of(request).state.changed()
    return Response(status_code=204)


async def reauthorize_subscription(request: Request) -> Response:
    _, _, _, sub = _own(request)
    sub.reauthorization_required = False
    runtime_of(request).state.changed()
    return Response(status_code=204)


def graph_routes() -> list[BaseRoute]:
    """``/subscriptions`` under /v1.0 and /beta."""
    result: list[BaseRoute] = []
    for version in ("v1.0", "beta"):
        base = f"/{version}/subscriptions"
        result += [
            Route(base, create_subscription, methods=["POST"]),
            Route(base, list_subscriptions, methods=["GET"]),
            Route(f"{base}/{{id}}", get_subscription, methods=["GET"]),
            Route(f"{base}/{{id}}", update_subscription, methods=["PATCH"]),
            Route(f"{base}/{{id}}", delete_subscription, methods=["DELETE"]),
            Route(f"{base}/{{id}}/reauthorize", reauthorize_subscription, methods=["POST"]),
        ]
    return result


def routes() -> list[BaseRoute]:
    """Graph's subscription routes and their control API."""
    return [*graph_routes(), *subscriptions_control.routes()]
