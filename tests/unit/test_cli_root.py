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


def test_a_plugin_that_cannot_load_is_named_with_what_to_do(monkeypatch):
    import importlib.metadata

    import typer

    from meetgate.cli import main

    class Broken:
        name, value, group = "sandbox", "meetgate_sandbox.cli:register", "meetgate.commands"
        dist = type("Dist", (), {"name": "meetgate-sandbox"})()

        def load(self):
            raise ImportError("No module named 'meetgate_sandbox'")

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [Broken()])
    notes = main._load_plugins(typer.Typer())
    assert notes == [
        "the commands of meetgate-sandbox (meetgate_sandbox.cli:register) could not be loaded: No module "
        "named 'meetgate_sandbox'; reinstall it with `pip install --force-reinstall meetgate-sandbox` (same "
        "version as meetgate), or uninstall it"
    ]
