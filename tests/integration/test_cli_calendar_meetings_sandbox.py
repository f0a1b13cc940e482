"""`meetgate meetings …` for calendar meetings, in-process against the sandbox: the app reaches the
pilot organizers' mailboxes through Exchange RBAC for Applications (and nobody else's)."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest
from calendar_scope import EXCHANGE, scope_calendars
from typer.testing import CliRunner

from meetgate.cli.main import app
from meetgate.composition import graph_settings_from_profile
from meetgate.graph.client import GraphClient

runner = CliRunner()
START = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(hour=8, minute=0, second=0, microsecond=0)


@pytest.fixture
def env(sandbox_app, sandbox_cli_env):
    scope_calendars(sandbox_app)
    return sandbox_cli_env


def cli(env, *args):
    return runner.invoke(app, ["meetings", *args], env=env)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_a_weekly_series_its_occurrences_and_one_cancelled_with_a_message(sandbox_app, env):
    organizer, attendee = sandbox_app.pilot_users[0], sandbox_app.other_users[1]
    create = [
        "create",
        "--calendar",
        "-o",
        organizer.upn,
        "--subject",
        "Algebra 1",
        "--start",
        _iso(START),
        "--end",
        _iso(START + dt.timedelta(minutes=45)),
        "--recurrence",
        "RRULE:FREQ=WEEKLY;COUNT=4",
        "--time-zone",
        "Europe/Berlin",
        "-a",
        attendee.upn,
        "--optional-attendee",
        "parent@example.org",
        "--location",
        "Room 4",
        "--lobby",
        "organization",
        "--external-id",
        "algebra-7b",
        "--json",
    ]
    made = cli(env, *create)
    assert made.exit_code == 0, made.output
    series = json.loads(made.output)
    assert series["placement"] == "calendar" and series["kind"] == "seriesMaster"
    assert series["newlyCreated"] is True and series["externalId"] == "algebra-7b"
    assert series["recurrence"].startswith("RRULE:FREQ=WEEKLY")
    assert series["joinWebUrl"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert [(a["address"], a["type"]) for a in series["attendees"]] == [
        (attendee.upn, "required"),
        ("parent@example.org", "optional"),
    ]
    assert series["teamsMeeting"]["lobbyBypassScope"] == "organization"

    again = cli(env, *create[:-1])  # the same external id: the same series, in text
    assert again.exit_code == 0, again.output
    assert "already existed" in again.output and series["id"] in again.output
    by_key = cli(env, "find", "-o", organizer.upn, "--external-id", "algebra-7b", "--json")
    assert by_key.exit_code == 0 and json.loads(by_key.output)["id"] == series["id"]
    unknown = cli(env, "find", "-o", organizer.upn, "--external-id", "no-such-booking")
    assert unknown.exit_code == 1 and "no meeting of this organizer matches" in unknown.output

    listed = cli(env, "occurrences", series["id"], "-o", organizer.upn, "--json")
    assert listed.exit_code == 0, listed.output
    occurrences = json.loads(listed.output)
    starts = [dt.datetime.fromisoformat(o["start"]) for o in occurrences]
    berlin = START.astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))  # the series keeps Berlin's wall time
    assert starts == [berlin + dt.timedelta(weeks=n) for n in range(4)]
    assert all(o["kind"] == "occurrence" and o["placement"] == "calendar" for o in occurrences)

    got = cli(env, "get", occurrences[1]["id"], "-o", organizer.upn)  # the id says calendar: no flag
    assert got.exit_code == 0, got.output
    assert "occurrence of a series" in got.output and "Algebra 1" in got.output

    cancelled = cli(
        env,
        "cancel",
        series["id"],
        "-o",
        organizer.upn,
        "--occurrence",
        occurrences[2]["id"],
        "--message",
        "No class this week",
        "--json",
    )
    assert cancelled.exit_code == 0, cancelled.output
    assert json.loads(cancelled.output)["occurrence"] == occurrences[2]["id"]
    window = ["--from", _iso(START - dt.timedelta(days=1)), "--to", _iso(START + dt.timedelta(days=40))]
    after = cli(env, "occurrences", series["id"], "-o", organizer.upn, *window)
    assert after.exit_code == 0, after.output
    assert "3 occurrence(s)" in after.output and occurrences[2]["id"] not in after.output

    ics = cli(env, "ics", series["id"], "-o", organizer.upn)
    assert ics.exit_code == 2 and "Exchange already sent the invitations" in ics.output


def test_move_one_occurrence_then_delete_the_series(sandbox_app, env):
    organizer = sandbox_app.pilot_users[0]
    made = cli(
        env,
        "create",
        "--calendar",
        "-o",
        organizer.upn,
        "-s",
        "Office hours",
        "--start",
        _iso(START),
        "--recurrence",
        "FREQ=DAILY;COUNT=3",
        "--json",
    )
    assert made.exit_code == 0, made.output
    series = json.loads(made.output)
    occurrences = json.loads(cli(env, "occurrences", series["id"], "-o", organizer.upn, "--json").output)
    moved_start = START + dt.timedelta(days=1, hours=2)
    moved = cli(
        env,
        "update",
        series["id"],
        "-o",
        organizer.upn,
        "--occurrence",
        occurrences[1]["id"],
        "--start",
        _iso(moved_start),
        "--json",
    )
    assert moved.exit_code == 0, moved.output
    data = json.loads(moved.output)
    assert data["kind"] == "exception"
    assert dt.datetime.fromisoformat(data["start"]) == moved_start
    assert dt.datetime.fromisoformat(data["end"]) == moved_start + dt.timedelta(hours=1)  # duration kept

    renamed = cli(env, "update", series["id"], "-o", organizer.upn, "--subject", "Office hours (new room)")
    assert renamed.exit_code == 0 and "calendar meeting updated" in renamed.output
    locked_lobby = cli(env, "update", series["id"], "-o", organizer.upn, "--lobby", "organizer", "--json")
    assert locked_lobby.exit_code == 0, locked_lobby.output
    assert json.loads(locked_lobby.output)["subject"] == "Office hours (new room)"  # the event as it is now
    behind = cli(env, "find", "-o", organizer.upn, "--join-url", series["joinWebUrl"], "--json")
    assert behind.exit_code == 0 and json.loads(behind.output)["lobbyBypassScope"] == "organizer"
    assert json.loads(behind.output)["placement"] == "standalone"  # the Teams meeting itself

    gone = cli(env, "delete", series["id"], "-o", organizer.upn, "--json")
    assert gone.exit_code == 0, gone.output
    assert json.loads(gone.output) == {
        "deleted": True,
        "placement": "calendar",
        "id": series["id"],
        "occurrence": None,
    }
    missing = cli(env, "get", series["id"], "-o", organizer.upn)
    assert missing.exit_code == 1 and "what to do" in missing.output


def test_an_organizer_outside_the_mailbox_scope_is_refused_with_the_remedy(sandbox_app, env):
    outsider = sandbox_app.other_users[2].upn
    args = ["create", "--calendar", "-o", outsider, "-s", "x", "--start", _iso(START)]
    refused = cli(env, *args)
    assert refused.exit_code == 1, refused.output
    assert outsider in refused.output and "what to do" in refused.output
    assert "Application Calendars.ReadWrite" in refused.output
    as_json = cli(env, *args, "--json")
    data = json.loads(as_json.output)
    assert as_json.exit_code == 1 and data["error"] == "MailboxAccessDenied"
    assert data["code"] == "ErrorAccessDenied" and "mailbox-scope apply" in data["remedy"]


def test_an_organizer_without_a_mailbox_and_a_cancel_by_an_attendee(sandbox_app, env):
    organizer, attendee = sandbox_app.pilot_users
    made = cli(
        env,
        "create",
        "--calendar",
        "-o",
        organizer.upn,
        "-s",
        "1:1",
        "--start",
        _iso(START),
        "-a",
        attendee.upn,
    )
    assert made.exit_code == 0, made.output
    # the attendee's copy is in the attendee's calendar (another pilot, so in the scope): not theirs to cancel
    settings = graph_settings_from_profile(sandbox_app.profile(), environ={})
    with GraphClient(settings) as graph:
        copies = graph.http.get(f"/users/{attendee.id}/events")["value"]
    copy_id = next(item["id"] for item in copies if item.get("subject") == "1:1")
    refused = cli(env, "cancel", copy_id, "-o", attendee.upn, "--message", "cannot come")
    assert refused.exit_code == 1, refused.output
    assert "Only the organizer can cancel" in refused.output

    sandbox_app.control.request(
        "PATCH",
        f"{EXCHANGE.format(tid=sandbox_app.tenant_id)}/mailboxes/{organizer.id}",
        json={"mailboxEnabled": False},
    )
    no_mailbox = cli(env, "create", "--calendar", "-o", organizer.upn, "-s", "x", "--start", _iso(START))
    assert no_mailbox.exit_code == 1, no_mailbox.output
    assert "Exchange Online" in no_mailbox.output and "standalone" in no_mailbox.output


def test_calendar_input_is_checked_before_anything_is_sent(sandbox_app, env):
    organizer = sandbox_app.pilot_users[0].upn
    hourly = cli(
        env, "create", "--calendar", "-o", organizer, "--start", _iso(START), "--recurrence", "FREQ=HOURLY"
    )
    assert hourly.exit_code == 2 and "--recurrence:" in hourly.output and "what to do" in hourly.output
    zone = cli(
        env, "create", "--calendar", "-o", organizer, "--start", _iso(START), "--time-zone", "Mars/Base"
    )
    assert zone.exit_code == 2 and "--time-zone:" in zone.output
    standalone = cli(env, "create", "-o", organizer, "--recurrence", "FREQ=DAILY;COUNT=2")
    assert standalone.exit_code == 2 and "Add --calendar" in standalone.output
    no_start = cli(env, "create", "--calendar", "-o", organizer)
    assert no_start.exit_code == 2 and "needs a start" in no_start.output
    log = sandbox_app.control.request_log(sandbox_app.tenant_id, app_id=sandbox_app.client_id)
    assert not [entry for entry in log if "/events" in entry["path"]]
