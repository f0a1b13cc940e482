"""Changes to the sandbox's resources, published for change notifications.

Route modules that change something a Graph subscription can watch (a meeting held and ended, an
attendance report, a transcript or recording made available, a calendar event created, changed or
deleted) publish a :class:`Change` on the server's :class:`NotificationBus`
(``runtime.notifications``); the subscriptions module listens and delivers to the matching
subscriptions. Publishing never fails the request that made the change: a listener's error is logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Change", "NotificationBus"]

log = logging.getLogger("meetgate_sandbox.notifications")


@dataclass(frozen=True)
class Change:
    """One change, as a change notification describes it.

    ``topics`` are the subscription ``resource`` strings the change belongs to, written as Graph's
    docs write them and matched case-insensitively (e.g. ``communications/onlineMeetings/getAllTranscripts``,
    ``users/{organizerId}/onlineMeetings/getAllTranscripts``, ``communications/onlineMeetings/{meetingId}/transcripts``,
    ``users/{userId}/events``). ``resource`` is the changed item's path as the notification's ``resource``
    shows it (``communications/onlineMeetings('MSo…')/transcripts('MSMj…')``); ``resource_data`` the item
    as ``GET`` answers it (what a rich notification encrypts).
    """

    tenant_id: str
    change_type: str  # created | updated | deleted
    resource: str
    odata_type: str
    resource_data: Mapping[str, Any]
    topics: tuple[str, ...]
    #: the app ids whose access the change needs (e.g. the Teams policy holders), None: any subscriber
    organizer_id: str | None = None
    meeting_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


Listener = Callable[[Change], None]


class NotificationBus:
    """Listeners of the server's changes (thread-safe; listeners run in the publisher's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def publish(self, change: Change) -> None:
        """Hand ``change`` to every listener; a listener that fails is logged, never raised."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(change)
            except Exception:  # a notification problem must not fail the change itself
                log.exception("a change notification listener failed for %s", change.resource)
