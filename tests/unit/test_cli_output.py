"""Output a person can read and copy: piped output is never hard-wrapped, help is never cut off."""

from __future__ import annotations

from meetgate.cli._common import console, err_console


def test_piped_output_is_never_hard_wrapped(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    command = "export MEETGATE_CONFIG=" + "/a/long/folder" * 12 + "/meetgate.toml MEETGATE_PROFILE=demo"
    console().print(command)
    err_console().print(f"error: {command}")
    captured = capsys.readouterr()
    assert command + "\n" in captured.out
    assert f"error: {command}\n" in captured.err


def test_help_shows_whole_option_names_and_no_placeholder_on_flags(monkeypatch):
    from typer.testing import CliRunner

    from meetgate.cli.main import app

    monkeypatch.delenv("COLUMNS", raising=False)
    shown = CliRunner().invoke(app, ["serve", "--help"])
    assert shown.exit_code == 0
    assert "--trust-forwarded-for" in shown.output and "--no-trust-forwarded-for" in shown.output
    assert "<bool>" not in shown.output and "…" not in shown.output


def test_commands_are_listed_in_runbook_order():
    from typer.testing import CliRunner

    from meetgate.cli.main import app

    shown = CliRunner().invoke(app, ["--help"]).output
    order = ["demo", "setup", "cert", "policy", "validate", "meetings", "monitor", "golive", "sandbox"]
    positions = [shown.index(f"│ {name} ") for name in order]
    assert positions == sorted(positions), shown
