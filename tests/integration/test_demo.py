"""`make demo` is one of the README's two commands: it must keep working end to end.

The runbook is replayed once per test run (about half a minute): the same run checks the narration,
the reports, the gateway left running, that SIGTERM stops everything, and the `--json` outcome.
"""

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest


@pytest.mark.slow
def test_demo_runs_the_runbook_end_to_end_and_stops_everything_on_sigterm(tmp_path):
    workdir = tmp_path / "demo"
    process = subprocess.Popen(
        [sys.executable, "-m", "meetgate", "demo", "--workdir", str(workdir), "--keep-running", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    lines: list[str] = []
    gateway = None
    try:
        for line in process.stderr:  # type: ignore[union-attr]  (--json: the narration is on stderr)
            lines.append(line)
            if line.startswith("gateway:"):
                gateway = line.split()[1]
            if line.startswith("settings:"):
                break
        output = "".join(lines)
        assert "demo failed" not in output, output[-4000:]
        summary = [line for line in lines if "checks passed" in line]
        assert summary, output[-4000:]
        passed, total = summary[-1].split()[0].split("/")
        assert passed == total and int(total) >= 14, output[-4000:]
        assert (workdir / "reports" / "validate.xml").exists()
        assert gateway, "the demo did not say where its gateway runs"
        assert httpx.get(f"{gateway}/healthz", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=60)
        assert process.returncode == 0  # handled like Ctrl-C, not killed
        outcome = json.loads(stdout)  # stdout holds the JSON outcome and nothing else
        assert outcome["ok"] is True and outcome["passed"] == len(outcome["checks"]) == int(total)
        assert outcome["config"] and any(r.endswith("validate.xml") for r in outcome["reports"])
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
    assert not (workdir / "sandbox" / "sandbox.json").exists()
