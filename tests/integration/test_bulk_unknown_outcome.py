"""A bulk row whose call failed after Graph may have carried it out is ``unknown``, not ``failed``.

The sandbox's ``lostAnswerRate`` fault carries a request out and then answers 500 or 504, as a gateway
that timed out after the service did the work: the meeting exists although every answer was an error.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetgate.cli.main import app

ROWS = 4


@pytest.fixture
def env(sandbox_cli_env):
    """The CLI's environment: a meetgate.toml whose `sandbox` profile is the sandbox app."""
    return sandbox_cli_env


def cli(env: dict[str, str], *args: str):
    return CliRunner().invoke(app, ["meetings", "bulk", *args], env=env)


def write_rows(path: Path, organizer: str) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["key", "organizer", "start", "end", "subject"])
        for i in range(ROWS):
            writer.writerow(
                [
                    f"lost-{i}",
                    organizer,
                    f"2030-05-0{i + 1}T09:00:00Z",
                    f"2030-05-0{i + 1}T09:30:00Z",
                    f"S{i}",
                ]
            )


@pytest.fixture
def lost_answers(sandbox_control):
    sandbox_control.clear_faults()
    sandbox_control.set_faults(lost_answer_rate=1.0, seed=3)
    yield sandbox_control
    sandbox_control.clear_faults()


def test_rows_carried_out_but_unanswered_are_unknown_and_a_rerun_settles_them(
    sandbox_app, env, tmp_path, lost_answers
):
    rows = tmp_path / "rows.csv"
    write_rows(rows, sandbox_app.pilot_users[0].upn)
    first = cli(env, "create", str(rows), "--json", "--retry-budget", "1")
    assert first.exit_code == 1, first.output
    summary = json.loads(first.output)
    assert summary["unknown"] == ROWS and summary["failed"] == 0 and summary["done"] == 0
    with open(summary["results"], newline="", encoding="utf-8") as fh:
        results = list(csv.DictReader(fh))
    assert {r["status"] for r in results} == {"unknown"}
    assert all("may exist" in r["remedy"] and "rerun resolves it" in r["remedy"] for r in results)

    text = cli(env, "create", str(rows), "--no-progress", "--retry-budget", "1")
    assert text.exit_code == 1
    assert f"{ROWS} unknown" in text.output and "the meeting may exist" in text.output
    assert "Traceback" not in text.output

    lost_answers.clear_faults()
    rerun = cli(env, "create", str(rows), "--json")
    assert rerun.exit_code == 0, rerun.output
    settled = json.loads(rerun.output)
    # every unknown row had in fact been created: the rerun finds each one, and creates none
    assert settled["done"] == ROWS and settled["unknown"] == 0
    assert settled["existing"] == ROWS and settled["created"] == 0
