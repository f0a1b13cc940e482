"""Running the sandbox: :class:`SandboxServer` starts uvicorn over TLS in a background thread.

::

    with SandboxServer(SandboxOptions(state_dir=Path(".meetgate/sandbox"))) as server:
        info = server.info          # authority_url, graph_url, control_url, ca_bundle, tenant...

With a state folder, TLS material, the token signing key and the tenants persist there and
``sandbox.json`` describes the running server; without one, everything lives in a temporary folder
removed on stop.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from meetgate.errors import MeetgateError
from meetgate_sandbox.app import builtin_extensions, create_app
from meetgate_sandbox.faults import FaultSettings, SandboxSettings
from meetgate_sandbox.persistence import DebouncedSaver, StateFile
from meetgate_sandbox.runtime import SandboxRuntime
from meetgate_sandbox.state import DEFAULT_USERS, SandboxState
from meetgate_sandbox.tls import ensure_tls
from meetgate_sandbox.tokens import TokenIssuer

INFO_FILE = "sandbox.json"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class SandboxStartError(MeetgateError, RuntimeError):
    """The server could not start; the message says why and what to do."""


@dataclass(frozen=True)
class SandboxOptions:
    host: str = "127.0.0.1"
    #: 0 = any free port
    port: int = 0
    #: folder for TLS files, signing key, state.json and sandbox.json; None = a temp folder
    state_dir: Path | None = None
    #: users seeded into the default tenant when it is created
    users: int = DEFAULT_USERS
    #: seed of the default tenant's directory
    seed: int = 0
    throttle_rps: float | None = None
    fault_rate: float | None = None
    latency_ms: float | None = None
    drop_rate: float | None = None
    policy_delay_seconds: float | None = None
    access_token_lifetime_seconds: int | None = None
    #: True: the realistic profile (docs/sandbox.md, "The realistic profile"); False: the fast one;
    #: None: what the saved state says (fast for a new state folder)
    realistic: bool | None = None
    #: realistic profile: documented durations are divided by this (None: keep the saved value)
    time_compression: float | None = None
    #: realistic profile: seed of its random draws (None: keep the saved value)
    profile_seed: int | None = None
    log_level: str = "warning"
    #: False: tenants live in memory only (a saved state.json is still read at start); for load tests,
    #: where writing a large state would take CPU from what is measured
    save_state: bool = True


@dataclass(frozen=True)
class SandboxUser:
    id: str
    upn: str
    display_name: str


@dataclass(frozen=True)
class SandboxInfo:
    """How to reach a running sandbox (also written to ``sandbox.json``)."""

    authority_url: str
    graph_url: str
    control_url: str
    ca_bundle: Path
    tenant_id: str
    tenant_domain: str
    users: tuple[SandboxUser, ...] = field(default=())
    admin_upn: str | None = None
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "authority_url": self.authority_url,
            "graph_url": self.graph_url,
            "control_url": self.control_url,
            "ca_bundle": str(self.ca_bundle),
            "tenant_id": self.tenant_id,
            "tenant_domain": self.tenant_domain,
            "admin_upn": self.admin_upn,
            "pid": self.pid,
            "users": [
                {"id": u.id, "upn": u.upn, "userPrincipalName": u.upn, "displayName": u.display_name}
                for u in self.users
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxInfo:
        return cls(
            authority_url=data["authority_url"],
            graph_url=data["graph_url"],
            control_url=data["control_url"],
            ca_bundle=Path(data["ca_bundle"]),
            tenant_id=data["tenant_id"],
            tenant_domain=data["tenant_domain"],
            admin_upn=data.get("admin_upn"),
            pid=data.get("pid"),
            users=tuple(
                SandboxUser(u["id"], u.get("upn") or u["userPrincipalName"], u["displayName"])
                for u in data.get("users") or []
            ),
        )


def read_info(state_dir: Path) -> SandboxInfo:
    """The ``sandbox.json`` a server wrote into ``state_dir``."""
    path = state_dir / INFO_FILE
    try:
        return SandboxInfo.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise SandboxStartError(
            f"no {INFO_FILE} in {state_dir}: start the sandbox with `meetgate sandbox serve --state {state_dir}`"
        ) from None
    except (OSError, ValueError, KeyError) as exc:
        raise SandboxStartError(f"{path} is unreadable ({exc}); restart `meetgate sandbox serve`") from None


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SandboxStartError(
            f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port (0 = any free port)"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class SandboxServer:
    """The sandbox over HTTPS in a background thread; a context manager."""

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self._info: SandboxInfo | None = None
        self._thread: threading.Thread | None = None
        #: set when the server thread has ended (whatever interrupted the caller meanwhile)
        self._finished = threading.Event()
        self._server: Any = None
        self._temp_dir: Path | None = None
        self._saver: DebouncedSaver | None = None
        self._error: BaseException | None = None
        self._lock: Any = None
        #: the running server's state and machinery (None when stopped)
        self.runtime: SandboxRuntime | None = None

    @property
    def info(self) -> SandboxInfo:
        if self._info is None:
            raise SandboxStartError("the sandbox is not running; call start() or use it as a context manager")
        return self._info

    def _prepare_state(self, directory: Path | None) -> SandboxState:
        opts = self.options
        state = SandboxState(extensions=builtin_extensions())
        if directory is not None:
            file = StateFile(directory)
            file.load_into(state)
            if opts.save_state:
                self._saver = DebouncedSaver(file, state)
                state.on_change = self._saver.schedule
        state.ensure_default_tenant(users=opts.users, seed_value=opts.seed)
        faults: dict[str, Any] = {k: v for k, v in state.faults.to_dict().items() if v is not None}
        overrides = {
            "throttleRps": opts.throttle_rps,
            "errorRate": opts.fault_rate,
            "latencyMs": opts.latency_ms,
            "dropRate": opts.drop_rate,
        }
        faults.update({k: v for k, v in overrides.items() if v is not None})
        state.faults = FaultSettings.from_dict(faults)
        settings: dict[str, Any] = {}
        if opts.policy_delay_seconds is not None:
            settings["policyDelaySeconds"] = opts.policy_delay_seconds
        if opts.access_token_lifetime_seconds is not None:
            settings["accessTokenLifetimeSeconds"] = opts.access_token_lifetime_seconds
        if opts.realistic is not None:
            settings["profile"] = "realistic" if opts.realistic else "fast"
        if opts.time_compression is not None:
            settings["timeCompression"] = opts.time_compression
        if opts.profile_seed is not None:
            settings["profileSeed"] = opts.profile_seed
        state.settings = SandboxSettings.from_dict(settings, state.settings)
        if self._saver is not None:
            self._saver.dirty = True
            self._saver.flush()
        return state

    def start(self) -> SandboxInfo:
        """Start serving (idempotent); :class:`SandboxStartError` says why it could not."""
        if self._info is not None:
            return self._info
        try:
            return self._start()
        except BaseException:
            self._release_lock()
            if self._temp_dir is not None:
                shutil.rmtree(self._temp_dir, ignore_errors=True)
                self._temp_dir = None
            raise

    def _start(self) -> SandboxInfo:
        import uvicorn

        from meetgate_sandbox.protocol import DroppingHttpToolsProtocol

        opts = self.options
        # absolute: sandbox.json's paths (ca_bundle) are read by processes started in other folders
        directory = opts.state_dir.resolve() if opts.state_dir is not None else None
        if directory is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="meetgate-sandbox-"))
            base_dir = self._temp_dir
        else:
            directory.mkdir(parents=True, exist_ok=True)
            self._take_lock(directory)
            base_dir = directory
        tls = ensure_tls(base_dir / "tls", [opts.host])
        issuer = TokenIssuer.load_or_create(directory)
        state = self._prepare_state(directory)
        runtime = SandboxRuntime(state=state, issuer=issuer)
        # notifications are delivered to endpoints the system's CAs or the sandbox's own CA vouch for
        runtime.services["tls.ca_certificate"] = tls.ca_certificate
        self.runtime = runtime
        saver = self._saver
        app = create_app(runtime, on_shutdown=saver.flush if saver else None)
        sock = _bind(opts.host, opts.port)
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            ssl_certfile=str(tls.server_certificate),
            ssl_keyfile=str(tls.server_key),
            http=DroppingHttpToolsProtocol,
            lifespan="on",
            log_level=opts.log_level,
            access_log=False,
            timeout_graceful_shutdown=3,
            timeout_keep_alive=30,
        )
        server = uvicorn.Server(config)
        self._server = server

        finished = threading.Event()
        self._finished = finished

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()
                self._error = exc
            finally:
                finished.set()

        self._thread = threading.Thread(target=run, name="meetgate-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if finished.is_set() or time.monotonic() > deadline:
                sock.close()
                raise SandboxStartError(f"the sandbox server did not start: {self._error or 'timed out'}")
            time.sleep(0.02)
        url_host = "127.0.0.1" if opts.host in ("0.0.0.0", "", "::") else opts.host  # noqa: S104
        if ":" in url_host:
            url_host = f"[{url_host}]"
        base = f"https://{url_host}:{port}"
        tenant = state.default_tenant
        assert tenant is not None
        self._info = SandboxInfo(
            authority_url=base,
            graph_url=base,
            control_url=f"{base}/_sandbox",
            ca_bundle=tls.ca_certificate,
            tenant_id=tenant.id,
            tenant_domain=tenant.domain,
            admin_upn=tenant.admin.user_principal_name if tenant.admin else None,
            pid=os.getpid(),
            users=tuple(
                SandboxUser(u.id, u.user_principal_name, u.display_name)
                for u in (tenant.users[i] for i in tenant.seeded_user_ids)
            ),
        )
        if directory is not None:
            path = directory / INFO_FILE
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(self._info.to_dict(), indent=2) + "\n", encoding="utf-8")
            tmp.replace(path)
        return self._info

    def _take_lock(self, directory: Path) -> None:
        """One server per state folder: two would overwrite each other's state.json."""
        lock = (directory / ".lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise SandboxStartError(
                f"another sandbox is already serving {directory}; stop it, use `meetgate sandbox info "
                f"--state {directory}` to reach it, or pick another --state folder"
            ) from None
        self._lock = lock

    def _release_lock(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        # an Event, not Thread.join/is_alive: a KeyboardInterrupt during join makes Python 3.11
        # report a running thread as stopped (bpo-45274), and we would not wait for the shutdown
        stopped = self._finished.wait(timeout=15) if self._thread is not None else True
        if not stopped:
            logging.getLogger("meetgate_sandbox").warning("the sandbox server did not stop in 15 s")
        if self._saver is not None and stopped:
            self._saver.flush()
        if self.options.state_dir is not None and self._info is not None:
            (self.options.state_dir / INFO_FILE).unlink(missing_ok=True)
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        self._release_lock()
        self._thread = None
        self._server = None
        self._info = None
        self.runtime = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server thread ends (or ``timeout``); True when it ended."""
        if self._thread is None:
            return True
        return self._finished.wait(timeout)

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
