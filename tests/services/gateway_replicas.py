"""Helpers: gateway replicas as real `meetgate serve` processes sharing PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    config: Path
    control_url: str
    redis_prefix: str
    replicas: list[Replica] = field(default_factory=list)

    def start(self, *extra: str, timeout: float = 60.0) -> Replica:
        return self.wait_ready(self.launch(*extra), timeout)

    def start_many(self, count: int, *extra: str, timeout: float = 60.0) -> list[Replica]:
        launched = [self.launch(*extra) for _ in range(count)]
        return [self.wait_ready(r, timeout) for r in launched]

    def launch(self, *extra: str) -> Replica:
        port = free_port()
        log = self.config.parent / f"replica-{port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEETGATE_")}
        cmd = [
            sys.executable, "-m", "meetgate", "--config", str(self.config), "serve",
            "--port", str(port), "--sandbox-control", self.control_url,
            "--redis-prefix", self.redis_prefix, "--organizer-rate", "0", *extra,
        ]  # fmt: skip
        with log.open("wb") as fh:
            process = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        replica = Replica(port, process, log)
        self.replicas.append(replica)
        return replica

    def wait_ready(self, replica: Replica, timeout: float) -> Replica:
        process, log = replica.process, replica.log
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"replica exited: {log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200:
                    return replica
            time.sleep(0.2)
        raise RuntimeError(f"replica not ready in {timeout}s: {log.read_text()[-3000:]}")

    def stop_all(self) -> None:
        for replica in self.replicas:
            replica.stop()


def pg_schema_url(postgres_url: str) -> tuple[str, str]:
    schema = f"gw_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema, f"{postgres_url}?options=-csearch_path%3D{schema}"


def drop_schema(postgres_url: str, schema: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def write_config(path: Path, app, store_url: str, redis_url: str) -> Path:  # type: ignore[no-untyped-def]
    path.write_text(
        "[profiles.default]\n"
        f'tenant_id = "{app.tenant_id}"\n'
        f'client_id = "{app.client_id}"\n'
        f'private_key_path = "{app.private_key_path}"\n'
        f'certificate_path = "{app.certificate_path}"\n'
        f'ca_bundle = "{app.ca_bundle}"\n'
        f'authority_url = "{app.authority_url}"\n'
        f'graph_url = "{app.graph_url}"\n'
        f'store_url = "{store_url}"\n'
        f'redis_url = "{redis_url}"\n'
    )
    return path
