"""What the gateway runs for Graph change notifications: the receiving side (store first, process
after), the subscription manager and the poller, and one background loop that keeps them going."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meetgate.gateway.logs import LOGGER_NAME
from meetgate.gateway.notifications.crypto import EncryptionKey, TokenValidator
from meetgate.gateway.notifications.poller import ArtifactPoller
from meetgate.gateway.notifications.processor import NotificationProcessor
from meetgate.gateway.notifications.reader import ArtifactReader
from meetgate.gateway.notifications.subscriptions import GraphCalls, SubscriptionManager
from meetgate.gateway.webhooks.events import WebhookPublisher
from meetgate.gateway.webhooks.secret_box import SecretBox
from meetgate.store.notifications import NotificationStore

log = logging.getLogger(LOGGER_NAME)

#: how the gateway learns about meeting artifacts
MODES = ("off", "push", "poll")


@dataclass(frozen=True)
class NotificationConfig:
    """Where Graph reaches the gateway and whom it signs tokens for."""

    #: ``push`` (Graph subscriptions) or ``poll`` (read after each meeting's end)
    mode: str
    #: the gateway's public base URL (``push``): ``{base}/graph/notifications`` and ``/graph/lifecycle``
    public_url: str | None
    tenant_id: str
    app_id: str
    #: the authority's signing keys (``{authority}/common/discovery/v2.0/keys``)
    keys_url: str
    #: where the encryption certificate is kept (0700)
    key_dir: Path
    interval_seconds: float = 60.0
    #: run the rounds in the background (False: the caller runs :meth:`NotificationService.tick`)
    background: bool = True


class NotificationService:
    """The gateway's notification machinery (``app.state.notifications``)."""

    def __init__(
        self,
        config: NotificationConfig,
        store: NotificationStore,
        graph: GraphCalls,
        publisher: WebhookPublisher,
        box: Callable[[], SecretBox],
        fetch_keys: Callable[[str], Mapping[str, Any]],
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if config.mode not in MODES:
            raise ValueError(f"notifications mode must be one of {', '.join(MODES)}")
        self.config = config
        self.store = store
        self.key = EncryptionKey.load_or_create(config.key_dir)
        base = (config.public_url or "").rstrip("/")
        self.manager = SubscriptionManager(
            store,
            graph,
            self.key,
            box,
            notification_url=f"{base}/graph/notifications",
            lifecycle_url=f"{base}/graph/lifecycle",
            clock=clock,
        )
        self.reader = ArtifactReader(graph)
        tokens = TokenValidator(
            config.keys_url, tenant_id=config.tenant_id, app_id=config.app_id, fetch_keys=fetch_keys
        )
        self.processor = NotificationProcessor(store, self.manager, self.key, tokens, publisher, self.reader)
        self.poller = ArtifactPoller(store, self.reader, publisher, clock=clock)
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> None:
        """One round: subscriptions ensured (push) or ended meetings polled (poll), and anything
        stored but not processed yet (a restart's leftovers) processed."""
        if self.config.mode == "push":
            await self.manager.ensure()
        elif self.config.mode == "poll":
            await self.poller.run_once()
        await self.processor.process_pending()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # keep going: the next round tries again
                log.warning("graph notifications round failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.config.interval_seconds)

    def start(self) -> None:
        """Run the background loop (the gateway's lifespan calls this)."""
        if self.config.mode != "off" and self.config.background and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
