"""The guides in docs/ run as written: every ``meetgate …`` line of their ``sh`` blocks runs in-process
(``meetgate.cli.main.invoke``) against a sandbox tenant, in document order.

Rules the guides follow so that this is possible (and so that a reader can follow them too):

- a command runs with the guide's shell variables (``$ORGANIZER``, ``$OUTSIDER``, ``$MEETING_ID``,
  ``$THUMBPRINT``, ``$CLIENT_ID``) set to the sandbox's values; an unknown variable fails the test;
- ``MEETING_ID`` / ``THUMBPRINT`` come from the JSON the guide's ``--json`` commands print, as the
  guide tells its reader to note them;
- a line ending in ``|| echo …`` must fail (exit 1), every other line must exit 0;
- a ``toml`` block whose first line is ``# file: NAME`` is written to NAME (variables substituted)
  when the guide reaches it;
- commands that serve forever (``serve``, ``sandbox serve``) or replay the whole runbook (``demo``)
  run with ``--help`` appended: they must exist and parse;
- ``export`` lines (real-tenant values) are not applied: the test's profile points at the sandbox.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from meetgate.cli.main import invoke
from meetgate.config import load_profile

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDES = ["admin-guide.md", "integrator-guide.md", "operations.md", "troubleshooting.md"]
FOREVER = [("serve",), ("sandbox", "serve"), ("demo",)]

_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S
)
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass
class Block:
    lang: str
    body: str


def blocks(name: str) -> list[Block]:
    text = (DOCS / name).read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        indent = len(m.group("indent"))
        body = "\n".join(line[indent:] for line in m.group("body").splitlines())
        out.append(Block(m.group("lang"), body))
    return out


def command_lines(body: str) -> list[str]:
    """Logical lines (backslash continuations joined) that start with ``meetgate ``."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("meetgate ")]


def substitute(text: str, variables: dict[str, str], where: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise AssertionError(f"{where}: the guide uses ${name}, which has no value at this point")
        return variables[name]

    return _VAR.sub(one, text)


@dataclass
class Runner:
    """Runs one guide's blocks in order in a working folder with a sandbox profile."""

    workdir: Path
    config: Path
    variables: dict[str, str]
    capsys: pytest.CaptureFixture[str]
    ran: list[str] = field(default_factory=list)

    def run_guide(self, name: str) -> None:
        for block in blocks(name):
            if block.lang == "sh":
                for line in command_lines(block.body):
                    self.run_line(name, line)
            elif block.lang == "toml" and block.body.startswith("# file: "):
                first, _, rest = block.body.partition("\n")
                target = self.workdir / first.removeprefix("# file: ").strip()
                target.write_text(substitute(rest, self.variables, name), encoding="utf-8")

    def run_line(self, guide: str, line: str) -> None:
        must_fail = False
        if "||" in line:
            line, _, _ = line.partition("||")
            must_fail = True
        args = shlex.split(substitute(line, self.variables, guide), comments=True)[1:]
        if any(tuple(args[: len(f)]) == f for f in FOREVER):
            args = [*args, "--help"]
        self.capsys.readouterr()
        started = time.monotonic()
        code = invoke(["--config", str(self.config), *args])
        out, err = self.capsys.readouterr()
        shown = f"{guide}: `meetgate {shlex.join(args)}` exited {code}\nstdout:\n{out}\nstderr:\n{err}"
        if must_fail:
            assert code == 1, shown
        else:
            assert code == 0, shown
        self.ran.append(f"{time.monotonic() - started:5.1f}s meetgate {shlex.join(args)}")
        self.learn(args, out)

    def learn(self, args: list[str], out: str) -> None:
        """Values the guide tells its reader to note from a command's output."""
        profile = load_profile(self.config)
        if profile.client_id:
            self.variables["CLIENT_ID"] = profile.client_id
        if "--json" not in args:
            return
        data = json.loads(out)
        if args[:2] == ["meetings", "create"]:
            self.variables["MEETING_ID"] = data["id"]
        if args[:2] == ["cert", "new"]:
            self.variables["THUMBPRINT"] = data["thumbprint_sha1"]


@pytest.fixture
def guide_env(sandbox, tmp_path, monkeypatch):
    """Environment every guide runs in: the sandbox's pwsh stand-in, a working folder."""
    info = sandbox.info
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEETGATE_PWSH", f"{shlex.quote(sys.executable)} -m meetgate.sandbox.pwsh")
    monkeypatch.setenv("MEETGATE_SANDBOX_CONTROL_URL", info.control_url)
    monkeypatch.setenv("MEETGATE_SANDBOX_CA_BUNDLE", str(info.ca_bundle))
    monkeypatch.setenv("MEETGATE_SANDBOX_AUTHORITY_URL", info.authority_url)
    monkeypatch.setenv("MEETGATE_POLICY_STATE_DIR", str(tmp_path / ".meetgate" / "policy"))
    for key in ("MEETGATE_CONFIG", "MEETGATE_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    return info


def _profile_text(info, tenant_id: str, workdir: Path, extra: dict[str, str] | None = None) -> str:
    values = {
        "tenant_id": tenant_id,
        "authority_url": info.authority_url,
        "graph_url": info.graph_url,
        "ca_bundle": str(info.ca_bundle),
        "policy_file": str(workdir / "policy.toml"),
        "store_url": f"sqlite:///{workdir / 'meetgate.db'}",
        **(extra or {}),
    }
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
    return f'default_profile = "sandbox"\n\n[profiles.sandbox]\n{lines}'


def _enabled(tenant: dict) -> list[str]:
    return [u["userPrincipalName"] for u in tenant["users"] if u.get("accountEnabled", True)]


def test_admin_guide_runs_as_written(guide_env, sandbox_control, tmp_path, capsys):
    """A bare tenant, as a new administrator has: the guide registers, certifies, grants, tests,
    goes live and rolls everything back."""
    tenant = sandbox_control.create_tenant(users=8)
    users = _enabled(tenant)
    config = tmp_path / "meetgate.toml"
    config.write_text(_profile_text(guide_env, tenant["tenantId"], tmp_path))
    runner = Runner(tmp_path, config, {"ORGANIZER": users[0], "OUTSIDER": users[-1]}, capsys)
    started = time.monotonic()
    runner.run_guide("admin-guide.md")
    elapsed = time.monotonic() - started
    assert len(runner.ran) >= 15, runner.ran
    # the rollback really happened: nobody holds the policy, the certificate is gone
    grants = sandbox_control.request("GET", f"/tenants/{tenant['tenantId']}/policy-grants")
    assert not grants["direct"], grants
    assert invoke(["--config", str(config), "cert", "status"]) == 1  # no certificate left: an error finding
    print("\n".join(runner.ran), f"\nadmin guide: {elapsed:.1f}s", file=sys.stderr)
