"""How ``--help`` reads: commands in runbook order, nothing cut off when piped, no placeholder on flags."""

from __future__ import annotations

import sys
from typing import Any

from typer import core, rich_utils

from meetgate.cli._common import PIPED_WIDTH

#: ``meetgate --help`` lists the commands in the order the runbook uses them; others follow
RUNBOOK_ORDER = (
    "demo",  # start here: the whole runbook against the sandbox
    "setup",  # steps 1-2: the app registration and its permissions
    "cert",  # step 3: certificate authentication
    "policy",  # steps 4-5: the application access policy
    "validate",  # step 6: testing
    "meetings",  # step 6: the integration itself
    "serve",  # the gateway consuming apps call
    "consumers",
    "monitor",  # step 7
    "golive",  # step 8
    "signout",
    "sandbox",  # the local tenant everything above can run against
)


class RunbookOrderGroup(core.TyperGroup):
    """A command group whose help lists its commands in :data:`RUNBOOK_ORDER`."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(RUNBOOK_ORDER)}
        return sorted(names, key=lambda name: (rank.get(name, len(rank)), names.index(name)))


_original_display_type = core.TyperOption.display_type_rich


def _display_type(self: core.TyperOption, ctx: Any) -> str | None:
    """No ``<bool>`` next to ``--flag/--no-flag``: a flag takes no value."""
    if self.is_bool_flag:
        return None
    return _original_display_type(self, ctx)


def configure_help() -> None:
    """Applied once when the CLI loads (typer reads these when it renders help)."""
    core.TyperOption.display_type_rich = _display_type  # type: ignore[method-assign]
    if rich_utils.MAX_WIDTH is None and not sys.stdout.isatty():
        # piped or captured: one line per option, whole names, however narrow the caller's terminal
        rich_utils.MAX_WIDTH = PIPED_WIDTH
