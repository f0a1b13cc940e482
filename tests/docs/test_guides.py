"""The guides in docs/ run as written: every ``meetgate …`` line of their ``sh`` blocks runs in-process
(``meetgate.cli.main.invoke``) against a sandbox tenant, in document order.

Rules the guides follow so that this is possible (and so that a reader can follow them too):

- a command runs with the guide's shell variables (``$ORGANIZER``, ``$OUTSIDER``, ``$MEETING_ID``,
  ``$THUMBPRINT``, ``$CLIENT_ID``) set to the sandbox's values; an unknown variable fails the test;
- ``MEETING_ID`` / ``THUMBPRINT`` come from the JSON the guide's ``--json`` commands print, as the
  guide tells its reader to note them; ``WEBHOOK_ID`` from the answer to ``POST /v1/webhooks``;
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
from typing import Any
from urllib.parse import quote

import pytest

from meetgate.cli.main import invoke
from meetgate.config import SETTING_KEYS, load_profile

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDES = ["admin-guide.md", "integrator-guide.md", "operations.md", "troubleshooting.md"]
FOREVER = [("serve",), ("sandbox", "serve"), ("demo",)]
#: Commands broken on main when a guide was written: the test expects exactly this failure and fails
#: once it is gone, so an entry is removed when its bug is fixed (a strict, per-command xfail).
KNOWN_BUGS: dict[tuple[str, ...], tuple[type[BaseException], str]] = {}

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
    joined = re.sub(r"[ \t]*\\\n\s*", " ", body)
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
    gateway: Any = None
    namespace: dict[str, Any] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)

    def run_guide(self, name: str) -> None:
        pending_request: str | None = None
        for number, block in enumerate(blocks(name), 1):
            where = f"{name}, block {number}"
            if block.lang == "sh":
                for line in command_lines(block.body):
                    self.run_line(name, line)
            elif block.lang == "toml" and block.body.startswith("# file: "):
                first, _, rest = block.body.partition("\n")
                target = self.workdir / first.removeprefix("# file: ").strip()
                target.write_text(substitute(rest, self.variables, where), encoding="utf-8")
            elif block.lang == "http" and block.body.startswith("HTTP/"):
                assert pending_request is not None, f"{where}: an answer without a request before it"
                self.exchange(where, pending_request, block.body)
                pending_request = None
            elif block.lang == "http":
                assert pending_request is None, f"{where}: two requests in a row, no answer shown"
                pending_request = block.body
            elif block.lang == "python":
                code = compile(block.body, where, "exec")
                started = time.monotonic()
                exec(code, self.namespace)
                self.ran.append(f"{time.monotonic() - started:5.1f}s python {where}")
        assert pending_request is None, f"{name}: the last request has no answer shown"

    def exchange(self, where: str, request_text: str, answer_text: str) -> None:
        assert self.gateway is not None, f"{where}: HTTP examples need a gateway"
        method, path, headers, body = parse_http(substitute(request_text, self.variables, where))
        started = time.monotonic()
        response = self.gateway.request(method, path, headers=headers, content=body.encode() or None)
        status, want_headers, want_body = parse_answer(substitute(answer_text, self.variables, where))
        shown = f"{where}: {method} {path} answered {response.status_code} {response.text[:2000]}"
        assert response.status_code == status, shown
        for key, value in want_headers.items():
            assert key in response.headers, f"{shown}\nmissing header {key}"
            assert matches(value, response.headers[key]), f"{shown}\nheader {key}: {response.headers[key]}"
        if want_body.startswith(("{", "[")):
            got = response.json()
            compare(json.loads(want_body), got, where)
            if method == "POST" and status == 201 and path == "/v1/webhooks":
                self.variables["WEBHOOK_ID"] = got["id"]
            elif method == "POST" and status == 201:
                self.variables["MEETING_ID"] = got["id"]
                self.variables["JOIN_URL"] = got["join_url"]
                self.variables["JOIN_URL_ENCODED"] = quote(got["join_url"], safe="")
            if method == "GET" and path.split("?")[0].endswith("/occurrences") and got.get("value"):
                self.variables["OCCURRENCE_ID"] = got["value"][-1]["id"]  # the page's last, as the guide says
        elif want_body:
            assert response.text.startswith(want_body), shown
        self.ran.append(f"{time.monotonic() - started:5.1f}s {method} {path}")

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
        command = tuple(a for a in args if not a.startswith("-"))
        known = next(
            (
                bug
                for key, bug in KNOWN_BUGS.items()
                if command[1 : 1 + len(key)] == key or command[: len(key)] == key
            ),
            None,
        )
        if known is not None:
            with pytest.raises(known[0], match=known[1]):
                invoke(["--config", str(self.config), *args])
            self.ran.append(f"known bug: meetgate {shlex.join(args)}")
            return
        code = invoke(["--config", str(self.config), *args])
        out, err = self.capsys.readouterr()
        shown = f"{guide}: `meetgate {shlex.join(args)}` exited {code}\nstdout:\n{out}\nstderr:\n{err}"
        if must_fail:  # the refusal / the alerts the guide announces, not some other failure
            assert code == 1, shown
            if args[:2] == ["meetings", "create"]:
                assert "No application access policy found for this app" in " ".join(err.split()), shown
            else:
                assert "error:" not in err, shown
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
        if args[:2] == ["consumers", "add"]:
            self.variables["API_KEY"] = data["apiKey"]


def parse_http(text: str) -> tuple[str, str, dict[str, str], str]:
    head, _, body = text.strip().partition("\n\n")
    first, *header_lines = head.splitlines()
    method, path, *_ = first.split()
    headers = dict(line.split(": ", 1) for line in header_lines)
    return method, path, headers, body.strip()


def parse_answer(text: str) -> tuple[int, dict[str, str], str]:
    head, _, body = text.strip().partition("\n\n")
    first, *header_lines = head.splitlines()
    return int(first.split()[1]), dict(line.split(": ", 1) for line in header_lines), body.strip()


def matches(want: str, got: str) -> bool:
    """``…`` in a documented value stands for anything."""
    parts = want.split("…")
    if len(parts) == 1:
        return got == want or (";" in got and got.split(";")[0] == want)
    return got.startswith(parts[0]) and got.endswith(parts[-1]) and len(got) > len(parts[0] + parts[-1])


def compare(want: Any, got: Any, where: str, path: str = "$") -> None:
    """Every documented key is in the answer, with the documented value (``…``: any)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{where}: {path} is {got!r}, expected an object"
        for key, value in want.items():
            assert key in got, f"{where}: {path}.{key} is missing from {sorted(got)}"
            compare(value, got[key], where, f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {path} is {got!r}"
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            compare(w, g, where, f"{path}[{i}]")
    elif isinstance(want, str):
        assert isinstance(got, str) and matches(want, got), f"{where}: {path} is {got!r}, documented {want!r}"
    else:
        assert got == want, f"{where}: {path} is {got!r}, documented {want!r}"


@pytest.fixture
def guide_env(sandbox, tmp_path, monkeypatch):
    """Environment every guide runs in: the sandbox's pwsh stand-in, a working folder."""
    info = sandbox.info
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEETGATE_PWSH", f"{shlex.quote(sys.executable)} -m meetgate_sandbox.pwsh")
    monkeypatch.setenv("MEETGATE_SANDBOX_CONTROL_URL", info.control_url)
    monkeypatch.setenv("MEETGATE_SANDBOX_CA_BUNDLE", str(info.ca_bundle))
    monkeypatch.setenv("MEETGATE_SANDBOX_AUTHORITY_URL", info.authority_url)
    monkeypatch.setenv("MEETGATE_POLICY_STATE_DIR", str(tmp_path / ".meetgate" / "policy"))
    for key in ("MEETGATE_CONFIG", "MEETGATE_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    return info


def _profile_text(
    info, tenant_id: str, workdir: Path, extra: dict[str, str] | None = None, name: str = "sandbox"
) -> str:
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
    return f'default_profile = "sandbox"\n\n[profiles.{name}]\n{lines}'


def _enabled(tenant: dict) -> list[str]:
    return [u["userPrincipalName"] for u in tenant["users"] if u.get("accountEnabled", True)]


def _monitoring_reader(control, info, tenant: dict, workdir: Path) -> str:
    """The "monitoring reader" app the guide asks the administrator to register by hand (step 7):
    here through the sandbox's control API, which stands for the portal."""
    from meetgate import certificates

    pair = certificates.generate_self_signed()
    key, cert = workdir / "monitoring.key.pem", workdir / "monitoring.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key))
    pem = certificates.certificate_pem(pair.certificate)
    certificates.write_public_file(cert, pem)
    app = control.register_app(
        tenant["tenantId"],
        "Monitoring Reader",
        certificate_pem=pem,
        roles=["AuditLog.Read.All", "Directory.Read.All"],
    )
    values = {
        "client_id": app["appId"],
        "private_key_path": str(key),
        "certificate_path": str(cert),
    }
    return _profile_text(info, tenant["tenantId"], workdir, values, name="monitoring-reader").partition(
        "\n\n"
    )[2]


def test_admin_guide_runs_as_written(guide_env, sandbox_control, tmp_path, capsys):
    """A bare tenant, as a new administrator has: the guide registers, certifies, grants, tests,
    goes live and rolls everything back."""
    tenant = sandbox_control.create_tenant(users=8)
    users = _enabled(tenant)
    config = tmp_path / "meetgate.toml"
    config.write_text(
        _profile_text(guide_env, tenant["tenantId"], tmp_path)
        + _monitoring_reader(sandbox_control, guide_env, tenant, tmp_path)
    )
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


@pytest.fixture
def provisioned(guide_env, sandbox_app, tmp_path, capsys):
    """A tenant after runbook steps 1–5 (the integrator's and the operator's starting point), with a
    gateway on the profile's store, in-process."""
    from fastapi.testclient import TestClient

    from meetgate.composition import graph_settings_from_profile
    from meetgate.gateway.app import create_app
    from meetgate.gateway.limits import InMemoryLimiter
    from meetgate.gateway.scope import StaticPolicyScope
    from meetgate.gateway.settings import GatewaySettings
    from meetgate.graph.client import AsyncGraphClient
    from meetgate.store import Store

    pilots = [u.upn for u in sandbox_app.pilot_users]
    config = tmp_path / "meetgate.toml"
    config.write_text(
        _profile_text(
            guide_env,
            sandbox_app.tenant_id,
            tmp_path,
            {
                "client_id": sandbox_app.client_id,
                "private_key_path": str(sandbox_app.private_key_path),
                "certificate_path": str(sandbox_app.certificate_path),
            },
        )
    )
    (tmp_path / "policy.toml").write_text(
        "[policy]\n"
        'identity = "Tag:TeamsMeetingsIntegration"\n'
        f'app_ids = ["{sandbox_app.client_id}"]\n'
        'description = "Teams meetings integration (pytest)"\n\n'
        f"[organizers]\nusers = {json.dumps(pilots)}\n"
    )
    profile = load_profile(config)
    store = Store.open(profile.store_url)
    graph = AsyncGraphClient(graph_settings_from_profile(profile))
    sandbox_app.scope_calendars()  # the calendar plane, as an Exchange administrator sets it up
    app = create_app(
        GatewaySettings(store_url=profile.store_url, policy_cache_seconds=0),
        meetings=graph.meetings,
        events=graph.events,
        scope=StaticPolicyScope(pilots),
        store=store,
        limiter=InMemoryLimiter(),
        on_shutdown=graph.aclose,
        webhook_resolve=None,  # the guide's example host need not resolve here
    )
    organizer, outsider = pilots[0], sandbox_app.other_users[0].upn
    runner = Runner(tmp_path, config, {"ORGANIZER": organizer, "OUTSIDER": outsider}, capsys)
    runner.namespace.update(ORGANIZER=organizer, OUTSIDER=outsider)
    with TestClient(app) as client:
        runner.gateway = client
        yield runner
    store.close()


def test_integrator_guide_runs_as_written(provisioned):
    """Every HTTP example is sent to a gateway and answered as shown; every Python example runs."""
    started = time.monotonic()
    provisioned.run_guide("integrator-guide.md")
    kinds = [line.split()[1] for line in provisioned.ran]
    assert kinds.count("python") >= 5 and sum(k in {"GET", "POST", "PATCH", "DELETE"} for k in kinds) >= 10
    print(
        "\n".join(provisioned.ran), f"\nintegrator guide: {time.monotonic() - started:.1f}s", file=sys.stderr
    )


def test_operator_guides_run_as_written(provisioned):
    """Operations and troubleshooting, one after the other on one provisioned tenant."""
    for guide in ["troubleshooting.md", "operations.md"]:
        before = len(provisioned.ran)
        provisioned.run_guide(guide)
        assert len(provisioned.ran) > before, f"{guide} has no command to run"
    print("\n".join(provisioned.ran), file=sys.stderr)


def test_every_guide_has_commands_and_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in GUIDES:
        assert any(command_lines(b.body) for b in blocks(name) if b.lang == "sh"), f"{name}: no sh commands"
        assert f"(docs/{name})" in readme, f"README.md does not link docs/{name}"


def test_troubleshooting_names_every_error_class_and_aadsts_code():
    import inspect

    from meetgate.graph import errors

    text = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    classes = [
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == errors.__name__
    ]
    assert len(classes) >= 19
    missing = [name for name in classes if f"`{name}`" not in text]
    assert not missing, f"error classes missing from docs/troubleshooting.md: {missing}"
    for heading in [
        "AADSTS700027",
        "AADSTS700016",
        "AADSTS90002",
        "AADSTS7000215",
        "InvalidAuthenticationToken",
        "TooManyRequests",
        "Authorization_RequestDenied",
        "No application access policy found for this app",
    ]:
        headings = [line for line in text.splitlines() if line.startswith("## ")]
        assert any(heading in line for line in headings), f"no troubleshooting section for {heading}"


def test_the_harness_catches_a_wrong_example():
    """The comparisons above can fail: a documented value or key that the answer lacks is an error."""
    compare({"id": "mtg_…", "state": "active"}, {"id": "mtg_1", "state": "active", "x": 1}, "ok")
    with pytest.raises(AssertionError):
        compare({"state": "cancelled"}, {"state": "active"}, "wrong value")
    with pytest.raises(AssertionError):
        compare({"id": "mtg_…"}, {"id": "xyz"}, "wrong prefix")
    with pytest.raises(AssertionError):
        compare({"gone": 1}, {"id": "mtg_1"}, "missing key")
    with pytest.raises(AssertionError, match=r"\$NOPE"):
        substitute("meetgate meetings get $NOPE", {}, "unknown variable")
    assert command_lines("meetgate policy plan \\\n  --out plan.json  # review\nexport X=1\n") == [
        "meetgate policy plan --out plan.json  # review"
    ]


@pytest.mark.parametrize("guide", GUIDES)
def test_config_examples_in_the_guides_parse(guide):
    """TOML examples are valid TOML (and profiles load); YAML examples (alert rules) are valid YAML."""
    import tomllib

    import yaml

    for number, block in enumerate(blocks(guide), 1):
        where = f"{guide}, block {number}"
        if block.lang == "toml":
            data = tomllib.loads(block.body)
            for name, values in data.get("profiles", {}).items():
                assert set(values) <= set(SETTING_KEYS), f"{where}: unknown settings in profile {name}"
        elif block.lang == "yaml":
            rules = yaml.safe_load(block.body)
            for group in rules["groups"]:
                assert all("alert" in rule and "expr" in rule for rule in group["rules"]), where
