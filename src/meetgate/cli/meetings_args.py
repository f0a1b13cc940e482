"""What the ``meetgate meetings`` commands share: their options, the meeting rules checked before the
profile is read, building a request from options, and running an action with meetgate's errors as
exits (each with what to do)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from meetgate.cli._common import EXIT_FAILED, EXIT_USAGE, fail, print_json
from meetgate.cli.meetings_calendar import OPTION_OF_FIELD

if TYPE_CHECKING:
    from enum import StrEnum

    from meetgate.graph.client import GraphClient
    from meetgate.graph.models import MeetingRequest

T = TypeVar("T")
ONE_HOUR = dt.timedelta(hours=1)

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


def refuse(exc: Any) -> NoReturn:
    """A meeting rule's refusal (``meetgate.graph.meeting_rules``), naming the option; exit 2."""
    from meetgate.graph.meeting_rules import PAST_REMEDY

    option = OPTION_OF_FIELD.get(exc.field, f"--{exc.field}") if exc.field else "the request"
    remedy = _PAST_REMEDY if exc.remedy == PAST_REMEDY else exc.remedy  # the one naming this option
    fail(f"{option}: {exc.message}", remedy, code=EXIT_USAGE)


def parse_time_option(value: str | None, name: str) -> dt.datetime | None:
    from meetgate.graph.meeting_rules import MeetingRuleError, parse_time

    if value is None:
        return None
    try:
        return parse_time(value, name)
    except MeetingRuleError as exc:
        refuse(exc)


def check_rules(
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
        refuse(exc)


def run(
    ctx: typer.Context, json_out: bool, action: Callable[[GraphClient], T], *, cancelling: bool = False
) -> T:
    """Build the client from the active profile, run ``action``, turn meetgate's errors into exits
    (Exchange's refusals with the CLI's remedies; ``cancelling``: a refusal to a non-organizer)."""
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
        error_exit(exc, json_out, EXIT_USAGE)
    try:
        with client:
            return action(client)
    except MeetingRuleError as exc:
        error_exit(exc, json_out, EXIT_USAGE)
    except GraphError as exc:
        from meetgate.cli.meetings_calendar import add_remedies

        error_exit(add_remedies(exc, cancelling=cancelling), json_out, EXIT_FAILED)


def error_exit(exc: Any, json_out: bool, code: int) -> NoReturn:
    if json_out:
        print_json(exc.to_dict())
        raise typer.Exit(code)
    fail(str(exc), exc.remedy, code=code)


def check_calendar(request: MeetingRequest) -> None:
    """A calendar meeting's own rules (a start, the zone, the RRULE), before anything is sent."""
    from meetgate.graph.errors import MeetingRuleError
    from meetgate.graph.recurrence import parse_rrule, zone_of

    if request.start is None:
        fail(
            "--start: a calendar meeting needs a start",
            "Give --start (and --end, default one hour) as ISO 8601 with a timezone.",
        )
    try:
        zone = request.time_zone or "UTC"
        zone_of(zone)
        if request.recurrence is not None:
            parse_rrule(request.recurrence, start=request.start, time_zone=zone)
    except MeetingRuleError as exc:
        refuse(exc)


def choice(value: str | None, option: str, enum_cls: type[StrEnum]) -> str | None:
    """A documented value of ``enum_cls`` (any case), or exit 2 before anything is sent: Graph would
    refuse it only after createOrGet has already made the meeting."""
    if value is None:
        return None
    allowed = [str(member.value) for member in enum_cls if member.value != "unknownFutureValue"]
    match = {name.lower(): name for name in allowed}.get(value.strip().lower())
    if match is None:
        fail(f"{option} {value!r} is not a known value", f"Use one of: {', '.join(allowed)}.")
    return match


def build_request(
    model: Any, subject: Any, start: Any, end: Any, attendee: Any, lobby: Any, presenters: Any, chat: Any
) -> Any:
    from pydantic import ValidationError

    from meetgate.graph.models import LobbyBypassScope, MeetingChatMode, OnlineMeetingPresenters

    try:
        return model(
            subject=subject,
            start=parse_time_option(start, "start"),
            end=parse_time_option(end, "end"),
            attendees=attendee
            if attendee is not None
            else ([] if model.__name__ == "MeetingRequest" else None),
            lobby_bypass_scope=choice(lobby, "--lobby", LobbyBypassScope),
            allowed_presenters=choice(presenters, "--presenters", OnlineMeetingPresenters),
            allow_meeting_chat=choice(chat, "--chat", MeetingChatMode),
        )
    except ValidationError as exc:
        problems = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors())
        fail(f"invalid meeting request: {problems}", "Attendees must be UPNs such as bob@contoso.com.")


def check_zone(time_zone: str) -> None:
    from meetgate.graph.errors import MeetingRuleError
    from meetgate.graph.recurrence import zone_of

    try:
        zone_of(time_zone)
    except MeetingRuleError as exc:
        refuse(exc)
