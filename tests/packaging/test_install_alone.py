"""`meetgate` installs and runs without `meetgate-sandbox`: its wheel carries no emulator, no pwsh
stand-in and no `sandbox` extra, and `import meetgate`, `meetgate --help` and `meetgate serve --help`
work in a fresh environment where meetgate_sandbox cannot be imported; `--help` says how to get the
sandbox commands."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (found,) = out.glob("meetgate-*.whl")
    return found


def test_the_wheel_carries_no_sandbox(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        points = next((archive.read(n).decode() for n in names if n.endswith("entry_points.txt")), "")
    assert not [n for n in names if n.startswith(("meetgate/sandbox/", "meetgate_sandbox"))]
    assert "meetgate/cli/main.py" in names and "meetgate/gateway/app.py" in names
    assert "meetgate-sandbox-pwsh" not in points and "meetgate = meetgate.cli.main:run" in points
    assert "Provides-Extra: sandbox" not in metadata and "Provides-Extra: gateway" in metadata


def _fresh_environment(wheel: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A new venv holding this wheel, with the third-party packages of the running one beside it but
    neither meetgate-sandbox nor the editable meetgate."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    target = tmp_path / "meetgate-alone"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    deps = tmp_path / "deps"  # the running venv's packages, minus everything of meetgate
    deps.mkdir()
    for site_dir in site.getsitepackages():
        for item in Path(site_dir).iterdir():
            name = item.name.lower()
            if name.startswith(("meetgate", "__editable__", "_meetgate")) or name.endswith(".pth"):
                continue
            if not (deps / item.name).exists():
                (deps / item.name).symlink_to(item)
    python = venv / "bin" / "python"
    (Path(next(venv.glob("lib/python*/site-packages"))) / "alone.pth").write_text(f"{target}\n{deps}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MEETGATE_"))}
    env["COLUMNS"] = "200"
    return python, env


def test_meetgate_runs_without_the_sandbox(wheel, tmp_path):
    python, env = _fresh_environment(wheel, tmp_path)

    def run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-c", code, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    where = run(
        "import importlib.util, meetgate; print(meetgate.__file__, importlib.util.find_spec('meetgate_sandbox'))"
    )
    assert where.returncode == 0, where.stderr
    assert "meetgate-alone" in where.stdout and where.stdout.strip().endswith("None")
    cli = "import sys; from meetgate.cli.main import invoke; sys.exit(invoke(sys.argv[1:]))"
    shown = run(cli, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "pip install meetgate-sandbox" in shown.stdout
    assert " demo " not in shown.stdout and "could not be loaded" not in shown.stdout
    serve = run(cli, "serve", "--help")
    assert serve.returncode == 0 and "--graph-rps" in serve.stdout, serve.stderr
    gone = run(cli, "sandbox", "serve")
    assert gone.returncode == 2 and "No such command 'sandbox'" in gone.stderr + gone.stdout
    scope = run(
        "from meetgate.composition.gateway import policy_scope; from meetgate.config import Profile\n"
        "try:\n    policy_scope(Profile(), 'https://127.0.0.1:9/_sandbox')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)"
    )
    assert "ConfigError" in scope.stdout and "pip install meetgate-sandbox" in scope.stdout, scope.stderr
