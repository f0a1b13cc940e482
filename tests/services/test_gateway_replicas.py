"""Two gateway processes sharing the machine's PostgreSQL and Redis, in front of the sandbox.

- 200 concurrent creations with one Idempotency-Key, spread over both replicas: one meeting.
- A per-consumer rate limit holds across both replicas (Redis).
- (slow) One replica is killed mid-load; clients retry with their keys on the other one: every
  request ends accepted, and nothing is created twice.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from gateway_replicas import Cluster, drop_schema, pg_schema_url, write_config

from meetgate.gateway.consumers import ConsumerAdmin
from meetgate.store import Store
from meetgate_sandbox.gateway_scope import ControlApiPolicyScope

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]


@pytest.fixture
def cluster(sandbox_app, sandbox, postgres_url, redis_url, tmp_path):
    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no policy engine")
    schema, store_url = pg_schema_url(postgres_url)
    prefix = f"meetgate-test-{uuid.uuid4().hex[:8]}:"
    config = write_config(tmp_path / "meetgate.toml", sandbox_app, store_url, redis_url)
    store = Store.open(store_url)
    scope = ControlApiPolicyScope(
        sandbox.info.control_url, sandbox_app.tenant_id, sandbox_app.client_id, sandbox_app.ca_bundle
    )
    admin = ConsumerAdmin(store, scope)
    c = Cluster(config, sandbox.info.control_url, prefix)
    try:
        yield c, admin, store, sandbox_app
    finally:
        c.stop_all()
        store.close()
        drop_schema(postgres_url, schema)
        import redis

        r = redis.Redis.from_url(redis_url)
        keys = r.keys(prefix + "*")
        if keys:
            r.delete(*keys)
        r.close()
        sandbox_app.control.clear_faults()


def _created_in_graph(app) -> int:
    log = app.control.request_log(app.tenant_id, app_id=app.client_id, limit=5000)
    return sum(1 for e in log if e["path"].endswith("/createOrGet") and e["status"] == 201)


def test_same_key_over_two_replicas_makes_one_meeting_and_limits_are_shared(cluster):
    c, admin, store, app = cluster
    organizer = app.pilot_users[0].upn
    key = admin.add("booking", organizers=[organizer]).api_key
    limited = admin.add("crm", organizers=[app.pilot_users[1].upn], rate_per_minute=30).api_key
    a, b = c.start_many(2)

    async def same_key() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http:
            body = {"organizer": organizer, "subject": "one meeting"}
            headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "same-key-200"}
            return await asyncio.gather(
                *(
                    http.post(f"{(a, b)[i % 2].url}/v1/meetings", json=body, headers=headers)
                    for i in range(200)
                )
            )

    responses = asyncio.run(same_key())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 201}, {s: statuses.count(s) for s in set(statuses)}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.json()["graph_meeting_id"] for r in responses}) == 1
    assert _created_in_graph(app) == 1
    assert store.count_meetings() == 1

    async def limited_burst() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as http:
            headers = {"Authorization": f"Bearer {limited}"}
            results = await asyncio.gather(
                *(
                    http.get(f"{(a, b)[i % 2].url}/v1/meetings/mtg_{'0' * 32}", headers=headers)
                    for i in range(60)
                )
            )
            return [r.status_code for r in results]

    burst = asyncio.run(limited_burst())
    assert set(burst) == {404, 429}
    assert 30 <= burst.count(404) <= 33  # 30 at once, then 0.5/s refill during the burst
    assert burst.count(429) >= 27


@pytest.mark.slow
def test_killing_a_replica_mid_load_loses_and_duplicates_nothing(cluster):
    c, admin, store, app = cluster
    organizers = [u.upn for u in app.pilot_users]
    key = admin.add("booking", organizers=organizers).api_key
    app.control.set_faults(latency_ms=150, paths="graph")
    a, b = c.start_many(2)
    total = 120
    done = asyncio.Event()
    finished: dict[str, dict] = {}
    attempts = {"retries": 0}

    async def one(i: int, http: httpx.AsyncClient) -> None:
        idem = f"load-{i}"
        body = {"organizer": organizers[i % 2], "subject": f"meeting {i}"}
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idem}
        order = [a, b] if i % 2 else [b, a]
        for attempt in range(8):
            replica = order[attempt % 2] if order[0].process.poll() is None else order[1]
            try:
                resp = await http.post(f"{replica.url}/v1/meetings", json=body, headers=headers)
            except httpx.HTTPError:
                attempts["retries"] += 1
                await asyncio.sleep(0.1)
                continue
            if resp.status_code in (200, 201):
                finished[idem] = resp.json()
                return
            attempts["retries"] += 1
            await asyncio.sleep(0.2)
        raise AssertionError(f"{idem} never accepted")

    async def killer() -> None:
        while len(finished) < total // 4:
            await asyncio.sleep(0.02)
        a.kill()
        done.set()

    async def run() -> None:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=60)) as http:
            sem = asyncio.Semaphore(40)

            async def bounded(i: int) -> None:
                async with sem:
                    await one(i, http)

            await asyncio.gather(killer(), *(bounded(i) for i in range(total)))

    asyncio.run(asyncio.wait_for(run(), 150))
    assert done.is_set() and a.process.poll() is not None
    assert len(finished) == total
    assert len({m["graph_meeting_id"] for m in finished.values()}) == total
    assert store.count_meetings() == total
    assert _created_in_graph(app) == total  # no duplicate in Graph despite the retries
    assert attempts["retries"] > 0  # the kill really interrupted requests
