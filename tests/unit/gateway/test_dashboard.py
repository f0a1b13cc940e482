"""The dashboard behind the admin key: HTML with inline SVG charts, and its JSON data."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from gateway_kit import MEETING, make_gateway

from meetgate.gateway.dashboard import dashboard_html, hash_admin_key, svg_bars
from meetgate.gateway.settings import GatewaySettings
from meetgate.store.monitoring import MonitorRepository

KEY = "admin-key-for-tests"


@pytest.fixture
def gw(tmp_path):
    settings = GatewaySettings(
        store_url=f"sqlite:///{tmp_path}/gw.db", policy_cache_seconds=0, admin_key_sha256=hash_admin_key(KEY)
    )
    gateway = make_gateway(tmp_path, settings)
    with gateway.client:
        yield gateway
    gateway.store.close()


def _seed(gw) -> None:
    for i in range(3):
        r = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, f"k{i}"))
        assert r.status_code == 201
    denied = {**MEETING, "organizer": "carol@contoso.test"}  # not on booking's allowlist
    assert (
        gw.client.post("/v1/meetings", json=denied, headers=gw.headers(gw.booking_key, "x")).status_code
        == 403
    )
    gw.client.app.state.audit.drain()
    now = dt.datetime.now(dt.UTC)
    repo = MonitorRepository(gw.store)
    repo.upsert_alert(
        alert={
            "key": "k1",
            "rule": "policy_global",
            "severity": "critical",
            "title": "Granted <b>globally</b>",
            "check": "Revoke it",
        },
        tenant_id="t",
        app_id="a",
    )
    repo.add_records(
        source="status",
        tenant_id="t",
        app_id="a",
        records=[
            (
                "s1",
                now,
                {
                    "at": now.isoformat(),
                    "certificates": [
                        {
                            "thumbprint": "AB" * 20,
                            "notAfter": (now + dt.timedelta(days=12)).isoformat(),
                            "daysLeft": 12.0,
                            "source": "profile",
                        }
                    ],
                },
            ),
        ],
    )
    repo.add_records(
        source="policy",
        tenant_id="t",
        app_id="a",
        records=[
            (
                "p1",
                now,
                {
                    "takenAt": now.isoformat(),
                    "coverage": {
                        "approved": 4,
                        "holding": 3,
                        "beyondApproved": 1,
                        "missing": 1,
                        "global": False,
                    },
                },
            )
        ],
    )


def test_admin_key_required(gw):
    for headers in ({}, {"X-Admin-Key": "wrong"}, {"Authorization": "Bearer " + gw.booking_key}):
        r = gw.client.get("/admin/dashboard", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        assert "MEETGATE_ADMIN_KEY" in r.json()["remedy"]
    basic = base64.b64encode(f"admin:{KEY}".encode()).decode()
    assert gw.client.get("/admin/dashboard", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert (
        gw.client.get("/admin/dashboard.json", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    )


def test_dashboard_off_without_a_configured_key(tmp_path):
    gateway = make_gateway(tmp_path)
    with gateway.client:
        assert gateway.client.get("/admin/dashboard", headers={"X-Admin-Key": ""}).status_code == 401
    gateway.store.close()


def test_data_and_page_show_the_seeded_run(gw):
    _seed(gw)
    data = gw.client.get("/admin/dashboard.json?hours=2", headers={"X-Admin-Key": KEY}).json()
    g = data["gateway"]
    assert g["meetingsCreated"] == 3 and g["failuresByClass"]["overreach"] == 1
    assert g["topOrganizers"] == [{"name": "alice@contoso.test", "count": 3}]
    assert data["alerts"][0]["rule"] == "policy_global" and data["certificates"][0]["daysLeft"] == 12.0
    assert data["policy"]["holding"] == 3
    page = gw.client.get("/admin/dashboard", headers={"X-Admin-Key": KEY}).text
    assert page.count("<svg") == 5 and "<script" not in page and "cdn" not in page.lower()
    assert "Granted &lt;b&gt;globally&lt;/b&gt;" in page  # escaped
    assert 'data-value="3"' in page and "3/4 approved organizers" in page
    assert gw.client.get("/admin/dashboard?hours=0", headers={"X-Admin-Key": KEY}).status_code == 422


def test_svg_bars_scale_to_the_peak():
    svg = svg_bars([("a", 1), ("b", 4), ("c", 0)], title="t")
    assert svg.count('class="bar"') == 3 and "(max 4)" in svg
    empty = dashboard_html(
        {
            "gateway": {
                "since": "2026-01-01T00:00",
                "until": "2026-01-01T01:00",
                "bucketMinutes": 10,
                "meetingsOverTime": [],
                "failuresByClass": {},
                "topOrganizers": [],
                "topConsumers": [],
                "meetingsCreated": 0,
                "requests": 0,
            },
            "alerts": [],
            "certificates": [],
            "policy": None,
        }
    )
    assert "no open alerts" in empty and "no policy snapshot yet" in empty
