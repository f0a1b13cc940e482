"""`meetgate policy …` in-process, with `--pwsh` running the real stand-in (in a subprocess) over a
file-backed fake tenant — the CLI, the powershell backend and the stand-in together, no server."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from pwsh_control_fake import TENANT, InMemoryControl
from typer.testing import CliRunner

from meetgate.certificates import certificate_pem, generate_self_signed, private_key_pem, x5t_s256
from meetgate.cli.main import app

APP = "11111111-2222-3333-4444-555555555555"
OTHER_APP = "99999999-8888-7777-6666-555555555555"
HERE = Path(__file__).parent


class Env:
    def __init__(self, tmp_path: Path, users: int = 6) -> None:
        self.tmp = tmp_path
        pair = generate_self_signed("test")
        (tmp_path / "app.key.pem").write_bytes(private_key_pem(pair.private_key))
        (tmp_path / "app.pem").write_bytes(certificate_pem(pair.certificate))
        self.users = InMemoryControl(users=users).users
        self.state_file = tmp_path / "tenant.json"
        self.save(
            {
                "users": self.users,
                "policies": {},
                "direct": {},
                "global": None,
                "thumbprint": x5t_s256(pair.certificate),
            }
        )
        (tmp_path / "meetgate.toml").write_text(
            f'[profiles.default]\ntenant_id = "{TENANT}"\nclient_id = "{APP}"\n'
            'private_key_path = "app.key.pem"\ncertificate_path = "app.pem"\n'
        )
        self.pwsh = shlex.join([sys.executable, str(HERE / "pwsh_fake_tenant.py"), str(self.state_file)])

    def save(self, data: dict) -> None:
        self.state_file.write_text(json.dumps(data))

    def tenant(self) -> dict:
        return json.loads(self.state_file.read_text())

    def policy_file(self, upns: list[str], app_ids=(APP,)) -> Path:
        path = self.tmp / "policy.toml"
        path.write_text(
            '[policy]\nidentity = "Tag:TeamsMeetingsIntegration"\n'
            f'app_ids = {json.dumps(list(app_ids))}\ndescription = "approved organizers"\n'
            f"[organizers]\nusers = {json.dumps(upns)}\n"
        )
        return path

    def run(self, *args: str):
        return CliRunner().invoke(
            app,
            ["--config", str(self.tmp / "meetgate.toml"), "policy", *args, "--pwsh", self.pwsh]
            if args[0] != "script"
            else ["--config", str(self.tmp / "meetgate.toml"), "policy", *args],
            catch_exceptions=False,
        )


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_plan_apply_converge_status_and_drift(env: Env):
    file = env.policy_file(["user0@contoso.test", "user1@contoso.test"])
    state = str(env.tmp / "state")
    plan = env.run("plan", "--file", str(file), "--state-dir", state, "--json")
    assert plan.exit_code == 0, plan.output
    data = json.loads(plan.output)
    assert data["policy"]["action"] == "create"
    assert [g["upn"] for g in data["grant"]] == ["user0@contoso.test", "user1@contoso.test"]
    applied = env.run("apply", "--file", str(file), "--state-dir", state, "--no-progress")
    assert applied.exit_code == 0, applied.output
    assert "policy created; granted 2, revoked 0, failed 0" in applied.output
    assert "applying" not in applied.output  # no progress bar
    tenant = env.tenant()
    assert tenant["policies"]["teamsmeetingsintegration"]["appIds"] == [APP]
    assert sorted(tenant["direct"]) == sorted(u["id"] for u in env.users[:2])
    assert env.run("drift", "--file", str(file), "--state-dir", state).exit_code == 0
    status = env.run("status", "--file", str(file), "--json")
    assert [d["upn"] for d in json.loads(status.output)["direct"]] == [
        "user0@contoso.test",
        "user1@contoso.test",
    ]
    # someone granted it by hand to user5: drift names the revoke
    tenant["direct"][env.users[5]["id"]] = "TeamsMeetingsIntegration"
    env.save(tenant)
    drift = env.run("drift", "--file", str(file), "--state-dir", state, "--json")
    assert drift.exit_code == 1
    assert [r["upn"] for r in json.loads(drift.output)["revoke"]] == ["user5@contoso.test"]


def test_apply_refuses_unreviewed_warnings_and_accepts_acknowledged(env: Env):
    tenant = env.tenant()
    tenant["policies"]["crm"] = {"identity": "Tag:Crm", "appIds": [OTHER_APP], "description": ""}
    tenant["direct"][env.users[2]["id"]] = "Crm"
    env.save(tenant)
    file = env.policy_file(["user2@contoso.test", "nobody@contoso.test"])
    state = str(env.tmp / "state")
    plan = env.run("plan", "--file", str(file), "--state-dir", state)
    assert "warning other-policy" in plan.output and "warning unknown-users" in plan.output
    assert OTHER_APP in plan.output  # the merge offer
    refused = env.run("apply", "--file", str(file), "--state-dir", state)
    assert refused.exit_code == 2
    assert "--acknowledge other-policy --acknowledge unknown-users" in " ".join(refused.output.split())
    assert env.tenant()["direct"][env.users[2]["id"]] == "Crm"  # nothing changed
    # merging the app ids removes the other-policy warning; the unknown user is acknowledged
    merged = env.policy_file(["user2@contoso.test", "nobody@contoso.test"], app_ids=(APP, OTHER_APP))
    done = env.run("apply", "--file", str(merged), "--state-dir", state, "--acknowledge", "unknown-users")
    assert done.exit_code == 0, done.output
    assert env.tenant()["direct"][env.users[2]["id"]] == "TeamsMeetingsIntegration"


def test_saved_plan_is_applied_as_reviewed(env: Env):
    file = env.policy_file(["user3@contoso.test"])
    state = str(env.tmp / "state")
    saved = env.tmp / "plan.json"
    assert env.run("plan", "--file", str(file), "--state-dir", state, "--out", str(saved)).exit_code == 0
    edited = json.loads(saved.read_text())
    edited["grant"].append({"id": env.users[4]["id"], "upn": "user4@contoso.test"})
    (env.tmp / "edited.json").write_text(json.dumps(edited))
    bad = env.run("apply", "--file", str(file), "--state-dir", state, "--plan", str(env.tmp / "edited.json"))
    assert bad.exit_code == 2 and "edited after it was made" in bad.output
    ok = env.run("apply", "--file", str(file), "--state-dir", state, "--plan", str(saved))
    assert ok.exit_code == 0, ok.output
    assert list(env.tenant()["direct"]) == [env.users[3]["id"]]


def test_an_old_saved_plan_is_refused_not_replayed(env: Env):
    file = env.policy_file(["user3@contoso.test"])
    state = str(env.tmp / "state")
    saved = env.tmp / "plan.json"
    assert env.run("plan", "--file", str(file), "--state-dir", state, "--out", str(saved)).exit_code == 0
    assert env.run("apply", "--file", str(file), "--state-dir", state, "--plan", str(saved)).exit_code == 0
    # later: user3 is revoked by a newer plan, then somebody applies the old plan file again
    tenant = env.tenant()
    tenant["direct"] = {}
    env.save(tenant)
    again = env.run("apply", "--file", str(file), "--state-dir", state, "--plan", str(saved))
    assert again.exit_code == 2
    text = " ".join(again.output.split())
    assert "is stale" in text and "meetgate policy plan --out plan.json" in text
    assert env.tenant()["direct"] == {}
    # a plan the tenant changed under (by hand) is refused too
    fresh = env.tmp / "fresh.json"
    assert env.run("plan", "--file", str(file), "--state-dir", state, "--out", str(fresh)).exit_code == 0
    tenant["direct"] = {env.users[3]["id"]: "TeamsMeetingsIntegration"}
    env.save(tenant)
    changed = env.run("apply", "--file", str(file), "--state-dir", state, "--plan", str(fresh))
    assert changed.exit_code == 2
    assert "user3@contoso.test held nothing, holds TeamsMeetingsIntegration (direct) now" in " ".join(
        changed.output.split()
    )


def test_status_says_what_the_tenant_wide_grant_holds(env: Env):
    file = env.policy_file(["user0@contoso.test"])
    assert env.run("apply", "--file", str(file), "--state-dir", str(env.tmp / "state")).exit_code == 0
    status = env.run("status", "--file", str(file))
    assert "no tenant-wide (Global) grant" in " ".join(status.output.split())
    tenant = env.tenant()
    tenant["global"] = "TeamsMeetingsIntegration"  # Grant-CsApplicationAccessPolicy -Global
    env.save(tenant)
    status = env.run("status", "--file", str(file))
    text = " ".join(status.output.split())
    assert "Global: Global" not in text
    assert f"the tenant-wide (Global) instance lists app(s) {APP}" in text, text
    assert json.loads(env.run("status", "--file", str(file), "--json").output)["global"] == "Global"


def test_wrong_certificate_fails_connect_clearly(env: Env):
    tenant = env.tenant()
    tenant["thumbprint"] = "another-certificate"
    env.save(tenant)
    result = env.run(
        "plan", "--file", str(env.policy_file(["user0@contoso.test"])), "--state-dir", str(env.tmp / "s")
    )
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "AADSTS700027" in text and "Teams Administrator" in text


def test_script_command_writes_a_script_the_stand_in_runs(env: Env):
    ids = [u["id"] for u in env.users[:3]]
    file = env.policy_file(ids)
    out = env.tmp / "policy.ps1"
    result = env.run("script", "--file", str(file), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.output)
    assert written["script"] == str(out) and written["grants"] == 3 and written["revokes"] == 0
    text = out.read_text()
    assert "Start-Transcript" in text and f"-TenantId '{TENANT}'" in text
    from pwsh_fake_tenant import run as run_pwsh

    code = run_pwsh([str(env.state_file), "-File", str(out), "-TranscriptPath", str(env.tmp / "t.log")])
    assert code == 0
    assert sorted(env.tenant()["direct"]) == sorted(ids)


def test_missing_policy_file_is_a_clear_error(env: Env):
    result = env.run("plan", "--file", str(env.tmp / "nope.toml"))
    assert result.exit_code == 2
    assert "nope.toml does not exist" in " ".join(result.output.split())


def _held_by(env: Env, count: int) -> None:
    """The policy exists and users 0..count-1 hold it directly (a tenant in production)."""
    tenant = env.tenant()
    tenant["policies"]["teamsmeetingsintegration"] = {
        "identity": "Tag:TeamsMeetingsIntegration",
        "appIds": [APP],
        "description": "approved organizers",
    }
    tenant["direct"] = {u["id"]: "TeamsMeetingsIntegration" for u in env.users[:count]}
    env.save(tenant)


def _csv_policy(env: Env, rows: list[str], delimiter: str) -> Path:
    members = env.tmp / "members.csv"
    lines = [f"userPrincipalName{delimiter}displayName"] + [f"{r}{delimiter}Name, {r}" for r in rows]
    members.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")  # Excel: CSV UTF-8, BOM
    path = env.tmp / "policy.toml"
    path.write_text(
        '[policy]\nidentity = "Tag:TeamsMeetingsIntegration"\n'
        f'app_ids = ["{APP}"]\ndescription = "approved organizers"\n[organizers]\ncsv = ["members.csv"]\n'
    )
    return path


def test_a_semicolon_members_file_keeps_every_holder(env: Env):
    """Issue 14 item 4: Excel's semicolon CSV was read as one column, every row became an unknown
    user and the plan revoked every current holder. It reads exactly like the comma file now."""
    _held_by(env, 5)
    upns = [f"user{i}@contoso.test" for i in range(5)]
    plans = {}
    for delimiter in (",", ";"):
        file = _csv_policy(env, upns, delimiter)
        result = env.run("plan", "--file", str(file), "--state-dir", str(env.tmp / "state"), "--json")
        assert result.exit_code == 0, result.output
        plans[delimiter] = json.loads(result.output)
    semicolon = plans[";"]
    assert semicolon["revoke"] == [] and semicolon["grant"] == [] and semicolon["warnings"] == []
    assert sorted(k["upn"] for k in semicolon["keep"]) == upns
    assert {k: v for k, v in semicolon.items() if k not in {"createdAt"}} == {
        k: v for k, v in plans[","].items() if k not in {"createdAt"}
    }


def test_a_mass_revoke_is_blocked_until_acknowledged_by_name(env: Env):
    _held_by(env, 5)
    state = str(env.tmp / "state")
    # the file now approves one of the five holders (and names one nobody knows): four revokes
    file = _csv_policy(env, ["user0@contoso.test", "ghost@contoso.test"], ";")
    plan = env.run("plan", "--file", str(file), "--state-dir", state)
    shown = " ".join(plan.output.split())
    assert "warning mass-revoke" in shown and "4 of its 5 current holder(s)" in shown, shown
    for shortcut in (["--yes"], ["-a", "unknown-users", "--yes"], ["-a", "unknown-users"]):
        refused = env.run("apply", "--file", str(file), "--state-dir", state, *shortcut)
        assert refused.exit_code == 2, (shortcut, refused.output)
        text = " ".join(refused.output.split())
        assert "mass-revoke" in text and "--yes does not cover it" in text
        assert len(env.tenant()["direct"]) == 5  # nothing changed
    # a saved plan carries the warning: `apply --plan` asks for it as well
    saved = env.tmp / "plan.json"
    assert env.run("plan", "--file", str(file), "--state-dir", state, "--out", str(saved)).exit_code == 0
    refused = env.run("apply", "--file", str(file), "--state-dir", state, "--plan", str(saved), "--yes")
    assert refused.exit_code == 2 and len(env.tenant()["direct"]) == 5
    done = env.run(
        "apply", "--file", str(file), "--state-dir", state, "--plan", str(saved),
        "-a", "mass-revoke", "-a", "unknown-users",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert list(env.tenant()["direct"]) == [env.users[0]["id"]]


def test_the_mass_revoke_share_is_configurable(env: Env):
    _held_by(env, 5)
    state = str(env.tmp / "state")
    file = env.policy_file([f"user{i}@contoso.test" for i in range(3)])  # revokes 2 of 5: 40 %

    def codes(*extra: str) -> set[str]:
        result = env.run("plan", "--file", str(file), "--state-dir", state, "--json", *extra)
        assert result.exit_code == 0, result.output
        return {w["code"] for w in json.loads(result.output)["warnings"]}

    assert codes() == {"mass-revoke"}  # default: more than 20 %
    assert codes("--mass-revoke-percent", "50") == set()
    file.write_text(file.read_text() + "[warnings]\nmass_revoke_percent = 50\n")
    assert codes() == set()
    assert codes("--mass-revoke-percent", "30") == {"mass-revoke"}  # the option wins over the file
    applied = env.run("apply", "--file", str(file), "--state-dir", state, "--yes")
    assert applied.exit_code == 0, applied.output
    assert len(env.tenant()["direct"]) == 3
