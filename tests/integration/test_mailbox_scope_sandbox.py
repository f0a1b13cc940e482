"""`meetgate mailbox-scope` driven in-process against the sandbox, Exchange Online PowerShell through
the pwsh stand-in (a real subprocess): apply → verify, drift after an assignment is removed, an
out-of-scope organizer refused, the union rule, and the admin script run twice."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetgate.cli.main import app as cli

STANDIN = f"{sys.executable} -m meetgate_sandbox.pwsh"


def _exchange(app) -> str:
    return f"/tenants/{app.tenant_id}/exchange"


@pytest.fixture
def setup(sandbox, sandbox_app, tmp_path, monkeypatch):
    """meetgate.toml + a policy file with [mailbox_scope]; the app may use Exchange PowerShell app-only."""
    info = sandbox.info
    env = {
        "MEETGATE_SANDBOX_CONTROL_URL": info.control_url,
        "MEETGATE_SANDBOX_CA_BUNDLE": str(info.ca_bundle),
        "MEETGATE_SANDBOX_AUTHORITY_URL": info.authority_url,
        "MEETGATE_PWSH": STANDIN,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("MEETGATE_CLIENT_SECRET", "MEETGATE_PROFILE", "MEETGATE_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    domain = sandbox_app.control.tenant(sandbox_app.tenant_id)["domain"]
    sandbox_app.control.request(
        "PUT",
        f"{_exchange(sandbox_app)}/app-only-access/{sandbox_app.client_id}",
        json={"manageAsApp": True, "exchangeAdministrator": True},
    )
    policy = tmp_path / "policy.toml"
    users = ", ".join(f'"{u.upn}"' for u in sandbox_app.pilot_users)
    policy.write_text(
        f'[policy]\nidentity = "Tag:TeamsMeetingsIntegration"\napp_ids = ["{sandbox_app.client_id}"]\n'
        f"[organizers]\nusers = [{users}]\n"
        f'[mailbox_scope]\noutside = ["{sandbox_app.other_users[0].upn}"]\n'
    )
    config = tmp_path / "meetgate.toml"
    config.write_text(
        'default_profile = "sandbox"\n[profiles.sandbox]\n'
        f'tenant_id = "{sandbox_app.tenant_id}"\nclient_id = "{sandbox_app.client_id}"\n'
        f'private_key_path = "{sandbox_app.private_key_path}"\ncertificate_path = "{sandbox_app.certificate_path}"\n'
        f'authority_url = "{sandbox_app.authority_url}"\ngraph_url = "{sandbox_app.graph_url}"\n'
        f'ca_bundle = "{sandbox_app.ca_bundle}"\npolicy_file = "{policy}"\n'
        f'service_principal_id = "{sandbox_app.service_principal_id}"\nexchange_organization = "{domain}"\n'
        f'store_url = "sqlite:///{tmp_path / "meetgate.db"}"\n'
    )
    return config, sandbox_app, tmp_path, policy, env


def invoke(config: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def _json(result) -> dict:
    return json.loads(result.stdout)


def test_apply_then_verify_passes_and_nothing_is_left_to_do(setup):
    config, app, _, _, _ = setup
    planned = invoke(config, "mailbox-scope", "plan", "--json")
    assert planned.exit_code == 0, planned.output
    plan = _json(planned)
    assert [s["action"] for s in plan["steps"]] == [
        "new-service-principal",
        "tag",
        "tag",
        "new-scope",
        "new-assignment",
    ]
    assert plan["recipientFilter"] == "CustomAttribute10 -eq 'meetgate-organizer'" and not plan["warnings"]
    applied = invoke(config, "mailbox-scope", "apply", "--json")
    assert applied.exit_code == 0, applied.output
    assert _json(applied)["ok"] and _json(applied)["done"] == 5
    [assignment] = app.control.request("GET", f"{_exchange(app)}/role-assignments")["value"]
    assert assignment["role"] == "Application Calendars.ReadWrite"
    assert assignment["scope"] == "meetgate approved organizers"
    verified = invoke(config, "mailbox-scope", "verify", "--json")
    assert verified.exit_code == 0, verified.output
    checks = {c["name"]: c for c in _json(verified)["checks"]}
    assert {name: c["status"] for name, c in checks.items()} == {
        "authorization": "pass",
        "entra_grant": "pass",
        "events": "pass",
    }
    # the negative sample is refused by Graph, not just by the cmdlet
    assert checks["events"]["evidence"]["negative"] == "denied"
    assert checks["authorization"]["evidence"]["outside_tested"] == [app.other_users[0].upn]
    assert _json(invoke(config, "mailbox-scope", "plan", "--json"))["changes"] == 0
    assert invoke(config, "mailbox-scope", "drift").exit_code == 0
    status = invoke(config, "mailbox-scope", "status", "--json")
    assert status.exit_code == 0 and _json(status)["inSync"] and _json(status)["tagged"] == 2


def test_drift_after_someone_removes_the_assignment(setup):
    config, app, _, _, _ = setup
    assert invoke(config, "mailbox-scope", "apply", "--json").exit_code == 0
    [assignment] = app.control.request("GET", f"{_exchange(app)}/role-assignments")["value"]
    app.control.request("DELETE", f"{_exchange(app)}/role-assignments/{assignment['name']}")
    drift = invoke(config, "mailbox-scope", "drift", "--json")
    assert drift.exit_code == 1
    assert [s["action"] for s in _json(drift)["steps"]] == ["new-assignment"]
    verified = invoke(config, "mailbox-scope", "verify", "--json", "--no-events")
    assert verified.exit_code == 1
    [auth] = [c for c in _json(verified)["checks"] if c["name"] == "authorization"]
    assert auth["status"] == "fail" and len(auth["evidence"]["not_in_scope"]) == 2
    # apply repairs it
    assert invoke(config, "mailbox-scope", "apply").exit_code == 0
    assert invoke(config, "mailbox-scope", "drift").exit_code == 0


def test_an_out_of_scope_organizer_is_refused(setup):
    from meetgate.composition import graph_settings_from_profile
    from meetgate.graph.client import GraphClient
    from meetgate.graph.errors import MailboxAccessDenied
    from meetgate.graph.models import MeetingRequest

    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    request = MeetingRequest(
        placement="calendar", subject="Interview", start=start, end=start + dt.timedelta(hours=1)
    )
    config, app, _, _, _ = setup
    assert invoke(config, "mailbox-scope", "apply").exit_code == 0
    with GraphClient(graph_settings_from_profile(app.profile(), environ={})) as graph:
        made = graph.events.create(app.pilot_users[1].upn, request)
        graph.events.delete(app.pilot_users[1].upn, made.id)
        with pytest.raises(MailboxAccessDenied):
            graph.events.create(app.other_users[1].upn, request)


def test_a_tenant_wide_entra_grant_is_refused_by_apply_and_reported_by_drift(setup):
    config, app, _, _, _ = setup
    assert invoke(config, "mailbox-scope", "apply").exit_code == 0
    app.control.update_app(app.tenant_id, app.client_id, roles=["Calendars.ReadWrite"])
    refused = invoke(config, "mailbox-scope", "apply")
    assert refused.exit_code == 1 and "Calendars.ReadWrite" in refused.output
    drift = invoke(config, "mailbox-scope", "drift", "--json")
    assert drift.exit_code == 1 and _json(drift)["entraCalendarRoles"] == ["Calendars.ReadWrite"]
    verified = invoke(config, "mailbox-scope", "verify", "--json")
    entra = next(c for c in _json(verified)["checks"] if c["name"] == "entra_grant")
    assert verified.exit_code == 1 and entra["status"] == "fail"


def test_the_script_applies_once_and_changes_nothing_the_second_time(setup):
    config, app, tmp, _, env = setup
    script = tmp / "scope.ps1"
    written = invoke(config, "mailbox-scope", "script", "--out", str(script), "--json")
    assert written.exit_code == 0, written.output
    text = script.read_text()
    assert "Connect-ExchangeOnline" in text and "Start-Transcript" in text
    assert (
        "New-ManagementRoleAssignment -Name 'meetgate Calendars.ReadWrite meetgate approved organizers'"
        in text
    )
    assert f"-App '{app.service_principal_id}' -Role 'Application Calendars.ReadWrite'" in text
    assert "Test-ServicePrincipalAuthorization" in text and "-Confirm:$false" not in text  # nothing to remove
    command = [
        sys.executable,
        "-m",
        "meetgate_sandbox.pwsh",
        "-NoProfile",
        "-NonInteractive",
        "-File",
        str(script),
        "-TranscriptPath",
        str(tmp / "transcript.log"),
    ]
    first = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("done: ") == 5 and first.stdout.count("ok: ") == 3
    second = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("done: new-") == 0
    assert _json(invoke(config, "mailbox-scope", "plan", "--json"))["changes"] == 0


def test_a_group_scope_warns_that_nested_members_are_out_of_scope(setup):
    config, app, _, policy, _ = setup
    groups = app.control.tenant(app.tenant_id)["groups"]
    # the seeded "Meeting Organizers" holds users and, nested, "Sales and Marketing"
    nested = next(g for g in groups if g["displayName"] == "Meeting Organizers")
    text = policy.read_text().replace("[mailbox_scope]\n", f'[mailbox_scope]\ngroup = "{nested["id"]}"\n')
    policy.write_text(text)
    refused = invoke(config, "mailbox-scope", "plan")
    assert refused.exit_code == 1 and "Graph refused to list members" in refused.output
    app.control.update_app(app.tenant_id, app.client_id, roles=["GroupMember.Read.All"])
    planned = invoke(config, "mailbox-scope", "plan", "--json")
    assert planned.exit_code == 0, planned.output
    plan = _json(planned)
    assert plan["mode"] == "group" and plan["recipientFilter"].startswith("MemberOfGroup -eq 'CN=")
    [warning] = [w for w in plan["warnings"] if w["code"] == "nested-members"]
    assert warning["sample"] and plan["inScope"] < plan["approved"]


def test_validate_fails_and_golive_says_no_go_when_an_entra_calendar_grant_voids_the_scope(setup):
    config, app, _, _, _ = setup
    app.control.update_app(app.tenant_id, app.client_id, roles=["Calendars.ReadWrite"])
    validated = invoke(
        config,
        "validate",
        "--json",
        "--only",
        "configuration",
        "--only",
        "certificate",
        "--only",
        "token",
        "--only",
        "permissions",
    )
    assert validated.exit_code == 1, validated.output
    permissions = next(c for c in _json(validated)["checks"] if c["name"] == "permissions")
    assert permissions["status"] == "fail" and "Calendars.ReadWrite" in permissions["finding"]
    assert permissions["evidence"]["entra_calendar_roles"] == ["Calendars.ReadWrite"]
    golive = invoke(config, "golive", "--json", "--backend", "graph")
    report = _json(golive)
    assert golive.exit_code == 1 and report["verdict"] == "NO-GO"
    item = next(i for i in report["items"] if i["name"] == "calendar_scope")
    assert item["status"] == "fail" and "Calendars.ReadWrite" in item["finding"]


def test_setup_app_refuses_a_tenant_wide_calendar_grant_when_placement_is_scoped(setup):
    config, _, _, _, _ = setup
    refused = invoke(config, "setup", "app", "--calendar", "tenant-wide", "--plan")
    assert refused.exit_code == 2 and "add up" in refused.output


def test_an_organizer_who_leaves_the_list_is_untagged_and_out_of_scope(setup):
    config, app, _, policy, _ = setup
    assert invoke(config, "mailbox-scope", "apply").exit_code == 0
    stays, leaves = app.pilot_users
    policy.write_text(
        policy.read_text().replace("[mailbox_scope]\n", f'[mailbox_scope]\nusers = ["{stays.upn}"]\n')
    )
    plan = _json(invoke(config, "mailbox-scope", "plan", "--json"))
    assert [(s["action"], s["target"]) for s in plan["steps"]] == [("untag", leaves.upn)]
    assert plan["organizersFrom"] == "own"
    assert invoke(config, "mailbox-scope", "apply").exit_code == 0
    assert _json(invoke(config, "mailbox-scope", "status", "--json"))["tagged"] == 1
    verified = invoke(config, "mailbox-scope", "verify", "--json", "--no-events", "--outside", leaves.upn)
    assert verified.exit_code == 0, verified.output


def test_an_administrative_unit_scope_applies_verifies_and_warns_about_organizers_outside_it(setup):
    config, app, _, policy, _ = setup
    first, second = app.pilot_users
    units = f"/tenants/{app.tenant_id}/administrative-units"
    unit = app.control.request(
        "POST", units, json={"displayName": "Calendar pilot", "members": [first.upn, second.upn]}
    )
    policy.write_text(
        policy.read_text().replace(
            "[mailbox_scope]\n", f'[mailbox_scope]\nadministrative_unit = "{unit["id"]}"\n'
        )
    )
    refused = invoke(config, "mailbox-scope", "plan")
    assert refused.exit_code == 1 and "AdministrativeUnit.Read.All" in refused.output
    app.control.update_app(app.tenant_id, app.client_id, roles=["AdministrativeUnit.Read.All"])
    plan = _json(invoke(config, "mailbox-scope", "plan", "--json"))
    assert plan["mode"] == "administrative_unit" and plan["administrativeUnit"] == unit["id"]
    assert [s["action"] for s in plan["steps"]] == ["new-service-principal", "new-assignment"]
    assert plan["steps"][-1]["params"]["RecipientAdministrativeUnitScope"] == unit["id"]
    assert not plan["warnings"]
    applied = invoke(config, "mailbox-scope", "apply", "--json")
    assert applied.exit_code == 0, applied.output
    [assignment] = app.control.request("GET", f"{_exchange(app)}/role-assignments")["value"]
    assert (assignment["scope_type"], assignment["scope"]) == ("AdministrativeUnit", unit["id"])
    verified = invoke(config, "mailbox-scope", "verify", "--json")
    assert verified.exit_code == 0, verified.output
    checks = {c["name"]: c["status"] for c in _json(verified)["checks"]}
    assert checks == {"authorization": "pass", "entra_grant": "pass", "events": "pass"}
    assert _json(invoke(config, "mailbox-scope", "plan", "--json"))["changes"] == 0
    status = _json(invoke(config, "mailbox-scope", "status", "--json"))
    assert status["inSync"] and status["assignment"]["scopeType"] == "AdministrativeUnit"
    # an Entra admin takes an approved organizer out of the unit: a warning, and meetgate leaves the unit alone
    app.control.request("DELETE", f"{units}/{unit['id']}/members/{second.upn}")
    plan = _json(invoke(config, "mailbox-scope", "plan", "--json"))
    assert plan["changes"] == 0
    [warning] = [w for w in plan["warnings"] if w["code"] == "organizers-outside-unit"]
    assert warning["sample"] == [second.upn]
    verified = invoke(config, "mailbox-scope", "verify", "--json", "--no-events")
    assert verified.exit_code == 0, verified.output
    [auth] = [c for c in _json(verified)["checks"] if c["name"] == "authorization"]
    assert auth["evidence"]["approved_outside_unit"] == [second.upn]
    assert app.control.request("GET", f"{units}/{unit['id']}")["memberIds"] == [first.id]


def test_the_script_scopes_by_the_administrative_unit_without_reading_exchange(setup):
    config, app, tmp, policy, env = setup
    unit = app.control.request(
        "POST",
        f"/tenants/{app.tenant_id}/administrative-units",
        json={"displayName": "Script pilot", "members": [u.upn for u in app.pilot_users]},
    )
    policy.write_text(
        policy.read_text().replace(
            "[mailbox_scope]\n", f'[mailbox_scope]\nadministrative_unit = "{unit["id"]}"\n'
        )
    )
    app.control.update_app(app.tenant_id, app.client_id, roles=["AdministrativeUnit.Read.All"])
    human = invoke(config, "mailbox-scope", "plan")
    assert human.exit_code == 0 and "administrative unit" in human.output, human.output
    script = tmp / "unit.ps1"
    written = invoke(config, "mailbox-scope", "script", "--out", str(script))
    assert written.exit_code == 0, written.output
    text = script.read_text()
    assert f"-RecipientAdministrativeUnitScope '{unit['id']}' | Out-Null" in text
    assert "New-ManagementScope" not in text and "Set-Mailbox" not in text
    command = [
        sys.executable,
        "-m",
        "meetgate_sandbox.pwsh",
        "-NoProfile",
        "-NonInteractive",
        "-File",
        str(script),
    ]
    command += ["-TranscriptPath", str(tmp / "transcript.log")]
    ran = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.count("done: ") == 2 and ran.stdout.count("ok: ") == 3
    status = invoke(config, "mailbox-scope", "status")
    assert status.exit_code == 0 and "administrative unit" in status.output
    assert _json(invoke(config, "mailbox-scope", "plan", "--json"))["changes"] == 0
