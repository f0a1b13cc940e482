"""A key's life: a rotated key's 401 says it was rotated and when, an expired key's names its expiry
date; only the key's holder learns either (a guessed secret stays "not known")."""

from __future__ import annotations

import datetime as dt

import pytest
from gateway_kit import MEETING

from meetgate.gateway import keys
from meetgate.gateway.consumers import ConsumerAdmin, ConsumerError, parse_expiry
from meetgate.gateway.problems import TYPE_BASE

MISSING = "/v1/meetings/mtg_" + "0" * 32


def _refusal(resp) -> dict:
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"].startswith("Bearer")
    body = resp.json()
    assert body["type"] == TYPE_BASE + "unauthenticated" and body["remedy"]
    return body


def _audited(gw, resp):
    gw.client.app.state.audit.drain()
    return {a.request_id: a for a in gw.store.audit()}[resp.headers["x-request-id"]]


def test_a_rotated_key_is_told_it_was_rotated_and_when(gw):
    old_key = gw.booking_key
    issued = gw.admin.rotate_key("booking")
    rotated_at = gw.store.consumer(name_or_id="booking").key_rotated_at
    resp = gw.client.get(MISSING, headers=gw.headers(old_key))
    body = _refusal(resp)
    assert body["detail"] == (
        f"the API key was rotated on {rotated_at:%Y-%m-%d %H:%M} UTC: a new key replaced it"
    )
    assert "not known" not in body["detail"] and "new key" in body["remedy"]
    assert dt.datetime.fromisoformat(body["keyRotatedAt"]) == rotated_at
    assert _audited(gw, resp).consumer_name == "booking"  # an app still on its old key stands out
    assert gw.client.get(MISSING, headers=gw.headers(issued.api_key)).status_code == 404

    # two rotations: the first key is still known as rotated (at its own rotation)
    gw.admin.rotate_key("booking")
    assert "rotated" in _refusal(gw.client.get(MISSING, headers=gw.headers(issued.api_key)))["detail"]
    assert "rotated" in _refusal(gw.client.get(MISSING, headers=gw.headers(old_key)))["detail"]


def test_only_the_holder_of_a_rotated_key_learns_it_was_rotated(gw):
    key_id, _secret = keys.parse(gw.booking_key)
    gw.admin.rotate_key("booking")
    guess = f"mgk_{key_id}_{'x' * 43}"
    resp = gw.client.get(MISSING, headers=gw.headers(guess))
    body = _refusal(resp)
    assert body["detail"] == "the API key is not known" and "keyRotatedAt" not in body
    assert _audited(gw, resp).consumer_name is None


def test_an_expired_key_names_its_expiry_date(gw):
    expiry = dt.datetime(2021, 3, 1, tzinfo=dt.UTC)
    a_year_earlier = ConsumerAdmin(gw.store, gw.scope, clock=lambda: dt.datetime(2020, 3, 1, tzinfo=dt.UTC))
    issued = a_year_earlier.add("partner", organizers=["dave@contoso.test"], expires_at=expiry)
    assert issued.consumer.key_expires_at == expiry
    resp = gw.client.post(
        "/v1/meetings",
        json={**MEETING, "organizer": "dave@contoso.test"},
        headers=gw.headers(issued.api_key, "e1"),
    )
    body = _refusal(resp)
    assert body["detail"] == "the API key expired on 2021-03-01 00:00 UTC"
    assert body["keyExpiredAt"] == "2021-03-01T00:00:00+00:00" and "rotate-key" in body["remedy"]
    assert _audited(gw, resp).consumer_name == "partner"

    # a new key with a later expiry works again
    renewed = ConsumerAdmin(gw.store, gw.scope).rotate_key(
        "partner", expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    )
    again = gw.client.post(
        "/v1/meetings",
        json={**MEETING, "organizer": "dave@contoso.test"},
        headers=gw.headers(renewed.api_key, "e1"),
    )
    assert again.status_code == 201, again.text


def test_a_key_without_expiry_keeps_working_and_rotation_clears_an_expiry(gw):
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    issued = gw.admin.rotate_key("booking", expires_at=later)
    assert gw.store.consumer(name_or_id="booking").key_expires_at == later
    assert gw.client.get(MISSING, headers=gw.headers(issued.api_key)).status_code == 404
    assert gw.admin.rotate_key("booking").consumer.key_expires_at is None


def test_expiry_must_be_a_future_date_or_an_aware_time():
    assert parse_expiry("2026-12-31") == dt.datetime(2026, 12, 31, tzinfo=dt.UTC)
    assert parse_expiry("2026-12-31T17:00:00+01:00") == dt.datetime(2026, 12, 31, 16, tzinfo=dt.UTC)
    with pytest.raises(ConsumerError, match="not a date") as bad:
        parse_expiry("31/12/2026")
    assert "2026-12-31" in (bad.value.remedy or "")
    with pytest.raises(ConsumerError, match="no time zone") as naive:
        parse_expiry("2026-12-31T17:00:00")
    assert "add Z (UTC) or an offset" in (naive.value.remedy or "")


def test_an_expiry_in_the_past_is_refused(gw):
    with pytest.raises(ConsumerError, match="not in the future"):
        gw.admin.add(
            "late", organizers=["dave@contoso.test"], expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        )
    with pytest.raises(ConsumerError, match="not in the future"):
        gw.admin.rotate_key("booking", expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert gw.client.get(MISSING, headers=gw.headers(gw.booking_key)).status_code == 404  # not rotated
