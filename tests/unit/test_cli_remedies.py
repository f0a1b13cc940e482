"""Every `meetgate …` command that a message of the product tells its reader to run exists and takes
the options the message names: a remedy that names a missing option (`setup app --check`) or
backend (`--backend script`) sends an administrator to an error instead of the fix."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetgate.cli.main import app

SRC = Path(__file__).resolve().parents[2] / "src" / "meetgate"
_COMMAND = re.compile(r"`(meetgate [^`]+)`")
#: placeholders and alternatives ("…", "a | b", "{…}", "<x>") are prose, not a command line
_PROSE = re.compile(r"[…|{}<>]")


def _advised_commands() -> list[tuple[str, str]]:
    found = set()
    for path in sorted(SRC.rglob("*.py")):
        for match in _COMMAND.finditer(path.read_text(encoding="utf-8")):
            if not _PROSE.search(match.group(1)):
                found.add((str(path.relative_to(SRC)), match.group(1)))
    return sorted(found)


def test_messages_advise_commands():
    assert len(_advised_commands()) > 20


@pytest.mark.parametrize(("where", "command"), _advised_commands())
def test_an_advised_command_parses(where: str, command: str):
    args = shlex.split(command)[1:]
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"{where} advises `{command}`:\n{result.output}"
