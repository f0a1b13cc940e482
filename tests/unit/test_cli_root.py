import subprocess
import sys
import time

from typer.testing import CliRunner

from meetgate.cli.main import app


def test_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("meetgate ")


def test_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys, time; t=time.perf_counter();"
        "from meetgate.cli.main import app;"
        "heavy=[m for m in ('httpx','msal','pydantic','fastapi','sqlalchemy','starlette','cryptography') if m in sys.modules];"
        "print(heavy); print(time.perf_counter()-t)"
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]", f"heavy modules imported by the CLI root: {out[0]}"
    assert time.perf_counter() - started < 2.0
