"""`meetgate sandbox serve` in a subprocess (foreground until Ctrl-C) and `meetgate sandbox info`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from meetgate.cli.main import app
from meetgate_sandbox.control import ssl_context


def _read_json_document(stream) -> dict:
    lines = []
    while True:
        line = stream.readline()
        if not line:
            raise AssertionError("serve ended before printing its info: " + "".join(lines))
        lines.append(line)
        if line.rstrip() == "}":
            return json.loads("".join(lines))


def test_serve_runs_until_interrupted_and_info_reads_it(tmp_path):
    state = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "meetgate", "sandbox", "serve", "--port", "0", "--state", str(state), "--users", "7",
         "--policy-delay", "1.5", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        info = _read_json_document(process.stdout)
        assert info["authority_url"].startswith("https://127.0.0.1:")
        assert len(info["users"]) == 7
        with httpx.Client(verify=ssl_context(info["ca_bundle"])) as client:
            health = client.get(f"{info['control_url']}/health").json()
            assert health["defaultTenantId"] == info["tenant_id"]
            assert client.get(f"{info['control_url']}/settings").json()["policyDelaySeconds"] == 1.5
        shown = CliRunner().invoke(app, ["sandbox", "info", "--state", str(state), "--json"])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)["tenant_id"] == info["tenant_id"]
        text = CliRunner().invoke(app, ["sandbox", "info", "--state", str(state)])
        assert info["authority_url"] in text.output
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, process.stderr.read()
    assert (state / "state.json").exists()


def test_ctrl_c_lets_the_request_in_flight_finish_before_the_process_exits(tmp_path):
    """SIGINT while a request is being served: the server shuts down gracefully, then the process ends.

    (Raising KeyboardInterrupt in the main thread's Thread.join made Python 3.11 report the server
    thread as stopped while it ran: the process went on to exit under the request, or hung.)"""
    import threading

    process = subprocess.Popen(
        [sys.executable, "-m", "meetgate", "sandbox", "serve", "--port", "0", "--state", str(tmp_path),
         "--users", "1", "--latency-ms", "1500", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    answers: list[object] = []
    try:
        info = _read_json_document(process.stdout)
        started = threading.Event()

        def call() -> None:
            with httpx.Client(verify=ssl_context(info["ca_bundle"]), timeout=30) as client:
                started.set()
                try:
                    answers.append(client.get(f"{info['graph_url']}/v1.0/users").status_code)
                except httpx.HTTPError as exc:
                    answers.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        started.wait(10)
        _wait_until_requested(info, tmp_path)
        process.send_signal(signal.SIGINT)
        caller.join(30)
    finally:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert answers == [401]  # answered (no token), not cut off by the exit
    assert process.returncode == 0
    assert not (tmp_path / "sandbox.json").exists() and (tmp_path / "state.json").exists()


def _wait_until_requested(info: dict, state) -> None:
    """Until the sandbox has the request in hand (its connection count says so)."""
    import time

    deadline = time.monotonic() + 20
    with httpx.Client(verify=ssl_context(info["ca_bundle"])) as client:
        while time.monotonic() < deadline:
            stats = client.get(f"{info['control_url']}/health").json()
            if stats.get("inFlight", 0) >= 1:
                return
            time.sleep(0.05)
    raise AssertionError("the request never reached the sandbox")


def test_info_without_a_running_sandbox_says_what_to_do(tmp_path):
    result = CliRunner().invoke(app, ["sandbox", "info", "--state", str(tmp_path)])
    assert result.exit_code == 2
    assert "meetgate sandbox serve" in result.output


def test_serve_prints_urls_then_a_ready_line(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "meetgate", "sandbox", "serve", "--state", str(tmp_path), "--users", "3",
         "--throttle-rps", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines = []
    try:
        while not lines or not lines[-1].startswith("ready: "):
            line = process.stdout.readline()
            assert line, "serve ended early: " + "".join(lines) + process.stderr.read()
            lines.append(line)
        fields = dict(line.split(None, 1) for line in lines[:-1])
        url = lines[-1].split()[1]
        assert fields["authority_url"].strip() == url
        assert fields["ca_bundle"].strip().endswith("ca.pem")
        with httpx.Client(verify=ssl_context(fields["ca_bundle"].strip())) as client:
            assert client.get(f"{url}/_sandbox/faults").json()["throttleRps"] == 5
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    assert process.returncode == 0


def test_info_refuses_a_stale_sandbox_json(tmp_path):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    info = {
        "authority_url": "https://127.0.0.1:1", "graph_url": "https://127.0.0.1:1",
        "control_url": "https://127.0.0.1:1/_sandbox", "ca_bundle": str(tmp_path / "ca.pem"),
        "tenant_id": "t", "tenant_domain": "d", "users": [], "pid": int(gone.stdout),
    }  # fmt: skip
    (tmp_path / "sandbox.json").write_text(json.dumps(info))
    result = CliRunner().invoke(app, ["sandbox", "info", "--state", str(tmp_path)])
    assert result.exit_code == 2
    assert "stale" in result.output


def test_sandbox_json_names_absolute_paths_for_a_relative_state_folder(tmp_path, monkeypatch):
    from meetgate_sandbox.server import SandboxOptions, SandboxServer

    monkeypatch.chdir(tmp_path)
    with SandboxServer(SandboxOptions(state_dir=Path(".meetgate/sandbox"), users=2)):
        written = json.loads((tmp_path / ".meetgate/sandbox/sandbox.json").read_text())
    # the PowerShell stand-in and other tools read it from other folders
    assert Path(written["ca_bundle"]).is_absolute()
    assert Path(written["ca_bundle"]).exists()
