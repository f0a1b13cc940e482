"""Settings mistakes a new administrator makes, each refused with what to do before anything is sent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetgate.cli.main import app, invoke

MEETING = [
    "--organizer",
    "x@y.example",
    "--subject",
    "s",
    "--start",
    "2030-01-07T09:00:00Z",
    "--end",
    "2030-01-07T09:30:00Z",
]


def run(env: dict[str, str], *args: str):
    return CliRunner().invoke(app, list(args), env=env)


@pytest.mark.parametrize("command", [["cert", "status"], ["policy", "status"], ["validate"]])
def test_a_settings_file_that_does_not_exist_is_named(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MEETGATE_CONFIG", raising=False)
    code = invoke(["--config", "nope.toml", *command])  # as the console script runs it
    output = capsys.readouterr().err
    assert code == 2, output
    assert "there is no settings file nope.toml" in output
    assert "has no tenant_id" not in output and "no policy file" not in output


def test_setup_app_may_create_the_file_it_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run({"COLUMNS": "200"}, "--config", "new.toml", "setup", "app", "--tenant", "not a tenant")
    assert "there is no settings file" not in result.output
    assert "--tenant 'not a tenant' is neither a directory id" in result.output


@pytest.mark.parametrize("value", ["not a tenant!", "contoso", "common"])
def test_a_tenant_id_that_is_neither_a_guid_nor_a_domain_is_refused_locally(sandbox_cli_env, value, sandbox):
    config = Path(sandbox_cli_env["MEETGATE_CONFIG"])
    config.write_text(re.sub(r'tenant_id = "[^"]*"', f'tenant_id = "{value}"', config.read_text()))
    result = run(sandbox_cli_env, "meetings", "create", *MEETING)
    assert result.exit_code == 2, result.output
    assert "[profiles.sandbox]" in result.output and f"tenant_id '{value}'" in result.output
    assert "line " in result.output
    assert "Traceback" not in result.output


def test_a_tenant_that_does_not_exist_is_one_line_with_what_to_do(sandbox_cli_env):
    env = {**sandbox_cli_env, "MEETGATE_TENANT_ID": "no-such-tenant.example.com"}
    result = run(env, "meetings", "create", *MEETING)
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no-such-tenant.example.com" in errors[0]
    assert "subscription administrator" not in errors[0]  # Entra's paragraph, cut to its first sentence
    assert "what to do:" in result.output and "tenant_id" in result.output
