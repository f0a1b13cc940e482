"""Registering, changing, testing and removing a consumer's webhook endpoints; listing and replaying
their deliveries. The same operations serve ``meetgate consumers webhook …`` and ``/v1/webhooks``.

A new endpoint's secret, and a rotated one, are shown once (:class:`IssuedSecret`); the store keeps
them encrypted (:mod:`.secret_box`). After a rotation the previous secret keeps signing beside the new
one (two ``v1`` in the header) for the grace period, so receivers switch without losing a delivery.
"""

from __future__ import annotations

import builtins
import datetime as dt
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from meetgate.gateway.webhooks import signing
from meetgate.gateway.webhooks.events import EVENT_TYPES, WebhookError, WebhookPublisher
from meetgate.gateway.webhooks.secret_box import SecretBox, load_or_create_key_file
from meetgate.gateway.webhooks.urls import Resolver, check_url, system_resolver
from meetgate.store import Store
from meetgate.store.webhooks import DeliveryRecord, EndpointRecord, WebhookStore, new_id

#: the environment variable that holds the webhook key (base64url, 32 bytes)
KEY_ENV = "MEETGATE_WEBHOOK_KEY"


def default_key_file(store_url: str) -> Path:
    """Where the webhook key is kept when none is given: beside an SQLite store's file, else in
    ``.meetgate/`` (replicas on PostgreSQL on several machines must share ``MEETGATE_WEBHOOK_KEY``)."""
    url = sa.make_url(store_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent / "webhook.key"
    return Path(".meetgate") / "webhook.key"


def secret_box_factory(key: str | None, key_file: Path) -> Callable[[], SecretBox]:
    """The box, made on first use: from ``key``, else ``MEETGATE_WEBHOOK_KEY``, else ``key_file``."""

    @functools.cache
    def make() -> SecretBox:
        return SecretBox(key or os.environ.get(KEY_ENV) or load_or_create_key_file(key_file))

    return make


@dataclass(frozen=True)
class IssuedSecret:
    """An endpoint and its signing secret, shown this once."""

    endpoint: EndpointRecord
    secret: str

    def __repr__(self) -> str:
        return f"IssuedSecret(endpoint={self.endpoint!r}, secret='***')"


def check_events(events: Sequence[str]) -> list[str]:
    """The event types, checked, without repeats, in the catalogue's order."""
    wanted = {e.strip() for item in events for e in item.split(",") if e.strip()}
    if not wanted:
        raise WebhookError("no events given", f"name one or more of {', '.join(EVENT_TYPES)}")
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise WebhookError(
            f"unknown event types: {', '.join(unknown)}", f"use one of {', '.join(EVENT_TYPES)}"
        )
    return [e for e in EVENT_TYPES if e in wanted]


class WebhookAdmin:
    """A consumer's endpoints and deliveries. ``consumer_id`` scopes every call: another consumer's
    endpoint is "not found"."""

    def __init__(
        self,
        store: Store,
        box: Callable[[], SecretBox],
        *,
        allow_local_http: bool = False,
        allow_private: bool = False,
        grace: dt.timedelta = dt.timedelta(hours=24),
        resolve: Resolver | None = system_resolver,
        clock: Callable[[], dt.datetime] | None = None,
        publisher: WebhookPublisher | None = None,
    ) -> None:
        self.hooks = WebhookStore(store)
        self.box = box
        self.allow_local_http = allow_local_http
        self.allow_private = allow_private
        self.grace = grace
        self.resolve = resolve
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.publisher = publisher or WebhookPublisher(self.hooks, clock=self.clock)

    def _url(self, url: str) -> str:
        return check_url(
            url,
            allow_local_http=self.allow_local_http,
            allow_private=self.allow_private,
            resolve=self.resolve,
        )

    def add(
        self, consumer_id: str, url: str, events: Sequence[str], description: str | None = None
    ) -> IssuedSecret:
        """Register an endpoint; its secret is returned this once."""
        checked, wanted = self._url(url), check_events(events)
        secret = signing.new_secret()
        endpoint_id = new_id("whk")  # the ciphertext is bound to the endpoint's id
        endpoint = self.hooks.add_endpoint(
            endpoint_id=endpoint_id,
            consumer_id=consumer_id,
            url=checked,
            events=wanted,
            secret_enc=self.box().seal(endpoint_id, secret),
            description=description,
        )
        return IssuedSecret(endpoint, secret)

    def list(self, consumer_id: str) -> list[EndpointRecord]:
        return self.hooks.endpoints(consumer_id=consumer_id)

    def get(self, consumer_id: str, endpoint_id: str) -> EndpointRecord:
        """The consumer's endpoint, or :class:`WebhookNotFound`."""
        endpoint = self.hooks.endpoint(endpoint_id=endpoint_id, consumer_id=consumer_id)
        if endpoint is None:
            raise WebhookNotFound(
                f"no webhook endpoint {endpoint_id!r}", "list the endpoints (GET /v1/webhooks)"
            )
        return endpoint

    def update(
        self,
        consumer_id: str,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        description: str | None = None,
    ) -> EndpointRecord:
        self.get(consumer_id, endpoint_id)
        return self.hooks.update_endpoint(
            endpoint_id=endpoint_id,
            url=self._url(url) if url is not None else None,
            events=check_events(events) if events is not None else None,
            description=description,
        )

    def rotate_secret(
        self, consumer_id: str, endpoint_id: str, grace: dt.timedelta | None = None
    ) -> IssuedSecret:
        """A new secret, returned this once; the current one keeps signing beside it for ``grace``
        (the admin's default when None; zero: it stops at once)."""
        endpoint = self.get(consumer_id, endpoint_id)
        secret = signing.new_secret()
        box = self.box()
        until = self.clock() + (self.grace if grace is None else grace)
        updated = self.hooks.rotate_secret(
            endpoint_id=endpoint.id,
            secret_enc=box.seal(endpoint.id, secret),
            previous_secret_enc=endpoint.secret_enc,
            previous_until=until,
        )
        return IssuedSecret(updated, secret)

    def remove(self, consumer_id: str, endpoint_id: str) -> None:
        self.get(consumer_id, endpoint_id)
        self.hooks.remove_endpoint(endpoint_id=endpoint_id, now=self.clock())

    def test(self, consumer_id: str, endpoint_id: str) -> str:
        """Queue a ``webhook.test`` event to the endpoint; returns the event id."""
        self.get(consumer_id, endpoint_id)
        return self.publisher.publish_test(consumer_id, endpoint_id)

    def deliveries(
        self, consumer_id: str, endpoint_id: str, *, limit: int = 50, status: str | None = None
    ) -> builtins.list[DeliveryRecord]:
        self.get(consumer_id, endpoint_id)
        return self.hooks.deliveries(endpoint_id=endpoint_id, limit=limit, status=status)

    def replay(self, consumer_id: str, endpoint_id: str, delivery_id: str) -> DeliveryRecord:
        """Deliver the event again (same id, same body), behind the endpoint's unfinished ones."""
        self.get(consumer_id, endpoint_id)
        if self.hooks.delivery(endpoint_id=endpoint_id, delivery_id=delivery_id) is None:
            raise WebhookNotFound(
                f"no delivery {delivery_id!r} to this endpoint",
                "list them (GET /v1/webhooks/{id}/deliveries)",
            )
        new = self.hooks.replay(delivery_id=delivery_id, now=self.clock())
        if self.publisher.wake is not None:
            self.publisher.wake()
        record = self.hooks.delivery(endpoint_id=endpoint_id, delivery_id=new)
        assert record is not None
        return record


class WebhookNotFound(WebhookError):
    """No such endpoint or delivery for this consumer."""
