"""Every gateway answer carries the security headers; pages get a strict policy of their own that
allows exactly their inline stylesheet or script, by hash."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from gateway_kit import MEETING, make_gateway

from meetgate.gateway.dashboard import hash_admin_key
from meetgate.gateway.settings import GatewaySettings
from meetgate_sandbox.fakes.meetings import InMemoryMeetings

ADMIN = "admin-key-for-tests"
FIXED = {"x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
STRICT = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


class _BrokenMeetings(InMemoryMeetings):
    async def create_or_get(self, organizer, external_id, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")


@pytest.fixture
def gw(tmp_path):
    settings = GatewaySettings(
        store_url=f"sqlite:///{tmp_path}/gw.db",
        policy_cache_seconds=0,
        admin_key_sha256=hash_admin_key(ADMIN),
    )
    gateway = make_gateway(tmp_path, settings)
    with gateway.client:
        yield gateway
    gateway.store.close()


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _assert_secured(resp, *, strict: bool = True) -> str:
    for name, value in FIXED.items():
        assert resp.headers.get(name) == value, (resp.request.url, name)
    policy = resp.headers.get("content-security-policy", "")
    assert policy.startswith(STRICT), (resp.request.url, policy)
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "*" not in policy
    if strict:
        assert policy == STRICT, (resp.request.url, policy)
    return policy


def test_every_json_and_error_answer_carries_the_headers(gw):
    key = gw.headers(gw.booking_key, "sec-1")
    created = gw.client.post("/v1/meetings", json=MEETING, headers=key)
    assert created.status_code == 201
    meeting = created.json()["id"]
    answers = [
        created,
        gw.client.get(f"/v1/meetings/{meeting}", headers=key),
        gw.client.get(f"/v1/meetings/{meeting}/invite.ics", headers=key),
        gw.client.get("/v1/meetings/mtg_" + "0" * 32, headers=key),  # 404 problem
        gw.client.get("/v1/meetings/mtg_" + "0" * 32),  # 401 problem
        gw.client.post("/v1/meetings", json={"subject": 1}, headers=key),  # 422
        gw.client.put("/v1/meetings", headers=key),  # 405
        gw.client.get("/nothing/here"),  # 404 from the router
        gw.client.get("/healthz"),
        gw.client.get("/readyz"),
        gw.client.get("/metrics"),
        gw.client.get("/openapi.json"),
        gw.client.get("/admin/dashboard.json"),  # 401 without the admin key
        gw.client.get("/admin/dashboard.json", headers={"X-Admin-Key": ADMIN}),
    ]
    assert [a.status_code for a in answers] == [
        201,
        200,
        200,
        404,
        401,
        422,
        405,
        404,
        200,
        200,
        200,
        200,
        401,
        200,
    ]
    for resp in answers:
        _assert_secured(resp)


def test_the_observers_own_500_carries_the_headers(tmp_path):
    gw = make_gateway(tmp_path)
    gw.client.app.state.service.meetings = _BrokenMeetings()
    with gw.client:
        resp = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "boom"))
        assert resp.status_code == 500
        _assert_secured(resp)
    gw.store.close()


def test_the_dashboard_allows_only_its_own_stylesheet(gw):
    resp = gw.client.get("/admin/dashboard", headers={"X-Admin-Key": ADMIN})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    policy = _assert_secured(resp, strict=False)
    [stylesheet] = re.findall(r"<style>(.*?)</style>", resp.text, re.DOTALL)
    assert policy == f"{STRICT}; style-src {_sha256(stylesheet)}"
    # nothing the policy would block: no scripts, no inline style attributes, nothing loaded
    assert "<script" not in resp.text and " style=" not in resp.text
    assert not re.search(r"<(link|img|iframe|object)\b", resp.text)


def test_swagger_ui_gets_its_cdn_and_its_inline_script_nothing_else(gw):
    resp = gw.client.get("/docs")
    assert resp.status_code == 200
    policy = _assert_secured(resp, strict=False)
    [inline] = re.findall(r"<script>(.*?)</script>", resp.text, re.DOTALL)
    assert f"script-src {_sha256(inline)} https://cdn.jsdelivr.net;" in policy
    assert "style-src https://cdn.jsdelivr.net;" in policy and "connect-src 'self'" in policy
    assert gw.client.get("/redoc").status_code == 404  # it would need inline styles and web fonts
