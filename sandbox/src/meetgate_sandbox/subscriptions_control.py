"""The control API of change notifications (tests and demos; no auth), under
``/_sandbox/tenants/{tid}``:

| request | does |
|---|---|
| ``GET /subscriptions`` | every live subscription of the tenant (any app's) |
| ``GET`` / ``PUT /subscriptions/settings`` | the tenant's :class:`~meetgate_sandbox.subscriptions.DeliverySettings` |
| ``GET /subscriptions/{id}/deliveries`` | each notification and lifecycle event sent for it, with its attempts |
| ``POST /subscriptions/{id}/lifecycle`` ``{"event"}`` | ``reauthorizationRequired``, ``subscriptionRemoved`` (removes it) or ``missed`` |
| ``POST /subscriptions/{id}/expire`` | the subscription reaches its expiry now |
| ``POST /changes`` | publish a change as a route module does |
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox.http import GraphErrorResponse, json_object_body
from meetgate_sandbox.notification_bus import Change
from meetgate_sandbox.notifications_delivery import lifecycle_of, sandbox_now, submit
from meetgate_sandbox.runtime import runtime_of
from meetgate_sandbox.state import Tenant
from meetgate_sandbox.subscriptions import Subscription, SubscriptionStore, store_of

__all__ = ["LIFECYCLE_EVENTS", "routes"]

LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


# ---- routes ----------------------------------------------------------------------------------


def _tenant(request: Request) -> Tenant:
    key = request.path_params["tid"]
    tenant = runtime_of(request).state.find_tenant(key)
    if tenant is None:
        raise GraphErrorResponse(
            404, "NotFound", f"no sandbox tenant {key!r}; create one with POST /_sandbox/tenants"
        )
    return tenant


def _control_sub(request: Request) -> tuple[SubscriptionStore, Subscription]:
    store = store_of(_tenant(request))
    store.live(sandbox_now(runtime_of(request)))
    sub = store.subscriptions.get(request.path_params["id"])
    if sub is None:
        raise GraphErrorResponse(404, "NotFound", f"no live subscription {request.path_params['id']!r}")
    return store, sub


async def control_list(request: Request) -> Response:
    store = store_of(_tenant(request))
    return _json({"value": [s.to_json() for s in store.live(sandbox_now(runtime_of(request)))]})


async def control_settings(request: Request) -> Response:
    store = store_of(_tenant(request))
    if request.method == "PUT":
        body = await json_object_body(
            request, invalid_json="the body is not valid JSON", not_an_object="the body must be a JSON object"
        )
        try:
            store.settings.update(body)
        except ValueError as error:
            raise GraphErrorResponse(400, "BadRequest", str(error)) from None
        runtime_of(request).state.changed()
    return _json(store.settings.to_json())


async def control_deliveries(request: Request) -> Response:
    store = store_of(_tenant(request))
    return _json({"value": store.records(request.path_params["id"])})


async def control_lifecycle(request: Request) -> Response:
    store, sub = _control_sub(request)
    body = await json_object_body(request)
    event = body.get("event")
    if event not in LIFECYCLE_EVENTS:
        raise GraphErrorResponse(400, "BadRequest", f"event must be one of {', '.join(LIFECYCLE_EVENTS)}")
    if sub.lifecycle_notification_url is None:
        raise GraphErrorResponse(
            400,
            "BadRequest",
            "the subscription has no lifecycleNotificationUrl: Graph sends it no lifecycle events",
        )
    runtime = runtime_of(request)
    record = submit(
        runtime, store, sub, "lifecycle", sub.lifecycle_notification_url, lifecycle_of(store, sub, event)
    )
    if event == "reauthorizationRequired":
        sub.reauthorization_required = True
    elif event == "subscriptionRemoved":
        del store.subscriptions[sub.id]
    runtime.state.changed()
    return _json(record.to_json(), 202)


async def control_expire(request: Request) -> Response:
    store, sub = _control_sub(request)
    sub.expiration = sandbox_now(runtime_of(request))
    store.live(sub.expiration)
    runtime_of(request).state.changed()
    return Response(status_code=204)


async def control_publish(request: Request) -> Response:
    tenant = _tenant(request)
    body = await json_object_body(request)
    try:
        change = Change(
            tenant_id=tenant.id,
            change_type=str(body["changeType"]),
            resource=str(body["resource"]),
            odata_type=str(body.get("odataType") or "#Microsoft.Graph.entity"),
            resource_data=dict(body.get("resourceData") or {}),
            topics=tuple(str(t) for t in body.get("topics") or ()),
            organizer_id=body.get("organizerId"),
        )
    except (KeyError, TypeError, ValueError):
        raise GraphErrorResponse(400, "BadRequest", "changeType, resource and topics are required") from None
    runtime_of(request).notifications.publish(change)
    return Response(status_code=202)


def routes() -> list[BaseRoute]:
    """The control routes of change notifications."""
    base = "/_sandbox/tenants/{tid}/subscriptions"
    return [
        Route(base, control_list, methods=["GET"]),
        Route(f"{base}/settings", control_settings, methods=["GET", "PUT"]),
        Route(f"{base}/{{id}}/deliveries", control_deliveries, methods=["GET"]),
        Route(f"{base}/{{id}}/lifecycle", control_lifecycle, methods=["POST"]),
        Route(f"{base}/{{id}}/expire", control_expire, methods=["POST"]),
        Route("/_sandbox/tenants/{tid}/changes", control_publish, methods=["POST"]),
    ]
