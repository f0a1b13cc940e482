"""``meetgate meetings occurrences`` and ``delete``: a calendar series' occurrences, and deleting a
meeting of either placement (registered on the ``meetings`` group by ``meetings.py``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from meetgate.cli._common import console, fail, print_json
from meetgate.cli.meetings_args import JsonOut, MeetingId, Organizer, parse_time_option, run
from meetgate.cli.meetings_calendar import Placement, placement_of

if TYPE_CHECKING:
    from meetgate.graph.client import GraphClient


def delete(
    ctx: typer.Context,
    meeting_id: MeetingId,
    organizer: Organizer,
    occurrence: Annotated[
        str | None,
        typer.Option("--occurrence", help="Calendar series: delete only this occurrence."),
    ] = None,
    placement: Placement = None,
    json_out: JsonOut = False,
) -> None:
    """Delete a meeting of either placement, or one occurrence of a calendar series.

    A calendar meeting deleted by its organizer is cancelled for the attendees, without a note
    (`meetgate meetings cancel ID --message …` sends one); --organizer given as an attendee removes
    only that attendee's copy.

    meetgate meetings delete SERIES_ID -o teacher@contoso.com --occurrence OCCURRENCE_ID
    """
    calendar = placement_of(meeting_id, placement) == "calendar" or occurrence is not None

    def action(client: GraphClient) -> None:
        target = occurrence or meeting_id
        if calendar:
            client.events.delete(organizer, target)
        else:
            client.meetings.delete(organizer, meeting_id)
        if json_out:
            print_json(
                {
                    "deleted": True,
                    "placement": "calendar" if calendar else "standalone",
                    "id": meeting_id,
                    "occurrence": occurrence,
                }
            )
        else:
            console().print(f"[bold green]meeting deleted[/] {target}")

    run(ctx, json_out, action)


def occurrences(
    ctx: typer.Context,
    meeting_id: Annotated[
        str, typer.Argument(help="The series' id (from `meetgate meetings create --calendar`).")
    ],
    organizer: Organizer,
    start: Annotated[
        str | None,
        typer.Option("--from", help="Window start, ISO 8601 with timezone (default: the series' start)."),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Window end, ISO 8601 with timezone (default: a year later).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """List the occurrences of a calendar series in a window (moved ones included, cancelled ones not).

    meetgate meetings occurrences SERIES_ID -o teacher@contoso.com --from 2030-09-01T00:00Z --to 2030-12-31T00:00Z
    """
    from meetgate.cli.meetings_calendar import STANDALONE_ONLY_OCCURRENCES, id_shape, show_occurrences

    if id_shape(meeting_id) == "standalone":
        fail(f"{meeting_id} is a standalone meeting's id", STANDALONE_ONLY_OCCURRENCES)
    window_start = parse_time_option(start, "from")
    window_end = parse_time_option(end, "to")
    if window_start is not None and window_end is not None and window_end <= window_start:
        fail(
            "--to must be after --from",
            "Give a window such as --from 2030-09-01T00:00Z --to 2030-12-31T00:00Z.",
        )

    def action(client: GraphClient) -> None:
        first = window_start
        if first is None:
            series = client.events.get(organizer, meeting_id)
            first = series.start or dt.datetime.now(dt.UTC)
        last = window_end or first + dt.timedelta(days=366)
        show_occurrences(client.events.occurrences(organizer, meeting_id, first, last), json_out, first, last)

    run(ctx, json_out, action)
