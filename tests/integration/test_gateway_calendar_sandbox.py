"""Calendar-backed meetings and recurring series through the gateway: the real Graph client (MSAL and
the aiohttp transport `meetgate serve` uses) against the sandbox's Exchange calendars, with the
calendar plane scoped by Exchange RBAC for Applications to the first pilot organizer."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from meetgate.composition import graph_settings_from_profile
from meetgate.gateway.app import create_app
from meetgate.gateway.consumers import ConsumerAdmin
from meetgate.gateway.graph_transport import ObservedGraphTransport
from meetgate.gateway.metrics import GatewayMetrics
from meetgate.gateway.problems import TYPE_BASE
from meetgate.gateway.settings import GatewaySettings
from meetgate.graph.client import AsyncGraphClient
from meetgate.store import Store
from meetgate_sandbox.gateway_scope import ControlApiPolicyScope

START = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
END = START + dt.timedelta(minutes=30)
EXCHANGE = "/tenants/{tid}/exchange"


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _problem(resp, slug, status):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["type"] == TYPE_BASE + slug and body["remedy"], body
    return body


@pytest.fixture
def gateway(sandbox_app, sandbox, tmp_path):
    """The gateway with calendar meetings; ``booking`` may act for both pilots (the Teams policy holds
    for both), the mailbox scope holds the first only; ``school`` defaults to calendar placement."""
    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no policy engine")
    sandbox_app.scope_calendars(sandbox_app.pilot_users[:1])
    scope = ControlApiPolicyScope(
        sandbox.info.control_url, sandbox_app.tenant_id, sandbox_app.client_id, sandbox_app.ca_bundle
    )
    settings = GatewaySettings(store_url=f"sqlite:///{tmp_path}/gw.db", policy_cache_seconds=0)
    store = Store.open(settings.store_url)
    graph_settings = graph_settings_from_profile(sandbox_app.profile())
    transport = ObservedGraphTransport.for_graph(GatewayMetrics(), ca_bundle=graph_settings.ca_bundle)
    client = AsyncGraphClient(graph_settings, transport=transport)
    admin = ConsumerAdmin(store, scope)
    pilots = [u.upn for u in sandbox_app.pilot_users]
    keys = {
        "booking": admin.add("booking", organizers=pilots).api_key,
        "school": admin.add("school", organizers=pilots[:1], placement="calendar").api_key,
    }
    app = create_app(
        settings,
        meetings=client.meetings,
        events=client.events,
        scope=scope,
        store=store,
        on_shutdown=client.aclose,
    )
    with TestClient(app) as http:
        yield http, admin, keys, sandbox_app
    store.close()


def _auth(key: str, idem: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return headers


def _calendar_body(app, **extra):
    body = {
        "organizer": app.pilot_users[0].upn,
        "placement": "calendar",
        "subject": "Admissions interview",
        "start": _iso(START),
        "end": _iso(END),
    }
    body.update(extra)
    return body


def test_a_calendar_meeting_through_every_endpoint(gateway):
    http, _admin, keys, app = gateway
    attendee = app.other_users[0].upn
    body = _calendar_body(
        app,
        attendees=[{"upn": attendee}, {"upn": "parent@example.org", "optional": True}],
        body="Bring your portfolio.",
        location="Room 4",
        lobby_bypass_scope="organization",
    )
    created = http.post("/v1/meetings", json=body, headers=_auth(keys["booking"], "cal-1"))
    assert created.status_code == 201, created.text
    meeting = created.json()
    assert meeting["placement"] == "calendar" and meeting["kind"] == "singleInstance"
    assert meeting["graph_event_id"] and meeting["web_link"] and meeting["ical_uid"]
    assert meeting["join_url"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert meeting["lobby_bypass_scope"] == "organization" and meeting["location"] == "Room 4"
    assert [(a["upn"], a["optional"]) for a in meeting["attendees"]] == [
        (attendee, False),
        ("parent@example.org", True),
    ]
    replay = http.post("/v1/meetings", json=body, headers=_auth(keys["booking"], "cal-1"))
    assert replay.status_code == 200 and replay.json()["id"] == meeting["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"

    auth = _auth(keys["booking"])
    got = http.get(f"/v1/meetings/{meeting['id']}", headers=auth)
    assert got.status_code == 200 and got.json()["graph_event_id"] == meeting["graph_event_id"]
    assert got.json()["lobby_bypass_scope"] == "organization"  # kept from the Teams meeting
    found = http.get("/v1/meetings", params={"join_url": meeting["join_url"]}, headers=auth).json()["value"]
    assert [m["id"] for m in found] == [meeting["id"]]

    moved_start = START + dt.timedelta(days=1, hours=1)
    moved = http.patch(
        f"/v1/meetings/{meeting['id']}",
        json={
            "start": _iso(moved_start),
            "end": _iso(moved_start + dt.timedelta(minutes=45)),
            "subject": "Moved",
        },
        headers=auth,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["subject"] == "Moved" and moved.json()["start"].startswith(_iso(moved_start)[:16])

    # what a calendar meeting has no use for: Exchange sends its invitations; it cannot be locked
    _problem(http.get(f"/v1/meetings/{meeting['id']}/invite.ics", headers=auth), "not-for-placement", 409)
    _problem(
        http.delete(f"/v1/meetings/{meeting['id']}", params={"mode": "lock"}, headers=auth),
        "not-for-placement",
        409,
    )
    # another consumer sees nothing of it
    _problem(http.get(f"/v1/meetings/{meeting['id']}", headers=_auth(keys["school"])), "not-found", 404)

    cancelled = http.post(
        f"/v1/meetings/{meeting['id']}/cancel", json={"message": "The candidate withdrew"}, headers=auth
    )
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled", cancelled.text
    log = app.control.request_log(app.tenant_id, app_id=app.client_id)
    cancels = [e for e in log if e["method"] == "POST" and e["path"].endswith("/cancel")]
    assert len(cancels) == 1
    again = http.post(f"/v1/meetings/{meeting['id']}/cancel", headers=auth)  # twice is not an error
    assert again.status_code == 200 and again.json()["state"] == "cancelled"

    http.app.state.audit.drain()
    actions = [entry.action for entry in http.app.state.store.audit()]
    for action in (
        "meeting.create",
        "meeting.get",
        "meeting.update",
        "meeting.invite",
        "meeting.cancel.delete",
    ):
        assert action in actions


def test_a_weekly_series_its_occurrences_paged_one_moved_one_cancelled(gateway):
    http, _admin, keys, app = gateway
    body = _calendar_body(
        app,
        attendees=[{"upn": app.other_users[1].upn}],
        recurrence="RRULE:FREQ=WEEKLY;COUNT=4",
        time_zone="Europe/Berlin",
    )
    created = http.post("/v1/meetings", json=body, headers=_auth(keys["booking"], "class-101"))
    assert created.status_code == 201, created.text
    series = created.json()
    assert series["kind"] == "seriesMaster" and series["recurrence"].startswith("RRULE:FREQ=WEEKLY")

    auth = _auth(keys["booking"])
    window = {"start": _iso(START - dt.timedelta(days=1)), "end": _iso(START + dt.timedelta(days=40))}
    first = http.get(f"/v1/meetings/{series['id']}/occurrences", params={**window, "limit": 3}, headers=auth)
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["value"]) == 3 and page["next"]
    rest = http.get(page["next"], headers=auth).json()
    assert len(rest["value"]) == 1 and rest["next"] is None
    occurrences = page["value"] + rest["value"]
    starts = [dt.datetime.fromisoformat(o["start"]) for o in occurrences]
    assert starts == [START + dt.timedelta(weeks=n) for n in range(4)]

    second, third = occurrences[1]["id"], occurrences[2]["id"]
    moved_start = starts[1] + dt.timedelta(hours=2)
    moved = http.patch(
        f"/v1/meetings/{series['id']}/occurrences/{second}",
        json={"start": _iso(moved_start), "end": _iso(moved_start + dt.timedelta(minutes=30))},
        headers=auth,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["kind"] == "exception"
    cancelled = http.post(
        f"/v1/meetings/{series['id']}/occurrences/{third}/cancel",
        json={"message": "No class this week"},
        headers=auth,
    )
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"], cancelled.text
    after = http.get(f"/v1/meetings/{series['id']}/occurrences", params=window, headers=auth).json()["value"]
    assert [dt.datetime.fromisoformat(o["start"]) for o in after] == [starts[0], moved_start, starts[3]]
    # each change of an occurrence is a meeting.updated about the series, naming the occurrence
    from meetgate.store.tables import webhook_events

    with _admin.store.engine.connect() as conn:
        published = conn.execute(
            sa.select(webhook_events.c.type, webhook_events.c.body)
            .where(webhook_events.c.meeting_id == series["id"])
            .order_by(webhook_events.c.occurred_at)
        ).all()
    occurrence_events = [(t, json.loads(b)["data"]["occurrence"]) for t, b in published]
    assert [(t, o["id"], o["cancelled"]) for t, o in occurrence_events] == [
        ("meeting.updated", second, False),
        ("meeting.updated", third, True),
    ]

    # an id that is no occurrence of this series (here: the series' own event id) is not found
    _problem(
        http.patch(
            f"/v1/meetings/{series['id']}/occurrences/{series['graph_event_id']}",
            json={"subject": "x"},
            headers=auth,
        ),
        "not-found",
        404,
    )
    # a single meeting has no occurrences; a bad window is named
    single = http.post("/v1/meetings", json=_calendar_body(app), headers=_auth(keys["booking"], "single"))
    _problem(
        http.get(f"/v1/meetings/{single.json()['id']}/occurrences", headers=auth), "not-for-placement", 409
    )
    bad = _problem(
        http.get(
            f"/v1/meetings/{series['id']}/occurrences",
            params={"start": window["end"], "end": window["start"]},
            headers=auth,
        ),
        "invalid-request",
        422,
    )
    assert bad["errors"][0]["loc"] == ["query", "end"]

    # the whole series, cancelled with a message
    gone = http.post(f"/v1/meetings/{series['id']}/cancel", json={"message": "Course over"}, headers=auth)
    assert gone.status_code == 200 and gone.json()["state"] == "cancelled"
    _problem(http.get(f"/v1/meetings/{series['id']}/occurrences", headers=auth), "meeting-gone", 409)
    http.app.state.audit.drain()
    actions = {entry.action for entry in http.app.state.store.audit()}
    assert {"meeting.occurrences", "meeting.occurrence.update", "meeting.occurrence.cancel"} <= actions


def test_a_lost_answer_makes_one_event_not_two(gateway, sandbox_control):
    http, _admin, keys, app = gateway
    sandbox_control.clear_faults()
    sandbox_control.set_faults(lost_answer_rate=1.0)  # every write is carried out, then answered 500/504
    try:
        created = http.post(
            "/v1/meetings", json=_calendar_body(app), headers=_auth(keys["booking"], "lost-1")
        )
    finally:
        sandbox_control.clear_faults()
    assert created.status_code in (200, 201), created.text
    replay = http.post("/v1/meetings", json=_calendar_body(app), headers=_auth(keys["booking"], "lost-1"))
    assert replay.status_code == 200 and replay.json()["id"] == created.json()["id"]
    assert replay.json()["graph_event_id"] == created.json()["graph_event_id"]
    log = app.control.request_log(app.tenant_id, app_id=app.client_id)
    posts = [e for e in log if e["method"] == "POST" and e["path"].endswith("/events")]
    assert len(posts) == 1 and posts[0]["fault"]


def test_a_takeover_finds_the_event_a_dead_replica_made(gateway):
    """A replica reserved the key and made the event, then died before saving it: the retry (on any
    replica) takes the reservation over and finds the event by its external id instead of a second."""
    from meetgate.gateway.meeting_shapes import external_id_for, request_hash
    from meetgate.gateway.schemas import MeetingCreate
    from meetgate.graph.client import GraphClient
    from meetgate.graph.models import MeetingRequest

    http, admin, keys, app = gateway
    store = http.app.state.store
    consumer = admin.show("booking")
    body = _calendar_body(app)
    external_id = external_id_for(consumer.id, "taken-over")
    record, _new = store.reserve_meeting(
        consumer_id=consumer.id,
        idempotency_key="taken-over",
        request_hash=request_hash(MeetingCreate(**body)),
        organizer=app.pilot_users[0].upn,
        external_id=external_id,
        placement="calendar",
    )
    with GraphClient(graph_settings_from_profile(app.profile())) as graph:
        made = graph.events.create_or_get(
            app.pilot_users[0].upn, external_id, MeetingRequest(placement="calendar", start=START, end=END)
        )
    store.save_meeting(meeting_id=record.id, state="failed", snapshot=None)

    retry = http.post("/v1/meetings", json=body, headers=_auth(keys["booking"], "taken-over"))
    assert retry.status_code == 200, retry.text
    assert retry.json()["id"] == record.id and retry.json()["graph_event_id"] == made.event.id
    log = app.control.request_log(app.tenant_id, app_id=app.client_id)
    assert len([e for e in log if e["method"] == "POST" and e["path"].endswith("/events")]) == 1


def test_refusals_with_remedies(gateway):
    http, _admin, keys, app = gateway
    outside = app.pilot_users[1].upn  # the Teams policy holds, the mailbox scope does not
    denied = _problem(
        http.post(
            "/v1/meetings",
            json=_calendar_body(app, organizer=outside),
            headers=_auth(keys["booking"], "out-1"),
        ),
        "mailbox-access-denied",
        403,
    )
    assert "mailbox-scope" in denied["remedy"] and denied["graphRequestId"]
    # a standalone meeting for the same organizer still works: only the calendar plane is scoped
    standalone = http.post(
        "/v1/meetings",
        json={"organizer": outside, "subject": "Standalone"},
        headers=_auth(keys["booking"], "out-2"),
    )
    assert standalone.status_code == 201 and standalone.json()["placement"] == "standalone"

    unexpressible = _problem(
        http.post(
            "/v1/meetings",
            json=_calendar_body(app, recurrence="RRULE:FREQ=HOURLY;COUNT=3"),
            headers=_auth(keys["booking"], "rule-1"),
        ),
        "invalid-request",
        422,
    )
    assert unexpressible["errors"][0]["loc"] == ["body", "recurrence"] and "HOURLY" in unexpressible["detail"]
    misplaced = _problem(
        http.post(
            "/v1/meetings",
            json={**_calendar_body(app, recurrence="RRULE:FREQ=DAILY;COUNT=2"), "placement": "standalone"},
            headers=_auth(keys["booking"], "rule-2"),
        ),
        "invalid-request",
        422,
    )
    assert misplaced["errors"][0]["loc"] == ["body", "recurrence"] and "calendar" in misplaced["remedy"]
    roles = _problem(
        http.post(
            "/v1/meetings",
            json=_calendar_body(app, attendees=[{"upn": "x@example.org", "role": "presenter"}]),
            headers=_auth(keys["booking"], "rule-3"),
        ),
        "invalid-request",
        422,
    )
    assert roles["errors"][0]["loc"] == ["body", "attendees", 0, "role"]

    organizer = app.pilot_users[0]
    app.control.request(
        "PATCH",
        f"{EXCHANGE.format(tid=app.tenant_id)}/mailboxes/{organizer.id}",
        json={"mailboxEnabled": False},
    )
    no_mailbox = _problem(
        http.post("/v1/meetings", json=_calendar_body(app), headers=_auth(keys["booking"], "nomb-1")),
        "mailbox-not-enabled",
        422,
    )
    assert "standalone" in no_mailbox["remedy"]


def test_a_consumers_default_placement(gateway):
    http, admin, keys, app = gateway
    body = {
        "organizer": app.pilot_users[0].upn,
        "subject": "Chemistry",
        "start": _iso(START),
        "end": _iso(END),
    }
    by_default = http.post("/v1/meetings", json=body, headers=_auth(keys["school"], "d-1"))
    assert by_default.status_code == 201 and by_default.json()["placement"] == "calendar", by_default.text
    explicit = http.post(
        "/v1/meetings", json={**body, "placement": "standalone"}, headers=_auth(keys["school"], "d-2")
    )
    assert explicit.json()["placement"] == "standalone"
    admin.set_placement("school", "standalone")
    later = http.post("/v1/meetings", json=body, headers=_auth(keys["school"], "d-3"))
    assert later.json()["placement"] == "standalone"
    # a replay keeps the placement the meeting was made in
    replay = http.post("/v1/meetings", json=body, headers=_auth(keys["school"], "d-1"))
    assert replay.status_code == 200 and replay.json()["placement"] == "calendar"
    # a standalone meeting takes no cancellation message and has no occurrences
    auth = _auth(keys["school"])
    _problem(
        http.post(f"/v1/meetings/{later.json()['id']}/cancel", json={"message": "x"}, headers=auth),
        "not-for-placement",
        409,
    )
    _problem(
        http.get(f"/v1/meetings/{later.json()['id']}/occurrences", headers=auth), "not-for-placement", 409
    )
    plain = http.post(f"/v1/meetings/{later.json()['id']}/cancel", headers=auth)
    assert plain.status_code == 200 and plain.json()["state"] == "cancelled"
    # DELETE cancels a calendar meeting too (no message); the event is gone from the calendar
    deleted = http.delete(f"/v1/meetings/{by_default.json()['id']}", headers=auth)
    assert deleted.status_code == 200 and deleted.json()["state"] == "cancelled", deleted.text
    log = app.control.request_log(app.tenant_id, app_id=app.client_id)
    event_id = by_default.json()["graph_event_id"]
    assert [e for e in log if e["method"] == "POST" and e["path"].endswith(f"{event_id}/cancel")]


def test_two_replicas_and_concurrent_retries_make_one_event(sandbox_app, sandbox, tmp_path):
    """Twelve requests with one Idempotency-Key, spread over two gateways sharing one store: one
    event in the organizer's calendar, and every answer is that meeting."""
    import asyncio
    from contextlib import AsyncExitStack

    import httpx

    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no policy engine")
    sandbox_app.scope_calendars(sandbox_app.pilot_users[:1])
    scope = ControlApiPolicyScope(
        sandbox.info.control_url, sandbox_app.tenant_id, sandbox_app.client_id, sandbox_app.ca_bundle
    )
    # a long wait for the first creation: no take-over while it is merely slow (a loaded machine)
    settings = GatewaySettings(
        store_url=f"sqlite:///{tmp_path}/gw.db", policy_cache_seconds=0, pending_wait_seconds=60
    )
    stores = [Store.open(settings.store_url), Store.open(settings.store_url)]
    key = ConsumerAdmin(stores[0], scope).add("booking", organizers=[sandbox_app.pilot_users[0].upn]).api_key
    graph_settings = graph_settings_from_profile(sandbox_app.profile())
    body = _calendar_body(sandbox_app, recurrence="RRULE:FREQ=DAILY;COUNT=3")

    async def run() -> list[httpx.Response]:
        async with AsyncExitStack() as stack:
            clients = []
            for store in stores:
                graph = AsyncGraphClient(graph_settings)
                app = create_app(
                    settings,
                    meetings=graph.meetings,
                    events=graph.events,
                    scope=scope,
                    store=store,
                    on_shutdown=graph.aclose,
                )
                await stack.enter_async_context(app.router.lifespan_context(app))
                transport = httpx.ASGITransport(app=app)
                clients.append(
                    await stack.enter_async_context(
                        httpx.AsyncClient(transport=transport, base_url="http://gw")
                    )
                )
            return await asyncio.gather(
                *(
                    clients[n % 2].post("/v1/meetings", json=body, headers=_auth(key, "series-once"))
                    for n in range(12)
                )
            )

    try:
        answers = asyncio.run(run())
    finally:
        for store in stores:
            store.close()
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.json()["graph_event_id"] for a in answers}) == 1
    assert [a.status_code for a in answers].count(201) == 1
    log = sandbox_app.control.request_log(sandbox_app.tenant_id, app_id=sandbox_app.client_id)
    assert len([e for e in log if e["method"] == "POST" and e["path"].endswith("/events")]) == 1
