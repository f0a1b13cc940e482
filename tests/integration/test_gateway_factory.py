"""The gateway as an ASGI factory (`uvicorn --factory meetgate.composition.gateway:create_gateway_app`):
it reads the profile like every command, and a real uvicorn serves it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
from fastapi.testclient import TestClient

from meetgate.composition.gateway import create_gateway_app


def _config(sandbox_app, tmp_path):
    policy = tmp_path / "policy.toml"
    users = ", ".join(f'"{u.upn}"' for u in sandbox_app.pilot_users)
    policy.write_text(
        f'[policy]\nidentity = "Tag:TeamsMeetingsIntegration"\napp_ids = ["{sandbox_app.client_id}"]\n'
        f"[organizers]\nusers = [{users}]\n"
    )
    config = tmp_path / "meetgate.toml"
    p = sandbox_app
    config.write_text(
        'default_profile = "gw"\n[profiles.gw]\n'
        f'tenant_id = "{p.tenant_id}"\nclient_id = "{p.client_id}"\n'
        f'private_key_path = "{p.private_key_path}"\ncertificate_path = "{p.certificate_path}"\n'
        f'authority_url = "{p.authority_url}"\ngraph_url = "{p.graph_url}"\nca_bundle = "{p.ca_bundle}"\n'
        f'policy_file = "{policy}"\nstore_url = "sqlite:///{tmp_path / "gw.db"}"\n'
        "gateway_organizer_rate_per_minute = 0\n"
    )
    return config


def test_the_factory_builds_the_gateway_from_the_profile(sandbox_app, tmp_path, monkeypatch):
    monkeypatch.setenv("MEETGATE_CONFIG", str(_config(sandbox_app, tmp_path)))
    monkeypatch.delenv("MEETGATE_PROFILE", raising=False)
    monkeypatch.delenv("MEETGATE_ADMIN_KEY", raising=False)
    with TestClient(create_gateway_app()) as http:
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert http.get("/admin/dashboard").status_code == 401  # no admin key configured: closed


def test_uvicorn_serves_the_factory(sandbox_app, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MEETGATE_CONFIG": str(_config(sandbox_app, tmp_path))}
    env.pop("MEETGATE_PROFILE", None)
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "meetgate.composition.gateway:create_gateway_app",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "uvicorn did not answer within 60 s"
                time.sleep(0.2)
        assert answer.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_factory_wires_graph_notifications_from_the_profile(sandbox_app, tmp_path, monkeypatch):
    import asyncio

    config = _config(sandbox_app, tmp_path)
    config.write_text(config.read_text() + 'gateway_notifications = "poll"\n')
    monkeypatch.setenv("MEETGATE_CONFIG", str(config))
    monkeypatch.delenv("MEETGATE_PROFILE", raising=False)
    app = create_gateway_app()
    with TestClient(app) as http:
        service = app.state.notifications
        assert service is not None and service.config.mode == "poll"
        assert (tmp_path / "notifications").stat().st_mode & 0o777 == 0o700
        answer = http.post("/graph/notifications", params={"validationToken": "x y"})
        assert answer.status_code == 200 and answer.text == "x y"
        # the Graph calls carry the app's token
        status, body = asyncio.run(service.reader.graph("GET", "/users?$top=1"))
        assert status == 200 and body["value"], body
