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
        int, typer.Option(help="Requests per minute for consumers without their own rate.")
    ] = 600,
    organizer_rate: Annotated[
        int, typer.Option(help="Requests per minute per organizer (0: no limit).")
    ] = 300,
    organizer_quota: Annotated[
        int, typer.Option(help="Meetings per organizer per UTC day (0: no limit).")
    ] = 2000,
    graph_rps: Annotated[
        float, typer.Option(help="Client-side limit of Graph calls per second (0: off).")
    ] = 300.0,
    redis_prefix: Annotated[str, typer.Option(help="Prefix of the gateway's Redis keys.")] = "meetgate:",
    trust_forwarded_for: Annotated[
        bool,
        typer.Option(
            help="Take the client IP from X-Forwarded-For: the right-most address that is not a trusted "
            "proxy (--forwarded-allow-ips). Off: the connection's own address."
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="The trusted proxies for --trust-forwarded-for: comma-separated IP addresses or "
            "networks (CIDR), e.g. 127.0.0.1,10.0.0.0/8."
        ),
    ] = "127.0.0.1",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the REST API: /v1/meetings, /healthz, /readyz, /metrics, /docs (JSON logs on stderr);
    /admin/dashboard when MEETGATE_ADMIN_KEY is set."""
    import os

    import uvicorn

    if log_level.lower() not in LOG_LEVELS:
        fail(f"--log-level {log_level!r} is not a log level", f"use one of: {', '.join(LOG_LEVELS)}")
    from meetgate.composition.gateway import graph_backend, policy_scope
    from meetgate.gateway.forwarded import TrustedProxies

    try:
        trusted = TrustedProxies.parse(forwarded_allow_ips)
    except ValueError as exc:
        fail(
            f"--forwarded-allow-ips: {exc}",
            "give IP addresses or networks, comma-separated: 127.0.0.1,10.0.0.0/8",
        )
    if trust_forwarded_for and not trusted.networks:
        fail("--forwarded-allow-ips is empty", "name the proxies in front of the gateway, e.g. 127.0.0.1")
    from meetgate.gateway.app import create_app
    from meetgate.gateway.dashboard import hash_admin_key
    from meetgate.gateway.logs import configure_logging
    from meetgate.gateway.metrics import GatewayMetrics
    from meetgate.gateway.settings import GatewaySettings

    profile = load_active_profile(ctx)
    admin_key = os.environ.get("MEETGATE_ADMIN_KEY")
    settings = GatewaySettings(
        admin_key_sha256=hash_admin_key(admin_key) if admin_key else None,
        store_url=profile.store_url,
        redis_url=profile.redis_url,
        redis_prefix=redis_prefix,
        default_consumer_rate_per_minute=default_rate,
        organizer_rate_per_minute=organizer_rate or None,
        organizer_daily_quota=organizer_quota or None,
        graph_rate_per_second=graph_rps or None,
        trust_forwarded_for=trust_forwarded_for,
        forwarded_allow_ips=tuple(str(n) for n in trusted.networks),
    )
    log = configure_logging(log_level.upper())
    metrics = GatewayMetrics()
    graph = graph_backend(profile, metrics, redis_prefix, max_wait_seconds=settings.graph_max_wait_seconds)
    app = create_app(
        settings,
        meetings=graph.meetings,
        scope=policy_scope(profile, sandbox_control),
        token_check=graph.token_check,
        metrics=metrics,
        on_shutdown=graph.close,
        graph_pause=graph.graph_pause,
    )
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
