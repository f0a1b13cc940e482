"""How fast to call Graph: an adaptive limiter that finds the service's limit and stays just under it.

Graph throttles per app and tenant (429 with ``Retry-After``) without saying what the limit is. A
job that sends too slowly wastes hours; one that sends too fast provokes a storm of 429s. The
:class:`AdaptiveLimiter` sits in front of every attempt (``GraphHttp``/``AsyncGraphHttp`` take it as
``limiter=``) and adapts two things, AIMD-style:

- **concurrency window** (requests in flight): grows by one per clean response until the first
  trouble or ``slow_start_limit`` (slow start), then by one per window of clean responses; it grows
  only while it is full (a window nobody uses says nothing about the service); on a 429 or a 5xx it
  shrinks multiplicatively;
- **pacing rate** (requests started per second): unknown (unpaced) until the first 429. Then it is
  set from the rate Graph was *accepting* just before (measured over the last second) times
  ``decrease``, and grows back: quickly towards the last known limit (the ceiling), then slowly past
  it (``probe`` × the ceiling per second) to find out whether the limit went up. Each 429 takes the
  ceiling to what was measured and cuts sharply again.

A 429 also stops *every* sender until its ``Retry-After`` has passed (one 429 says the whole app is
over its budget, not just that request). Only the first 429 of requests sent after a decrease
decreases again (the others were already on their way), as TCP does per window.

The window is per process; the pacing slots, the pause and the learnt rate live in a
:class:`LimiterStore`: in memory by default, or :class:`RedisLimiterStore` so several processes
(gateway replicas, a bulk job next to the gateway) share one budget for the same app.

The core (:meth:`AdaptiveLimiter.try_acquire`, :meth:`AdaptiveLimiter.release`) is driven by an
injectable clock and never sleeps; :meth:`acquire` / :meth:`acquire_async` wait for it, first come
first served: senders that must wait queue in arrival order, only the first of them asks the core
again, and a release wakes it (nobody polls); a sender that finds nobody waiting takes the fast path
(one lock, as :meth:`try_acquire`).
"""

from __future__ import annotations

import asyncio
import collections
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

#: How long an unparseable or missing Retry-After on a 429 pauses everyone, seconds.
DEFAULT_THROTTLE_PAUSE = 1.0
#: Statuses that say "the service is struggling" (5xx) and shrink the window.
_SERVER_TROUBLE = frozenset({500, 502, 503, 504})
#: The window over which the accepted rate is measured, seconds.
_MEASURE_SECONDS = 1.0
#: How often a limiter on a shared store looks at the rate other processes learnt, seconds.
_SYNC_SECONDS = 0.25
#: What :meth:`AdaptiveLimiter.try_acquire` answers when the window is full (a release ends that
#: wait; :meth:`AdaptiveLimiter.acquire` and ``acquire_async`` are woken by it instead of polling).
_POLL_SECONDS = 0.005
#: The core's internal answer for "the window is full" (never returned to callers).
_WINDOW_FULL = -1.0


class LimiterStore(Protocol):
    """Where the pacing slots, the pause and the learnt rate live (shared by every user of a key)."""

    def reserve(self, interval: float, now: float) -> float:
        """Take the next send slot ``interval`` seconds after the previous one: 0 when taken now,
        else the seconds to wait before asking again."""
        ...

    def pause(self, seconds: float, now: float) -> None:
        """Nobody sends for ``seconds`` (extends, never shortens, a running pause)."""
        ...

    def paused_for(self, now: float) -> float:
        """Seconds left of the current pause (0 when none)."""
        ...

    def publish_rate(self, rate: float | None, ceiling: float | None) -> None: ...

    def shared_rate(self) -> tuple[float | None, float | None]:
        """(rate, ceiling) last published by any user of the store."""
        ...


class InMemoryLimiterStore:
    """The store for one process (thread-safe through the limiter's lock)."""

    def __init__(self) -> None:
        self.next_slot = 0.0
        self.pause_until = 0.0
        self.rate: float | None = None
        self.ceiling: float | None = None

    def reserve(self, interval: float, now: float) -> float:
        if self.next_slot > now + 1e-9:
            return self.next_slot - now
        self.next_slot = max(self.next_slot, now) + interval
        return 0.0

    def pause(self, seconds: float, now: float) -> None:
        self.pause_until = max(self.pause_until, now + seconds)

    def paused_for(self, now: float) -> float:
        return max(0.0, self.pause_until - now)

    def publish_rate(self, rate: float | None, ceiling: float | None) -> None:
        self.rate, self.ceiling = rate, ceiling

    def shared_rate(self) -> tuple[float | None, float | None]:
        return self.rate, self.ceiling


_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause > now then return tostring(pause - now) end
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot > now + 0.000001 then return tostring(slot - now) end
local nxt = math.max(slot, now) + interval
redis.call('SET', KEYS[1], tostring(nxt), 'PX', math.ceil(interval * 1000) + 60000)
return '0'
"""
_PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > cur then
  redis.call('SET', KEYS[1], tostring(untl), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return tostring(math.max(0, math.max(untl, cur) - now))
"""
_PAUSED_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
return tostring(math.max(0, cur - now))
"""


class RedisLimiterStore:
    """The store in Redis, so several processes calling Graph as the same app share one budget.

    Times come from the Redis server (``TIME``), so the processes' clocks need not agree. ``client``
    is a ``redis.Redis`` (sync); build one with :meth:`from_url`. Keys live under
    ``meetgate:graph-limiter:{key}:`` and expire on their own when unused.
    """

    def __init__(self, client: Any, key: str) -> None:
        self._redis = client
        self._prefix = f"meetgate:graph-limiter:{key}:"
        self._reserve = client.register_script(_RESERVE_LUA)
        self._pause = client.register_script(_PAUSE_LUA)
        self._paused = client.register_script(_PAUSED_LUA)

    @classmethod
    def from_url(cls, url: str, key: str) -> RedisLimiterStore:
        import redis

        return cls(redis.Redis.from_url(url), key)

    def __repr__(self) -> str:
        return f"RedisLimiterStore(prefix={self._prefix!r})"

    def reserve(self, interval: float, now: float) -> float:
        keys = [self._prefix + "slot", self._prefix + "pause"]
        return float(self._reserve(keys=keys, args=[repr(interval)]))

    def pause(self, seconds: float, now: float) -> None:
        self._pause(keys=[self._prefix + "pause"], args=[repr(seconds)])

    def paused_for(self, now: float) -> float:
        return float(self._paused(keys=[self._prefix + "pause"]))

    def publish_rate(self, rate: float | None, ceiling: float | None) -> None:
        mapping = {
            "rate": "" if rate is None else repr(rate),
            "ceiling": "" if ceiling is None else repr(ceiling),
        }
        pipe = self._redis.pipeline()
        pipe.hset(self._prefix + "rate", mapping=mapping)
        pipe.expire(self._prefix + "rate", 3600)
        pipe.execute()

    def shared_rate(self) -> tuple[float | None, float | None]:
        data = self._redis.hgetall(self._prefix + "rate") or {}

        def value(name: bytes) -> float | None:
            raw = data.get(name) or data.get(name.decode())
            if raw in (None, b"", ""):
                return None
            return float(raw)

        return value(b"rate"), value(b"ceiling")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Waiter:
    """A sender in the limiter's line: a thread (an event) or a task (a future on its loop)."""

    __slots__ = ("event", "future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        self.event = threading.Event() if loop is None else None
        self.future: asyncio.Future[None] | None = None

    def arm(self) -> None:
        """Ready to be woken (called with the limiter's lock held, before the lock is let go)."""
        if self.event is not None:
            self.event.clear()
        else:
            assert self.loop is not None
            self.future = self.loop.create_future()

    def wake(self) -> None:
        """Wake it (called with the limiter's lock held, from any thread)."""
        if self.event is not None:
            self.event.set()
            return
        future = self.future
        if future is None or future.done():
            return
        try:
            here = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            here = False
        if here:
            future.set_result(None)
        else:
            assert self.loop is not None
            self.loop.call_soon_threadsafe(_resolve, future)


@dataclass(frozen=True)
class Permit:
    """One granted attempt; hand it back to :meth:`AdaptiveLimiter.release`."""

    sent_at: float
    generation: int


@dataclass
class LimiterStats:
    """Counters since the limiter was made (for progress lines, benchmarks and metrics)."""

    attempts: int = 0
    ok: int = 0
    throttled: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    decreases: int = 0
    #: total seconds senders spent waiting for the limiter
    waited_seconds: float = 0.0


@dataclass
class LimiterSnapshot:
    concurrency: float
    in_flight: int
    rate: float | None
    ceiling: float | None
    paused_for: float
    stats: LimiterStats = field(default_factory=LimiterStats)


class AdaptiveLimiter:
    """Adaptive concurrency window + pacing rate in front of Graph calls (see the module docstring).

    ``adaptive=False`` makes it a plain fixed-concurrency semaphore (``concurrency`` in flight, no
    pacing, no pause): the baseline the benchmark compares against.
    """

    def __init__(
        self,
        *,
        concurrency: float = 4,
        min_concurrency: int = 1,
        max_concurrency: int = 64,
        rate: float | None = None,
        adaptive: bool = True,
        decrease: float = 0.7,
        recover: float = 0.6,
        probe: float = 0.006,
        headroom: float = 0.97,
        slow_start_limit: int = 8,
        store: LimiterStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= min_concurrency <= max_concurrency:
            raise ValueError("need 1 <= min_concurrency <= max_concurrency")
        if not 0 < decrease < 1:
            raise ValueError("decrease must be between 0 and 1")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.min_concurrency = min_concurrency
        self.max_concurrency = max_concurrency
        self.window = float(min(max(concurrency, min_concurrency), max_concurrency))
        self.adaptive = adaptive
        self.decrease = decrease
        self.recover = recover
        self.probe = probe
        self.headroom = headroom
        self.slow_start_limit = slow_start_limit
        self.store: LimiterStore = store or InMemoryLimiterStore()
        self.clock = clock
        self.stats = LimiterStats()
        self.in_flight = 0
        self._slow_start = adaptive
        #: when the window was last full (an acquire took its last place, or found none)
        self._filled_at = -math.inf
        self._lock = threading.Lock()
        #: senders waiting for a permit, in arrival order (only the first one asks the core)
        self._line: collections.deque[_Waiter] = collections.deque()
        self._generation = 0
        self._last_decrease = -math.inf
        self._ok_times: collections.deque[float] = collections.deque()
        self._sent_times: collections.deque[float] = collections.deque()
        self._rate_updated = clock()
        self._rate: float | None = rate
        self._ceiling: float | None = None
        #: the store is shared with other processes: adopt their learnt rate now and then
        self._shared = not isinstance(self.store, InMemoryLimiterStore)
        self._synced = -math.inf
        self._min_latency = math.inf
        self._latency: float | None = None
        if rate is not None:
            self.store.publish_rate(rate, None)

    def __repr__(self) -> str:
        return (
            f"AdaptiveLimiter(window={self.window:.1f}, rate={self._rate}, adaptive={self.adaptive}, "
            f"store={type(self.store).__name__})"
        )

    # -- the core: decisions at a given time, no waiting ------------------------------------------

    @property
    def rate(self) -> float | None:
        return self._rate

    @property
    def ceiling(self) -> float | None:
        return self._ceiling

    def _sync_shared(self) -> None:
        rate, ceiling = self.store.shared_rate()
        if rate is not None and (self._rate is None or rate < self._rate):
            # another process learnt a lower limit: adopt it
            self._rate, self._ceiling = rate, ceiling

    def try_acquire(self, now: float | None = None) -> Permit | float:
        """A :class:`Permit` when an attempt may start now, else the seconds to wait first
        (a short poll interval while the window is full). It does not queue: :meth:`acquire` and
        :meth:`acquire_async` serve waiting senders in arrival order."""
        now = self.clock() if now is None else now
        with self._lock:
            result = self._attempt(now)
        return _POLL_SECONDS if result is _WINDOW_FULL else result

    def _attempt(self, now: float) -> Permit | float:
        """The decision (lock held): a permit, the seconds to wait, or ``_WINDOW_FULL``."""
        if self.adaptive and self._shared and now - self._synced >= _SYNC_SECONDS:
            self._synced = now
            self._sync_shared()
        if self.adaptive:
            paused = self.store.paused_for(now)
            if paused > 0:
                return paused
        if self.in_flight >= int(self.window):
            self._filled_at = now
            return _WINDOW_FULL
        if self.adaptive and self._rate is not None:
            wait = self.store.reserve(1.0 / self._rate, now)
            if wait > 0:
                return wait
        self.in_flight += 1
        if self.in_flight >= int(self.window):
            self._filled_at = now
        self.stats.attempts += 1
        self._sent_times.append(now)
        return Permit(now, self._generation)

    def release(
        self,
        permit: Permit,
        outcome: int | BaseException,
        retry_after: float | None = None,
        now: float | None = None,
    ) -> None:
        """Report how the attempt ended: its HTTP status (or the exception) and ``Retry-After``."""
        now = self.clock() if now is None else now
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
            self._trim(now)
            if isinstance(outcome, BaseException):
                self.stats.transport_errors += 1
                self._trouble(permit, now, throttled=False)
            elif outcome == 429:
                self.stats.throttled += 1
                if self.adaptive:
                    pause = DEFAULT_THROTTLE_PAUSE if retry_after is None else max(0.0, retry_after)
                    self.store.pause(pause, now)
                self._trouble(permit, now, throttled=True)
            elif outcome in _SERVER_TROUBLE:
                self.stats.server_errors += 1
                if self.adaptive and retry_after:
                    self.store.pause(retry_after, now)
                self._trouble(permit, now, throttled=False)
            else:
                # any answer that is not "slow down" (2xx, 4xx) is clean as far as the rate goes
                self.stats.ok += 1
                self._ok_times.append(now)
                self._observe_latency(now - permit.sent_at)
                self._clean(now, permit.sent_at)
            if self._line:
                self._line[0].wake()  # the first in line asks again; it passes the turn on

    def _trim(self, now: float) -> None:
        horizon = now - _MEASURE_SECONDS
        while self._ok_times and self._ok_times[0] < horizon:
            self._ok_times.popleft()
        while self._sent_times and self._sent_times[0] < horizon:
            self._sent_times.popleft()

    def accepted_rate(self) -> float:
        """Clean answers per second over the last second."""
        return len(self._ok_times) / _MEASURE_SECONDS

    def _observe_latency(self, latency: float) -> None:
        latency = max(latency, 1e-4)
        self._min_latency = min(self._min_latency, latency)
        self._latency = latency if self._latency is None else 0.9 * self._latency + 0.1 * latency

    def queueing(self) -> bool:
        """True when answers take much longer than the fastest seen: requests are queueing at the
        service, so more of them in flight would only add latency (and a bigger 429 burst later)."""
        if self._latency is None or math.isinf(self._min_latency):
            return False
        return self._latency > 2.0 * self._min_latency + 0.05

    def _clean(self, now: float, sent_at: float) -> None:
        if not self.adaptive:
            return
        if self.queueing():
            pass  # no more concurrency: it would only queue
        elif self._slow_start and self.window < self.slow_start_limit:
            if self._filled_at >= sent_at:  # the window was the limit while this one was out
                self.window = min(self.max_concurrency, self.window + 1)
        elif self.in_flight + 1 >= int(self.window):
            # additive increase: about one more per window of clean answers, when the window is the limit
            self.window = min(self.max_concurrency, self.window + 1.0 / self.window)
        self._sync_shared()
        if self._rate is None:
            return
        elapsed = max(0.0, now - self._rate_updated)
        self._rate_updated = now
        rate = self._rate
        target = self._ceiling * self.headroom if self._ceiling else None
        if target is not None and rate < target:
            rate += (target - rate) * (1 - math.exp(-self.recover * elapsed))
        rate += self.probe * (self._ceiling or rate) * elapsed
        # never probe far beyond what is really being sent (a latency-bound job must not inflate it)
        sent = len(self._sent_times) / _MEASURE_SECONDS
        rate = min(rate, max(self._rate, sent * 1.5 + 1.0))
        self._rate = rate
        if self._ceiling is not None and rate * self.headroom > self._ceiling:
            self._ceiling = rate * self.headroom  # clean at this rate: the limit is at least about here
        self.store.publish_rate(rate, self._ceiling)

    def _trouble(self, permit: Permit, now: float, *, throttled: bool) -> None:
        if not self.adaptive:
            return
        self._slow_start = False
        if permit.generation < self._generation:
            return  # sent before the last decrease: that decrease already answered it
        self._generation += 1
        self._last_decrease = now
        self.stats.decreases += 1
        self.window = max(float(self.min_concurrency), self.window * (self.decrease if throttled else 0.5))
        self._sync_shared()
        if throttled:
            # before any pacing, the limit is about what Graph accepted over the last second (a pushed
            # throttle accepts exactly its limit); when probing past the known ceiling, the refused
            # pace; when refused while still below it, the ceiling was too high: what was accepted
            measured = self.accepted_rate()
            if self._rate is None or self._ceiling is None:
                ceiling = max(measured, self._rate or 0.0)
            elif self._rate >= self._ceiling * self.headroom:
                ceiling = self._rate
            else:
                ceiling = max(self._rate, min(measured, self._ceiling))
            if ceiling <= 0:
                ceiling = max(1.0, float(len(self._sent_times)))
            self._ceiling = ceiling
            self._rate = max(0.1, ceiling * self.decrease)
        elif self._rate is not None:
            self._rate = max(0.1, self._rate * 0.9)
        self._rate_updated = now
        self.store.publish_rate(self._rate, self._ceiling)

    def paused_for(self) -> float:
        """Seconds left of the pause Graph asked for (a 429's ``Retry-After``; shared by every
        process on the same store); 0 when not paused, always 0 for a fixed limiter."""
        return self.store.paused_for(self.clock()) if self.adaptive else 0.0

    def snapshot(self) -> LimiterSnapshot:
        with self._lock:
            return LimiterSnapshot(
                concurrency=self.window,
                in_flight=self.in_flight,
                rate=self._rate,
                ceiling=self._ceiling,
                paused_for=self.paused_for(),
                stats=LimiterStats(**vars(self.stats)),
            )

    # -- waiting -------------------------------------------------------------------------------------

    def _fast(self) -> Permit | None:
        """The fast path: a permit at once when nobody is waiting (no waiter is made for it)."""
        with self._lock:
            if not self._line:
                result = self._attempt(self.clock())
                if isinstance(result, Permit):
                    return result
        return None

    def _join(self, waiter: _Waiter) -> None:
        with self._lock:
            self._line.append(waiter)

    def _turn(self, waiter: _Waiter) -> Permit | float | None:
        """For a sender in line: a permit (it leaves the line), the seconds to wait, or None when
        it must wait to be woken (not first in line, or the window is full); armed under the lock,
        so a release that comes before the wait still wakes it."""
        with self._lock:
            if self._line[0] is waiter:
                result = self._attempt(self.clock())
                if isinstance(result, Permit):
                    self._leave(waiter)
                    return result
                if result is not _WINDOW_FULL:
                    return result
            waiter.arm()
            return None

    def _leave(self, waiter: _Waiter) -> None:
        """Take ``waiter`` out of the line (lock held) and let the next one ask."""
        first = bool(self._line) and self._line[0] is waiter
        try:
            self._line.remove(waiter)
        except ValueError:
            return
        if first and self._line:
            self._line[0].wake()

    def _give_up(self, waiter: _Waiter) -> None:
        with self._lock:
            self._leave(waiter)

    def _granted(self, permit: Permit, started: float) -> Permit:
        self.stats.waited_seconds += permit.sent_at - started
        return permit

    def acquire(self, sleep: Callable[[float], None] | None = None) -> Permit:
        """Wait (blocking) until an attempt may start; waiting threads are served in arrival order."""
        started = self.clock()
        permit = self._fast()
        if permit is not None:
            return self._granted(permit, started)
        waiter = _Waiter(None)
        self._join(waiter)
        assert waiter.event is not None
        try:
            while True:
                result = self._turn(waiter)
                if isinstance(result, Permit):
                    return self._granted(result, started)
                if result is None:
                    waiter.event.wait()
                elif sleep is not None:
                    sleep(result)
                else:
                    time.sleep(result)
        except BaseException:
            self._give_up(waiter)
            raise

    async def acquire_async(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Permit:
        """Wait (without blocking the event loop) until an attempt may start; waiting tasks are
        served in arrival order."""
        started = self.clock()
        permit = self._fast()
        if permit is not None:
            return self._granted(permit, started)
        waiter = _Waiter(asyncio.get_running_loop())
        self._join(waiter)
        try:
            while True:
                result = self._turn(waiter)
                if isinstance(result, Permit):
                    return self._granted(result, started)
                if result is None:
                    assert waiter.future is not None
                    await waiter.future
                else:
                    await sleep(result)
        except BaseException:
            self._give_up(waiter)
            raise


def fixed_concurrency(n: int) -> AdaptiveLimiter:
    """A limiter that only caps requests in flight at ``n`` (no pacing, no shared pause)."""
    return AdaptiveLimiter(concurrency=n, min_concurrency=n, max_concurrency=n, adaptive=False)
