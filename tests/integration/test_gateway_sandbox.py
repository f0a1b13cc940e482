"""The gateway end to end: the real Graph client (MSAL, and the aiohttp transport `meetgate serve`
uses) against the sandbox over TLS."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from meetgate.composition import graph_settings_from_profile
from meetgate.gateway.app import create_app
from meetgate.gateway.consumers import ConsumerAdmin, ConsumerError
from meetgate.gateway.graph_transport import ObservedGraphTransport
from meetgate.gateway.metrics import GatewayMetrics
from meetgate.gateway.problems import TYPE_BASE
from meetgate.gateway.scope import StaticPolicyScope
from meetgate.gateway.settings import GatewaySettings
from meetgate.graph.client import AsyncGraphClient
from meetgate.store import Store
from meetgate_sandbox.gateway_scope import ControlApiPolicyScope


def _graph_client(profile) -> AsyncGraphClient:
    """The Graph client as `meetgate serve` builds it: aiohttp underneath, every exchange counted."""
    settings = graph_settings_from_profile(profile)
    transport = ObservedGraphTransport.for_graph(GatewayMetrics(), ca_bundle=settings.ca_bundle)
    return AsyncGraphClient(settings, transport=transport)


def _problem(resp, slug, status):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["type"] == TYPE_BASE + slug and body["remedy"]
    return body


@pytest.fixture
def gateway(sandbox_app, sandbox, tmp_path):
    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no policy engine")
    profile = sandbox_app.profile()
    scope = ControlApiPolicyScope(
        sandbox.info.control_url, sandbox_app.tenant_id, sandbox_app.client_id, sandbox_app.ca_bundle
    )
    settings = GatewaySettings(store_url=f"sqlite:///{tmp_path}/gw.db", policy_cache_seconds=0)
    store = Store.open(settings.store_url)
    client = _graph_client(profile)
    admin = ConsumerAdmin(store, scope)
    pilot_a, pilot_b = (u.upn for u in sandbox_app.pilot_users)
    booking = admin.add("booking", organizers=[pilot_a])
    crm = admin.add("crm", organizers=[pilot_b])
    app = create_app(settings, meetings=client.meetings, scope=scope, store=store, on_shutdown=client.aclose)
    with TestClient(app) as http:
        yield http, admin, booking.api_key, crm.api_key, sandbox_app, scope
    store.close()


def test_every_endpoint_against_the_sandbox(gateway):
    http, admin, booking, crm, app, _ = gateway
    organizer = app.pilot_users[0].upn
    body = {
        "organizer": organizer,
        "subject": "Admissions interview",
        "start": "2030-12-01T09:00:00Z",
        "end": "2030-12-01T09:30:00Z",
        "attendees": [{"upn": app.other_users[0].upn}],
        "lobby_bypass_scope": "organization",
        "allowed_presenters": "organizer",
    }
    h = {"Authorization": f"Bearer {booking}", "Idempotency-Key": "booking-42"}
    created = http.post("/v1/meetings", json=body, headers=h)
    assert created.status_code == 201, created.text
    meeting = created.json()
    assert meeting["join_url"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert meeting["graph_meeting_id"] and meeting["join_meeting_id"]
    replay = http.post("/v1/meetings", json=body, headers=h)
    assert replay.status_code == 200 and replay.json()["id"] == meeting["id"]
    _problem(http.post("/v1/meetings", json={**body, "subject": "x"}, headers=h), "idempotency-conflict", 409)

    auth = {"Authorization": f"Bearer {booking}"}
    got = http.get(f"/v1/meetings/{meeting['id']}", headers=auth).json()
    assert got["subject"] == "Admissions interview" and got["allowed_presenters"] == "organizer"
    found = http.get("/v1/meetings", params={"join_url": meeting["join_url"]}, headers=auth).json()["value"]
    assert [m["id"] for m in found] == [meeting["id"]]
    moved = http.patch(
        f"/v1/meetings/{meeting['id']}",
        json={"start": "2030-12-02T10:00:00Z", "end": "2030-12-02T10:45:00Z", "subject": "Moved"},
        headers=auth,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["subject"] == "Moved" and moved.json()["end"].startswith("2030-12-02T10:45")
    ics = http.get(f"/v1/meetings/{meeting['id']}/invite.ics", headers=auth)
    assert "DTSTART:20301202T100000Z" in ics.text and meeting["join_url"][:60] in ics.text.replace(
        "\r\n ", ""
    )
    locked = http.delete(f"/v1/meetings/{meeting['id']}", params={"mode": "lock"}, headers=auth)
    assert locked.status_code == 200 and locked.json()["state"] == "locked"
    gone = http.delete(f"/v1/meetings/{meeting['id']}", headers=auth)
    assert gone.json()["state"] == "cancelled"

    # consumer isolation: crm can neither see booking's meeting nor create for booking's organizer
    crm_auth = {"Authorization": f"Bearer {crm}"}
    _problem(http.get(f"/v1/meetings/{meeting['id']}", headers=crm_auth), "not-found", 404)
    refused = _problem(
        http.post("/v1/meetings", json=body, headers={**crm_auth, "Idempotency-Key": "crm-1"}),
        "organizer-not-allowed",
        403,
    )
    assert booking not in json.dumps(refused)

    # revocation takes effect on the next request
    admin.revoke("booking")
    _problem(http.get(f"/v1/meetings/{meeting['id']}", headers=auth), "unauthenticated", 401)
    assert http.get("/readyz").json()["checks"] == {"store": "ok"}


def test_policy_scope_is_enforced_at_add_time_and_request_time(gateway):
    http, admin, booking, _crm, app, _scope = gateway
    outsider = app.other_users[1].upn
    with pytest.raises(ConsumerError, match="outside the application access policy"):
        admin.add("recruiting", organizers=[outsider])
    # the policy is revoked for booking's organizer after booking was registered
    organizer = app.pilot_users[0]
    app.control.grant_policy(app.tenant_id, None, user=organizer.id)
    _problem(
        http.post(
            "/v1/meetings",
            json={"organizer": organizer.upn},
            headers={"Authorization": f"Bearer {booking}", "Idempotency-Key": "k"},
        ),
        "organizer-outside-policy",
        403,
    )


def test_graph_refusal_is_reported_with_its_request_id(sandbox_app, tmp_path):
    """A scope that wrongly includes an organizer: Graph's own policy check answers 403."""
    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no policy engine")
    outsider = sandbox_app.other_users[0].upn
    scope = StaticPolicyScope([outsider])
    settings = GatewaySettings(store_url=f"sqlite:///{tmp_path}/gw.db")
    store = Store.open(settings.store_url)
    key = ConsumerAdmin(store, scope).add("misconfigured", organizers=[outsider]).api_key
    client = _graph_client(sandbox_app.profile())
    app = create_app(settings, meetings=client.meetings, scope=scope, store=store, on_shutdown=client.aclose)
    with TestClient(app) as http:
        resp = http.post(
            "/v1/meetings",
            json={"organizer": outsider},
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "k"},
        )
        body = _problem(resp, "graph-access-policy-missing", 403)
        assert body["graphRequestId"]
        app.state.audit.drain()
    [entry] = store.audit()
    assert (entry.graph_status, entry.outcome) == (403, "graph-access-policy-missing")
    assert entry.graph_request_id == body["graphRequestId"]
    store.close()


def test_audit_rows_cite_graphs_request_id_of_successful_calls_too(gateway):
    """Every audit row names the Graph request behind it: the id support asks for first."""
    http, _admin, booking, _crm, app, _ = gateway
    organizer = app.pilot_users[0].upn
    h = {"Authorization": f"Bearer {booking}", "Idempotency-Key": "audited-1"}
    created = http.post("/v1/meetings", json={"organizer": organizer, "subject": "Audited"}, headers=h)
    assert created.status_code == 201, created.text
    got = http.get(f"/v1/meetings/{created.json()['id']}", headers={"Authorization": f"Bearer {booking}"})
    assert got.status_code == 200
    http.app.state.audit.drain()
    rows = {entry.action: entry for entry in http.app.state.store.audit()}
    graph_log = app.control.request_log(app.tenant_id)
    ids = {r["requestId"]: r["path"] for r in graph_log}
    create, read = rows["meeting.create"], rows["meeting.get"]
    assert create.graph_status == 200 and ids.get(create.graph_request_id, "").endswith("/createOrGet")
    assert read.graph_request_id in ids and read.graph_request_id != create.graph_request_id


def test_a_throttled_call_is_handed_back_within_the_wait_budget(sandbox_app, sandbox_control):
    """`meetgate serve`'s Graph client stops retrying a 429 whose Retry-After would outlast the
    gateway's wait budget: the consumer gets 503 + Retry-After at once instead of a hanging request."""
    import asyncio
    import time

    from meetgate.composition.gateway import graph_backend
    from meetgate.graph.errors import ThrottledError
    from meetgate.graph.models import MeetingRequest

    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no policy engine")
    organizer = sandbox_app.pilot_users[0].id  # by id: no user lookup to spend the throttle's one slot
    graph = graph_backend(sandbox_app.profile(), GatewayMetrics(), max_wait_seconds=2.0)
    meetings = graph.meetings

    async def run() -> tuple[float, ThrottledError]:
        try:
            sandbox_control.set_faults(throttle_rps=0.05)  # one call per 20 s
            await meetings.create_or_get(organizer, "budget-0", MeetingRequest())  # takes the one slot
            started = time.monotonic()
            with pytest.raises(ThrottledError) as caught:
                await meetings.create_or_get(organizer, "budget-1", MeetingRequest())
            return time.monotonic() - started, caught.value
        finally:
            sandbox_control.clear_faults()
            await graph.close()

    elapsed, error = asyncio.run(run())
    assert elapsed < 15, elapsed  # gave up at once: waiting out Retry-After would take 20 s
    assert error.retry_after and error.retry_after > 2
