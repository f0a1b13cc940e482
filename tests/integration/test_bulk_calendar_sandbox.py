"""Bulk jobs with calendar rows against the sandbox over TLS: one row per placement, a rerun that
creates nothing new, a lost answer that still makes one event, and bad calendar rows refused with
their line before anything is sent."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
from pathlib import Path

from calendar_scope import scope_calendars
from typer.testing import CliRunner

from meetgate.admin.bulk import BULK_RETRY, run_bulk_job
from meetgate.cli.main import app as cli_app
from meetgate.composition import async_graph_client_from_profile

runner = CliRunner()
START = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
HEADER = "key,organizer,start,end,subject,attendees,placement,recurrence,time_zone\n"


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _writes(sandbox_app) -> tuple[int, int]:
    """(standalone meetings, calendar events) really created, from the tenant's request log."""
    log = sandbox_app.control.request_log(sandbox_app.tenant_id, app_id=sandbox_app.client_id)
    standalone = sum(1 for r in log if r["path"].endswith("/createOrGet") and r["status"] == 201)
    events = sum(1 for r in log if r["method"] == "POST" and r["path"].endswith("/events"))
    return standalone, events


def _job(sandbox_app, path: Path, journal: Path | None = None):
    async def job():
        client = async_graph_client_from_profile(sandbox_app.profile(), retry=BULK_RETRY)
        async with client:
            return await run_bulk_job(client, path, "create", journal_path=journal)

    return asyncio.run(job())


def _rows(sandbox_app, tmp_path: Path) -> Path:
    pilot_a, pilot_b = (u.upn for u in sandbox_app.pilot_users)
    student = sandbox_app.other_users[0].upn
    end = _iso(START + dt.timedelta(minutes=45))
    path = tmp_path / "term.csv"
    path.write_text(
        HEADER
        + f"adv-1,{pilot_a},{_iso(START)},{end},Advising,{student},standalone,,\n"
        + f'alg-7b,{pilot_b},{_iso(START)},{end},Algebra 7b,"{student};parent@example.org:optional",'
        "calendar,FREQ=WEEKLY;COUNT=10,Europe/Berlin\n"
    )
    return path


def test_one_row_per_placement_and_a_rerun_creates_nothing_new(sandbox_app, sandbox_cli_env, tmp_path):
    scope_calendars(sandbox_app)
    path = _rows(sandbox_app, tmp_path)
    report = _job(sandbox_app, path)
    assert report.ok and report.done == 2, [str(p) for p in report.problems]
    assert _writes(sandbox_app) == (1, 1)
    standalone, series = report.outcomes["adv-1"], report.outcomes["alg-7b"]
    assert standalone.created is True and series.created is True
    assert series.meeting_id and series.meeting_id.startswith("AAMk")
    assert series.join_url and series.join_url.startswith("https://teams.microsoft.com/l/meetup-join/")

    again = _job(sandbox_app, path)  # the journal has both rows
    assert again.progress is not None and again.progress.skipped == 2
    fresh = _job(sandbox_app, path, journal=tmp_path / "lost-journal.jsonl")  # the journal lost
    assert fresh.outcomes["alg-7b"].created is False and fresh.outcomes["adv-1"].created is False
    assert fresh.outcomes["alg-7b"].meeting_id == series.meeting_id
    assert _writes(sandbox_app) == (1, 1)  # createOrGet by the row's key, both placements

    organizer = sandbox_app.pilot_users[1].upn
    occurrences = runner.invoke(
        cli_app,
        ["meetings", "occurrences", series.meeting_id, "-o", organizer, "--json"],
        env=sandbox_cli_env,
    )
    assert occurrences.exit_code == 0, occurrences.output
    assert len(json.loads(occurrences.output)) == 10


def test_a_lost_answer_makes_one_event(sandbox_app, tmp_path):
    scope_calendars(sandbox_app)
    pilot = sandbox_app.pilot_users[0].upn
    path = tmp_path / "lost.csv"
    path.write_text(HEADER + f"lost-1,{pilot},{_iso(START)},,Interview,,calendar,,\n")
    sandbox_app.control.set_faults(lost_answer_rate=1.0)  # carried out, then answered 500/504
    try:
        report = _job(sandbox_app, path)
    finally:
        sandbox_app.control.clear_faults()
    again = _job(sandbox_app, path)  # whatever the first run recorded, a rerun settles it
    assert again.outcomes["lost-1"].status == "done", (report.outcomes, again.outcomes)
    assert _writes(sandbox_app)[1] == 1


def test_an_invalid_recurrence_is_refused_with_its_line_and_nothing_runs_for_it(
    sandbox_app, sandbox_cli_env, tmp_path
):
    scope_calendars(sandbox_app)
    pilot = sandbox_app.pilot_users[0].upn
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER
        + f"ok-1,{pilot},{_iso(START)},,Good,,calendar,FREQ=DAILY;COUNT=3,\n"  # line 2
        + f"bad-2,{pilot},{_iso(START)},,Hourly,,calendar,FREQ=HOURLY;COUNT=3,\n"  # line 3
        + f"bad-3,{pilot},{_iso(START)},,Wrong,,online,,\n"  # line 4
    )
    env = sandbox_cli_env
    base = ["meetings", "bulk", "create", str(path)]
    dry = runner.invoke(cli_app, [*base, "--dry-run"], env=env)
    assert dry.exit_code == 1, dry.output
    assert "row 2 (line 3) [bad-2] recurrence:" in dry.output
    assert "row 3 (line 4) [bad-3] placement: must be standalone or calendar, got 'online'" in dry.output
    results = tmp_path / "results.csv"
    run = runner.invoke(cli_app, [*base, "--no-progress", "--results", str(results)], env=env)
    assert run.exit_code == 1, run.output
    with results.open() as fh:
        by_key = {r["key"]: r for r in csv.DictReader(fh)}
    assert by_key["ok-1"]["status"] == "done" and by_key["ok-1"]["meeting_id"].startswith("AAMk")
    assert by_key["bad-2"]["status"] == "invalid" and by_key["bad-2"]["error"].startswith("recurrence:")
    assert by_key["bad-3"]["status"] == "invalid"
    assert _writes(sandbox_app) == (0, 1)
