"""The adaptive limiter: its decisions on a fake clock, a simulated throttled service, and the Redis store."""

from __future__ import annotations

import asyncio
import heapq
import random
import uuid

import httpx
import pytest

from meetgate.graph.limiter import (
    AdaptiveLimiter,
    InMemoryLimiterStore,
    Permit,
    RedisLimiterStore,
    fixed_concurrency,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _permit(limiter: AdaptiveLimiter) -> Permit:
    result = limiter.try_acquire()
    assert isinstance(result, Permit), result
    return result


def test_slow_start_grows_the_window_by_one_per_clean_answer():
    clock = Clock()
    limiter = AdaptiveLimiter(concurrency=2, max_concurrency=10, clock=clock)
    permits = [_permit(limiter), _permit(limiter)]
    assert not isinstance(limiter.try_acquire(), Permit)  # window full
    for permit in permits:
        clock.now += 0.01
        limiter.release(permit, 201)
    assert limiter.window == 4
    assert limiter.rate is None  # unpaced until Graph says "too fast"


def test_slow_start_grows_only_a_window_that_is_used():
    clock = Clock()
    limiter = AdaptiveLimiter(concurrency=4, max_concurrency=256, slow_start_limit=256, clock=clock)
    for _ in range(50):  # one call at a time: the window is never the limit
        permit = _permit(limiter)
        clock.now += 0.2
        limiter.release(permit, 201)
    assert limiter.window == 4
    for _ in range(4):  # a burst that keeps it full doubles it per round trip
        permits = [_permit(limiter) for _ in range(int(limiter.window))]
        assert not isinstance(limiter.try_acquire(), Permit)
        clock.now += 0.2
        for permit in permits:
            limiter.release(permit, 201)
    assert limiter.window == 64


def test_429_pauses_everyone_for_retry_after_and_sets_a_rate_below_what_was_accepted():
    clock = Clock()
    limiter = AdaptiveLimiter(concurrency=8, clock=clock)
    for _ in range(20):  # 20 clean answers within the last second
        clock.now += 0.04
        limiter.release(_permit(limiter), 201)
    throttled = _permit(limiter)
    clock.now += 0.01
    limiter.release(throttled, 429, retry_after=2.0)
    wait = limiter.try_acquire()
    assert wait == pytest.approx(2.0)
    assert limiter.ceiling == pytest.approx(20.0)
    assert limiter.rate == pytest.approx(20.0 * limiter.decrease)
    clock.now += 2.0
    first = limiter.try_acquire()
    assert isinstance(first, Permit)
    # paced: the next start is 1/rate later
    assert limiter.try_acquire() == pytest.approx(1 / limiter.rate)


def test_only_one_decrease_for_requests_sent_before_it():
    clock = Clock()
    limiter = AdaptiveLimiter(concurrency=8, clock=clock, rate=50.0)
    permits = []
    for _ in range(4):
        permits.append(_permit(limiter))
        clock.now += 0.02
    for permit in permits:
        limiter.release(permit, 429, retry_after=0.0)
    assert limiter.stats.throttled == 4
    assert limiter.stats.decreases == 1
    assert limiter.rate == pytest.approx(50.0 * limiter.decrease)
    # a request sent after the decrease that is throttled again decreases again
    clock.now += 1
    later = _permit(limiter)
    limiter.release(later, 429, retry_after=0.0)
    assert limiter.stats.decreases == 2


def test_server_errors_shrink_the_window_and_honour_retry_after():
    clock = Clock()
    limiter = AdaptiveLimiter(concurrency=16, clock=clock)
    limiter.release(_permit(limiter), 503, retry_after=1.5)
    assert limiter.window == 8
    assert limiter.try_acquire() == pytest.approx(1.5)
    limiter.release(_permit_after(limiter, clock, 1.5), httpx.ConnectError("boom"))
    assert limiter.window == 4
    assert limiter.stats.server_errors == 1 and limiter.stats.transport_errors == 1


def _permit_after(limiter: AdaptiveLimiter, clock: Clock, seconds: float) -> Permit:
    clock.now += seconds
    return _permit(limiter)


def test_rate_recovers_towards_the_ceiling_then_probes_past_it():
    clock = Clock()
    limiter = AdaptiveLimiter(concurrency=64, clock=clock, rate=30.0)
    limiter.release(_permit(limiter), 429, retry_after=0.0)
    assert limiter.rate == pytest.approx(21.0)
    rates = []
    for _ in range(40):  # 40 s of clean answers at the current pace
        for _ in range(int(limiter.rate)):
            clock.now += 1 / limiter.rate
            permit = limiter.try_acquire()
            if isinstance(permit, Permit):
                limiter.release(permit, 201)
        rates.append(limiter.rate)
    assert rates[4] > 27  # quickly back near the last known limit
    assert rates[-1] > 30  # then slowly beyond it, to find out whether the limit went up
    assert rates[-1] < 40


def test_fixed_concurrency_only_caps_in_flight():
    limiter = fixed_concurrency(2)
    a, b = _permit(limiter), _permit(limiter)
    assert not isinstance(limiter.try_acquire(), Permit)
    limiter.release(a, 429, retry_after=5)
    assert isinstance(limiter.try_acquire(), Permit)  # no pause, no pacing
    limiter.release(b, 201)
    assert limiter.window == 2 and limiter.rate is None


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="min_concurrency"):
        AdaptiveLimiter(min_concurrency=0)
    with pytest.raises(ValueError, match="decrease"):
        AdaptiveLimiter(decrease=1.5)
    with pytest.raises(ValueError, match="rate"):
        AdaptiveLimiter(rate=0)


# --- a throttled service, simulated: what the benchmark measures, in virtual time -----------------


class TokenBucket:
    """Graph-like throttle: ``rate`` per second with a burst of ``rate`` (as the sandbox does)."""

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity, self.tokens, self.updated = rate, rate, rate, 0.0

    def take(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def simulate(limiter: AdaptiveLimiter, *, jobs: int, rps: float, latency: float, workers: int = 64):
    """Discrete-event run of ``jobs`` creates through ``limiter`` against a token bucket."""
    rng = random.Random(7)
    bucket = TokenBucket(rps)
    events: list[tuple[float, int, str, object]] = []
    seq = 0
    todo = list(range(jobs))
    sent = throttled = done = 0
    now = 0.0

    def push(at: float, kind: str, data: object) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, data))

    for _ in range(workers):
        push(0.0, "acquire", None)
    while events:
        now, _, kind, data = heapq.heappop(events)
        if kind == "acquire":
            item = data
            if item is None:
                if not todo:
                    continue
                item = todo.pop()
            permit = limiter.try_acquire(now)
            if isinstance(permit, Permit):
                sent += 1
                rtt = latency * rng.uniform(0.7, 1.3)
                push(now + rtt, "answer", (item, permit, bucket.take(now + rtt / 2)))
            else:
                push(now + permit, "acquire", item)
        else:
            item, permit, retry_after = data  # type: ignore[misc]
            if retry_after > 0:
                throttled += 1
                limiter.release(permit, 429, retry_after=round(retry_after + 0.0005, 3), now=now)
                push(now + retry_after, "acquire", item)
            else:
                done += 1
                limiter.release(permit, 201, now=now)
                push(now, "acquire", None)
    return now, sent, throttled, done


@pytest.mark.parametrize("latency", [0.01, 0.08, 0.4])
def test_adaptive_runs_at_the_limit_with_few_429s(latency):
    limiter = AdaptiveLimiter(clock=lambda: 0.0)
    seconds, sent, throttled, done = simulate(limiter, jobs=1500, rps=30, latency=latency)
    assert done == 1500
    assert done / seconds >= 0.95 * 30
    assert throttled <= 0.02 * sent


def test_fixed_concurrency_32_provokes_a_429_storm():
    _, sent, throttled, done = simulate(fixed_concurrency(32), jobs=600, rps=30, latency=0.08)
    assert done == 600
    assert throttled > sent / 2


def test_async_acquire_waits_without_blocking():
    limiter = AdaptiveLimiter(concurrency=1)

    async def main() -> float:
        first = await limiter.acquire_async()
        waited = []

        async def second() -> None:
            await limiter.acquire_async()
            waited.append(True)

        task = asyncio.create_task(second())
        await asyncio.sleep(0.02)
        assert not waited  # window of one: the second waits
        limiter.release(first, 201)
        await asyncio.wait_for(task, 1)
        return limiter.stats.waited_seconds

    assert asyncio.run(main()) > 0


def test_in_memory_store_extends_but_never_shortens_a_pause():
    store = InMemoryLimiterStore()
    store.pause(5, now=0)
    store.pause(1, now=0)
    assert store.paused_for(1) == pytest.approx(4)


def test_redis_store_shares_pause_pacing_and_rate_between_processes(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    key = f"test-{uuid.uuid4()}"
    one = AdaptiveLimiter(concurrency=4, store=RedisLimiterStore(client, key), rate=10.0)
    two = AdaptiveLimiter(concurrency=4, store=RedisLimiterStore.from_url(redis_url, key))
    # pacing slots are shared: right after one takes a slot, two must wait about 1/10 s
    assert isinstance(one.try_acquire(), Permit)
    wait = two.try_acquire()
    assert isinstance(wait, float) and 0 < wait <= 0.1 + 0.01
    # a 429 seen by one pauses two, and two adopts the lower rate on its next answer
    permit = one.try_acquire()
    while not isinstance(permit, Permit):
        asyncio.run(asyncio.sleep(permit))
        permit = one.try_acquire()
    one.release(permit, 429, retry_after=0.5)
    paused = two.try_acquire()
    assert isinstance(paused, float) and 0.3 < paused <= 0.5
    asyncio.run(asyncio.sleep(0.55))
    got = two.try_acquire()
    while not isinstance(got, Permit):
        asyncio.run(asyncio.sleep(got))
        got = two.try_acquire()
    two.release(got, 201)
    assert two.rate is not None and two.rate <= 10.0
    client.delete(*client.keys(f"meetgate:graph-limiter:{key}:*"))


def test_waiting_tasks_get_permits_in_arrival_order():
    """Senders that find the window full are served first come, first served (bulk rows start in
    file order), woken by releases rather than by polling."""
    limiter = AdaptiveLimiter(concurrency=2, min_concurrency=2, max_concurrency=2)

    async def main() -> list[int]:
        held = [await limiter.acquire_async(), await limiter.acquire_async()]
        order: list[int] = []

        async def sender(number: int) -> None:
            permit = await limiter.acquire_async()
            order.append(number)
            await asyncio.sleep(0.001 * (number % 3))
            limiter.release(permit, 201)

        tasks = []
        for number in range(16):
            tasks.append(asyncio.create_task(sender(number)))
            await asyncio.sleep(0.0015)  # they arrive one after another while the window is full
        for permit in held:
            limiter.release(permit, 201)
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return order

    assert asyncio.run(main()) == list(range(16))


def test_a_cancelled_waiter_passes_its_turn_on():
    limiter = fixed_concurrency(1)

    async def main() -> list[str]:
        first = await limiter.acquire_async()
        order: list[str] = []

        async def sender(name: str) -> None:
            permit = await limiter.acquire_async()
            order.append(name)
            limiter.release(permit, 200)

        a = asyncio.create_task(sender("a"))
        await asyncio.sleep(0.001)
        b = asyncio.create_task(sender("b"))
        await asyncio.sleep(0.001)
        a.cancel()
        await asyncio.sleep(0.001)
        limiter.release(first, 200)
        await asyncio.wait_for(b, 1)
        return order

    assert asyncio.run(main()) == ["b"]


def test_waiting_threads_get_permits_in_arrival_order():
    import threading
    import time

    limiter = fixed_concurrency(1)
    held = limiter.acquire()
    order: list[int] = []

    def sender(number: int) -> None:
        permit = limiter.acquire()
        order.append(number)
        time.sleep(0.001)
        limiter.release(permit, 200)

    threads = []
    for number in range(8):
        thread = threading.Thread(target=sender, args=(number,), daemon=True)
        thread.start()
        threads.append(thread)
        time.sleep(0.01)  # each is waiting before the next arrives
    limiter.release(held, 200)
    for thread in threads:
        thread.join(5)
    assert not any(thread.is_alive() for thread in threads)
    assert order == list(range(8))
