"""`make demo` is one of the README's two commands: it must keep working end to end."""

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_the_runbook_end_to_end(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "meetgate", "demo", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "demo failed" not in result.stdout
    summary = [line for line in result.stdout.splitlines() if "checks passed" in line]
    assert summary, result.stdout[-2000:]
    passed, total = summary[-1].split()[0].split("/")
    assert passed == total
    assert int(total) >= 14
    # nothing is left running: the sandbox and the gateway were stopped
    assert not (tmp_path / "demo" / "sandbox" / "sandbox.json").exists()
    assert (tmp_path / "demo" / "reports" / "validate.xml").exists()


@pytest.mark.slow
def test_keep_running_stops_everything_on_sigterm(tmp_path):
    import signal
    import time

    import httpx

    process = subprocess.Popen(
        [sys.executable, "-m", "meetgate", "demo", "--workdir", str(tmp_path / "demo"), "--keep-running"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    gateway = None
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            if line.startswith("gateway:"):
                gateway = line.split()[1]
            if line.startswith("settings:"):
                break
        assert gateway, "the demo did not say where its gateway runs"
        assert httpx.get(f"{gateway}/healthz", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) != -signal.SIGTERM  # handled, not killed
    finally:
        if process.poll() is None:
            process.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the gateway child went with it
        try:
            httpx.get(f"{gateway}/healthz", timeout=1)
        except httpx.HTTPError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the demo's gateway at {gateway} still answers after SIGTERM")
    assert not (tmp_path / "demo" / "sandbox" / "sandbox.json").exists()
