"""`make demo` is one of the README's two commands: it must keep working end to end."""

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
