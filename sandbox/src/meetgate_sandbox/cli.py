"""``meetgate sandbox``: run the local tenant (Entra + Graph + Teams policy emulator) and describe it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from meetgate.cli.plugin import EXIT_USAGE, err_console, fail, print_json

if TYPE_CHECKING:
    from meetgate_sandbox.server import SandboxServer

DEFAULT_STATE = Path(".meetgate/sandbox")

app = typer.Typer(
    name="sandbox",
    help="A local Microsoft 365 tenant over HTTPS: Entra token endpoint, Graph and the Teams policy engine.",
    no_args_is_help=True,
)


@app.command("serve")
def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on; anything but 127.0.0.1 exposes the unauthenticated control API."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks any free port.")] = 0,
    state: Annotated[
        Path,
        typer.Option("--state", help="Folder for TLS files, keys and the tenants (shared by later runs)."),
    ] = DEFAULT_STATE,
    users: Annotated[int, typer.Option(min=0, max=5000, help="Users seeded into a new default tenant.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the default tenant's directory.")] = 0,
    throttle_rps: Annotated[
        float | None,
        typer.Option("--throttle-rps", min=0.001, help="Requests per second per app per tenant."),
    ] = None,
    fault_rate: Annotated[
        float | None,
        typer.Option("--fault-rate", min=0.0, max=1.0, help="Share of Graph calls answering 500/503/504."),
    ] = None,
    drop_rate: Annotated[
        float | None,
        typer.Option("--drop-rate", min=0.0, max=1.0, help="Share of Graph calls whose connection drops."),
    ] = None,
    latency_ms: Annotated[
        float | None,
        typer.Option("--latency-ms", min=0.0, max=60000.0, help="Latency added to each Graph call."),
    ] = None,
    policy_delay: Annotated[
        float | None,
        typer.Option("--policy-delay", min=0.0, help="Seconds before a policy change reaches Graph."),
    ] = None,
    realistic: Annotated[
        bool,
        typer.Option(
            "--realistic",
            help="Microsoft's documented figures instead of the fast test defaults: policy changes take "
            "0-30 min (compressed), tokens live 60-90 min, Graph throttles at the published limits "
            "(docs/sandbox.md, 'The realistic profile').",
        ),
    ] = False,
    time_compression: Annotated[
        float | None,
        typer.Option(
            "--time-compression",
            min=1.0,
            help="With --realistic: documented durations are divided by this (default 300: 30 min -> 6 s).",
        ),
    ] = None,
    realistic_seed: Annotated[
        int | None,
        typer.Option(
            "--realistic-seed", help="With --realistic: seed of its random draws (reproducible runs)."
        ),
    ] = None,
    save: Annotated[
        bool,
        typer.Option(
            "--save/--no-save",
            help="Save tenants to the --state folder as they change; --no-save keeps them in memory "
            "(for load tests: saving a large state takes CPU).",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the connection info as JSON.")] = False,
) -> None:
    """Run the sandbox in the foreground until Ctrl-C."""
    import signal
    import threading

    from meetgate_sandbox.server import SandboxOptions, SandboxServer, SandboxStartError
    from meetgate_sandbox.state import StateError

    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console().print(
            f"[bold yellow]warning:[/] listening on {host}: the control API (/_sandbox) has no authentication "
            "and anyone who can reach this address can change the tenant"
        )
    options = SandboxOptions(
        host=host,
        port=port,
        state_dir=state,
        users=users,
        seed=seed,
        throttle_rps=throttle_rps,
        fault_rate=fault_rate,
        drop_rate=drop_rate,
        latency_ms=latency_ms,
        policy_delay_seconds=policy_delay,
        realistic=realistic,
        time_compression=time_compression,
        profile_seed=realistic_seed,
        save_state=save,
    )
    server = SandboxServer(options)
    try:
        info = server.start()
    except (SandboxStartError, StateError) as exc:
        fail(str(exc), "check --host/--port and that the --state folder is writable", code=EXIT_USAGE)
    import gc

    gc.collect()
    gc.freeze()  # the loaded tenants live as long as the server: keep full collections short

    # Ctrl-C and SIGTERM only set a flag. Raising KeyboardInterrupt instead would interrupt the
    # main thread's Thread.join, and Python 3.11 then marks the still-running server thread as
    # stopped (bpo-45274's fix): stop() would not wait for the server's graceful shutdown and the
    # process would exit, or hang, with the server thread mid-shutdown.
    stop_requested = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    if as_json:
        print_json(info.to_dict())
    else:
        out = typer.echo  # plain lines: never wrapped, easy to parse
        out(f"authority_url  {info.authority_url}")
        out(f"graph_url      {info.graph_url}")
        out(f"control_url    {info.control_url}")
        out(f"ca_bundle      {info.ca_bundle}")
        out(
            f"tenant         {info.tenant_id} ({info.tenant_domain}), {len(info.users)} users, admin {info.admin_upn}"
        )
        out(f"state          {state}/sandbox.json")
        out(f"profile        {_profile_line(server)}")
        out(f"ready: {info.authority_url} (Ctrl-C to stop)")
    try:
        while not stop_requested.wait(0.5) and not server.wait(0):
            pass
    finally:
        server.stop()
    if not as_json:
        typer.echo(f"sandbox stopped; state kept in {state}")


def _profile_line(server: SandboxServer) -> str:
    """``fast`` or ``realistic (time compression N, seed S)`` of a running server."""
    if server.runtime is None or not server.runtime.state.settings.realistic:
        return "fast"
    settings = server.runtime.state.settings
    seed = "random" if settings.profile_seed is None else settings.profile_seed
    return f"realistic (time compression {settings.time_compression:g}, seed {seed})"


@app.command("info")
def info(
    state: Annotated[
        Path, typer.Option("--state", help="The folder `meetgate sandbox serve` uses.")
    ] = DEFAULT_STATE,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show how to reach the sandbox that `meetgate sandbox serve` runs (from its sandbox.json)."""
    import os

    from meetgate_sandbox.server import SandboxStartError, read_info

    try:
        data = read_info(state)
    except SandboxStartError as exc:
        fail(str(exc), f"run `meetgate sandbox serve --state {state}` in another terminal first")
    if data.pid is not None:
        try:
            os.kill(data.pid, 0)
        except ProcessLookupError:
            fail(
                f"{state}/sandbox.json is stale: the sandbox process {data.pid} is gone",
                f"start it again with `meetgate sandbox serve --state {state}`",
            )
        except PermissionError:  # alive, owned by someone else
            pass
    if as_json:
        print_json(data.to_dict())
        return
    out = typer.echo
    out(f"authority_url  {data.authority_url}")
    out(f"graph_url      {data.graph_url}")
    out(f"control_url    {data.control_url}")
    out(f"ca_bundle      {data.ca_bundle}")
    out(f"tenant         {data.tenant_id} ({data.tenant_domain})")
    out(f"admin          {data.admin_upn}")
    for user in data.users[:5]:
        out(f"user           {user.upn}  {user.id}  {user.display_name}")
    if len(data.users) > 5:
        out(f"               ... and {len(data.users) - 5} more (--json lists all)")


@app.command("env")
def env(
    state: Annotated[
        Path, typer.Option("--state", help="The folder `meetgate sandbox serve` uses.")
    ] = DEFAULT_STATE,
    shell: Annotated[
        str, typer.Option("--shell", help="Syntax of the lines: sh (bash, zsh…), fish or powershell.")
    ] = "sh",
    system_bundle: Annotated[
        Path | None,
        typer.Option(
            "--system-bundle",
            help="The CA bundle to combine the sandbox CA with (default: the system's CA store); "
            "e.g. your company's bundle when a proxy re-signs HTTPS.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the variables and files as JSON.")] = False,
) -> None:
    """Print the exports that make clients trust the sandbox CA: eval "$(meetgate sandbox env)".

    Writes DIR/tls/trust-bundle.pem (the system's CA store plus the sandbox CA, so other HTTPS still
    works; certificates only, public, mode 0644) and points REQUESTS_CA_BUNDLE, SSL_CERT_FILE and
    CURL_CA_BUNDLE at it, NODE_EXTRA_CA_CERTS at the sandbox CA. With a running sandbox, also its
    URLs (AZURE_AUTHORITY_HOST, MEETGATE_SANDBOX_AUTHORITY_URL, MEETGATE_SANDBOX_GRAPH_URL...).
    """
    from meetgate_sandbox.trust import SHELLS, TrustError, render, trust_env

    if shell not in SHELLS:
        fail(f"--shell {shell!r} is not one of {', '.join(SHELLS)}", "e.g. --shell fish", code=EXIT_USAGE)
    try:
        result = trust_env(state, system=system_bundle)
    except (TrustError, OSError) as exc:
        fail(str(exc))
    if as_json:
        print_json(result.to_dict())
        return
    where = "running" if result.running else "not running: only the CA (its URLs change with each run)"
    command = "meetgate sandbox env" + ("" if state == DEFAULT_STATE else f" --state {state}")
    usage = {
        "sh": f'eval "$({command})"',
        "fish": f"{command} --shell fish | source",
        "powershell": f"{command} --shell powershell | Out-String | Invoke-Expression",
    }[shell]
    comment = (
        f"meetgate sandbox ({result.state_dir}): {where}\n"
        f"{result.combined_bundle}: {result.system_bundle} + the sandbox CA\n"
        f"use: {usage}"
    )
    typer.echo(render(result.variables, shell, comment=comment), nl=False)


def register(root: typer.Typer) -> None:
    """Entry point ``meetgate.commands``: add ``meetgate sandbox …`` and ``meetgate demo`` to the CLI."""
    from meetgate_sandbox import demo

    root.command("demo")(demo.demo)
    root.add_typer(app, name="sandbox")
