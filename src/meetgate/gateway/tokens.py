"""Graph access tokens shared by every gateway replica through Redis.

Without it each replica asks Entra for its own token; with it one replica fetches (under a short
Redis lock) and the others reuse that token until shortly before it expires. Tokens in Redis are
secrets: point ``redis_url`` only at a Redis that is as protected as the gateway itself.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from meetgate.graph.auth import AccessToken, TokenSource

#: a shared token is reused only while it has at least this many seconds left
MIN_SECONDS_LEFT = 300.0


class RedisSharedTokens:
    """A :class:`~meetgate.graph.auth.TokenSource` that shares ``inner``'s tokens through Redis."""

    def __init__(
        self,
        inner: TokenSource,
        redis_url: str,
        *,
        key: str,
        lock_seconds: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        redis_client: Any = None,
    ) -> None:
        import redis

        self._inner = inner
        self._redis: Any = redis_client or redis.Redis.from_url(redis_url)
        self._key = key
        self._lock_key = key + ":lock"
        self._lock_seconds = lock_seconds
        self._sleep = sleep
        self._local: AccessToken | None = None
        self._mutex = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisSharedTokens(key={self._key!r}, <tokens hidden>)"

    def peek(self) -> AccessToken | None:
        token = self._local
        if token is not None and token.seconds_left() > MIN_SECONDS_LEFT:
            return token
        return None

    def _read_shared(self, rejected: str | None) -> AccessToken | None:
        raw = self._redis.get(self._key)
        if not raw:
            return None
        data = json.loads(raw)
        token = AccessToken(
            token=data["token"],
            expires_at=dt.datetime.fromtimestamp(data["expires_on"], dt.UTC),
            lifetime=data.get("lifetime", 3600.0),
            source="shared",
        )
        if token.token == rejected or token.seconds_left() <= MIN_SECONDS_LEFT:
            return None
        return token

    def _publish(self, token: AccessToken) -> None:
        ttl = int(token.seconds_left() - MIN_SECONDS_LEFT)
        if ttl > 0:
            payload = {"token": token.token, "expires_on": token.expires_on, "lifetime": token.lifetime}
            self._redis.set(self._key, json.dumps(payload), ex=ttl)

    def get_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> AccessToken:
        with self._mutex:
            if not force_refresh and (local := self.peek()) is not None:
                return local
            deadline = time.monotonic() + self._lock_seconds
            while True:
                shared = self._read_shared(rejected)
                if shared is not None and not (force_refresh and rejected is None):
                    self._local = shared
                    return shared
                if self._redis.set(self._lock_key, "1", nx=True, px=int(self._lock_seconds * 1000)):
                    try:
                        token = self._inner.get_token(force_refresh=force_refresh, rejected=rejected)
                        self._publish(token)
                    finally:
                        self._redis.delete(self._lock_key)
                    self._local = token
                    return token
                if time.monotonic() > deadline:  # the fetching replica died: fetch ourselves
                    token = self._inner.get_token(force_refresh=force_refresh, rejected=rejected)
                    self._local = token
                    return token
                self._sleep(0.05)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()
        self._redis.close()
