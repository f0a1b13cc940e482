"""The ``meetgate`` command: a root with global options and one sub-app per runbook area.

Sub-apps are small modules that import only typer at load time; every heavy import (httpx, msal,
pydantic, the sandbox, the gateway) happens inside the command that needs it, so ``--help`` is fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meetgate import __version__
from meetgate.cli import (
    cert,
    consumers,
    mailbox_scope,
    meetings,
    monitor,
    policy,
    serve,
    setup,
    signout,
    validate,
)
from meetgate.cli._common import EXIT_USAGE, fail, state
from meetgate.cli._help import RunbookOrderGroup, configure_help
from meetgate.errors import MeetgateError

configure_help()

app = typer.Typer(
    name="meetgate",
    help=(
        "Create and govern Microsoft Teams online meetings through Microsoft Graph, with app-only "
        "certificate auth restricted to approved organizers by a Teams application access policy.\n\n"
        "Start with `meetgate demo`: the whole runbook against a sandbox tenant (meetgate-sandbox)."
    ),
    cls=RunbookOrderGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(meetings.app, name="meetings")
app.command("serve")(serve.serve)
app.add_typer(consumers.app, name="consumers")
app.add_typer(cert.app, name="cert")
app.add_typer(policy.app, name="policy")
app.add_typer(mailbox_scope.app, name="mailbox-scope")
app.add_typer(monitor.app, name="monitor")
app.add_typer(setup.app, name="setup")
app.command("validate")(validate.validate)
app.command("golive")(validate.golive)
app.command("signout")(signout.signout)

#: what `meetgate --help` says when the sandbox distribution is not installed
WITHOUT_SANDBOX = (
    "`meetgate demo` and `meetgate sandbox` (the local tenant to rehearse against) come with the "
    "meetgate-sandbox distribution: pip install meetgate-sandbox"
)


def _load_plugins(root: typer.Typer) -> list[str]:
    """Add the commands of installed plugins (entry points ``meetgate.commands``); returns a note for
    each plugin that could not be loaded."""
    from importlib.metadata import entry_points

    from meetgate.cli.plugin import COMMANDS_GROUP

    notes = []
    for point in entry_points(group=COMMANDS_GROUP):
        try:
            point.load()(root)
        except Exception as exc:  # a broken plugin must not take the product's CLI down with it
            dist = point.dist.name if point.dist is not None else point.value.split(".")[0]
            notes.append(
                f"the commands of {dist} ({point.value}) could not be loaded: {exc}; reinstall it with "
                f"`pip install --force-reinstall {dist}` (same version as meetgate), or uninstall it"
            )
    return notes


_plugin_notes = _load_plugins(app)
if not any(group.name == "sandbox" for group in app.registered_groups):
    app.info.epilog = "\n\n".join([*_plugin_notes, WITHOUT_SANDBOX])
elif _plugin_notes:
    app.info.epilog = "\n\n".join(_plugin_notes)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meetgate {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Settings file (default: $MEETGATE_CONFIG or ./meetgate.toml)."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", "-p", help="Profile in the settings file (default: $MEETGATE_PROFILE)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    st = state(ctx)
    st.config = config
    st.profile = profile


def invoke(args: list[str]) -> int:
    """Run one command line in-process and return its exit code (the demo and tests use this).

    meetgate's own errors are rendered with their remedy; anything else is a bug and propagates.
    """
    try:
        result = app(args, standalone_mode=False, prog_name="meetgate")
    except typer.Exit as done:
        return int(done.exit_code or 0)
    except typer.Abort:
        return 130
    except typer.TyperException as usage:  # usage errors (typer vendors click's exceptions)
        show = getattr(usage, "show", None)
        if callable(show):
            show()
        return int(getattr(usage, "exit_code", EXIT_USAGE))
    except MeetgateError as exc:
        try:
            fail(str(exc), exc.remedy, code=EXIT_USAGE)
        except typer.Exit as done:
            return int(done.exit_code)
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    import sys

    raise SystemExit(invoke(sys.argv[1:]))
