"""Calendar meetings in ``meetgate meetings …``: which placement an id has, how an event is shown,
and the remedies the CLI adds to Exchange's refusals.

A calendar meeting is an Exchange event with a Teams meeting (``graph.events``); a standalone one is a
``/onlineMeetings`` resource (``graph.meetings``). Commands that take a meeting id tell them apart by
the id's shape (see :func:`placement_of`), so ``get``, ``update``, ``cancel`` and ``delete`` work on
either without a flag; ``--calendar`` / ``--standalone`` override the guess.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meetgate.cli._common import console, print_json

if TYPE_CHECKING:
    from meetgate.graph.event_models import CalendarMeeting
    from meetgate.graph.models import OnlineMeeting

Placement = Annotated[
    bool | None,
    typer.Option(
        "--calendar/--standalone",
        help="The meeting is a calendar meeting (an Exchange event) / a standalone online meeting. "
        "Default: told from the id (calendar ids start AAMk…, standalone ids MSo…/MSp…).",
    ),
]

#: the option a meeting rule's ``field`` is given with on the command line
OPTION_OF_FIELD = {
    "timeZone": "--time-zone",
    "time_zone": "--time-zone",
    "attendees": "--attendee",
    "recurrence": "--recurrence",
    "message": "--message",
}

NOT_ORGANIZER_REMEDY = (
    "Only the organizer can cancel a meeting: give the organizer's UPN with --organizer and the id of "
    "the organizer's event (an attendee's copy has another id; `meetgate meetings get ID -o ORGANIZER` "
    "shows it). An attendee removes the meeting from their own calendar with `meetgate meetings delete`."
)
ICS_REMEDY = (
    "Exchange already sent the invitations of a calendar meeting (and sends every update and "
    "cancellation): there is nothing to mail. Share the event's webLink (`meetgate meetings get ID "
    "-o ORGANIZER --json`) or add attendees with `meetgate meetings update ID --attendee …`. "
    "`meetgate meetings ics` is for standalone meetings, which are on nobody's calendar."
)
STANDALONE_ONLY_OCCURRENCES = (
    "A standalone meeting cannot recur, so it has no occurrences. Create a series with "
    "`meetgate meetings create --calendar --recurrence 'RRULE:FREQ=WEEKLY;COUNT=10' …`."
)


def id_shape(meeting_id: str) -> str | None:
    """``calendar`` or ``standalone`` when ``meeting_id`` has one of the two shapes, else None
    (:func:`meetgate.graph.identifiers.meeting_id_shape`)."""
    from meetgate.graph.identifiers import meeting_id_shape

    return meeting_id_shape(meeting_id)


def placement_of(meeting_id: str, flag: bool | None) -> str:
    """``calendar`` or ``standalone`` for ``meeting_id``: the flag when given, else the id's shape
    (:func:`id_shape`); an id of neither shape is taken as standalone (the placement of every
    meeting made before calendar meetings existed)."""
    if flag is not None:
        return "calendar" if flag else "standalone"
    return id_shape(meeting_id) or "standalone"


def add_remedies(exc: Any, *, cancelling: bool = False) -> Any:
    """Exchange's refusals with what to do from the command line (the error itself is kept): a
    cancel by someone other than the organizer (Exchange answers a plain 400 for it)."""
    from meetgate.graph.errors import BadRequestError

    if cancelling and isinstance(exc, BadRequestError) and "organizer" in exc.message.lower():
        exc.remedy = NOT_ORGANIZER_REMEDY
    return exc


def event_json(event: CalendarMeeting, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``--json`` prints for a calendar meeting: the event's flat view, placed."""
    data: dict[str, Any] = {"placement": "calendar"}
    data.update(event.model_dump(mode="json", by_alias=True, exclude_none=True))
    data.update(extra or {})
    return data


def show_event(
    event: CalendarMeeting,
    json_out: bool,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
    teams: OnlineMeeting | None = None,
) -> None:
    """One calendar meeting as text (or JSON); ``teams`` is the Teams meeting behind it, when known."""
    if json_out:
        more = dict(extra or {})
        if teams is not None:
            more["teamsMeeting"] = teams.model_dump(mode="json", by_alias=True, exclude_none=True)
        print_json(event_json(event, more))
        return
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if title:
        out.print(f"[bold green]{escape(title)}[/]")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()

    def row(label: str, value: object) -> None:
        if value not in (None, "", []):
            table.add_row(label, escape(str(value)))

    kinds = {
        "seriesMaster": "series",
        "occurrence": "occurrence of a series",
        "exception": "moved occurrence",
    }
    row("subject", event.subject)
    row("id", event.id)
    row("placement", f"calendar ({kinds.get(event.kind, 'single meeting')})")
    if event.is_cancelled:
        row("cancelled", "yes")
    row("join URL", event.join_web_url)
    row("start", event.start.isoformat() if event.start else None)
    row("end", event.end.isoformat() if event.end else None)
    row("time zone", event.time_zone)
    row("recurrence", event.recurrence)
    row("series", event.series_master_id)
    row("organizer", event.organizer)
    row(
        "attendees",
        ", ".join(
            f"{a.address}{' (optional)' if a.type == 'optional' else ''}"
            f"{f' [{a.response}]' if a.response and a.response != 'none' else ''}"
            for a in event.attendees
        ),
    )
    if teams is not None:
        row("lobby bypass", teams.lobby_bypass_scope)
        row("presenters", teams.allowed_presenters)
        row("chat", teams.allow_meeting_chat)
    row("external id", event.external_id)
    row("calendar link", event.web_link)
    for key, value in (extra or {}).items():
        row(key, value)
    out.print(table)


def show_occurrences(
    events: list[CalendarMeeting], json_out: bool, start: dt.datetime, end: dt.datetime
) -> None:
    """A series' occurrences in a window, one line each (or a JSON list)."""
    if json_out:
        print_json([event_json(event) for event in events])
        return
    from rich.markup import escape
    from rich.table import Table

    out = console()
    window = f"{start.isoformat()} – {end.isoformat()}"
    if not events:
        out.print(f"no occurrences between {escape(window)}")
        return
    table = Table(title=f"{len(events)} occurrence(s) between {window}", title_justify="left")
    for name in ("start", "end", "kind", "id"):
        table.add_column(name)
    for event in events:
        table.add_row(
            escape(event.start.isoformat() if event.start else "?"),
            escape(event.end.isoformat() if event.end else "?"),
            "moved" if event.kind == "exception" else ("cancelled" if event.is_cancelled else "as planned"),
            escape(event.id),
        )
    out.print(table)
