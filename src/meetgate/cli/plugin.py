"""What a distribution that adds commands to ``meetgate`` may use (meetgate-sandbox adds ``sandbox`` and
``demo``): the console helpers every command renders with, and the entry-point group.

A plugin declares, in its ``pyproject.toml``::

    [project.entry-points."meetgate.commands"]
    sandbox = "meetgate_sandbox.cli:register"

where ``register(app: typer.Typer) -> None`` adds its commands. The module behind the entry point must
import only typer at load time (``meetgate --help`` stays fast); a plugin that cannot be loaded is
left out of the CLI and named in ``meetgate --help``.
"""

from __future__ import annotations

from meetgate.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    console,
    err_console,
    fail,
    load_active_profile,
    print_json,
    state,
)

COMMANDS_GROUP = "meetgate.commands"

__all__ = [
    "COMMANDS_GROUP",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "console",
    "err_console",
    "fail",
    "load_active_profile",
    "print_json",
    "state",
]
