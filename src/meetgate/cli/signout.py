"""``meetgate signout``: forget the administrator sign-ins kept between admin commands."""

from __future__ import annotations

from typing import Annotated

import typer

from meetgate.cli._common import console, print_json, state


def signout(
    ctx: typer.Context,
    all_profiles: Annotated[
        bool,
        typer.Option("--all-profiles", help="Forget the sign-ins of every profile of the settings file."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Forget the kept administrator sign-in of the active profile (every tenant it signed in to).

    `setup` and `cert` keep the administrator's sign-in (MSAL's token cache, mode 0600 in
    .meetgate/signin beside the settings file) so the runbook asks for the device code once. The
    tokens stay valid at Entra until they expire; revoke the account's sessions there to end them
    everywhere.
    """
    import os

    from meetgate.config import config_path
    from meetgate.graph.signin_cache import cache_folder, forget

    st = state(ctx)
    settings = config_path(st.config)
    profile = None
    if not all_profiles:
        profile = st.profile or os.environ.get("MEETGATE_PROFILE") or _default_profile(settings)
    folder = cache_folder(settings)
    removed = forget(folder, profile)
    if as_json:
        print_json({"profile": profile, "folder": str(folder), "removed": [str(p) for p in removed]})
        return
    whose = "every profile" if profile is None else f"profile '{profile}'"
    if removed:
        console().print(f"Forgot {len(removed)} kept sign-in(s) of {whose} ({folder}).")
    else:
        console().print(f"No kept sign-in of {whose} in {folder}: nothing to forget.")


def _default_profile(settings: object) -> str:
    from pathlib import Path

    from meetgate.config import read_config_file

    data = read_config_file(Path(str(settings)))
    name = data.get("default_profile")
    return name if isinstance(name, str) and name else "default"
