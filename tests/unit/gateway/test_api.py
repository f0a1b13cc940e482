"""Every endpoint and every problem type, against the in-memory Graph fake."""

from __future__ import annotations

import datetime as dt
import json

from fastapi.testclient import TestClient
from gateway_kit import MEETING, make_gateway

from meetgate.gateway import keys
from meetgate.gateway.app import create_app
from meetgate.gateway.consumers import ConsumerAdmin
from meetgate.gateway.limits import InMemoryLimiter
from meetgate.gateway.problems import CATALOGUE, TYPE_BASE
from meetgate.gateway.scope import StaticPolicyScope
from meetgate.gateway.settings import GatewaySettings
from meetgate.graph.errors import (
    AccessPolicyMissing,
    AuthenticationError,
    BadRequestError,
    ServiceError,
    ThrottledError,
    TokenServiceUnavailable,
    TransportError,
)
from meetgate.store import Store
from meetgate_sandbox.fakes.meetings import InMemoryMeetings


def _problem(resp, slug: str, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["type"] == TYPE_BASE + slug
    assert body["status"] == status
    assert body["remedy"]
    assert body["requestId"] == resp.headers["x-request-id"]
    return body


def test_create_is_idempotent_and_get_find_patch_invite_delete(gw):
    h = gw.headers(gw.booking_key, "order-1")
    first = gw.client.post("/v1/meetings", json=MEETING, headers=h)
    assert first.status_code == 201, first.text
    meeting = first.json()
    assert meeting["state"] == "active"
    assert meeting["join_url"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert first.headers["location"] == f"/v1/meetings/{meeting['id']}"

    again = gw.client.post("/v1/meetings", json=MEETING, headers=h)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == meeting["id"]
    assert len(gw.graph.meetings) == 1

    got = gw.client.get(f"/v1/meetings/{meeting['id']}", headers=gw.headers(gw.booking_key))
    assert got.status_code == 200
    assert got.json()["join_url"] == meeting["join_url"]

    found = gw.client.get(
        "/v1/meetings", params={"join_url": meeting["join_url"]}, headers=gw.headers(gw.booking_key)
    )
    assert [m["id"] for m in found.json()["value"]] == [meeting["id"]]

    patched = gw.client.patch(
        f"/v1/meetings/{meeting['id']}",
        json={"subject": "Second interview", "start": "2030-12-02T09:00:00Z", "end": "2030-12-02T10:00:00Z"},
        headers=gw.headers(gw.booking_key),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["subject"] == "Second interview"
    assert patched.json()["start"].startswith("2030-12-02T09:00:00")

    ics = gw.client.get(f"/v1/meetings/{meeting['id']}/invite.ics", headers=gw.headers(gw.booking_key))
    assert ics.status_code == 200
    assert ics.headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VEVENT" in ics.text and "SUMMARY:Second interview" in ics.text
    assert "DTSTART:20301202T090000Z" in ics.text

    locked = gw.client.delete(f"/v1/meetings/{meeting['id']}?mode=lock", headers=gw.headers(gw.booking_key))
    assert locked.json()["state"] == "locked"
    assert locked.json()["lobby_bypass_scope"] == "organizer"
    deleted = gw.client.delete(f"/v1/meetings/{meeting['id']}", headers=gw.headers(gw.booking_key))
    assert deleted.status_code == 200 and deleted.json()["state"] == "cancelled"
    assert gw.graph.meetings == {}
    again = gw.client.delete(f"/v1/meetings/{meeting['id']}", headers=gw.headers(gw.booking_key))
    assert again.status_code == 200
    _problem(
        gw.client.patch(
            f"/v1/meetings/{meeting['id']}", json={"subject": "x"}, headers=gw.headers(gw.booking_key)
        ),
        "meeting-gone",
        409,
    )


def _sequence(gw, meeting_id: str) -> tuple[str, int]:
    ics = gw.client.get(f"/v1/meetings/{meeting_id}/invite.ics", headers=gw.headers(gw.booking_key))
    assert ics.status_code == 200, ics.text
    lines = ics.text.split("\r\n")
    [method] = [line for line in lines if line.startswith("METHOD:")]
    [sequence] = [line for line in lines if line.startswith("SEQUENCE:")]
    return method.removeprefix("METHOD:"), int(sequence.removeprefix("SEQUENCE:"))


def test_invitation_sequence_rises_with_every_change(gw):
    """RFC 5545: calendars take an invitation as newer only when its SEQUENCE is higher, and a CANCEL
    needs a SEQUENCE at least that of the last invitation sent."""
    h = gw.headers(gw.booking_key)
    meeting = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "seq")).json()
    assert _sequence(gw, meeting["id"]) == ("REQUEST", 0)
    gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "seq"))  # a replay
    gw.client.get(f"/v1/meetings/{meeting['id']}", headers=h)  # a read refreshes from Graph
    assert _sequence(gw, meeting["id"]) == ("REQUEST", 0)
    moved = {"start": "2030-12-02T09:00:00Z", "end": "2030-12-02T10:00:00Z"}
    assert gw.client.patch(f"/v1/meetings/{meeting['id']}", json=moved, headers=h).status_code == 200
    assert _sequence(gw, meeting["id"]) == ("REQUEST", 1)
    assert gw.client.delete(f"/v1/meetings/{meeting['id']}?mode=lock", headers=h).status_code == 200
    assert gw.client.delete(f"/v1/meetings/{meeting['id']}?mode=lock", headers=h).status_code == 200
    assert _sequence(gw, meeting["id"]) == ("REQUEST", 2)  # locking twice is one change
    assert gw.client.delete(f"/v1/meetings/{meeting['id']}", headers=h).status_code == 200
    assert gw.client.delete(f"/v1/meetings/{meeting['id']}", headers=h).status_code == 200
    assert _sequence(gw, meeting["id"]) == ("CANCEL", 3)


def test_find_by_join_url_ignores_surrounding_whitespace(gw):
    meeting = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "ws")).json()
    for pasted in (f"  {meeting['join_url']}\n", f"\t{meeting['join_url']} "):
        found = gw.client.get(
            "/v1/meetings", params={"join_url": pasted}, headers=gw.headers(gw.booking_key)
        ).json()
        assert [m["id"] for m in found["value"]] == [meeting["id"]]
    inner = meeting["join_url"].replace("meetup-join/", "meetup-join/ ")  # whitespace inside is kept
    assert gw.client.get(
        "/v1/meetings", params={"join_url": inner}, headers=gw.headers(gw.booking_key)
    ).json() == {"value": []}


def test_same_key_different_body_is_refused(gw):
    h = gw.headers(gw.booking_key, "order-2")
    assert gw.client.post("/v1/meetings", json=MEETING, headers=h).status_code == 201
    body = _problem(
        gw.client.post("/v1/meetings", json={**MEETING, "subject": "Other"}, headers=h),
        "idempotency-conflict",
        409,
    )
    assert body["meetingId"].startswith("mtg_")
    assert len(gw.graph.meetings) == 1


def test_missing_idempotency_key_and_invalid_bodies(gw):
    _problem(
        gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key)),
        "idempotency-key-required",
        400,
    )
    h = gw.headers(gw.booking_key, "order-3")
    body = _problem(
        gw.client.post("/v1/meetings", json={**MEETING, "end": "2030-12-01T08:00:00Z"}, headers=h),
        "invalid-request",
        422,
    )
    assert body["errors"][0]["loc"] == ["body", "end"]
    assert body["detail"].startswith("end: end 2030-12-01T08:00:00Z is not after start")
    body = _problem(
        gw.client.post("/v1/meetings", json={**MEETING, "start": "2030-12-01T09:00:00"}, headers=h),
        "invalid-request",
        422,
    )
    assert body["errors"][0]["loc"] == ["body", "start"]
    _problem(
        gw.client.post("/v1/meetings", json={**MEETING, "attendees": [{"upn": "nope"}]}, headers=h),
        "invalid-request",
        422,
    )
    _problem(
        gw.client.post("/v1/meetings", json={**MEETING, "surprise": 1}, headers=h), "invalid-request", 422
    )
    _problem(
        gw.client.post(
            "/v1/meetings", content=b"{not json", headers={**h, "content-type": "application/json"}
        ),
        "invalid-request",
        422,
    )
    _problem(
        gw.client.patch("/v1/meetings/mtg_" + "0" * 32, json={"start": "2030-12-01T09:00:00Z"}, headers=h),
        "invalid-request",
        422,
    )
    assert gw.graph.calls == []


def test_meeting_rules_name_the_field_and_say_what_to_do(gw):
    """The library's meeting rules, field by field: ``loc`` names the field, ``msg`` carries the advice."""
    h = gw.headers(gw.booking_key, "rules-1")

    def refused(body, path="/v1/meetings", method="post"):
        answer = getattr(gw.client, method)(path, json=body, headers=h)
        problem = _problem(answer, "invalid-request", 422)
        return problem, {tuple(e["loc"]): e["msg"] for e in problem["errors"]}

    problem, errors = refused({**MEETING, "start": "2030-12-01T09:00:00"})
    assert "add z (utc) or an offset such as +02:00" in errors[("body", "start")].lower()
    assert "+02:00" in problem["remedy"]  # the rule's remedy, not only "fix the fields"
    _, errors = refused({**MEETING, "end": "2030-12-01T08:00:00Z"})
    assert list(errors) == [("body", "end")] and "not after start" in errors[("body", "end")]
    _, errors = refused({**MEETING, "subject": "x" * 256})
    assert "256 characters, more than 255" in errors[("body", "subject")]
    _, errors = refused({**MEETING, "subject": "Interview\x00\x1b[31m"})
    assert "U+0000, U+001B" in errors[("body", "subject")]
    _, errors = refused({**MEETING, "start": "2020-12-01T09:00:00Z", "end": "2020-12-01T09:30:00Z"})
    assert "in the past" in errors[("body", "start")] and '"allowPast": true' in errors[("body", "start")]
    _, errors = refused({"start": "2030-12-01T09:00:00Z"}, "/v1/meetings/mtg_" + "0" * 32, "patch")
    assert "needs both start and end" in errors[("body", "end")]
    assert gw.graph.calls == []


def test_allow_past_creates_and_moves_a_meeting_into_the_past(gw):
    past = {"start": "2020-12-01T09:00:00Z", "end": "2020-12-01T09:30:00Z"}
    h = gw.headers(gw.booking_key, "past-1")
    created = gw.client.post("/v1/meetings", json={**MEETING, **past, "allowPast": True}, headers=h)
    assert created.status_code == 201, created.text
    assert created.json()["start"].startswith("2020-12-01T09:00")
    # allowPast is a permission, not part of the request: a replay without it is the same request
    # (it is refused by the rules before the idempotency key is looked at, as any past start is)
    again = gw.client.post("/v1/meetings", json={**MEETING, **past, "allowPast": True}, headers=h)
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    meeting_id = created.json()["id"]
    patch = gw.client.patch(f"/v1/meetings/{meeting_id}", json=past, headers=gw.headers(gw.booking_key))
    _problem(patch, "invalid-request", 422)
    moved = gw.client.patch(
        f"/v1/meetings/{meeting_id}",
        json={"start": "2021-01-01T09:00:00Z", "end": "2021-01-01T10:00:00Z", "allowPast": True},
        headers=gw.headers(gw.booking_key),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["start"].startswith("2021-01-01T09:00")


def test_invite_ics_comes_from_the_one_writer_and_has_no_control_characters(gw):
    """A subject changed outside meetgate (here: in the stand-in for Graph) with NUL and ESC is refreshed
    into the invitation: the library's writer escapes it and drops what RFC 5545 forbids."""
    created = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "ctl-1"))
    assert created.status_code == 201, created.text
    meeting = created.json()
    organizer, stored = gw.graph.meetings[meeting["graph_meeting_id"]]
    gw.graph.meetings[meeting["graph_meeting_id"]] = (
        organizer,
        stored.model_copy(update={"subject": "Inter\x00view\x1b[2J; moved"}),
    )
    ics = gw.client.get(f"/v1/meetings/{meeting['id']}/invite.ics", headers=gw.headers(gw.booking_key))
    assert ics.status_code == 200, ics.text
    assert "\x00" not in ics.text and "\x1b" not in ics.text
    assert "SUMMARY:Interview[2J\\; moved" in ics.text.replace("\r\n ", "")
    assert f"UID:{meeting['id']}@meetgate" in ics.text  # the UID invitations sent before carry
    assert "PRODID:-//meetgate//Teams online meetings//EN" in ics.text  # graph/ics.py's
    assert "X-MICROSOFT-SKYPETEAMSMEETINGURL:" in ics.text


def test_authentication(gw):
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Bearer mgk_0123456789abcdef_wrong"},
    ):
        refused = gw.client.get("/v1/meetings/mtg_" + "0" * 32, headers=headers)
        body = _problem(refused, "unauthenticated", 401)
        assert "mgk_" not in json.dumps(body)
        assert refused.headers["www-authenticate"] == 'Bearer realm="meetgate"'  # RFC 9110: a 401 names it
    ok = gw.client.get("/v1/meetings/mtg_" + "0" * 32, headers={"X-API-Key": gw.booking_key})
    _problem(ok, "not-found", 404)
    tampered = gw.booking_key[:-2] + ("aa" if not gw.booking_key.endswith("aa") else "bb")
    _problem(
        gw.client.get("/v1/meetings/mtg_" + "0" * 32, headers=gw.headers(tampered)), "unauthenticated", 401
    )


def test_revocation_and_rotation_take_effect_at_once(gw):
    h = gw.headers(gw.booking_key, "order-4")
    assert gw.client.post("/v1/meetings", json=MEETING, headers=h).status_code == 201
    gw.admin.revoke("booking")
    body = _problem(gw.client.post("/v1/meetings", json=MEETING, headers=h), "unauthenticated", 401)
    assert "revoked" in body["detail"]
    issued = gw.admin.rotate_key("booking")
    _problem(gw.client.post("/v1/meetings", json=MEETING, headers=h), "unauthenticated", 401)
    replay = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(issued.api_key, "order-4"))
    assert replay.status_code == 200  # the consumer keeps its meetings across a key rotation


def test_a_revoked_key_is_audited_with_its_consumer_and_an_unknown_key_without(gw):
    booking = gw.store.consumer(name_or_id="booking")
    gw.admin.revoke("booking")
    revoked = gw.client.get("/v1/meetings/mtg_" + "0" * 32, headers=gw.headers(gw.booking_key))
    _problem(revoked, "unauthenticated", 401)
    wrong_secret = gw.booking_key[:-2] + ("aa" if not gw.booking_key.endswith("aa") else "bb")
    guessed = gw.client.get("/v1/meetings/mtg_" + "0" * 32, headers=gw.headers(wrong_secret))
    _problem(guessed, "unauthenticated", 401)
    gw.client.app.state.audit.drain()
    rows = {a.request_id: a for a in gw.store.audit()}
    named = rows[revoked.headers["x-request-id"]]
    assert (named.consumer_id, named.consumer_name, named.outcome) == (
        booking.id,
        "booking",
        "unauthenticated",
    )
    anonymous = rows[guessed.headers["x-request-id"]]  # the right key id, the wrong secret: nobody's
    assert (anonymous.consumer_id, anonymous.consumer_name) == (None, None)
    _, secret = keys.parse(gw.booking_key)
    assert all(secret not in repr(row) and gw.booking_key not in repr(row) for row in rows.values())


def test_consumer_isolation(gw):
    created = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "k1")).json()
    crm = gw.headers(gw.crm_key)
    _problem(gw.client.get(f"/v1/meetings/{created['id']}", headers=crm), "not-found", 404)
    _problem(
        gw.client.patch(f"/v1/meetings/{created['id']}", json={"subject": "x"}, headers=crm), "not-found", 404
    )
    _problem(gw.client.delete(f"/v1/meetings/{created['id']}", headers=crm), "not-found", 404)
    _problem(gw.client.get(f"/v1/meetings/{created['id']}/invite.ics", headers=crm), "not-found", 404)
    assert gw.client.get("/v1/meetings", params={"join_url": created["join_url"]}, headers=crm).json() == {
        "value": []
    }
    body = _problem(
        gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.crm_key, "k1")),
        "organizer-not-allowed",
        403,
    )
    assert created["id"] not in json.dumps(body)
    # the same Idempotency-Key under another consumer is another meeting
    mine = gw.client.post(
        "/v1/meetings",
        json={**MEETING, "organizer": "carol@contoso.test"},
        headers=gw.headers(gw.crm_key, "k1"),
    )
    assert mine.status_code == 201 and mine.json()["id"] != created["id"]
    assert (
        gw.client.get(f"/v1/meetings/{created['id']}", headers=gw.headers(gw.booking_key)).status_code == 200
    )


def test_organizer_leaving_the_policy_scope_is_refused_at_request_time(tmp_path):
    gw = make_gateway(tmp_path)
    with gw.client:
        created = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "k")).json()
        gw.scope._organizers = frozenset({"bob@contoso.test", "carol@contoso.test"})
        _problem(
            gw.client.get(f"/v1/meetings/{created['id']}", headers=gw.headers(gw.booking_key)),
            "organizer-outside-policy",
            403,
        )
        _problem(
            gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "k2")),
            "organizer-outside-policy",
            403,
        )


def test_graph_errors_become_problems_with_graph_request_id(gw):
    h = gw.headers(gw.booking_key)
    gw.graph.fail_next = ThrottledError(
        "Please retry again later.", status=429, request_id="r-429", retry_after=7.5
    )
    body = _problem(
        gw.client.post("/v1/meetings", json=MEETING, headers={**h, "Idempotency-Key": "t1"}),
        "graph-throttled",
        503,
    )
    assert body["graphRequestId"]
    gw.graph.fail_next = TokenServiceUnavailable("token endpoint kept failing", status=503, retry_after=2.2)
    resp = gw.client.post("/v1/meetings", json=MEETING, headers={**h, "Idempotency-Key": "t1"})
    _problem(resp, "identity-unavailable", 503)
    assert resp.headers["Retry-After"] == "3"
    gw.graph.fail_next = ServiceError("boom", status=503)
    _problem(
        gw.client.post("/v1/meetings", json=MEETING, headers={**h, "Idempotency-Key": "t1"}),
        "graph-unavailable",
        502,
    )
    # the retry with the same key completes the pending creation
    done = gw.client.post("/v1/meetings", json=MEETING, headers={**h, "Idempotency-Key": "t1"})
    assert done.status_code == 201
    # Graph's own policy refusal (scope check passed, Graph disagrees)
    gw.graph.scope = None
    gw.graph.fail_next = AccessPolicyMissing("No application access policy found for this app", status=403)
    _problem(
        gw.client.post("/v1/meetings", json=MEETING, headers={**h, "Idempotency-Key": "t2"}),
        "graph-access-policy-missing",
        403,
    )
    gw.graph.fail_next = BadRequestError("Invalid attendee", status=400)
    _problem(
        gw.client.post("/v1/meetings", json=MEETING, headers={**h, "Idempotency-Key": "t2"}),
        "graph-bad-request",
        422,
    )
    gw.graph.fail_next = AuthenticationError(
        "AADSTS700027: secret detail about our certificate", aadsts_code=700027
    )
    body = _problem(
        gw.client.post("/v1/meetings", json=MEETING, headers={**h, "Idempotency-Key": "t2"}),
        "graph-auth-failed",
        502,
    )
    assert "AADSTS" not in json.dumps(body)
    # no token at all (certificate removed or expired) is counted apart from calls Graph never answered
    gw.graph.fail_next = TransportError("connection refused")
    gw.client.post("/v1/meetings", json=MEETING, headers={**h, "Idempotency-Key": "t2"})
    text = gw.client.get("/metrics").text
    assert 'meetgate_gateway_graph_calls_total{operation="create_or_get",status="auth"} 1.0' in text
    assert 'meetgate_gateway_graph_calls_total{operation="create_or_get",status="error"} 1.0' in text
    assert 'meetgate_gateway_graph_calls_total{operation="create_or_get",status="503"} 1.0' in text
    assert 'meetgate_gateway_graph_calls_total{operation="create_or_get",status="identity"} 1.0' in text


def test_deleting_a_meeting_already_deleted_in_teams_records_it_cancelled(gw):
    h = gw.headers(gw.booking_key)
    made = gw.client.post("/v1/meetings", json=MEETING, headers={**h, "Idempotency-Key": "gone-1"}).json()
    gw.graph.meetings.clear()  # the organizer deleted it in Teams
    locked = gw.client.delete(f"/v1/meetings/{made['id']}?mode=lock", headers=h)
    _problem(locked, "not-found", 404)  # nothing left to lock
    deleted = gw.client.delete(f"/v1/meetings/{made['id']}?mode=delete", headers=h)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["state"] == "cancelled"
    again = gw.client.delete(f"/v1/meetings/{made['id']}?mode=delete", headers=h)
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    # an organizer Graph does not know is not a meeting that is gone
    made = gw.client.post("/v1/meetings", json=MEETING, headers={**h, "Idempotency-Key": "gone-2"}).json()
    gw.graph.users = {"bob@contoso.test"}
    _problem(gw.client.delete(f"/v1/meetings/{made['id']}", headers=h), "not-found", 404)


def test_a_long_pause_asked_by_graph_is_answered_at_once(tmp_path):
    """Graph's Retry-After pauses the app's Graph client; beyond the gateway's own wait limit a
    request is refused with graph-throttled straight away instead of hanging until the pause ends."""
    pause = [100.0]
    settings = GatewaySettings(store_url=f"sqlite:///{tmp_path}/gw.db", policy_cache_seconds=0)
    store = Store.open(settings.store_url)
    scope = StaticPolicyScope(["alice@contoso.test"])
    graph = InMemoryMeetings(scope=scope)
    key = ConsumerAdmin(store, scope).add("booking", organizers=["alice@contoso.test"]).api_key
    app = create_app(
        settings,
        meetings=graph,
        scope=scope,
        store=store,
        limiter=InMemoryLimiter(),
        graph_pause=lambda: pause[0],
    )
    h = {"Authorization": f"Bearer {key}", "Idempotency-Key": "p1"}
    with TestClient(app) as client:
        refused = client.post("/v1/meetings", json=MEETING, headers=h)
        _problem(refused, "graph-throttled", 503)
        assert refused.headers["retry-after"] == "100"
        assert graph.calls == []
        pause[0] = 2.5  # a short pause is waited out by the client, as before
        assert client.post("/v1/meetings", json=MEETING, headers=h).status_code == 201
        metrics = client.get("/metrics").text
    assert 'meetgate_gateway_throttled_total{limit="graph"} 1.0' in metrics


def test_rate_limit_and_daily_quota(gw):
    crm = {"organizer": "carol@contoso.test"}
    statuses = [
        gw.client.post("/v1/meetings", json=crm, headers=gw.headers(gw.crm_key, f"q{i}")).status_code
        for i in range(4)
    ]
    assert statuses == [201, 201, 201, 429]  # daily quota 3
    for _ in range(4):  # 8 requests per minute for crm
        assert (
            gw.client.get("/v1/meetings/mtg_" + "0" * 32, headers=gw.headers(gw.crm_key)).status_code == 404
        )
    last = gw.client.post("/v1/meetings", json=crm, headers=gw.headers(gw.crm_key, "q9"))
    _problem(last, "rate-limited", 429)
    assert int(last.headers["retry-after"]) >= 1
    # another consumer is not affected
    assert (
        gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "q9")).status_code
        == 201
    )


def test_quota_problem_type(tmp_path):
    gw = make_gateway(tmp_path)
    with gw.client:
        gw.admin.add("small", organizers=["dave@contoso.test"], daily_quota=1)
        key = gw.admin.rotate_key("small").api_key
        body = {"organizer": "dave@contoso.test"}
        assert gw.client.post("/v1/meetings", json=body, headers=gw.headers(key, "a")).status_code == 201
        assert (
            gw.client.post("/v1/meetings", json=body, headers=gw.headers(key, "a")).status_code == 200
        )  # replay: free
        refused = gw.client.post("/v1/meetings", json=body, headers=gw.headers(key, "b"))
        _problem(refused, "quota-exceeded", 429)
        # the quota starts again at UTC midnight: that is when a retry can pass, not in an hour
        now = dt.datetime.now(dt.UTC)
        midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        assert abs(int(refused.headers["retry-after"]) - (midnight - now).total_seconds()) < 5


def test_health_ready_metrics_and_audit(gw):
    assert gw.client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = gw.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"store": "ok"}
    gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "m1"))
    gw.client.get("/v1/meetings/mtg_" + "1" * 32, headers=gw.headers(gw.crm_key))
    text = gw.client.get("/metrics").text
    assert 'meetgate_gateway_meetings_created_total{consumer="booking"} 1.0' in text
    assert 'meetgate_gateway_requests_total{method="POST",route="/v1/meetings",status="201"} 1.0' in text
    assert 'meetgate_gateway_graph_calls_total{operation="create_or_get",status="ok"} 1.0' in text
    gw.client.app.state.audit.drain()
    audit = gw.store.audit()
    assert [(a.consumer_name, a.action, a.http_status, a.outcome) for a in audit] == [
        ("crm", "meeting.get", 404, "not-found"),
        ("booking", "meeting.create", 201, "ok"),
    ]
    assert audit[1].organizer == "alice@contoso.test" and audit[1].graph_status == 200
    assert audit[1].client_ip == "testclient"


def test_unknown_route_is_a_problem(gw):
    resp = gw.client.get("/v2/nothing")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")


def test_catalogue_is_stable():
    assert {k.slug: k.status for k in CATALOGUE.values()} == {
        "invalid-request": 422,
        "idempotency-key-required": 400,
        "unauthenticated": 401,
        "organizer-not-allowed": 403,
        "organizer-outside-policy": 403,
        "mailbox-access-denied": 403,
        "not-organizer": 403,
        "mailbox-not-enabled": 422,
        "not-for-placement": 409,
        "graph-access-policy-missing": 403,
        "not-found": 404,
        "idempotency-conflict": 409,
        "meeting-gone": 409,
        "webhook-not-found": 404,
        "webhook-url-refused": 422,
        "webhook-invalid": 422,
        "artifact-kind-disabled": 403,
        "artifact-permission-missing": 403,
        "calendar-meeting-required": 409,
        "channel-meeting-unsupported": 409,
        "transcripts-disabled": 403,
        "speaker-attribution-disabled": 403,
        "artifact-not-ready": 404,
        "range-not-satisfiable": 416,
        "rate-limited": 429,
        "quota-exceeded": 429,
        "graph-bad-request": 422,
        "graph-throttled": 503,
        "graph-unavailable": 502,
        "identity-unavailable": 503,
        "graph-auth-failed": 502,
        "store-unavailable": 503,
        "internal": 500,
    }


def test_a_wrong_method_answers_405_allowing_every_method_of_the_path(gw):
    cases = {
        "/v1/meetings": ("PUT", {"GET", "POST"}),
        f"/v1/meetings/mtg_{'0' * 32}": ("PUT", {"GET", "PATCH", "DELETE"}),
        "/healthz": ("POST", {"GET"}),
    }
    for path, (method, allowed) in cases.items():
        resp = gw.client.request(method, path)
        assert resp.status_code == 405, (path, resp.text)
        assert set(resp.headers["Allow"].split(", ")) == allowed, (path, resp.headers["Allow"])
        assert resp.json()["type"] == "about:blank"
