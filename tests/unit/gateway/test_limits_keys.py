"""Keys and limits, pure and in-process."""

from __future__ import annotations

import asyncio
import datetime as dt

from meetgate.gateway import keys
from meetgate.gateway.limits import InMemoryLimiter, gcra, seconds_until_quota_reset


def test_keys_are_shown_once_and_verified_by_hash():
    new = keys.new_key()
    assert "***" in repr(new) and new.api_key not in repr(new)
    key_id, secret = keys.parse(new.api_key)
    assert key_id == new.key_id and secret not in new.key_hash
    assert keys.verify(key_id, secret, new.key_hash)
    assert not keys.verify(key_id, secret + "x", new.key_hash)
    assert not keys.verify(key_id, secret, None)
    for bad in (
        "",
        "mgk_",
        "abc_0123456789abcdef_x",
        "mgk_0123456789ABCDEF_x",
        "mgk_0123_x",
        "mgk_0123456789abcdef_",
    ):
        assert keys.parse(bad) is None, bad


def test_gcra_lets_a_burst_through_then_spaces_requests():
    tat, now, allowed = 0.0, 100.0, 0
    for _ in range(15):
        slot, tat = gcra(tat, now, per_second=1.0, burst=10, max_wait=0)
        allowed += slot.allowed
    assert allowed == 10
    refused, _ = gcra(tat, now, per_second=1.0, burst=10, max_wait=0)
    assert not refused.allowed and 0.9 < refused.wait <= 1.0
    later, _ = gcra(tat, now + 1.0, per_second=1.0, burst=10, max_wait=0)
    assert later.allowed


def test_gcra_waits_when_allowed_to():
    tat = 0.0
    waits = []
    for _ in range(5):
        slot, tat = gcra(tat, 50.0, per_second=10.0, burst=2, max_wait=1.0)
        waits.append(round(slot.wait, 3))
    assert waits == [0.0, 0.0, 0.1, 0.2, 0.3]
    slot, _ = gcra(tat, 50.0, per_second=10.0, burst=2, max_wait=0.05)
    assert not slot.allowed


def test_in_memory_quota_resets_each_day():
    day = [dt.datetime(2026, 11, 26, 23, 59, tzinfo=dt.UTC)]
    limiter = InMemoryLimiter(today=lambda: day[0])

    async def run():
        results = [(await limiter.consume("c:1", limit=2)).allowed for _ in range(3)]
        await limiter.refund("c:1")
        results.append((await limiter.consume("c:1", limit=2)).allowed)
        day[0] += dt.timedelta(minutes=2)
        results.append((await limiter.consume("c:1", limit=2)).allowed)
        return results

    assert asyncio.run(run()) == [True, True, False, True, True]


def test_quota_reset_is_the_next_utc_midnight():
    assert seconds_until_quota_reset(dt.datetime(2026, 11, 26, 23, 59, 30, tzinfo=dt.UTC)) == 30
    assert seconds_until_quota_reset(dt.datetime(2026, 11, 26, 0, 0, tzinfo=dt.UTC)) == 86_400
    later = dt.datetime(2026, 11, 26, 22, 0, 0, 500_000, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert seconds_until_quota_reset(later) == 21 * 3600  # 03:00:00.5 UTC, rounded up


def test_serve_reads_graphs_pause_from_the_clients_limiter():
    from meetgate.graph.limiter import AdaptiveLimiter

    now = [1000.0]
    limiter = AdaptiveLimiter(clock=lambda: now[0])
    paused = limiter.paused_for  # what `meetgate serve` hands the gateway
    assert paused() == 0.0
    permit = limiter.try_acquire()
    assert not isinstance(permit, float)
    limiter.release(permit, 429, retry_after=100.0)
    now[0] += 30
    assert paused() == 70.0
