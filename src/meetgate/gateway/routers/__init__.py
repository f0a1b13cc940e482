"""The gateway's routes, one router per resource, included by :func:`meetgate.gateway.app.create_app`.

- :mod:`.meetings`: ``/v1/meetings`` (the third-party apps' API, authenticated by API key);
- :mod:`.artifacts`: ``/v1/meetings/{id}/attendance``, ``/transcripts``, ``/recordings`` (what it produced);
- :mod:`.webhooks`: ``/v1/webhooks`` (the consumer's own webhook endpoints and deliveries);
- :mod:`.notifications`: ``/graph/notifications`` and ``/graph/lifecycle`` (Graph's, public);
- :mod:`.operations`: ``/healthz``, ``/readyz``, ``/metrics``;
- :mod:`.docs`: ``/docs`` (Swagger UI, with a page policy of its own);
- :mod:`.admin`: ``/admin/dashboard`` and ``/admin/dashboard.json`` (admin key; not in OpenAPI).

Routes take what they need through :mod:`meetgate.gateway.deps`.
"""

from fastapi import APIRouter

from meetgate.gateway.routers import admin, artifacts, docs, meetings, notifications, operations, webhooks

#: every router, in the order ``create_app`` includes them: the order of the paths in ``/openapi.json``
ROUTERS: tuple[APIRouter, ...] = (
    meetings.router,
    artifacts.router,
    webhooks.router,
    notifications.router,
    docs.router,
    operations.router,
    admin.router,
)
