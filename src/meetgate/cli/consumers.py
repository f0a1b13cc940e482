"""`meetgate consumers …`: the third-party apps allowed to call the gateway, and their API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from meetgate.cli._common import EXIT_USAGE, console, fail, load_active_profile, print_json

app = typer.Typer(help="Register the apps that call the gateway; issue, rotate and revoke their API keys.")


def _webhook_commands() -> typer.Typer:
    from meetgate.cli.consumers_webhook import app as webhook_app

    return webhook_app


app.add_typer(_webhook_commands(), name="webhook")


def _parse_rate(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip().lower().removesuffix("/min").removesuffix("/m")
    if not text.isdigit() or int(text) <= 0:
        fail(f"--rate must look like 60/min, got {value!r}", "give a positive number of requests per minute")
    return int(text)


def _admin(ctx: typer.Context, sandbox_control: str | None, need_scope: bool = False):  # type: ignore[no-untyped-def]
    from meetgate.composition.gateway import policy_scope
    from meetgate.composition.store import open_store
    from meetgate.gateway.consumers import ConsumerAdmin
    from meetgate.gateway.scope import StaticPolicyScope

    profile = load_active_profile(ctx)
    scope = policy_scope(profile, sandbox_control) if need_scope else StaticPolicyScope(())
    return ConsumerAdmin(open_store(profile), scope)


def _show_key(issued, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from meetgate.gateway.consumers import consumer_summary

    if as_json:
        print_json({**consumer_summary(issued.consumer), "apiKey": issued.api_key})
        return
    from meetgate.gateway.consumers import format_instant

    out = console()
    out.print(f"consumer [bold]{issued.consumer.name}[/] — API key (shown once, store it now):")
    out.print(issued.api_key, markup=False, highlight=False, soft_wrap=True)
    expires = issued.consumer.key_expires_at
    out.print(f"the key expires on {format_instant(expires)}" if expires else "the key does not expire")


def _expiry(value: str | None):  # type: ignore[no-untyped-def]
    """``--expires`` parsed (None: the key does not expire); a bad date is a usage error."""
    from meetgate.gateway.consumers import ConsumerError, parse_expiry

    if value is None:
        return None
    try:
        return parse_expiry(value)
    except ConsumerError as exc:
        fail(str(exc), exc.remedy, code=EXIT_USAGE)


SandboxOpt = Annotated[
    str | None,
    typer.Option(
        help="Check organizers against a sandbox's control API (its control URL, ending in /_sandbox) instead of policy_file."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
PlacementOpt = Annotated[
    str | None,
    typer.Option(
        "--placement",
        metavar="standalone|calendar",
        help="Where the app's meetings go when a request names no placement: standalone (an "
        "onlineMeeting, the default) or calendar (an event in the organizer's calendar; needs the "
        "app's mailbox scope).",
    ),
]
ExpiresOpt = Annotated[
    str | None,
    typer.Option(
        "--expires",
        metavar="DATE",
        help="The key stops working then: a date (2026-12-31: at 00:00 UTC that day) or a time with "
        "an offset (2026-12-31T17:00:00+01:00). Without it the key does not expire.",
    ),
]


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Consumer name, e.g. booking-system.")],
    organizers: Annotated[
        list[str] | None,
        typer.Option("--organizers", help="Organizer UPNs or ids (repeat, or comma-separate)."),
    ] = None,
    organizers_from_policy: Annotated[
        bool, typer.Option("--organizers-from-policy", help="Allow every organizer in the policy scope.")
    ] = False,
    rate: Annotated[str | None, typer.Option(help="Requests per minute, e.g. 60/min.")] = None,
    daily_quota: Annotated[int | None, typer.Option(help="Meetings created per UTC day.")] = None,
    expires: ExpiresOpt = None,
    placement: PlacementOpt = None,
    sandbox_control: SandboxOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an app; prints its API key once. Organizers must be inside the policy scope."""
    from meetgate.gateway.consumers import ConsumerError
    from meetgate.store import StoreError

    wanted = [o.strip() for item in organizers or [] for o in item.split(",") if o.strip()]
    expires_at = _expiry(expires)
    admin = _admin(ctx, sandbox_control, need_scope=True)
    try:
        issued = admin.add(
            name,
            organizers=wanted,
            from_policy=organizers_from_policy,
            rate_per_minute=_parse_rate(rate),
            daily_quota=daily_quota,
            expires_at=expires_at,
            placement=placement,
        )
    except (ConsumerError, StoreError) as exc:
        fail(str(exc), exc.remedy, code=EXIT_USAGE)
    _show_key(issued, as_json)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List consumers (never their keys)."""
    from meetgate.gateway.consumers import consumer_summary

    records = [consumer_summary(r) for r in _admin(ctx, None).list()]
    if as_json:
        print_json(records)
        return
    from rich.table import Table

    table = Table(
        "name", "status", "organizers", "placement", "rate/min", "daily quota", "key id", "key expires"
    )
    for r in records:
        organizers = "policy scope" if r["organizersFromPolicy"] else ", ".join(r["organizers"])  # type: ignore[arg-type]
        table.add_row(
            str(r["name"]),
            str(r["status"]),
            organizers,
            str(r["defaultPlacement"]),
            str(r["ratePerMinute"] or "-"),
            str(r["dailyQuota"] or "-"),
            str(r["keyId"]),
            str(r["keyExpiresAt"] or "never")[:16].replace("T", " "),
        )
    console().print(table)


@app.command("show")
def show(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Show one consumer."""
    from meetgate.gateway.consumers import consumer_summary
    from meetgate.store import StoreError

    try:
        summary = consumer_summary(_admin(ctx, None).show(name))
    except StoreError as exc:
        fail(str(exc), exc.remedy)
    if as_json:
        print_json(summary)
        return
    for key, value in summary.items():
        console().print(f"[bold]{key}[/]: {value}")


@app.command("update")
def update(
    ctx: typer.Context,
    name: str,
    placement: Annotated[
        str,
        typer.Option(
            "--placement",
            metavar="standalone|calendar",
            help="Where the app's meetings go when a request names no placement.",
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Change a consumer's default placement (meetings made before keep theirs)."""
    from meetgate.gateway.consumers import ConsumerError, consumer_summary
    from meetgate.store import StoreError

    try:
        record = _admin(ctx, None).set_placement(name, placement)
    except ConsumerError as exc:
        fail(str(exc), exc.remedy, code=EXIT_USAGE)
    except StoreError as exc:
        fail(str(exc), exc.remedy)
    summary = consumer_summary(record)
    if as_json:
        print_json(summary)
        return
    console().print(f"consumer [bold]{record.name}[/]: default placement {summary['defaultPlacement']}")


@app.command("revoke")
def revoke(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Revoke a consumer's key: its next request is refused (every replica, at once)."""
    from meetgate.gateway.consumers import consumer_summary
    from meetgate.store import StoreError

    try:
        record = _admin(ctx, None).revoke(name)
    except StoreError as exc:
        fail(str(exc), exc.remedy)
    if as_json:
        print_json(consumer_summary(record))
        return
    console().print(
        f"consumer [bold]{record.name}[/] revoked; `meetgate consumers rotate-key {record.name}` re-enables it"
    )


@app.command("rotate-key")
def rotate_key(ctx: typer.Context, name: str, expires: ExpiresOpt = None, as_json: JsonOpt = False) -> None:
    """Issue a new API key (the old one stops working at once, and its 401 says it was rotated);
    prints it once. The new key expires at --expires, or never."""
    from meetgate.gateway.consumers import ConsumerError
    from meetgate.store import StoreError

    expires_at = _expiry(expires)
    try:
        issued = _admin(ctx, None).rotate_key(name, expires_at=expires_at)
    except ConsumerError as exc:
        fail(str(exc), exc.remedy, code=EXIT_USAGE)
    except StoreError as exc:
        fail(str(exc), exc.remedy)
    _show_key(issued, as_json)
