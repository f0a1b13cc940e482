"""`meetgate serve`: run the gateway (REST API for third-party apps) with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from meetgate.cli._common import fail, load_active_profile

LOG_LEVELS = ("debug", "info", "warning", "error")


def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Address to bind (keep 127.0.0.1 behind a reverse proxy).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8080,
    sandbox_control: Annotated[
        str | None,
        typer.Option(
            help="Read the policy scope from a sandbox's control API (its control URL, ending in /_sandbox) instead of policy_file."
        ),
    ] = None,
    default_rate: Annotated[
        int | None,
        typer.Option(
            help="Requests per minute for consumers without their own rate "
            "[default: gateway_default_consumer_rate_per_minute, else 600]."
        ),
    ] = None,
    organizer_rate: Annotated[
        int | None,
        typer.Option(
            help="Requests per minute per organizer, 0: no limit [default: gateway_organizer_rate_per_minute, else 300]."
        ),
    ] = None,
    organizer_quota: Annotated[
        int | None,
        typer.Option(
            help="Meetings per organizer per UTC day, 0: no limit [default: gateway_organizer_daily_quota, else 2000]."
        ),
    ] = None,
    graph_rps: Annotated[
        float | None,
        typer.Option(
            help="Client-side limit of Graph calls per second, 0: off [default: gateway_graph_rate_per_second, else 300]."
        ),
    ] = None,
    redis_prefix: Annotated[
        str | None,
        typer.Option(
            help="Prefix of the gateway's Redis keys [default: gateway_redis_prefix, else meetgate:]."
        ),
    ] = None,
    trust_forwarded_for: Annotated[
        bool | None,
        typer.Option(
            "--trust-forwarded-for/--no-trust-forwarded-for",
            help="Take the client IP from X-Forwarded-For: the right-most address that is not a trusted "
            "proxy (--forwarded-allow-ips). Off: the connection's own address [default: "
            "gateway_trust_forwarded_for, else off].",
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="The trusted proxies for --trust-forwarded-for: comma-separated IP addresses or "
            "networks (CIDR), e.g. 127.0.0.1,10.0.0.0/8 [default: gateway_forwarded_allow_ips, else 127.0.0.1]."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the REST API: /v1/meetings, /healthz, /readyz, /metrics, /docs (JSON logs on stderr);
    /admin/dashboard when MEETGATE_ADMIN_KEY is set.

    Limits come from the flags, else the profile's gateway_* settings (docs/configuration.md). Under
    another ASGI server: uvicorn --factory meetgate.composition.gateway:create_gateway_app."""
    import os

    import uvicorn

    if log_level.lower() not in LOG_LEVELS:
        fail(f"--log-level {log_level!r} is not a log level", f"use one of: {', '.join(LOG_LEVELS)}")
    from meetgate.composition.gateway import gateway_app, gateway_settings_from_profile
    from meetgate.config import ConfigError
    from meetgate.gateway.logs import configure_logging

    profile = load_active_profile(ctx)
    try:
        settings = gateway_settings_from_profile(
            profile,
            admin_key=os.environ.get("MEETGATE_ADMIN_KEY"),
            default_consumer_rate_per_minute=default_rate,
            organizer_rate_per_minute=organizer_rate,
            organizer_daily_quota=organizer_quota,
            graph_rate_per_second=graph_rps,
            redis_prefix=redis_prefix,
            trust_forwarded_for=trust_forwarded_for,
            forwarded_allow_ips=forwarded_allow_ips,
        )
    except ConfigError as exc:
        fail(str(exc), exc.remedy or "see `meetgate serve --help`")
    log = configure_logging(log_level.upper())
    app = gateway_app(profile, settings, sandbox_control=sandbox_control)
    log.info("gateway starting", extra={"host": host, "port": port, "redis": bool(profile.redis_url)})
    import gc

    # start-up's objects (modules, the app, compiled statements) live as long as the process: frozen,
    # they are no longer walked by every full collection, whose pauses set the p99 (docs/benchmarks.md)
    gc.collect()
    gc.freeze()
    # proxy_headers=False: uvicorn's own X-Forwarded-For handling would rewrite the peer address
    # (it trusts 127.0.0.1 by default) before the gateway decides whom to believe
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        proxy_headers=False,
    )
