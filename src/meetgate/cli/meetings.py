"""``meetgate meetings …``: create, get, find, update, cancel Teams online meetings, and their ``.ics``.

The commands run as the app of the active profile (app-only, certificate auth) against Graph, for an
organizer given by UPN or object id, exactly as a third-party app would through the library.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from meetgate.cli._common import EXIT_FAILED, EXIT_USAGE, console, err_console, fail, print_json

if TYPE_CHECKING:
    import datetime as dt
    from enum import StrEnum

    from meetgate.graph.client import GraphClient
    from meetgate.graph.models import OnlineMeeting

app = typer.Typer(
    help=(
        "Create, find, reschedule and cancel Teams online meetings for an approved organizer "
        "(the integration itself, as a third-party app runs it)."
    ),
    no_args_is_help=True,
)

T = TypeVar("T")

Organizer = Annotated[
    str,
    typer.Option("--organizer", "-o", help="Organizer: UPN (resolved once to its object id) or object id."),
]
MeetingId = Annotated[
    str, typer.Argument(help="The meeting's id (from `meetgate meetings create` or `find`).")
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]
Lobby = Annotated[
    str | None,
    typer.Option(
        "--lobby",
        help="Who bypasses the lobby: organizer, organization, organizationAndFederated, everyone, "
        "invited, organizationExcludingGuests.",
    ),
]
Presenters = Annotated[
    str | None,
    typer.Option("--presenters", help="Who may present: everyone, organization, roleIsPresenter, organizer."),
]
Chat = Annotated[str | None, typer.Option("--chat", help="Meeting chat: enabled, disabled, limited.")]
Attendees = Annotated[
    list[str] | None,
    typer.Option("--attendee", "-a", help="Attendee UPN (repeat the option for several)."),
]


AllowPast = Annotated[
    bool,
    typer.Option(
        "--allow-past",
        help="Accept a start in the past (refused otherwise: it is usually a wrong date or timezone).",
    ),
]
_PAST_REMEDY = (
    "Give a start in the future (check the year, the date and the timezone), or add --allow-past "
    "to schedule it in the past anyway."
)


def _refuse(exc: Any) -> NoReturn:
    """A meeting rule's refusal (``meetgate.graph.meeting_rules``), naming the option; exit 2."""
    from meetgate.graph.meeting_rules import PAST_REMEDY

    option = f"--{exc.field}" if exc.field else "the request"
    remedy = _PAST_REMEDY if exc.remedy == PAST_REMEDY else exc.remedy  # the one naming this option
    fail(f"{option}: {exc.message}", remedy, code=EXIT_USAGE)


def _parse_time(value: str | None, name: str) -> dt.datetime | None:
    from meetgate.graph.meeting_rules import MeetingRuleError, parse_time

    if value is None:
        return None
    try:
        return parse_time(value, name)
    except MeetingRuleError as exc:
        _refuse(exc)


def _check(
    subject: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    allow_past: bool,
) -> None:
    """The meeting rules, before the profile is read or anything is sent."""
    from meetgate.graph.meeting_rules import MeetingRuleError, check_meeting

    try:
        check_meeting(subject=subject, start=start, end=end, allow_past=allow_past)
    except MeetingRuleError as exc:
        _refuse(exc)


def _run(ctx: typer.Context, json_out: bool, action: Callable[[GraphClient], T]) -> T:
    """Build the client from the active profile, run ``action``, turn meetgate's errors into exits."""
    from meetgate.cli._common import load_active_profile
    from meetgate.composition import graph_client_from_profile
    from meetgate.config import ConfigError
    from meetgate.graph.errors import GraphError, MeetingRuleError

    try:
        profile = load_active_profile(ctx)
        client = graph_client_from_profile(profile)
    except ConfigError as exc:
        fail(str(exc), "Check meetgate.toml / MEETGATE_* (`meetgate` docs: docs/configuration.md).")
    except GraphError as exc:
        _error(exc, json_out, EXIT_USAGE)
    try:
        with client:
            return action(client)
    except MeetingRuleError as exc:
        _error(exc, json_out, EXIT_USAGE)
    except GraphError as exc:
        _error(exc, json_out, EXIT_FAILED)


def _error(exc: Any, json_out: bool, code: int) -> NoReturn:
    if json_out:
        print_json(exc.to_dict())
        raise typer.Exit(code)
    fail(str(exc), exc.remedy, code=code)


def _show(
    meeting: OnlineMeeting, json_out: bool, title: str | None = None, extra: dict[str, Any] | None = None
) -> None:
    if json_out:
        data = meeting.model_dump(mode="json", by_alias=True, exclude_none=True)
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


@app.command("create")
def create(
    ctx: typer.Context,
    organizer: Organizer,
    subject: Annotated[str | None, typer.Option("--subject", "-s", help="Meeting subject.")] = None,
    start: Annotated[
        str | None,
        typer.Option("--start", help="Start, ISO 8601 with timezone, not in the past (default: now)."),
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
    allow_past: AllowPast = False,
    json_out: JsonOut = False,
) -> None:
    """Create a meeting (createOrGet keyed by --external-id, so a retry never makes a second one)."""
    from meetgate.graph.models import MeetingRequest

    request = _request(MeetingRequest, subject, start, end, attendee, lobby, presenters, chat)
    _check(request.subject, request.start, request.end, allow_past)

    def action(client: GraphClient) -> None:
        from meetgate.graph.meetings import new_external_id

        key = external_id or new_external_id()
        result = client.meetings.create_or_get(organizer, key, request, allow_past=allow_past)
        title = "meeting created" if result.created else "meeting already existed for this external id"
        _show(result.meeting, json_out, title, {"newlyCreated": result.created} if json_out else None)

    _run(ctx, json_out, action)


def _choice(value: str | None, option: str, enum_cls: type[StrEnum]) -> str | None:
    """A documented value of ``enum_cls`` (any case), or exit 2 before anything is sent: Graph would
    refuse it only after createOrGet has already made the meeting."""
    if value is None:
        return None
    allowed = [str(member.value) for member in enum_cls if member.value != "unknownFutureValue"]
    match = {name.lower(): name for name in allowed}.get(value.strip().lower())
    if match is None:
        fail(f"{option} {value!r} is not a known value", f"Use one of: {', '.join(allowed)}.")
    return match


def _request(
    model: Any, subject: Any, start: Any, end: Any, attendee: Any, lobby: Any, presenters: Any, chat: Any
) -> Any:
    from pydantic import ValidationError

    from meetgate.graph.models import LobbyBypassScope, MeetingChatMode, OnlineMeetingPresenters

    try:
        return model(
            subject=subject,
            start=_parse_time(start, "start"),
            end=_parse_time(end, "end"),
            attendees=attendee
            if attendee is not None
            else ([] if model.__name__ == "MeetingRequest" else None),
            lobby_bypass_scope=_choice(lobby, "--lobby", LobbyBypassScope),
            allowed_presenters=_choice(presenters, "--presenters", OnlineMeetingPresenters),
            allow_meeting_chat=_choice(chat, "--chat", MeetingChatMode),
        )
    except ValidationError as exc:
        problems = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors())
        fail(f"invalid meeting request: {problems}", "Attendees must be UPNs such as bob@contoso.com.")


@app.command("get")
def get(ctx: typer.Context, meeting_id: MeetingId, organizer: Organizer, json_out: JsonOut = False) -> None:
    """Show one meeting of an organizer."""
    _run(ctx, json_out, lambda client: _show(client.meetings.get(organizer, meeting_id), json_out))


@app.command("find")
def find(
    ctx: typer.Context,
    organizer: Organizer,
    join_url: Annotated[str | None, typer.Option("--join-url", help="The meeting's joinWebUrl.")] = None,
    meeting_id: Annotated[
        str | None, typer.Option("--meeting-id", help="The numeric meeting ID from the invitation.")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Find an organizer's meeting by its join URL or its numeric meeting ID."""
    if (join_url is None) == (meeting_id is None):
        fail("give exactly one of --join-url or --meeting-id")

    def action(client: GraphClient) -> None:
        if join_url is not None:
            found = client.meetings.find_by_join_url(organizer, join_url)
        else:
            assert meeting_id is not None
            found = client.meetings.find_by_meeting_id(organizer, meeting_id)
        if found is None:
            if json_out:
                print_json(None)
            else:
                err_console().print("no meeting of this organizer matches")
            raise typer.Exit(EXIT_FAILED)
        _show(found, json_out)

    _run(ctx, json_out, action)


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
    allow_past: AllowPast = False,
    json_out: JsonOut = False,
) -> None:
    """Reschedule a meeting or change its subject, attendees (replaced as a whole) or options."""
    from meetgate.graph.models import MeetingUpdate

    if end is not None and start is None:
        fail("--end needs --start", "Graph changes times only as a pair; --start alone keeps the duration.")
    if clear_attendees and attendee:
        fail("give either --attendee or --clear-attendees")
    changes = _request(MeetingUpdate, subject, None, None, attendee, lobby, presenters, chat)
    if clear_attendees:
        changes.attendees = []
    if dial_in_bypass is not None:
        changes.dial_in_bypass = dial_in_bypass
    new_start = _parse_time(start, "start")
    new_end = _parse_time(end, "end")
    _check(changes.subject, new_start, new_end, allow_past)  # --start alone keeps the duration

    def action(client: GraphClient) -> None:
        meeting = None
        if new_start is not None:
            meeting = client.meetings.reschedule(
                organizer, meeting_id, new_start, new_end, allow_past=allow_past
            )
        if not changes.is_empty() or meeting is None:
            meeting = client.meetings.update(organizer, meeting_id, changes, allow_past=allow_past)
        _show(meeting, json_out, "meeting updated")

    _run(ctx, json_out, action)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    meeting_id: MeetingId,
    organizer: Organizer,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="delete: remove the meeting. lock: keep it but admit only the organizer and turn chat "
            "off, so a stale link cannot revive it.",
        ),
    ] = "delete",
    json_out: JsonOut = False,
) -> None:
    """Cancel a meeting: delete it, or lock it so its link leads nowhere."""
    if mode not in ("delete", "lock"):
        fail(f"--mode must be delete or lock, not {mode!r}")

    def action(client: GraphClient) -> None:
        result = client.meetings.cancel(organizer, meeting_id, mode="lock" if mode == "lock" else "delete")
        if result is None:
            if json_out:
                print_json({"cancelled": True, "mode": "delete", "id": meeting_id})
            else:
                console().print(f"[bold green]meeting deleted[/] {meeting_id}")
            return
        _show(result, json_out, "meeting locked: only the organizer gets in, chat is off")

    _run(ctx, json_out, action)


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
    """Write an iCalendar invitation for a meeting (these meetings appear on nobody's calendar)."""

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

    text = _run(ctx, False, action)
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


@app.command("attendance")
def attendance(
    ctx: typer.Context, meeting_id: MeetingId, organizer: Organizer, json_out: JsonOut = False
) -> None:
    """List a meeting's attendance reports with their records."""

    def action(client: GraphClient) -> None:
        reports = client.meetings.attendance_reports(organizer, meeting_id, with_records=True)
        if json_out:
            print_json([r.to_graph() for r in reports])
            return
        out = console()
        if not reports:
            out.print("no attendance reports yet (they appear after the meeting has been held)")
        for report in reports:
            out.print(f"[bold]report {report.id}[/]: {report.total_participant_count or 0} participant(s)")
            for record in report.attendance_records:
                out.print(f"  {record.email_address or '?'}  {record.total_attendance_in_seconds or 0} s")

    _run(ctx, json_out, action)


def _add_bulk() -> None:
    from meetgate.cli import bulk

    app.add_typer(bulk.app, name="bulk")


_add_bulk()
