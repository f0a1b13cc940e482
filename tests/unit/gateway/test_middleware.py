"""What every request gets on its way through: request id, client address, metrics, audit, log line,
and the 500 problem for an unexpected error."""

from __future__ import annotations

import logging
import uuid

from gateway_kit import MEETING, make_gateway

from meetgate.gateway.logs import LOGGER_NAME
from meetgate.gateway.settings import GatewaySettings
from meetgate_sandbox.fakes.meetings import InMemoryMeetings


def _audit(gw):
    gw.client.app.state.audit.drain()
    return gw.store.audit()


def test_request_id_comes_from_the_caller_when_well_formed(gw):
    resp = gw.client.get(
        "/v1/meetings/mtg_" + "0" * 32, headers={**gw.headers(gw.booking_key), "X-Request-Id": "abc.DEF-1_2"}
    )
    assert resp.status_code == 404
    assert resp.headers["x-request-id"] == "abc.DEF-1_2"
    assert resp.json()["requestId"] == "abc.DEF-1_2"  # the exception handlers see the request's context

    for bad in ("has space", "x" * 65, "semi;colon"):
        resp = gw.client.get("/v1/meetings/mtg_" + "0" * 32, headers={"X-Request-Id": bad})
        assert resp.status_code == 401
        assert str(uuid.UUID(resp.headers["x-request-id"])) == resp.headers["x-request-id"]
        assert resp.json()["requestId"] == resp.headers["x-request-id"]
    assert [a.request_id for a in _audit(gw)][-1] == "abc.DEF-1_2"


def test_every_answer_carries_a_request_id(gw):
    for path in ("/healthz", "/metrics", "/v2/nothing", "/openapi.json"):
        assert gw.client.get(path).headers["x-request-id"]
    created = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "r1"))
    assert created.status_code == 201
    assert created.headers["x-request-id"] and created.headers["location"].startswith("/v1/meetings/mtg_")


def test_audit_and_log_only_for_the_api(gw, caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        gw.client.get("/healthz")
        gw.client.get("/v2/nothing")
        created = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "r2"))
    [entry] = _audit(gw)
    assert (entry.action, entry.http_status, entry.outcome, entry.consumer_name) == (
        "meeting.create",
        201,
        "ok",
        "booking",
    )
    assert entry.request_id == created.headers["x-request-id"] and entry.latency_ms > 0
    assert entry.meeting_id == created.json()["id"] and entry.graph_status == 200
    [line] = [r for r in caplog.records if r.getMessage() == "request"]
    assert line.__dict__["route"] == "/v1/meetings" and line.__dict__["status"] == 201
    assert line.__dict__["request_id"] == entry.request_id and line.__dict__["outcome"] == "ok"
    assert line.__dict__["consumer"] == "booking" and line.__dict__["action"] == "meeting.create"


def test_metrics_count_by_route_template(gw):
    gw.client.get("/v1/meetings/mtg_" + "1" * 32, headers=gw.headers(gw.booking_key))
    gw.client.get("/v1/meetings/mtg_" + "2" * 32, headers=gw.headers(gw.booking_key))
    gw.client.get("/v2/nothing")
    text = gw.client.get("/metrics").text
    assert (
        'meetgate_gateway_requests_total{method="GET",route="/v1/meetings/{meeting_id}",status="404"} 2.0'
        in text
    )
    assert 'meetgate_gateway_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert (
        'meetgate_gateway_request_seconds_count{method="GET",route="/v1/meetings/{meeting_id}"} 2.0' in text
    )


def _client_ips(tmp_path, settings_kw, peer, forwarded):
    """The audited client IP of one request from ``peer`` with these X-Forwarded-For headers."""
    from fastapi.testclient import TestClient

    settings = GatewaySettings(store_url=f"sqlite:///{tmp_path}/gw.db", **settings_kw)
    gw = make_gateway(tmp_path, settings)
    client = TestClient(gw.client.app, client=(peer, 50000))
    headers = [("authorization", f"Bearer {gw.booking_key}")] + [("x-forwarded-for", v) for v in forwarded]
    with client:
        client.get("/v1/meetings/mtg_" + "0" * 32, headers=headers)
        client.app.state.audit.drain()
        ips = [a.client_ip for a in gw.store.audit()]
    gw.store.close()
    return ips


def test_forwarded_for_off_is_the_socket_peer_even_from_a_local_proxy(tmp_path):
    assert _client_ips(tmp_path, {}, "127.0.0.1", ["203.0.113.7"]) == ["127.0.0.1"]


def test_forwarded_for_takes_the_right_most_address_that_is_not_a_trusted_proxy(tmp_path):
    # the client wrote "198.51.100.66" itself; the local proxy appended the address it saw
    ips = _client_ips(tmp_path, {"trust_forwarded_for": True}, "127.0.0.1", ["198.51.100.66, 203.0.113.7"])
    assert ips == ["203.0.113.7"]


def test_a_forged_left_most_entry_is_never_the_client(tmp_path):
    trusted = {"trust_forwarded_for": True, "forwarded_allow_ips": ("127.0.0.1", "10.0.0.0/8")}
    # two proxies (an edge at 10.1.2.3, then the local one): both skipped, the forged entries never reached
    two_hops = ["1.1.1.1, 8.8.8.8, 203.0.113.9, 10.1.2.3"]
    assert _client_ips(tmp_path / "a", trusted, "127.0.0.1", two_hops) == ["203.0.113.9"]
    # a second header is the same list continued (RFC 9110): the client's own header comes first
    split = ["1.1.1.1", "203.0.113.9"]
    assert _client_ips(tmp_path / "b", trusted, "127.0.0.1", split) == ["203.0.113.9"]
    # a peer that is not a trusted proxy is the client, whatever it claims
    assert _client_ips(tmp_path / "c", trusted, "192.0.2.44", ["203.0.113.9"]) == ["192.0.2.44"]
    # garbage right of the trusted hops ends the walk at the last address a trusted proxy vouched for
    assert _client_ips(tmp_path / "d", trusted, "127.0.0.1", ["203.0.113.9, unknown"]) == ["127.0.0.1"]


def test_client_address_reads_ports_brackets_and_mapped_addresses():
    from meetgate.gateway.forwarded import TrustedProxies, client_address

    trusted = TrustedProxies.parse("127.0.0.1, ::1, 10.0.0.0/8")
    assert client_address("::1", ["[2001:db8::5]:443"], trusted) == "2001:db8::5"
    assert client_address("::ffff:127.0.0.1", ["203.0.113.7:5100"], trusted) == "203.0.113.7"
    assert client_address("127.0.0.1", ["10.0.0.1, 10.0.0.2"], trusted) == "10.0.0.1"  # all trusted
    assert client_address("127.0.0.1", [], trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", ["203.0.113.7"], None) == "127.0.0.1"
    import re

    import pytest

    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33' is neither an IP address nor a network")):
        TrustedProxies.parse("127.0.0.1,10.0.0.0/33")


class _BrokenMeetings(InMemoryMeetings):
    async def create_or_get(self, organizer, external_id, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")


def test_unexpected_error_is_a_500_problem_with_the_request_id(tmp_path, caplog):
    gw = make_gateway(tmp_path)
    gw.client.app.state.service.meetings = _BrokenMeetings()
    with gw.client, caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        resp = gw.client.post(
            "/v1/meetings",
            json=MEETING,
            headers={**gw.headers(gw.booking_key, "boom"), "X-Request-Id": "req-500"},
        )
        assert resp.status_code == 500
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.headers["x-request-id"] == "req-500"
        body = resp.json()
        assert body["type"] == "urn:meetgate:problem:internal" and body["requestId"] == "req-500"
        assert body["instance"] == "/v1/meetings" and "a bug" not in resp.text
        [entry] = _audit(gw)
        assert (entry.http_status, entry.outcome, entry.action) == (500, "internal", "meeting.create")
        assert 'route="/v1/meetings",status="500"} 1.0' in gw.client.get("/metrics").text
    [error] = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert error.__dict__["request_id"] == "req-500" and error.exc_info is not None
    gw.store.close()


def test_log_line_tells_the_operator_what_graph_or_entra_said(gw, caplog):
    from meetgate.graph.errors import AuthenticationError

    gw.graph.fail_next = AuthenticationError(
        "the token endpoint refused app 1111: AADSTS700027: key not found", aadsts_code=700027
    )
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        failed = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "auth-1"))
        done = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "auth-2"))
    assert failed.status_code == 502 and "AADSTS" not in failed.text  # the consumer sees only the problem
    assert done.status_code == 201
    first, second = [r.__dict__ for r in caplog.records if r.getMessage() == "request"]
    assert first["outcome"] == "graph-auth-failed" and first["graph_error"] == "AuthenticationError"
    assert "AADSTS700027: key not found" in first["graph_error_message"]
    assert "graph_error" not in second
