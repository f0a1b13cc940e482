"""``meetgate meetings …``: create, get, find, update, cancel Teams meetings, and their ``.ics``.

The commands run as the app of the active profile (app-only, certificate auth) against Graph, for an
organizer given by UPN or object id, exactly as a third-party app would through the library. A meeting
is standalone (``/onlineMeetings``, on nobody's calendar) or, with ``create --calendar``, a calendar
meeting (an Exchange event with a Teams meeting: invitations, recurrence); commands taking an id tell
the two apart by its shape (:func:`meetgate.cli.meetings_calendar.placement_of`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meetgate.cli._common import EXIT_FAILED, EXIT_USAGE, console, err_console, fail, print_json
from meetgate.cli.meetings_args import (
    ONE_HOUR,
    AllowPast,
    Attendees,
    Chat,
    JsonOut,
    Lobby,
    MeetingId,
    Organizer,
    Presenters,
    build_request,
    check_calendar,
    check_rules,
    check_zone,
    parse_time_option,
    run,
)
from meetgate.cli.meetings_calendar import Placement, placement_of

if TYPE_CHECKING:
    from meetgate.graph.client import GraphClient
    from meetgate.graph.models import OnlineMeeting

app = typer.Typer(
    help=(
        "Create, find, reschedule and cancel Teams meetings for an approved organizer (the integration "
        "itself, as a third-party app runs it): standalone online meetings, or with --calendar Exchange "
        "calendar meetings with invitations and recurring series (docs/meetings-cli.md).\n\n"
        "meetgate meetings create -o advisor@contoso.com --subject Advising --start 2030-06-11T10:00Z\n\n"
        "meetgate meetings create --calendar -o teacher@contoso.com --subject 'Algebra 1' "
        "--start 2030-09-02T09:00:00+02:00 --time-zone Europe/Berlin --recurrence "
        "'RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=20' -a class-7b@contoso.com"
    ),
    no_args_is_help=True,
)


def _show(
    meeting: OnlineMeeting, json_out: bool, title: str | None = None, extra: dict[str, Any] | None = None
) -> None:
    if json_out:
        data: dict[str, Any] = {"placement": "standalone"}
        data.update(meeting.model_dump(mode="json", by_alias=True, exclude_none=True))
        if extra:
            data.update(extra)
        print_json(data)
        return
    from rich.markup import escape
    from rich.table import Table

    from meetgate.graph.ics import format_meeting_id

    out = console()
    if title:
        out.print(f"[bold green]{escape(title)}[/]")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()

    def row(label: str, value: object) -> None:
        if value not in (None, "", []):
            table.add_row(label, escape(str(value)))

    row("subject", meeting.subject)
    row("id", meeting.id)
    row("join URL", meeting.join_web_url)
    if meeting.join_meeting_id:
        row("meeting ID", format_meeting_id(meeting.join_meeting_id))
    row("passcode", meeting.passcode)
    row("start", meeting.start.isoformat() if meeting.start else None)
    row("end", meeting.end.isoformat() if meeting.end else None)
    row("organizer", meeting.organizer_upn or meeting.organizer_id)
    row("attendees", ", ".join(f"{a.upn} ({a.role})" for a in meeting.attendees))
    row("lobby bypass", meeting.lobby_bypass_scope)
    if meeting.dial_in_bypass is not None:
        row("dial-in bypass", "yes" if meeting.dial_in_bypass else "no")
    row("presenters", meeting.allowed_presenters)
    row("chat", meeting.allow_meeting_chat)
    row("external id", meeting.external_id)
    if meeting.dial_in:
        row("dial in", meeting.dial_in.toll_number or meeting.dial_in.toll_free_number)
        row("conference ID", meeting.dial_in.conference_id)
    for key, value in (extra or {}).items():
        row(key, value)
    out.print(table)


CALENDAR_ONLY = ("--recurrence", "--optional-attendee", "--body", "--location", "--time-zone")


@app.command("create")
def create(
    ctx: typer.Context,
    organizer: Organizer,
    subject: Annotated[str | None, typer.Option("--subject", "-s", help="Meeting subject.")] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="Start, ISO 8601 with timezone, not in the past (default: now; required with --calendar).",
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="End, ISO 8601 with timezone (default: start + 1 h).")
    ] = None,
    attendee: Attendees = None,
    lobby: Lobby = None,
    presenters: Presenters = None,
    chat: Chat = None,
    external_id: Annotated[
        str | None,
        typer.Option(
            "--external-id",
            help="Your own key for this meeting (e.g. the booking id). Repeating the command with the same "
            "key returns the same meeting instead of creating a second one. Generated when omitted.",
        ),
    ] = None,
    calendar: Annotated[
        bool,
        typer.Option(
            "--calendar",
            help="Make a calendar meeting: an event in the organizer's Exchange calendar with a Teams "
            "meeting; Exchange invites the attendees (Join button in their calendar). Needs the app's "
            "Calendars.ReadWrite on the organizer's mailbox (Exchange RBAC for Applications).",
        ),
    ] = False,
    recurrence: Annotated[
        str | None,
        typer.Option(
            "--recurrence",
            help="With --calendar: a series, as an RFC 5545 RRULE, e.g. 'RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=12' "
            "or 'FREQ=MONTHLY;BYDAY=1MO;UNTIL=20301231'. Rules Graph cannot express are refused.",
        ),
    ] = None,
    optional_attendee: Annotated[
        list[str] | None,
        typer.Option("--optional-attendee", help="With --calendar: an optional attendee's UPN (repeatable)."),
    ] = None,
    body: Annotated[
        str | None,
        typer.Option("--body", help="With --calendar: the invitation's text (HTML when it starts with '<')."),
    ] = None,
    location: Annotated[str | None, typer.Option("--location", help="With --calendar: the location.")] = None,
    time_zone: Annotated[
        str | None,
        typer.Option(
            "--time-zone",
            help="With --calendar: IANA zone the meeting is kept in (e.g. Europe/Berlin), so a series keeps "
            "its local time across daylight-saving changes (default UTC).",
        ),
    ] = None,
    allow_past: AllowPast = False,
    json_out: JsonOut = False,
) -> None:
    """Create a meeting (createOrGet keyed by --external-id, so a retry never makes a second one).

    Standalone by default (on nobody's calendar: send `meetgate meetings ics`); with --calendar an
    Exchange calendar meeting, which may recur. Examples:

    meetgate meetings create -o advisor@contoso.com -s Advising --start 2030-06-11T10:00Z --external-id b-4711

    meetgate meetings create --calendar -o teacher@contoso.com -s "Algebra 1" --start 2030-09-02T09:00+02:00 --end 2030-09-02T09:45+02:00 --time-zone Europe/Berlin --recurrence "RRULE:FREQ=WEEKLY;COUNT=12" -a class-7b@contoso.com --optional-attendee parent@example.org --external-id algebra-7b
    """
    from meetgate.graph.models import MeetingRequest

    given = {
        "--recurrence": recurrence,
        "--optional-attendee": optional_attendee,
        "--body": body,
        "--location": location,
        "--time-zone": time_zone,
    }
    if not calendar:
        used = [name for name in CALENDAR_ONLY if given[name]]
        if used:
            fail(
                f"{', '.join(used)} need(s) a calendar meeting: a standalone meeting is on nobody's "
                "calendar and cannot recur",
                "Add --calendar (the meeting then lives in the organizer's Exchange calendar).",
            )
    people = [*(attendee or []), *({"upn": upn, "optional": True} for upn in optional_attendee or [])]
    request = build_request(MeetingRequest, subject, start, end, people, lobby, presenters, chat)
    if calendar:
        request = request.model_copy(
            update={
                "placement": "calendar",
                "recurrence": recurrence,
                "body": body,
                "location": location,
                "time_zone": time_zone,
            }
        )
        check_calendar(request)
    check_rules(request.subject, request.start, request.end, allow_past)

    def action(client: GraphClient) -> None:
        from meetgate.graph.meetings import new_external_id

        key = external_id or new_external_id()
        if calendar:
            from meetgate.cli.meetings_calendar import show_event

            made = client.events.create_or_get(organizer, key, request, allow_past=allow_past)
            title = (
                "calendar meeting created (Exchange sends the invitations)"
                if made.created
                else "calendar meeting already existed for this external id"
            )
            extra = {"newlyCreated": made.created} if json_out else None
            show_event(made.event, json_out, title, extra, teams=made.meeting)
            return
        result = client.meetings.create_or_get(organizer, key, request, allow_past=allow_past)
        title = "meeting created" if result.created else "meeting already existed for this external id"
        _show(result.meeting, json_out, title, {"newlyCreated": result.created} if json_out else None)

    run(ctx, json_out, action)


@app.command("get")
def get(
    ctx: typer.Context,
    meeting_id: MeetingId,
    organizer: Organizer,
    placement: Placement = None,
    json_out: JsonOut = False,
) -> None:
    """Show one meeting of an organizer (a calendar meeting, a series, an occurrence, or standalone)."""

    def action(client: GraphClient) -> None:
        if placement_of(meeting_id, placement) == "calendar":
            from meetgate.cli.meetings_calendar import show_event

            show_event(client.events.get(organizer, meeting_id), json_out)
            return
        _show(client.meetings.get(organizer, meeting_id), json_out)

    run(ctx, json_out, action)


@app.command("find")
def find(
    ctx: typer.Context,
    organizer: Organizer,
    join_url: Annotated[str | None, typer.Option("--join-url", help="The meeting's joinWebUrl.")] = None,
    meeting_id: Annotated[
        str | None, typer.Option("--meeting-id", help="The numeric meeting ID from the invitation.")
    ] = None,
    external_id: Annotated[
        str | None,
        typer.Option(
            "--external-id",
            help="Calendar meetings: the key given to `meetgate meetings create --calendar` (e.g. the "
            "booking id), looked up in the organizer's calendar.",
        ),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Find an organizer's meeting by its join URL, its numeric meeting ID or (calendar) its external id.

    A join URL or meeting ID finds the Teams meeting itself, also the one behind a calendar meeting.
    """
    if sum(value is not None for value in (join_url, meeting_id, external_id)) != 1:
        fail("give exactly one of --join-url, --meeting-id or --external-id")

    def not_found() -> None:
        if json_out:
            print_json(None)
        else:
            err_console().print("no meeting of this organizer matches")
        raise typer.Exit(EXIT_FAILED)

    def action(client: GraphClient) -> None:
        if external_id is not None:
            from meetgate.cli.meetings_calendar import show_event

            event = client.events.find_by_external_id(organizer, external_id)
            if event is None:
                not_found()
            else:
                show_event(event, json_out)
            return
        if join_url is not None:
            found = client.meetings.find_by_join_url(organizer, join_url)
        else:
            assert meeting_id is not None
            found = client.meetings.find_by_meeting_id(organizer, meeting_id)
        if found is None:
            not_found()
        else:
            _show(found, json_out)

    run(ctx, json_out, action)


@app.command("update")
def update(
    ctx: typer.Context,
    meeting_id: MeetingId,
    organizer: Organizer,
    subject: Annotated[str | None, typer.Option("--subject", "-s", help="New subject.")] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="New start (ISO 8601); alone it keeps the duration.")
    ] = None,
    end: Annotated[str | None, typer.Option("--end", help="New end (ISO 8601); needs --start.")] = None,
    attendee: Annotated[
        list[str] | None,
        typer.Option("--attendee", "-a", help="Replace the attendees with these UPNs (repeat the option)."),
    ] = None,
    optional_attendee: Annotated[
        list[str] | None,
        typer.Option(
            "--optional-attendee", help="Calendar meetings: optional attendees in the replaced list."
        ),
    ] = None,
    clear_attendees: Annotated[
        bool, typer.Option("--clear-attendees", help="Remove every attendee.")
    ] = False,
    lobby: Lobby = None,
    dial_in_bypass: Annotated[
        bool | None,
        typer.Option("--dial-in-bypass/--no-dial-in-bypass", help="Let phone callers skip the lobby."),
    ] = None,
    presenters: Presenters = None,
    chat: Chat = None,
    body: Annotated[str | None, typer.Option("--body", help="Calendar meetings: new text.")] = None,
    location: Annotated[
        str | None, typer.Option("--location", help="Calendar meetings: new location.")
    ] = None,
    time_zone: Annotated[
        str | None,
        typer.Option("--time-zone", help="Calendar meetings: IANA zone the new times are kept in."),
    ] = None,
    occurrence: Annotated[
        str | None,
        typer.Option(
            "--occurrence",
            help="Calendar series: change only this occurrence (its id, listed by "
            "`meetgate meetings occurrences`); without it the whole series changes.",
        ),
    ] = None,
    placement: Placement = None,
    allow_past: AllowPast = False,
    json_out: JsonOut = False,
) -> None:
    """Reschedule a meeting or change its subject, attendees (replaced as a whole) or options.

    For a calendar meeting Exchange sends the attendees the update. Examples:

    meetgate meetings update ID -o advisor@contoso.com --start 2030-06-12T10:00Z   (keeps the duration)

    meetgate meetings update SERIES_ID -o teacher@contoso.com --occurrence OCCURRENCE_ID --start 2030-09-16T11:00+02:00 --end 2030-09-16T11:45+02:00
    """
    from meetgate.graph.models import MeetingUpdate

    calendar = placement_of(meeting_id, placement) == "calendar" or occurrence is not None
    if end is not None and start is None:
        fail("--end needs --start", "Graph changes times only as a pair; --start alone keeps the duration.")
    if clear_attendees and (attendee or optional_attendee):
        fail("give either --attendee / --optional-attendee or --clear-attendees")
    if not calendar:
        used = [
            name
            for name, value in (
                ("--optional-attendee", optional_attendee),
                ("--body", body),
                ("--location", location),
                ("--time-zone", time_zone),
            )
            if value
        ]
        if used:
            fail(
                f"{', '.join(used)}: only calendar meetings have these, and {meeting_id} is a standalone "
                "meeting's id",
                "Drop the option(s), or add --calendar if the id really is a calendar meeting's.",
            )
    people: list[Any] | None = None
    if attendee is not None or optional_attendee is not None:
        people = [*(attendee or []), *({"upn": u, "optional": True} for u in optional_attendee or [])]
    changes = build_request(MeetingUpdate, subject, None, None, people, lobby, presenters, chat)
    if clear_attendees:
        changes.attendees = []
    if dial_in_bypass is not None:
        changes.dial_in_bypass = dial_in_bypass
    new_start = parse_time_option(start, "start")
    new_end = parse_time_option(end, "end")
    check_rules(changes.subject, new_start, new_end, allow_past)  # --start alone keeps the duration
    if calendar:
        for name, value in (("body", body), ("location", location), ("time_zone", time_zone)):
            if value is not None:
                setattr(changes, name, value)
        if time_zone is not None:
            check_zone(time_zone)

    def action(client: GraphClient) -> None:
        if calendar:
            _update_event(client, organizer, occurrence or meeting_id, changes, new_start, new_end)
            return
        meeting = None
        if new_start is not None:
            meeting = client.meetings.reschedule(
                organizer, meeting_id, new_start, new_end, allow_past=allow_past
            )
        if not changes.is_empty() or meeting is None:
            meeting = client.meetings.update(organizer, meeting_id, changes, allow_past=allow_past)
        _show(meeting, json_out, "meeting updated")

    def _update_event(
        client: GraphClient,
        organizer: str,
        event_id: str,
        changes: Any,
        new_start: dt.datetime | None,
        new_end: dt.datetime | None,
    ) -> None:
        from meetgate.cli.meetings_calendar import show_event

        if new_start is not None:
            if new_end is None:  # keep the duration
                current = client.events.get(organizer, event_id)
                length = (
                    current.end - current.start
                    if current.start is not None and current.end is not None
                    else None
                )
                new_end = new_start + (length or ONE_HOUR)
            changes.start, changes.end = new_start, new_end
        event = client.events.update(organizer, event_id, changes, allow_past=allow_past)
        if not event.subject and event.start is None:  # only options changed: show the event as it is
            event = client.events.get(organizer, event_id)
        what = "occurrence updated" if occurrence else "calendar meeting updated"
        show_event(event, json_out, f"{what} (Exchange notifies the attendees)")

    run(ctx, json_out, action)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    meeting_id: MeetingId,
    organizer: Organizer,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            help="Standalone meetings: delete (default) removes the meeting; lock keeps it but admits only "
            "the organizer and turns chat off, so a stale link cannot revive it.",
        ),
    ] = None,
    message: Annotated[
        str | None,
        typer.Option(
            "--message",
            "-m",
            help="Calendar meetings: the cancellation note Exchange sends the attendees (organizer only).",
        ),
    ] = None,
    occurrence: Annotated[
        str | None,
        typer.Option(
            "--occurrence",
            help="Calendar series: cancel only this occurrence (its id, listed by "
            "`meetgate meetings occurrences`); without it the whole series is cancelled.",
        ),
    ] = None,
    placement: Placement = None,
    json_out: JsonOut = False,
) -> None:
    """Cancel a meeting: a calendar one with a note to the attendees, a standalone one deleted or locked.

    A calendar meeting (or, with --occurrence, one occurrence of a series) is cancelled by Exchange,
    which sends the attendees the cancellation with --message (organizer only). A standalone meeting
    is deleted, or locked so its link leads nowhere.

    meetgate meetings cancel SERIES_ID -o teacher@contoso.com --occurrence OCCURRENCE_ID -m "No class today"

    meetgate meetings cancel MEETING_ID -o advisor@contoso.com --mode lock
    """
    calendar = placement_of(meeting_id, placement) == "calendar" or occurrence is not None
    if mode not in (None, "delete", "lock"):
        fail(f"--mode must be delete or lock, not {mode!r}")
    if calendar and mode is not None:
        fail(
            "--mode is for standalone meetings: a calendar meeting is cancelled (Exchange tells the "
            "attendees) or deleted",
            "Drop --mode; give the attendees a note with --message. `meetgate meetings delete` removes it.",
        )
    if not calendar and message is not None:
        fail(
            f"--message: {meeting_id} is a standalone meeting's id, and only calendar meetings send a "
            "cancellation (a standalone meeting is on nobody's calendar)",
            "Drop --message (tell the attendees yourself, e.g. `meetgate meetings ics ID --cancellation`), "
            "or add --calendar if the id really is a calendar meeting's.",
        )
    if message is not None and len(message) > 4000:
        fail("--message is longer than 4,000 characters", "Shorten the cancellation note.")

    def action(client: GraphClient) -> None:
        if calendar:
            target = occurrence or meeting_id
            client.events.cancel(organizer, target, message=message)
            what = "occurrence" if occurrence else "calendar meeting"
            if json_out:
                print_json(
                    {
                        "cancelled": True,
                        "placement": "calendar",
                        "id": meeting_id,
                        "occurrence": occurrence,
                        "message": message,
                    }
                )
            else:
                console().print(f"[bold green]{what} cancelled[/] {target} (Exchange notified the attendees)")
            return
        result = client.meetings.cancel(organizer, meeting_id, mode="lock" if mode == "lock" else "delete")
        if result is None:
            if json_out:
                print_json({"cancelled": True, "placement": "standalone", "mode": "delete", "id": meeting_id})
            else:
                console().print(f"[bold green]meeting deleted[/] {meeting_id}")
            return
        _show(result, json_out, "meeting locked: only the organizer gets in, chat is off")

    run(ctx, json_out, action, cancelling=True)


@app.command("ics")
def ics(
    ctx: typer.Context,
    meeting_id: MeetingId,
    organizer: Organizer,
    out: Annotated[Path | None, typer.Option("--out", help="Write the .ics here instead of stdout.")] = None,
    organizer_email: Annotated[
        str | None,
        typer.Option("--organizer-email", help="Organizer's e-mail in the invitation (default: looked up)."),
    ] = None,
    cancellation: Annotated[
        bool, typer.Option("--cancellation", help="Write a METHOD:CANCEL for an invitation sent earlier.")
    ] = False,
    sequence: Annotated[
        int | None, typer.Option("--sequence", help="SEQUENCE (raise it for every re-sent invitation).")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print {meetingId, method, sequence, file, ics} as JSON (the .ics text inside)."
        ),
    ] = False,
) -> None:
    """Write an iCalendar invitation for a standalone meeting (it appears on nobody's calendar).

    Calendar meetings are refused: Exchange already sent their invitations.
    """
    if placement_of(meeting_id, None) == "calendar":
        from meetgate.cli.meetings_calendar import ICS_REMEDY

        message = (
            f"{meeting_id} is a calendar meeting: meetgate writes .ics files for standalone meetings only"
        )
        if as_json:
            print_json({"error": "CalendarMeetingHasInvitations", "message": message, "remedy": ICS_REMEDY})
            raise typer.Exit(EXIT_USAGE)
        fail(message, ICS_REMEDY)

    def action(client: GraphClient) -> str:
        from meetgate.graph.ics import meeting_cancellation_ics, meeting_invitation_ics

        meeting = client.meetings.get(organizer, meeting_id)
        email = organizer_email
        name = None
        if email is None:
            user = client.directory.get_user(organizer)
            email = user.mail or user.user_principal_name or organizer
            name = user.display_name
        if cancellation:
            return meeting_cancellation_ics(
                meeting, email, organizer_name=name, sequence=1 if sequence is None else sequence
            )
        return meeting_invitation_ics(meeting, email, organizer_name=name, sequence=sequence or 0)

    text = run(ctx, False, action)
    if out is not None:
        out.write_text(text, newline="")
    if as_json:
        print_json(
            {
                "meetingId": meeting_id,
                "method": "CANCEL" if cancellation else "REQUEST",
                "sequence": (1 if sequence is None else sequence) if cancellation else (sequence or 0),
                "file": str(out) if out is not None else None,
                "ics": text,
            }
        )
    elif out is None:
        typer.echo(text, nl=False)
    else:
        err_console().print(f"wrote {out}")


def _add_artifact_commands() -> None:
    from meetgate.cli import meetings_artifacts

    meetings_artifacts.register(app)


_add_artifact_commands()


def _add_series_commands() -> None:
    from meetgate.cli import meetings_series

    app.command("delete")(meetings_series.delete)
    app.command("occurrences")(meetings_series.occurrences)


_add_series_commands()


def _add_bulk() -> None:
    from meetgate.cli import bulk

    app.add_typer(bulk.app, name="bulk")


_add_bulk()
