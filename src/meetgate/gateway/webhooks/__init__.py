"""Signed webhook deliveries to consumers: endpoints, events, signing, the delivery worker.

- :mod:`.signing`: the ``Meetgate-Signature`` header (HMAC-SHA256 over ``f"{t}.{body}"``) and its check;
- :mod:`.secret_box`: webhook secrets encrypted at rest (they must be recoverable to sign);
- :mod:`.urls`: which endpoint URLs are allowed (https; no private targets unless allowed);
- :mod:`.events`: the event types and :func:`~.events.WebhookPublisher.publish_event`;
- :mod:`.manage`: registering, changing, testing and removing endpoints, listing and replaying deliveries;
- :mod:`.worker`: the delivery worker (an asyncio task in the gateway process).
"""
