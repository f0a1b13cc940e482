"""Helpers every command shares: the active profile, consoles, JSON output, exit codes.

Imports stay light (typer only); rich is imported on first use.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from meetgate.config import Profile

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found a failure (a check failed, drift found)
EXIT_USAGE = 2  # bad input or configuration: nothing was done


@dataclass
class CliState:
    """Global options given before the subcommand."""

    config: Path | None = None
    profile: str | None = None


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


_warned_unknown: set[str] = set()


def load_active_profile(ctx: typer.Context, *, may_create: bool = False) -> Profile:
    """The profile of --config/--profile (or their environment variables); warns once about keys
    the profile holds that no setting has (a typo would otherwise be ignored in silence).

    A settings file named by ``--config`` or ``$MEETGATE_CONFIG`` that does not exist is refused
    (most likely a typo) unless the command creates it (``may_create``: `setup app`, `cert new --use`).
    """
    import os

    from meetgate.config import ENV_PREFIX, ConfigError, config_path, load_profile

    st = state(ctx)
    _report_weak_credentials_here(ctx)
    named = st.config is not None or bool(os.environ.get(f"{ENV_PREFIX}CONFIG"))
    if named and not may_create and not config_path(st.config).exists():
        where = "--config" if st.config is not None else f"${ENV_PREFIX}CONFIG"
        raise ConfigError(
            f"there is no settings file {config_path(st.config)} (from {where}): check the path, or run "
            "`meetgate setup app` to create it"
        )
    profile = load_profile(st.config, st.profile)
    if profile.unknown_keys and profile.name not in _warned_unknown:
        from rich.markup import escape

        _warned_unknown.add(profile.name)
        where = f"{config_path(st.config)} [profiles.{profile.name}]"
        err_console().print(
            f"[yellow]warning:[/] {escape(where)}: unknown setting(s) "
            f"{escape(', '.join(profile.unknown_keys))} ignored (settings: docs/configuration.md)"
        )
    return profile


def _report_weak_credentials_here(ctx: typer.Context) -> None:
    """The weak-credential warning (a client secret) as a CLI warning on stderr while the command
    runs; the library gives it once per app and process, however many clients a command builds."""
    from meetgate.graph.credentials import set_weak_credential_reporter

    def show(client_id: str, warning: str) -> None:
        from rich.markup import escape

        err_console().print(f"[yellow]warning:[/] {escape(warning)}")

    previous = set_weak_credential_reporter(show)
    ctx.find_root().call_on_close(lambda: set_weak_credential_reporter(previous))


_consoles: dict[str, tuple[object, Console]] = {}

#: width of output that goes to a file or a pipe: wide enough that tables and commands stay whole
PIPED_WIDTH = 200


def _console(name: str, stream: object) -> Console:
    """The console writing to ``stream``, made anew when the stream changes (a test runner swaps
    sys.stdout per command). Output to a terminal wraps at its width; output to a pipe or a file is
    never hard-wrapped, so a command printed for copying stays on one line."""
    cached = _consoles.get(name)
    if cached is not None and cached[0] is stream:
        return cached[1]
    from rich.console import Console

    made = Console(stderr=name == "err", highlight=False)
    if not made.is_terminal:
        made = Console(
            stderr=name == "err",
            highlight=False,
            soft_wrap=True,
            width=max(made.width, PIPED_WIDTH),
        )
    _consoles[name] = (stream, made)
    return made


def console() -> Console:
    """Human output on stdout (never hard-wrapped when piped)."""
    return _console("out", sys.stdout)


def err_console() -> Console:
    """Errors, warnings and progress on stderr (never hard-wrapped when piped)."""
    return _console("err", sys.stderr)


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, one JSON document."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_warnings(warnings: Any) -> None:
    """A plan's warnings (``code``, ``message``, ``sample``, ``remedy``), each with what to do; the
    texts are printed as text, never read as markup (they hold UPNs, filters and group names)."""
    from rich.markup import escape

    out = console()
    for w in warnings:
        out.print(f"[bold yellow]warning {w.code}[/]: {escape(w.message)}")
        if w.sample:
            out.print(f"  e.g. {escape(', '.join(w.sample[:5]))}")
        out.print(f"  [bold]what to do:[/] {escape(w.remedy)}")


def fail(message: str, remedy: str | None = None, *, code: int = EXIT_USAGE) -> NoReturn:
    """Print an error with what to do about it, then exit."""
    from rich.markup import escape

    err = err_console()
    err.print(f"[bold red]error:[/] {escape(message)}")
    if remedy:
        err.print(f"[bold]what to do:[/] {escape(remedy)}")
    raise typer.Exit(code)
