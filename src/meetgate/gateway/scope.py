"""Policy scopes the gateway can be given, plus a cache so request-time checks stay cheap."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from meetgate.gateway.ports import PolicyScope


class StaticPolicyScope:
    """A fixed set of organizers (from a policy file, or tests)."""

    def __init__(self, organizers: Iterable[str]) -> None:
        self._organizers = frozenset(o.strip().lower() for o in organizers if o.strip())

    def contains(self, organizer: str) -> bool:
        return organizer.strip().lower() in self._organizers

    def organizers(self) -> frozenset[str]:
        return self._organizers


class CachedPolicyScope:
    """Remembers answers of another scope for ``ttl_seconds`` (policy changes take minutes anyway)."""

    def __init__(
        self, inner: PolicyScope, ttl_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._inner = inner
        self._ttl = ttl_seconds
        self._clock = clock
        self._answers: dict[str, tuple[float, bool]] = {}
        self._all: tuple[float, frozenset[str]] | None = None
        self._lock = threading.Lock()

    def cached(self, organizer: str) -> bool | None:
        """The remembered answer, or None when it must be asked (without blocking)."""
        hit = self._answers.get(organizer.strip().lower())
        if hit is not None and self._clock() - hit[0] < self._ttl:
            return hit[1]
        return None

    def contains(self, organizer: str) -> bool:
        key = organizer.strip().lower()
        now = self._clock()
        with self._lock:
            hit = self._answers.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        answer = self._inner.contains(key)
        with self._lock:
            self._answers[key] = (now, answer)
        return answer

    def organizers(self) -> frozenset[str]:
        now = self._clock()
        if self._all is not None and now - self._all[0] < self._ttl:
            return self._all[1]
        value = self._inner.organizers()
        self._all = (now, value)
        return value
