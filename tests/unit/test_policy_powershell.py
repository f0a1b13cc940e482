"""The powershell backend driving the pwsh stand-in in-process (no server): empty → desired → empty."""

from __future__ import annotations

import base64
import io
import json
import os
import time
from collections.abc import Mapping

import pytest
from pwsh_control_fake import TENANT, InMemoryControl

from meetgate.admin.policy.apply import ApplyJournal, apply_plan
from meetgate.admin.policy.model import DesiredPolicy, OrganizerSources, PolicyError
from meetgate.admin.policy.planner import build_plan, resolve_organizers
from meetgate.admin.policy.powershell import (
    PowerShellBackend,
    PwshConnection,
    PwshResult,
    SubprocessPwshRunner,
)
from meetgate_sandbox.pwsh import Interpreter

APP = "11111111-2222-3333-4444-555555555555"


def fake_jwt(claims: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")  # noqa: E731
    return f"{enc({'alg': 'none'})}.{enc(claims)}.sig"


class InProcessRunner:
    """Runs the stand-in in this process, with the environment the subprocess would get."""

    def __init__(self, control: InMemoryControl) -> None:
        self.control = control
        self.scripts: list[str] = []
        self.envs: list[Mapping[str, str]] = []

    def run(self, script: str, env: Mapping[str, str]) -> PwshResult:
        self.scripts.append(script)
        self.envs.append(env)
        out, err = io.StringIO(), io.StringIO()
        interp = Interpreter(out, err, tenant_factory=lambda: self.control)  # type: ignore[arg-type,return-value]
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            code = interp.run(script)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return PwshResult(code, out.getvalue(), err.getvalue())


def token_connection() -> PwshConnection:
    claims = {"tid": TENANT, "appid": APP, "exp": time.time() + 3600}
    return PwshConnection(TENANT, APP, tokens=lambda: (fake_jwt(claims), fake_jwt(claims)))


def converge(backend: PowerShellBackend, want: DesiredPolicy, tmp_path):
    state = backend.read_state(want.identity)
    plan = build_plan(want, resolve_organizers(want, backend), state)
    report = apply_plan(plan, backend, ApplyJournal(tmp_path, want.identity))
    return plan, report


def test_from_empty_to_desired_and_back(tmp_path):
    control = InMemoryControl(users=6)
    runner = InProcessRunner(control)
    backend = PowerShellBackend(token_connection(), runner, batch_size=2)
    upns = [f"user{i}@contoso.test" for i in (0, 2, 3)]
    want = DesiredPolicy(
        "Tag:TeamsMeetingsIntegration", (APP,), "approved", OrganizerSources(users=tuple(upns))
    )
    plan, report = converge(backend, want, tmp_path)
    assert plan.policy.action == "create" and len(plan.grants) == 3
    assert report.ok, report.to_dict()
    assert sorted(control.direct) == sorted(control.users[i]["id"] for i in (0, 2, 3))
    # grants went in sessions of at most 2 users; tokens travel in the environment, never in scripts
    grant_scripts = [s for s in runner.scripts if "$Ops" in s]
    assert len(grant_scripts) == 2
    assert all("eyJ" not in s for s in runner.scripts)
    assert all(env.get("MEETGATE_TEAMS_GRAPH_TOKEN", "").count(".") == 2 for env in runner.envs)
    # converged: nothing to do
    again = build_plan(want, resolve_organizers(want, backend), backend.read_state(want.identity))
    assert not again.has_changes
    # back to empty: nobody approved → every holder revoked
    empty = DesiredPolicy(want.identity, want.app_ids, want.description, OrganizerSources())
    plan, report = converge(backend, empty, tmp_path)
    assert len(plan.revokes) == 3 and report.ok
    assert control.direct == {}


def test_per_user_failures_are_reported_and_others_proceed(tmp_path):
    control = InMemoryControl(users=3)
    backend = PowerShellBackend(token_connection(), InProcessRunner(control), batch_size=10)
    from meetgate.admin.policy.model import PolicyDefinition
    from meetgate.admin.policy.ports import UserOp

    backend.ensure_policy(PolicyDefinition("Tag:P", (APP,), "d"))
    results = backend.apply_batch(
        "Tag:P", [UserOp(control.users[0]["id"], "", "grant"), UserOp("nobody@contoso.test", "", "grant")]
    )
    assert [r.ok for r in results] == [True, False]
    assert "not found" in (results[1].error or "")


def test_connection_failure_is_a_clear_error():
    expired = {"tid": TENANT, "appid": APP, "exp": time.time() - 10}
    conn = PwshConnection(TENANT, APP, tokens=lambda: (fake_jwt(expired), fake_jwt(expired)))
    backend = PowerShellBackend(conn, InProcessRunner(InMemoryControl()))
    with pytest.raises(PolicyError, match="expired"):
        backend.read_state("Tag:P")


def test_missing_pwsh_says_what_to_do():
    runner = SubprocessPwshRunner(("/nonexistent/pwsh",))
    with pytest.raises(PolicyError) as info:
        runner.run("'x'", {})
    assert "`meetgate policy script --out policy.ps1`" in (info.value.remedy or "")


class CrashingRunner:
    """A pwsh backend that dies the way a Python stand-in does: a traceback on stderr."""

    def __init__(self, stderr: str) -> None:
        self.stderr = stderr

    def run(self, script: str, env: Mapping[str, str]) -> PwshResult:
        return PwshResult(1, "", self.stderr)


def test_a_crashed_session_shows_its_last_error_line_and_no_role_advice():
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "pwsh.py", line 12, in <module>\n'
        "    ctx.load_verify_locations(ca)\n"
        "FileNotFoundError: [Errno 2] No such file or directory: '.meetgate/sandbox/tls/ca.pem'\n"
    )
    backend = PowerShellBackend(token_connection(), CrashingRunner(traceback))
    with pytest.raises(PolicyError) as info:
        backend.read_state("Tag:P")
    assert "FileNotFoundError: [Errno 2] No such file or directory" in str(info.value)
    assert "Traceback" not in str(info.value)
    assert "Teams Administrator" not in (info.value.remedy or "")
    assert "meetgate sandbox info" in (info.value.remedy or "")


def test_an_authorization_failure_keeps_the_role_advice():
    refused = (
        "Connect-MicrosoftTeams: Unauthorized: the app lacks the Teams Administrator role\n"
        "At line:3 char:1\n"
        "+ Connect-MicrosoftTeams -AccessTokens $Tokens\n"
        "    + CategoryInfo          : AuthenticationError\n"
    )
    backend = PowerShellBackend(token_connection(), CrashingRunner(refused))
    with pytest.raises(PolicyError) as info:
        backend.read_state("Tag:P")
    assert str(info.value).endswith("Unauthorized: the app lacks the Teams Administrator role")
    assert "Teams Administrator role" in (info.value.remedy or "")
