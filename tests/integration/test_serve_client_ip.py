"""The client IP `meetgate serve` audits, through the real uvicorn server: the socket peer unless
--trust-forwarded-for, and then never an address the client wrote itself."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from meetgate.gateway.consumers import ConsumerAdmin
from meetgate.gateway.scope import StaticPolicyScope
from meetgate.store import Store

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(
    env: dict[str, str], control_url: str, log_path, *extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "meetgate", "serve", "--port", str(port), "--sandbox-control", control_url]
    with log_path.open("wb") as log:
        process = subprocess.Popen([*cmd, *extra], stdout=log, stderr=subprocess.STDOUT, env=env)
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"meetgate serve exited: {log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"meetgate serve not ready: {log_path.read_text()[-3000:]}")


def test_serve_audits_the_peer_unless_told_to_trust_proxies(sandbox_cli_env, sandbox, tmp_path):
    env = sandbox_cli_env
    store_url = f"sqlite:///{tmp_path}/gw.db"
    store = Store.open(store_url)
    key = ConsumerAdmin(store, StaticPolicyScope(["a@contoso.test"])).add(
        "app", organizers=["a@contoso.test"]
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("MEETGATE_")}
    run_env = {**base, **env, "MEETGATE_STORE_URL": store_url}
    control = sandbox.info.control_url
    off = _serve(run_env, control, tmp_path / "off.log")
    on = _serve(run_env, control, tmp_path / "on.log", "--trust-forwarded-for")
    try:
        headers = {"Authorization": f"Bearer {key.api_key}", "X-Forwarded-For": "198.51.100.66, 203.0.113.7"}
        for (process, url), name in ((off, "off"), (on, "on")):
            _wait_ready(process, url, tmp_path / f"{name}.log")
            resp = httpx.get(f"{url}/v1/meetings/mtg_{'0' * 32}", headers={**headers, "X-Request-Id": name})
            assert resp.status_code == 404, resp.text
    finally:
        for process, _url in (off, on):
            process.terminate()
            process.wait(30)
    by_request = {a.request_id: a.client_ip for a in store.audit()}
    store.close()
    # off: the header is ignored although the request came from 127.0.0.1 (uvicorn's own default
    # would have believed it); on: the address the local proxy appended, not the client's own entry
    assert by_request == {"off": "127.0.0.1", "on": "203.0.113.7"}
