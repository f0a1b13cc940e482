"""The demo's calendar step: the second governance plane (Exchange RBAC for Applications) set up with
``meetgate mailbox-scope``, then a weekly series for a pilot organizer that lands in the attendee's
calendar, one occurrence moved, and an organizer outside the scope refused."""

from __future__ import annotations

import datetime as dt
import shlex
from typing import TYPE_CHECKING, Any

from meetgate.cli.plugin import console

if TYPE_CHECKING:
    from meetgate_sandbox.demo import DemoRun

__all__ = ["step_calendar"]


def _json(run: DemoRun, *args: str) -> Any:
    """Run a meetgate command with ``--json`` quietly (its command line echoed) and return its document."""
    from meetgate_sandbox.demo import _capture_json

    console().print(f"[bold cyan]$ meetgate {shlex.join(args)} --json[/]", markup=True, highlight=False)
    return _capture_json(run, *args)


def _grant_exchange_app_only(run: DemoRun, client_id: str) -> None:
    """What an admin does once in Entra for app-only Exchange PowerShell: the Exchange.ManageAsApp
    permission and the Exchange Administrator role for the app (the sandbox keeps both per app)."""
    from meetgate_sandbox.control import SandboxControl  # httpx: loaded when the demo runs, not for --help

    info = run.info
    with SandboxControl(info.control_url, info.ca_bundle) as control:
        control.request(
            "PUT",
            f"/tenants/{info.tenant_id}/exchange/app-only-access/{client_id}",
            json={"manageAsApp": True, "exchangeAdministrator": True},
        )


def _attendee_calendar(run: DemoRun, attendee: str, start: dt.datetime) -> list[dict[str, Any]]:
    from meetgate.composition import graph_client_from_profile
    from meetgate.config import load_profile

    with graph_client_from_profile(load_profile(run.config)) as client:
        page = client.http.request(
            "GET",
            f"/users/{attendee}/calendarView",
            params={
                "startDateTime": (start - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endDateTime": (start + dt.timedelta(weeks=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
    return list(page.get("value", [])) if isinstance(page, dict) else []


def step_calendar(run: DemoRun, client_id: str, start: dt.datetime) -> None:
    """Mailbox scope, then a weekly series, its occurrences in the attendee's calendar, one moved,
    and the refusal of an organizer outside the scope."""
    out = console()
    _grant_exchange_app_only(run, client_id)
    (run.workdir / "policy.toml").write_text(
        (run.workdir / "policy.toml").read_text() + f'\n[mailbox_scope]\noutside = ["{run.outsider}"]\n'
    )
    pwsh = run.pwsh
    organization = ["--organization", run.info.tenant_domain]
    run.meetgate("mailbox-scope", "plan", *pwsh, *organization)
    run.meetgate("mailbox-scope", "apply", *pwsh, *organization)
    run.meetgate("mailbox-scope", "verify", *pwsh, *organization)
    console().print(
        "[bold]Step 6 again, now with the calendar plane's tests[/] (a calendar meeting per pilot, "
        "refused for an outside mailbox):"
    )
    run.meetgate("validate", *pwsh)

    organizer, attendee = run.pilots[0], run.pilots[1]
    out.print("[bold]A weekly class for a pilot organizer, on the attendee's calendar:[/]")
    series = _json(
        run,
        "meetings",
        "create",
        "--calendar",
        "--organizer",
        organizer,
        "--subject",
        "Weekly advising (demo)",
        "--start",
        start.isoformat(),
        "--recurrence",
        "RRULE:FREQ=WEEKLY;COUNT=4",
        "--attendee",
        attendee,
        "--external-id",
        "demo-series-1",
    )
    run.check(
        "a series master with a Teams join URL",
        series.get("kind") == "seriesMaster" and bool(series.get("joinWebUrl")),
    )
    items = _json(run, "meetings", "occurrences", series["id"], "--organizer", organizer)
    run.check(f"{len(items)} weekly occurrences", len(items) == 4)
    copies = [
        event
        for event in _attendee_calendar(run, attendee, start)
        if event.get("subject") == "Weekly advising (demo)"
    ]
    run.check(
        f"all {len(copies)} are in {attendee}'s calendar, with the same join URL",
        len(copies) == 4
        and all(
            (event.get("onlineMeeting") or {}).get("joinUrl") == series["joinWebUrl"] for event in copies
        ),
    )
    moved_start = start + dt.timedelta(weeks=1, hours=2)
    moved = _json(
        run,
        "meetings",
        "update",
        series["id"],
        "--organizer",
        organizer,
        "--occurrence",
        items[1]["id"],
        "--start",
        moved_start.isoformat(),
    )
    run.check(
        f"the second one moved to {moved_start:%a %H:%M}Z (an exception of the series)",
        moved.get("kind") == "exception",
    )
    out.print("[bold]An organizer outside the mailbox scope is refused by Exchange:[/]")
    run.meetgate(
        "meetings",
        "create",
        "--calendar",
        "--organizer",
        run.outsider,
        "--subject",
        "Not allowed",
        "--start",
        start.isoformat(),
        expect=1,
    )
