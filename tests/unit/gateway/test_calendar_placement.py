"""Calendar placement in the gateway without Graph: the store's new columns (and their migration on
SQLite), request hashes that stay what they were, Exchange's refusals as problems, field-by-field
refusals, a consumer's default placement (`meetgate consumers add/update --placement`)."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa
from gateway_kit import MEETING, make_gateway
from typer.testing import CliRunner

from meetgate.cli.main import app as cli
from meetgate.gateway.consumers import ConsumerError
from meetgate.gateway.meeting_shapes import request_hash
from meetgate.gateway.problems import TYPE_BASE, from_graph_error
from meetgate.gateway.schemas import MeetingCreate
from meetgate.graph import errors as ge
from meetgate.store import Store


@pytest.fixture
def gw(tmp_path):
    gateway = make_gateway(tmp_path)
    yield gateway
    gateway.store.close()


def _problem(resp, slug, status):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["type"] == TYPE_BASE + slug and body["remedy"]
    return body


def test_request_hashes_of_earlier_requests_stay_the_same():
    body = MeetingCreate(**MEETING)
    before = body.model_dump(mode="json", exclude={"allow_past"})
    for name in ("placement", "time_zone", "recurrence", "body", "location"):
        before.pop(name)
    for attendee in before["attendees"]:
        attendee.pop("optional")
    expected = hashlib.sha256(json.dumps(before, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert request_hash(body) == expected
    assert request_hash(MeetingCreate(**MEETING, placement="calendar")) != expected


def test_exchange_refusals_are_problems_with_remedies():
    denied = from_graph_error(ge.MailboxAccessDenied("Access is denied.", status=403, request_id="r1"))
    assert (denied.slug, denied.status, denied.graph_request_id) == ("mailbox-access-denied", 403, "r1")
    assert "mailbox-scope" in denied.body()["remedy"]
    absent = from_graph_error(ge.MailboxNotEnabled("no mailbox", status=404))
    assert (absent.slug, absent.status) == ("mailbox-not-enabled", 422) and "standalone" in absent.body()[
        "remedy"
    ]
    not_organizer = from_graph_error(
        ge.BadRequestError(
            "Your request can't be completed. You need to be an organizer to cancel a meeting."
        )
    )
    assert (not_organizer.slug, not_organizer.status) == ("not-organizer", 403)
    rule = from_graph_error(
        ge.MeetingRuleError("recurrence uses BYHOUR", field="recurrence", remedy="Remove it.")
    )
    assert rule.body()["field"] == "recurrence" and rule.body()["remedy"] == "Remove it."


def test_a_rule_graph_cannot_express_is_refused_before_anything_is_reserved(gw):
    body = {
        **MEETING,
        "placement": "calendar",
        "attendees": [],
        "recurrence": "RRULE:FREQ=MONTHLY;BYDAY=1MO,3MO",
    }
    refused = _problem(
        gw.client.post("/v1/meetings", json=body, headers=gw.headers(gw.booking_key, "r1")),
        "invalid-request",
        422,
    )
    assert refused["errors"][0]["loc"] == ["body", "recurrence"] and refused["detail"].startswith(
        "recurrence:"
    )
    zone = _problem(
        gw.client.post(
            "/v1/meetings",
            json={**body, "recurrence": "RRULE:FREQ=WEEKLY", "time_zone": "Mars/Olympus"},
            headers=gw.headers(gw.booking_key, "r2"),
        ),
        "invalid-request",
        422,
    )
    assert zone["errors"][0]["loc"] == ["body", "time_zone"] and "IANA" in zone["remedy"]
    no_start = _problem(
        gw.client.post(
            "/v1/meetings",
            json={
                "organizer": MEETING["organizer"],
                "placement": "calendar",
                "recurrence": "RRULE:FREQ=DAILY",
            },
            headers=gw.headers(gw.booking_key, "r3"),
        ),
        "invalid-request",
        422,
    )
    assert no_start["errors"][0]["loc"] == ["body", "recurrence"]
    assert gw.store.count_meetings() == 0


def test_calendar_fields_on_a_standalone_meeting_are_named(gw):
    body = {**MEETING, "location": "Room 4", "attendees": [{"upn": "x@example.org", "optional": True}]}
    refused = _problem(
        gw.client.post("/v1/meetings", json=body, headers=gw.headers(gw.booking_key, "s1")),
        "invalid-request",
        422,
    )
    assert [e["loc"] for e in refused["errors"]] == [
        ["body", "location"],
        ["body", "attendees", 0, "optional"],
    ]
    assert '"placement": "calendar"' in refused["remedy"]
    assert gw.store.count_meetings() == 0


def test_a_calendar_meeting_needs_a_start(gw):
    body = {"organizer": MEETING["organizer"], "placement": "calendar", "subject": "When?"}
    refused = _problem(
        gw.client.post("/v1/meetings", json=body, headers=gw.headers(gw.booking_key, "t1")),
        "invalid-request",
        422,
    )
    assert refused["errors"][0]["loc"] == ["body", "start"] and gw.store.count_meetings() == 0


def test_a_gateway_without_calendar_access_says_so(gw):
    body = {**MEETING, "placement": "calendar"}
    _problem(
        gw.client.post("/v1/meetings", json=body, headers=gw.headers(gw.booking_key, "c1")),
        "not-for-placement",
        409,
    )
    created = gw.client.post("/v1/meetings", json=MEETING, headers=gw.headers(gw.booking_key, "c2")).json()
    assert created["placement"] == "standalone" and created["graph_event_id"] is None
    auth = gw.headers(gw.booking_key)
    _problem(
        gw.client.get(f"/v1/meetings/{created['id']}/occurrences", headers=auth), "not-for-placement", 409
    )
    _problem(
        gw.client.patch(
            f"/v1/meetings/{created['id']}", json={"recurrence": "RRULE:FREQ=DAILY"}, headers=auth
        ),
        "invalid-request",
        422,
    )


def test_the_default_placement_is_checked_and_kept(gw):
    with pytest.raises(ConsumerError, match="not a placement"):
        gw.admin.add("bad", organizers=["dave@contoso.test"], placement="outlook")
    record = gw.admin.add("school", organizers=["dave@contoso.test"], placement="Calendar").consumer
    assert record.default_placement == "calendar"
    assert gw.admin.set_placement("school", None).default_placement is None
    with pytest.raises(ConsumerError):
        gw.admin.set_placement("school", "teams")


def test_meetings_and_consumers_stored_before_calendar_placement(tmp_path):
    from alembic import command
    from alembic.config import Config

    from meetgate.store.repository import MIGRATIONS, make_engine

    url = f"sqlite:///{tmp_path}/old.db"
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        conn.execute(
            sa.text(
                "INSERT INTO consumers (id, name, key_id, key_hash, organizers, organizers_from_policy, "
                "created_at) VALUES ('c1', 'booking', 'bbbbbbbbbbbbbbbb', 'h', '[]', 0, '2026-01-01')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO meetings (id, consumer_id, idempotency_key, request_hash, organizer, external_id, "
                "graph_meeting_id, state, created_at, updated_at) VALUES ('mtg_old', 'c1', 'k', 'r', "
                "'a@b.c', 'e', 'g1', 'active', '2026-01-01', '2026-01-01')"
            )
        )
    engine.dispose()
    store = Store.open(url)  # migrates to 0006
    try:
        old = store.meeting(consumer_id="c1", meeting_id="mtg_old")
        assert old is not None and (old.placement, old.graph_event_id) == ("standalone", None)
        assert store.consumer(name_or_id="booking").default_placement is None
        record, new = store.reserve_meeting(
            consumer_id="c1",
            idempotency_key="k2",
            request_hash="r",
            organizer="a@b.c",
            external_id="e2",
            placement="calendar",
        )
        saved = store.save_meeting(meeting_id=record.id, state="active", snapshot={}, graph_event_id="AAMk=")
        assert new and (saved.placement, saved.graph_event_id, saved.graph_meeting_id) == (
            "calendar",
            "AAMk=",
            None,
        )
        again = store.save_meeting(meeting_id=record.id, state="cancelled", snapshot={})
        assert again.graph_event_id == "AAMk="  # a save without the id keeps it
        assert (
            store.set_default_placement(name_or_id="booking", placement="calendar").default_placement
            == "calendar"
        )
    finally:
        store.close()
    with make_engine(url).begin() as conn:  # and back (0006 -> 0005)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
        assert "placement" not in {c["name"] for c in sa.inspect(conn).get_columns("meetings")}
        assert "default_placement" not in {c["name"] for c in sa.inspect(conn).get_columns("consumers")}


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    (tmp_path / "policy.toml").write_text(
        '[policy]\nidentity = "Tag:TeamsMeetingsIntegration"\napp_ids = ["11111111-2222-3333-4444-555555555555"]\n\n'
        '[organizers]\nusers = ["alice@contoso.test"]\n'
    )
    (tmp_path / "meetgate.toml").write_text(
        f'[profiles.default]\nstore_url = "sqlite:///{tmp_path}/gw.db"\npolicy_file = "policy.toml"\n'
    )
    for var in ("MEETGATE_STORE_URL", "MEETGATE_POLICY_FILE", "MEETGATE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _run(env, *args):
    return CliRunner().invoke(cli, ["--config", str(env / "meetgate.toml"), "consumers", *args])


def test_the_cli_sets_a_consumers_default_placement(cli_env):
    added = _run(
        cli_env, "add", "school", "--organizers", "alice@contoso.test", "--placement", "calendar", "--json"
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["defaultPlacement"] == "calendar"
    assert "calendar" in _run(cli_env, "list").output
    updated = _run(cli_env, "update", "school", "--placement", "standalone", "--json")
    assert updated.exit_code == 0 and json.loads(updated.output)["defaultPlacement"] == "standalone"
    assert (
        "default placement standalone"
        in _run(cli_env, "update", "school", "--placement", "standalone").output
    )
    bad = _run(cli_env, "update", "school", "--placement", "outlook")
    assert bad.exit_code != 0 and "standalone" in bad.output
    missing = _run(cli_env, "update", "nobody", "--placement", "calendar")
    assert missing.exit_code != 0
