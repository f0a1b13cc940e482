"""Rate limits (GCRA) and daily quotas, in-process or shared by all replicas through Redis.

One algorithm serves both the consumer/organizer limits (``max_wait=0``: refuse at once with a
``Retry-After``) and the client-side limit toward Graph (``max_wait>0``: wait for a slot, refuse only
when the wait would be too long). A limit of N per minute lets N through at once, then N per minute.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Slot:
    allowed: bool
    #: allowed: seconds to wait before going ahead (0 = now); refused: seconds until a retry may pass
    wait: float


@dataclass(frozen=True)
class QuotaUse:
    allowed: bool
    used: int
    limit: int


class Limiter(Protocol):
    async def acquire(self, key: str, *, per_second: float, burst: int, max_wait: float = 0.0) -> Slot: ...

    async def consume(self, key: str, *, limit: int) -> QuotaUse: ...

    async def refund(self, key: str) -> None: ...

    async def close(self) -> None: ...


def day_key(key: str, now: dt.datetime | None = None) -> str:
    day = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d")
    return f"{key}:{day}"


def seconds_until_quota_reset(now: dt.datetime | None = None) -> int:
    """Whole seconds until the next UTC midnight, when daily quotas start again (at least 1)."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return max(1, math.ceil((midnight - now).total_seconds()))


def gcra(tat: float, now: float, *, per_second: float, burst: int, max_wait: float) -> tuple[Slot, float]:
    """Pure GCRA step: (decision, new theoretical arrival time)."""
    interval = 1.0 / per_second
    start = max(tat, now)
    new_tat = start + interval
    wait = new_tat - burst * interval - now
    if wait > max_wait:
        return Slot(False, wait - max_wait if max_wait else wait), tat
    return Slot(True, max(wait, 0.0)), new_tat


class InMemoryLimiter:
    """Limits held by this process (one replica)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, today: Callable[[], dt.datetime] | None = None
    ) -> None:
        self._clock = clock
        self._today = today
        self._tat: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    async def acquire(self, key: str, *, per_second: float, burst: int, max_wait: float = 0.0) -> Slot:
        slot, new_tat = gcra(
            self._tat.get(key, 0.0), self._clock(), per_second=per_second, burst=burst, max_wait=max_wait
        )
        self._tat[key] = new_tat
        return slot

    async def consume(self, key: str, *, limit: int) -> QuotaUse:
        k = day_key(key, self._today() if self._today else None)
        used = self._counts.get(k, 0)
        if used >= limit:
            return QuotaUse(False, used, limit)
        self._counts[k] = used + 1
        return QuotaUse(True, used + 1, limit)

    async def refund(self, key: str) -> None:
        k = day_key(key, self._today() if self._today else None)
        if self._counts.get(k, 0) > 0:
            self._counts[k] -= 1

    async def close(self) -> None:
        return None


_GCRA_LUA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - burst * interval - now
if wait > max_wait then
  return {0, tostring(wait - max_wait)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
if wait < 0 then wait = 0 end
return {1, tostring(wait)}
"""

_QUOTA_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], 90000) end
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return {0, n - 1}
end
return {1, n}
"""


class RedisLimiter:
    """Limits shared by every replica that uses the same Redis and key prefix."""

    def __init__(self, url: str, prefix: str = "meetgate:") -> None:
        import redis.asyncio as aredis

        self._redis: Any = aredis.Redis.from_url(url)
        self._prefix = prefix
        self._gcra = self._redis.register_script(_GCRA_LUA)
        self._quota = self._redis.register_script(_QUOTA_LUA)

    async def acquire(self, key: str, *, per_second: float, burst: int, max_wait: float = 0.0) -> Slot:
        ok, wait = await self._gcra(
            keys=[f"{self._prefix}rl:{key}"], args=[1.0 / per_second, burst, max_wait]
        )
        return Slot(bool(int(ok)), float(wait))

    async def consume(self, key: str, *, limit: int) -> QuotaUse:
        ok, used = await self._quota(keys=[f"{self._prefix}q:{day_key(key)}"], args=[limit])
        return QuotaUse(bool(int(ok)), int(used), limit)

    async def refund(self, key: str) -> None:
        await self._redis.decr(f"{self._prefix}q:{day_key(key)}")

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
