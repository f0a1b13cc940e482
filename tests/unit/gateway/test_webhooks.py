"""Webhooks to consumers: endpoints over /v1/webhooks, signed deliveries, order after an outage,
nothing lost when a gateway dies mid-delivery, replay, secret rotation, consumer isolation."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time

import httpx
import pytest
import sqlalchemy as sa
from gateway_kit import MEETING
from webhook_kit import TEST_KEY, Receiver, WebhookGateway, make_webhook_gateway

from meetgate.gateway.webhooks import signing
from meetgate.gateway.webhooks.events import WebhookError
from meetgate.store.tables import webhook_endpoints
from meetgate.store.webhooks import WebhookStore

URL = "https://receiver.example.org/meetgate"
EVENTS = ["meeting.updated", "meeting.cancelled"]


@pytest.fixture
def wg(tmp_path):
    gateway = make_webhook_gateway(tmp_path)
    with gateway.client:
        yield gateway
    gateway.store.close()


def _register(wg: WebhookGateway, key: str | None = None, events=EVENTS) -> dict:
    answer = wg.client.post(
        "/v1/webhooks", json={"url": URL, "events": events}, headers=wg.headers(key or wg.booking_key)
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _meeting(wg: WebhookGateway, idem: str = "m-1") -> dict:
    answer = wg.client.post("/v1/meetings", json=MEETING, headers=wg.headers(wg.booking_key, idem))
    assert answer.status_code == 201, answer.text
    return answer.json()


def _patch(wg: WebhookGateway, meeting_id: str, subject: str) -> None:
    answer = wg.client.patch(
        f"/v1/meetings/{meeting_id}", json={"subject": subject}, headers=wg.headers(wg.booking_key)
    )
    assert answer.status_code == 200, answer.text


def _verified(wg: WebhookGateway, secret: str, index: int = -1) -> dict:
    got = wg.receiver.received[index]
    now = wg.clock().timestamp()
    assert signing.verify(got.headers["meetgate-signature"], got.body, secret, now=now)
    assert got.headers["meetgate-event-id"] == got.event["id"]
    return got.event


def test_register_list_and_the_secret_shown_once_and_stored_encrypted(wg):
    created = _register(wg)
    assert created["secret"].startswith("whsec_") and created["events"] == EVENTS
    listed = wg.client.get("/v1/webhooks", headers=wg.headers(wg.booking_key)).json()["value"]
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]
    assert (
        "secret"
        not in wg.client.get(f"/v1/webhooks/{created['id']}", headers=wg.headers(wg.booking_key)).json()
    )
    with wg.store.engine.connect() as conn:
        sealed = conn.execute(sa.select(webhook_endpoints.c.secret_enc)).scalar_one()
    assert created["secret"] not in sealed and sealed.startswith("v1.")


def test_meeting_updated_and_cancelled_are_signed_and_verify(wg):
    endpoint = _register(wg)
    meeting = _meeting(wg)
    _patch(wg, meeting["id"], "Moved")
    assert (
        wg.client.delete(f"/v1/meetings/{meeting['id']}", headers=wg.headers(wg.booking_key)).status_code
        == 200
    )
    # cancelling again changes nothing: no second meeting.cancelled
    assert (
        wg.client.delete(f"/v1/meetings/{meeting['id']}", headers=wg.headers(wg.booking_key)).status_code
        == 200
    )
    assert wg.deliver(rounds=3) == 2
    updated = _verified(wg, endpoint["secret"], 0)
    cancelled = _verified(wg, endpoint["secret"], 1)
    assert (updated["type"], updated["meetingId"], updated["data"]["subject"]) == (
        "meeting.updated",
        meeting["id"],
        "Moved",
    )
    assert cancelled["type"] == "meeting.cancelled" and cancelled["data"]["state"] == "cancelled"
    assert updated["id"].startswith("evt_") and updated["time"].endswith("Z")
    deliveries = wg.client.get(
        f"/v1/webhooks/{endpoint['id']}/deliveries", headers=wg.headers(wg.booking_key)
    ).json()["value"]
    assert [d["status"] for d in deliveries] == ["succeeded", "succeeded"]
    assert deliveries[0]["history"][0]["status_code"] == 204 and deliveries[0]["history"][0]["ok"]


def test_a_tampered_body_or_an_old_timestamp_is_refused_by_the_recipe(wg):
    endpoint = _register(wg)
    _patch(wg, _meeting(wg)["id"], "Moved")
    wg.deliver()
    got = wg.receiver.received[0]
    header, now = got.headers["meetgate-signature"], wg.clock().timestamp()
    assert signing.verify(header, got.body, endpoint["secret"], now=now)
    assert not signing.verify(header, got.body.replace(b"Moved", b"Moves"), endpoint["secret"], now=now)
    assert not signing.verify(header, got.body, "whsec_wrong", now=now)
    assert not signing.verify(header, got.body, endpoint["secret"], now=now + 301)
    assert not signing.verify("v1=" + header.split("v1=")[1], got.body, endpoint["secret"], now=now)


def test_an_endpoint_down_for_an_hour_is_then_served_in_order(wg):
    _register(wg)
    meeting = _meeting(wg)
    for n in range(4):
        _patch(wg, meeting["id"], f"Change {n}")
    wg.receiver.up = False
    worker = wg.worker()
    for _ in range(60):  # an hour of rounds, a minute apart: only the oldest is ever tried
        wg.deliver(worker)
        wg.clock.advance(minutes=1)
    assert wg.receiver.refused >= 5 and wg.receiver.received == []
    wg.receiver.up = True
    for _ in range(10):
        wg.clock.advance(hours=1)  # past any backoff
        wg.deliver(worker)
    subjects = [r.event["data"]["subject"] for r in wg.receiver.received]
    assert subjects == ["Change 0", "Change 1", "Change 2", "Change 3"]
    assert WebhookStore(wg.store).pending_count() == 0


def test_backoff_grows_with_jitter_and_gives_up_only_after_24_hours(wg):
    endpoint = _register(wg)
    _patch(wg, _meeting(wg)["id"], "Moved")
    wg.receiver.up = False
    worker = wg.worker()
    start = wg.clock()
    for _ in range(500):
        wg.deliver(worker)
        record = WebhookStore(wg.store).deliveries(endpoint_id=endpoint["id"])[0]
        if record.status != "pending":
            break
        wg.clock.now = max(wg.clock.now, record.next_attempt_at)
    assert record.status == "failed"
    times = [h.at for h in record.history]
    assert times[-1] - start >= dt.timedelta(hours=24)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps[0] < gaps[3] < gaps[6] and max(gaps) <= 3600
    assert all(h.error == "the receiver answered 503" for h in record.history)


def test_a_gateway_killed_mid_delivery_loses_nothing(wg):
    _register(wg)
    _patch(wg, _meeting(wg)["id"], "Moved")
    hooks = WebhookStore(wg.store)
    # replica A leases the delivery, then dies before it records anything
    claimed = hooks.claim(owner="dead", now=wg.clock(), lease_until=wg.clock() + dt.timedelta(seconds=60))
    assert len(claimed) == 1
    restarted = wg.worker(owner="restarted")
    assert wg.deliver(restarted) == 0  # the lease still holds
    wg.clock.advance(seconds=61)
    assert wg.deliver(restarted) == 1
    assert [r.event["type"] for r in wg.receiver.received] == ["meeting.updated"]
    assert hooks.pending_count() == 0


def test_replay_sends_the_same_event_again(wg):
    endpoint = _register(wg)
    _patch(wg, _meeting(wg)["id"], "Moved")
    wg.deliver()
    h = wg.headers(wg.booking_key)
    first = wg.client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=h).json()["value"][0]
    replay = wg.client.post(f"/v1/webhooks/{endpoint['id']}/deliveries/{first['id']}/replay", headers=h)
    assert replay.status_code == 202 and replay.json()["replay_of"] == first["id"]
    wg.deliver()
    assert wg.receiver.event_ids() == [first["event_id"], first["event_id"]]
    assert wg.receiver.received[0].body == wg.receiver.received[1].body


def test_rotate_secret_signs_with_both_during_the_grace_period(wg):
    endpoint = _register(wg)
    meeting = _meeting(wg)
    h = wg.headers(wg.booking_key)
    rotated = wg.client.post(
        f"/v1/webhooks/{endpoint['id']}/rotate-secret", json={"grace_hours": 1}, headers=h
    )
    assert rotated.status_code == 200 and rotated.json()["secret"] != endpoint["secret"]
    _patch(wg, meeting["id"], "During grace")
    wg.deliver()
    _verified(wg, endpoint["secret"])
    _verified(wg, rotated.json()["secret"])
    assert wg.receiver.received[-1].headers["meetgate-signature"].count("v1=") == 2
    wg.clock.advance(hours=2)
    _patch(wg, meeting["id"], "After grace")
    wg.deliver()
    _verified(wg, rotated.json()["secret"])
    got = wg.receiver.received[-1]
    assert not signing.verify(
        got.headers["meetgate-signature"], got.body, endpoint["secret"], now=wg.clock().timestamp()
    )


def test_test_event_goes_to_that_endpoint_only(wg):
    one, two = _register(wg), _register(wg)
    answer = wg.client.post(f"/v1/webhooks/{one['id']}/test", headers=wg.headers(wg.booking_key))
    assert answer.status_code == 202
    wg.deliver()
    assert wg.receiver.event_ids() == [answer.json()["event_id"]]
    assert wg.receiver.received[0].event["type"] == "webhook.test"
    assert wg.client.get(
        f"/v1/webhooks/{two['id']}/deliveries", headers=wg.headers(wg.booking_key)
    ).json() == {"value": []}


def test_consumers_are_isolated(wg):
    booking = _register(wg)
    crm = _register(wg, wg.crm_key)
    meeting = _meeting(wg)
    _patch(wg, meeting["id"], "Moved")
    wg.deliver()
    assert [r.event["meetingId"] for r in wg.receiver.received] == [meeting["id"]]
    assert wg.receiver.received[0].headers["meetgate-delivery-id"].startswith("dlv_")
    crm_h = wg.headers(wg.crm_key)
    assert [e["id"] for e in wg.client.get("/v1/webhooks", headers=crm_h).json()["value"]] == [crm["id"]]
    for method, path in [
        ("get", f"/v1/webhooks/{booking['id']}"),
        ("delete", f"/v1/webhooks/{booking['id']}"),
        ("post", f"/v1/webhooks/{booking['id']}/test"),
        ("post", f"/v1/webhooks/{booking['id']}/rotate-secret"),
        ("get", f"/v1/webhooks/{booking['id']}/deliveries"),
    ]:
        answer = wg.client.request(method, path, headers=crm_h)
        assert answer.status_code == 404 and answer.json()["type"].endswith("webhook-not-found"), path
    assert wg.client.get(f"/v1/webhooks/{crm['id']}/deliveries", headers=crm_h).json() == {"value": []}
    # the internal entry point refuses another consumer's meeting too
    with pytest.raises(WebhookError):
        wg.hooks.publisher.publish_event(wg.crm_id, "recording.ready", meeting["id"], {})


def test_publish_event_entry_point_dedupes_by_cause(wg):
    _register(wg, events=["recording.ready"])
    meeting = _meeting(wg)
    publish = wg.hooks.publisher.publish_event
    first = publish(wg.booking_id, "recording.ready", meeting["id"], {"recordingId": "r1"}, dedupe_key="n-1")
    again = publish(wg.booking_id, "recording.ready", meeting["id"], {"recordingId": "r1"}, dedupe_key="n-1")
    assert first == again
    with pytest.raises(WebhookError):
        publish(wg.booking_id, "meeting.exploded", meeting["id"], {})
    wg.deliver(rounds=2)
    assert wg.receiver.event_ids() == [first]
    assert wg.receiver.received[0].event["data"] == {"recordingId": "r1"}


def test_remove_stops_deliveries_and_patch_changes_events(wg):
    endpoint = _register(wg)
    h = wg.headers(wg.booking_key)
    patched = wg.client.patch(
        f"/v1/webhooks/{endpoint['id']}", json={"events": ["meeting.cancelled"]}, headers=h
    )
    assert patched.status_code == 200 and patched.json()["events"] == ["meeting.cancelled"]
    meeting = _meeting(wg)
    _patch(wg, meeting["id"], "Not wanted")
    assert wg.client.delete(f"/v1/webhooks/{endpoint['id']}", headers=h).status_code == 204
    wg.client.delete(f"/v1/meetings/{meeting['id']}", headers=h)
    assert wg.deliver() == 0 and wg.receiver.received == []
    assert wg.client.get(f"/v1/webhooks/{endpoint['id']}", headers=h).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://receiver.example.org/hook",
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:192.168.1.1]/hook",
        "http://127.0.0.1:8080/hook",
        "https://user:pw@receiver.example.org/hook",
        "ftp://receiver.example.org/hook",
    ],
)
def test_ssrf_targets_are_refused(wg, url):
    answer = wg.client.post(
        "/v1/webhooks", json={"url": url, "events": EVENTS}, headers=wg.headers(wg.booking_key)
    )
    assert answer.status_code == 422 and answer.json()["type"].endswith("webhook-url-refused"), answer.text


def test_unknown_event_types_are_refused(wg):
    answer = wg.client.post(
        "/v1/webhooks", json={"url": URL, "events": ["meeting.exploded"]}, headers=wg.headers(wg.booking_key)
    )
    assert answer.status_code == 422


def test_local_http_only_when_the_setting_allows_it(tmp_path):
    gateway = make_webhook_gateway(tmp_path, webhook_allow_local_http=True)
    with gateway.client:
        h = gateway.headers(gateway.booking_key)
        for url in ("http://127.0.0.1:8080/hook", "http://localhost:9000/hook"):
            answer = gateway.client.post("/v1/webhooks", json={"url": url, "events": EVENTS}, headers=h)
            assert answer.status_code == 201, answer.text
        refused = gateway.client.post(
            "/v1/webhooks", json={"url": "http://10.1.1.1/h", "events": EVENTS}, headers=h
        )
        assert refused.status_code == 422
    gateway.store.close()


def test_a_gateway_with_another_webhook_key_fails_the_attempt_and_leaks_nothing(wg, caplog):
    from meetgate.gateway.webhooks.manage import secret_box_factory

    endpoint = _register(wg)
    _patch(wg, _meeting(wg)["id"], "Moved")
    worker = wg.worker()
    worker.box = secret_box_factory("A" * 43 + "=", wg.store_dir())
    assert wg.deliver(worker) == 1 and wg.receiver.received == []
    record = WebhookStore(wg.store).deliveries(endpoint_id=endpoint["id"])[0]
    assert record.status == "pending" and "does not decrypt" in (record.last_error or "")
    assert TEST_KEY not in repr(wg.settings) and endpoint["secret"] not in caplog.text
    assert endpoint["secret"] not in (record.last_error or "")


def test_migration_0007_adds_and_removes_the_outbox(tmp_path):
    from alembic import command
    from alembic.config import Config

    from meetgate.store import Store
    from meetgate.store.repository import MIGRATIONS, make_engine

    url = f"sqlite:///{tmp_path}/m.db"
    Store.open(url).close()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    tables = {"webhook_endpoints", "webhook_events", "webhook_deliveries", "webhook_attempts"}
    engine = make_engine(url)
    with engine.begin() as conn:
        assert tables <= set(sa.inspect(conn).get_table_names())
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        assert not tables & set(sa.inspect(conn).get_table_names())
        command.upgrade(cfg, "head")
        assert tables <= set(sa.inspect(conn).get_table_names())
    engine.dispose()


def test_a_failure_inside_a_round_keeps_the_order(wg):
    _register(wg)
    meeting = _meeting(wg)
    for n in range(5):
        _patch(wg, meeting["id"], f"Change {n}")
    refuse_once = {"Change 2"}
    plain = wg.receiver.__call__

    def flaky(request):
        subject = json.loads(request.content)["data"]["subject"]
        if subject in refuse_once:
            refuse_once.discard(subject)
            return httpx.Response(500)
        return plain(request)

    worker = wg.worker()
    worker.client = httpx.AsyncClient(transport=httpx.MockTransport(flaky))
    assert wg.deliver(worker) == 3  # 0 and 1 delivered, 2 refused, 3 and 4 left for later
    wg.clock.advance(minutes=5)
    wg.deliver(worker, rounds=2)
    subjects = [r.event["data"]["subject"] for r in wg.receiver.received]
    assert subjects == [f"Change {n}" for n in range(5)]


def test_a_gateway_killed_during_the_post_loses_nothing_after_a_restart(wg, tmp_path):
    _register(wg)
    _patch(wg, _meeting(wg)["id"], "Moved")
    arrived = []

    async def hang(request):
        arrived.append(request.headers["meetgate-event-id"])
        await asyncio.sleep(3600)  # the gateway dies before the answer
        return httpx.Response(204)

    async def kill_mid_delivery():
        worker = wg.worker(owner="killed")
        worker.client = httpx.AsyncClient(transport=httpx.MockTransport(hang))
        round_ = asyncio.create_task(worker.run_once())
        while not arrived:
            await asyncio.sleep(0.01)
        round_.cancel()

    asyncio.run(kill_mid_delivery())
    wg.store.close()
    # the restarted gateway: a new store on the same file
    from meetgate.store import Store

    wg.store = Store.open(wg.settings.store_url)
    restarted = wg.worker(owner="restarted")
    assert wg.deliver(restarted) == 0  # the dead process's lease still holds
    wg.clock.advance(seconds=61)
    assert wg.deliver(restarted) == 1
    assert wg.receiver.event_ids() == arrived  # the same event, delivered again
    assert WebhookStore(wg.store).pending_count() == 0


def test_the_worker_runs_in_the_gateway_and_is_woken_by_a_publication(tmp_path):
    receiver = Receiver()
    gateway = make_webhook_gateway(
        tmp_path,
        webhook_worker=True,
        webhook_client=httpx.AsyncClient(transport=httpx.MockTransport(receiver)),
    )
    gateway.hooks.publisher.clock = lambda: dt.datetime.now(dt.UTC)  # the worker's clock: real time
    with gateway.client:
        endpoint = _register(gateway)
        meeting = _meeting(gateway)
        _patch(gateway, meeting["id"], "Moved")
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [r.event["type"] for r in receiver.received] == ["meeting.updated"]
        got = receiver.received[0]
        assert signing.verify(got.headers["meetgate-signature"], got.body, endpoint["secret"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # counted once the round's attempts are recorded
            text = gateway.client.get("/metrics").text
            if 'meetgate_gateway_webhook_attempts_total{outcome="ok"} 1.0' in text:
                break
            time.sleep(0.02)
        assert 'meetgate_gateway_webhook_attempts_total{outcome="ok"} 1.0' in text
        assert "meetgate_gateway_webhook_seconds_count 1.0" in text
    gateway.store.close()


def test_a_name_that_resolves_to_a_private_address_is_refused():
    from meetgate.gateway.webhooks.urls import WebhookUrlError, check_url

    def resolver(table):
        return lambda host, port: table[host]

    table = {
        "hooks.example.org": ["93.184.216.34", "2606:2800:220:1::1"],
        "sneaky.example.org": ["93.184.216.34", "10.0.0.7"],  # one private address is enough
        "metadata.example.org": ["169.254.169.254"],
    }
    assert check_url("https://hooks.example.org/h", resolve=resolver(table)) == "https://hooks.example.org/h"
    for host in ("sneaky.example.org", "metadata.example.org"):
        with pytest.raises(WebhookUrlError, match="private"):
            check_url(f"https://{host}/h", resolve=resolver(table))
    assert check_url("https://sneaky.example.org/h", resolve=resolver(table), allow_private=True)

    def unresolvable(host, port):
        raise OSError("no such host")

    with pytest.raises(WebhookUrlError, match="does not resolve"):
        check_url("https://nowhere.example.org/h", resolve=unresolvable)


def test_a_target_that_turns_private_is_refused_at_delivery(wg):
    endpoint = _register(wg)
    _patch(wg, _meeting(wg)["id"], "Moved")
    worker = wg.worker()
    worker.resolve = lambda host, port: ["192.168.0.10"]  # the name now points inside the network
    assert wg.deliver(worker) == 1 and wg.receiver.received == []
    record = WebhookStore(wg.store).deliveries(endpoint_id=endpoint["id"])[0]
    assert record.status == "pending" and (record.last_error or "").startswith("refused target")


def test_the_profile_sets_the_webhook_url_rules(tmp_path):
    from meetgate.composition.gateway import gateway_settings_from_profile
    from meetgate.config import load_profile

    config = tmp_path / "meetgate.toml"
    config.write_text(
        "[profiles.default]\ngateway_webhook_allow_local_http = true\ngateway_webhook_allow_private = true\n"
    )
    settings = gateway_settings_from_profile(load_profile(config, environ={}))
    assert settings.webhook_allow_local_http and settings.webhook_allow_private
