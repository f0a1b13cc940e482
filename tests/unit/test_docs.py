"""Every setting and every CLI command is documented (a command or setting that is not is unfinished)."""

from pathlib import Path

import typer.main

from meetgate.cli.main import app
from meetgate.config import SETTING_KEYS

ROOT = Path(__file__).resolve().parents[2]


def _docs_text() -> str:
    return "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))])


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [key for key in SETTING_KEYS if f"`{key}`" not in text]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


def _command_paths(group, prefix=()):
    for name, command in group.commands.items():
        path = (*prefix, name)
        if command.hidden:
            continue
        if hasattr(command, "commands"):
            yield from _command_paths(command, path)
        else:
            yield " ".join(path)


def test_every_command_is_documented():
    root = typer.main.get_command(app)
    text = _docs_text()
    missing = [path for path in _command_paths(root) if f"meetgate {path}" not in text]
    assert not missing, f"commands never mentioned as `meetgate <command>` in README/docs: {missing}"
