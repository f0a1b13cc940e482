"""``/v1/webhooks``: the consumer's own webhook endpoints (register, list, read, change, remove, test,
rotate the secret) and their deliveries (list, replay). Another consumer's endpoint is "not found".

The endpoints carry comments, not docstrings: FastAPI would publish a docstring as the operation's
``description`` in ``/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from anyio import to_thread
from fastapi import APIRouter, Body, Path, Query, Response

from meetgate.gateway.deps import AppStore, Context, CurrentConsumer, Webhooks
from meetgate.gateway.problems import Problem
from meetgate.gateway.schemas import PROBLEM_RESPONSES
from meetgate.gateway.webhooks.events import WebhookError
from meetgate.gateway.webhooks.manage import WebhookNotFound
from meetgate.gateway.webhooks.schemas import (
    DeliveryList,
    DeliveryOut,
    TestEventOut,
    WebhookCreate,
    WebhookList,
    WebhookOut,
    WebhookPatch,
    WebhookRotate,
    WebhookWithSecret,
    delivery_out,
    webhook_out,
)
from meetgate.gateway.webhooks.urls import WebhookUrlError
from meetgate.store import Store

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=PROBLEM_RESPONSES)
T = TypeVar("T")

EndpointId = Annotated[str, Path(pattern=r"^whk_[0-9a-f]{24}$", description="The webhook endpoint's id")]
DeliveryId = Annotated[str, Path(pattern=r"^dlv_[0-9a-f]{24}$", description="The delivery's id")]


async def _call(store: Store, fn: Callable[[], T]) -> T:
    """A webhook operation (store calls): inline on SQLite, in a worker thread on PostgreSQL; its
    errors as problems."""
    try:
        return fn() if store.inline else await to_thread.run_sync(fn)
    except WebhookUrlError as exc:
        raise Problem("webhook-url-refused", str(exc), remedy=exc.remedy) from None
    except WebhookNotFound as exc:
        raise Problem("webhook-not-found", str(exc)) from None
    except WebhookError as exc:
        raise Problem("webhook-invalid", str(exc), remedy=exc.remedy) from None


def _issued(endpoint: WebhookOut, secret: str) -> WebhookWithSecret:
    return WebhookWithSecret(**endpoint.model_dump(), secret=secret)


@router.post("", status_code=201, response_model=WebhookWithSecret, summary="Register a webhook endpoint")
async def create_webhook(
    response: Response,
    body: WebhookCreate,
    consumer: CurrentConsumer,
    hooks: Webhooks,
    store: AppStore,
    ctx: Context,
) -> WebhookWithSecret:
    # Register an endpoint; the answer holds its signing secret, shown this once.
    ctx.action = "webhook.create"
    issued = await _call(store, lambda: hooks.add(consumer.id, body.url, body.events, body.description))
    response.headers["Location"] = f"/v1/webhooks/{issued.endpoint.id}"
    return _issued(webhook_out(issued.endpoint), issued.secret)


@router.get("", response_model=WebhookList, summary="List the webhook endpoints")
async def list_webhooks(
    consumer: CurrentConsumer, hooks: Webhooks, store: AppStore, ctx: Context
) -> WebhookList:
    # The consumer's endpoints (never their secrets).
    ctx.action = "webhook.list"
    records = await _call(store, lambda: hooks.list(consumer.id))
    return WebhookList(value=[webhook_out(r) for r in records])


@router.get("/{endpoint_id}", response_model=WebhookOut, summary="Read a webhook endpoint")
async def get_webhook(
    endpoint_id: EndpointId, consumer: CurrentConsumer, hooks: Webhooks, store: AppStore, ctx: Context
) -> WebhookOut:
    # One of the consumer's endpoints.
    ctx.action = "webhook.get"
    return webhook_out(await _call(store, lambda: hooks.get(consumer.id, endpoint_id)))


@router.patch("/{endpoint_id}", response_model=WebhookOut, summary="Change a webhook endpoint")
async def patch_webhook(
    endpoint_id: EndpointId,
    body: WebhookPatch,
    consumer: CurrentConsumer,
    hooks: Webhooks,
    store: AppStore,
    ctx: Context,
) -> WebhookOut:
    # Change the URL, the events or the description.
    ctx.action = "webhook.update"
    record = await _call(
        store,
        lambda: hooks.update(
            consumer.id, endpoint_id, url=body.url, events=body.events, description=body.description
        ),
    )
    return webhook_out(record)


@router.delete(
    "/{endpoint_id}", status_code=204, response_class=Response, summary="Remove a webhook endpoint"
)
async def delete_webhook(
    endpoint_id: EndpointId, consumer: CurrentConsumer, hooks: Webhooks, store: AppStore, ctx: Context
) -> Response:
    # Remove the endpoint: nothing more is sent to it; its unfinished deliveries fail.
    ctx.action = "webhook.remove"
    await _call(store, lambda: hooks.remove(consumer.id, endpoint_id))
    return Response(status_code=204)


@router.post("/{endpoint_id}/test", status_code=202, response_model=TestEventOut, summary="Send a test event")
async def test_webhook(
    endpoint_id: EndpointId, consumer: CurrentConsumer, hooks: Webhooks, store: AppStore, ctx: Context
) -> TestEventOut:
    # Queue a signed ``webhook.test`` event to the endpoint; its delivery shows in /deliveries.
    ctx.action = "webhook.test"
    return TestEventOut(event_id=await _call(store, lambda: hooks.test(consumer.id, endpoint_id)))


@router.post(
    "/{endpoint_id}/rotate-secret", response_model=WebhookWithSecret, summary="Rotate the signing secret"
)
async def rotate_webhook_secret(
    endpoint_id: EndpointId,
    consumer: CurrentConsumer,
    hooks: Webhooks,
    store: AppStore,
    ctx: Context,
    body: Annotated[WebhookRotate | None, Body()] = None,
) -> WebhookWithSecret:
    # A new secret, shown once; the current one keeps signing beside it for the grace period.
    ctx.action = "webhook.rotate"
    hours = body.grace_hours if body is not None else None
    grace = dt.timedelta(hours=hours) if hours is not None else None
    issued = await _call(store, lambda: hooks.rotate_secret(consumer.id, endpoint_id, grace))
    return _issued(webhook_out(issued.endpoint), issued.secret)


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryList, summary="List an endpoint's deliveries")
async def list_deliveries(
    endpoint_id: EndpointId,
    consumer: CurrentConsumer,
    hooks: Webhooks,
    store: AppStore,
    ctx: Context,
    status: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryList:
    # The endpoint's deliveries, newest first, each with its attempts (status, latency, error).
    ctx.action = "webhook.deliveries"
    records = await _call(
        store, lambda: hooks.deliveries(consumer.id, endpoint_id, limit=limit, status=status)
    )
    return DeliveryList(value=[delivery_out(r) for r in records])


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=DeliveryOut,
    summary="Deliver an event again",
)
async def replay_delivery(
    endpoint_id: EndpointId,
    delivery_id: DeliveryId,
    consumer: CurrentConsumer,
    hooks: Webhooks,
    store: AppStore,
    ctx: Context,
) -> DeliveryOut:
    # A new delivery of the same event (same event id and body) to this endpoint.
    ctx.action = "webhook.replay"
    return delivery_out(await _call(store, lambda: hooks.replay(consumer.id, endpoint_id, delivery_id)))
