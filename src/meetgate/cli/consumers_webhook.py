"""`meetgate consumers webhook …`: a consumer's webhook endpoints (add, list, test, rotate-secret, remove)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from meetgate.cli._common import EXIT_USAGE, console, fail, load_active_profile, print_json

app = typer.Typer(help="A consumer's webhook endpoints: where meetgate POSTs its signed events.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _admin(ctx: typer.Context) -> tuple[Any, Any]:
    """(the store, the webhook admin) for the active profile."""
    import datetime as dt

    from meetgate.composition.store import open_store
    from meetgate.gateway.webhooks.manage import WebhookAdmin, default_key_file, secret_box_factory

    profile = load_active_profile(ctx)
    store = open_store(profile)
    admin = WebhookAdmin(
        store,
        secret_box_factory(None, default_key_file(profile.store_url)),
        allow_local_http=bool(profile.gateway_webhook_allow_local_http),
        allow_private=bool(profile.gateway_webhook_allow_private),
        grace=dt.timedelta(hours=24),
    )
    return store, admin


def _consumer_id(store: Any, name: str) -> str:
    from meetgate.store import StoreError

    try:
        return str(store.consumer(name_or_id=name).id)
    except StoreError as exc:
        fail(str(exc), exc.remedy)


def _summary(endpoint: Any) -> dict[str, object]:
    from meetgate.gateway.webhooks.schemas import webhook_out

    return webhook_out(endpoint).model_dump(mode="json")


def _run(call: Any) -> Any:
    """``call()``, its refusals as usage errors."""
    from meetgate.gateway.webhooks.events import WebhookError
    from meetgate.gateway.webhooks.secret_box import SecretBoxError
    from meetgate.gateway.webhooks.urls import WebhookUrlError

    try:
        return call()
    except (WebhookError, WebhookUrlError, SecretBoxError) as exc:
        fail(str(exc), exc.remedy, code=EXIT_USAGE)


def _show_secret(issued: Any, as_json: bool, what: str) -> None:
    if as_json:
        print_json({**_summary(issued.endpoint), "secret": issued.secret})
        return
    out = console()
    out.print(
        f"webhook [bold]{issued.endpoint.id}[/] → {issued.endpoint.url} — {what} (shown once, store it now):"
    )
    out.print(issued.secret, markup=False, highlight=False, soft_wrap=True)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The consumer.")],
    url: Annotated[str, typer.Argument(help="https URL the events are POSTed to.")],
    events: Annotated[
        list[str],
        typer.Option(
            "--events",
            help="Event types (repeat, or comma-separate): meeting.started, meeting.ended, attendance.ready, "
            "transcript.ready, recording.ready, meeting.updated, meeting.cancelled.",
        ),
    ],
    description: Annotated[str | None, typer.Option(help="A note for the operator.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an endpoint for a consumer; prints its signing secret once."""
    store, admin = _admin(ctx)
    consumer = _consumer_id(store, name)
    issued = _run(lambda: admin.add(consumer, url, events, description))
    _show_secret(issued, as_json, "signing secret")


@app.command("list")
def list_(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """A consumer's endpoints (never their secrets)."""
    store, admin = _admin(ctx)
    records = [_summary(e) for e in admin.list(_consumer_id(store, name))]
    if as_json:
        print_json(records)
        return
    from rich.table import Table

    table = Table("id", "url", "events", "secret rotated")
    for r in records:
        table.add_row(str(r["id"]), str(r["url"]), ", ".join(r["events"]), str(r["secret_rotated_at"] or "-"))  # type: ignore[arg-type]
    console().print(table)


@app.command("test")
def send_test(ctx: typer.Context, name: str, endpoint_id: str, as_json: JsonOpt = False) -> None:
    """Queue a signed webhook.test event to the endpoint (the running gateway delivers it)."""
    store, admin = _admin(ctx)
    event_id = _run(lambda: admin.test(_consumer_id(store, name), endpoint_id))
    if as_json:
        print_json({"eventId": event_id})
        return
    console().print(
        f"queued {event_id}; see its delivery with GET /v1/webhooks/{endpoint_id}/deliveries", highlight=False
    )


@app.command("rotate-secret")
def rotate_secret(
    ctx: typer.Context,
    name: str,
    endpoint_id: str,
    grace_hours: Annotated[
        float, typer.Option(min=0, max=168, help="How long the current secret keeps signing too.")
    ] = 24.0,
    as_json: JsonOpt = False,
) -> None:
    """A new signing secret, printed once; deliveries carry both signatures during the grace period."""
    import datetime as dt

    store, admin = _admin(ctx)
    consumer = _consumer_id(store, name)
    issued = _run(lambda: admin.rotate_secret(consumer, endpoint_id, dt.timedelta(hours=grace_hours)))
    _show_secret(issued, as_json, f"new signing secret (the old one also signs for {grace_hours:g} h)")


@app.command("remove")
def remove(ctx: typer.Context, name: str, endpoint_id: str) -> None:
    """Remove an endpoint: nothing more is sent to it."""
    store, admin = _admin(ctx)
    _run(lambda: admin.remove(_consumer_id(store, name), endpoint_id))
    console().print(f"webhook {endpoint_id} removed", highlight=False)
