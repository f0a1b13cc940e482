"""`meetgate validate` and `meetgate golive` driven in-process against the sandbox: reports written
and parsed, results kept in the store, GO → NO-GO → GO, and `golive --start` starting hypercare."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meetgate.cli.main import app as cli

STANDIN = f"{sys.executable} -m meetgate_sandbox.pwsh"


@pytest.fixture
def setup(sandbox, sandbox_app, tmp_path, monkeypatch):
    """meetgate.toml + policy file for the sandbox app; the pwsh stand-in finds the sandbox by env."""
    info = sandbox.info
    for key, value in {
        "MEETGATE_SANDBOX_CONTROL_URL": info.control_url,
        "MEETGATE_SANDBOX_CA_BUNDLE": str(info.ca_bundle),
        "MEETGATE_SANDBOX_AUTHORITY_URL": info.authority_url,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("MEETGATE_CLIENT_SECRET", "MEETGATE_PWSH", "MEETGATE_PROFILE", "MEETGATE_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    policy = tmp_path / "policy.toml"
    users = ", ".join(f'"{u.upn}"' for u in sandbox_app.pilot_users)
    policy.write_text(
        f'[policy]\nidentity = "Tag:TeamsMeetingsIntegration"\napp_ids = ["{sandbox_app.client_id}"]\n'
        f"[organizers]\nusers = [{users}]\n"
    )
    config = tmp_path / "meetgate.toml"
    config.write_text(
        'default_profile = "sandbox"\n[profiles.sandbox]\n'
        f'tenant_id = "{sandbox_app.tenant_id}"\nclient_id = "{sandbox_app.client_id}"\n'
        f'private_key_path = "{sandbox_app.private_key_path}"\ncertificate_path = "{sandbox_app.certificate_path}"\n'
        f'authority_url = "{sandbox_app.authority_url}"\ngraph_url = "{sandbox_app.graph_url}"\n'
        f'ca_bundle = "{sandbox_app.ca_bundle}"\npolicy_file = "{policy}"\n'
        f'store_url = "sqlite:///{tmp_path / "meetgate.db"}"\n'
    )
    return config, sandbox_app, tmp_path


def invoke(config: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def test_validate_writes_junit_and_html_and_exits_by_result(setup):
    config, app, tmp = setup
    if not app.policy_granted:
        pytest.skip("this sandbox has no meetings routes / policy engine yet")
    junit, page = tmp / "out" / "validate.xml", tmp / "out" / "validate.html"
    result = invoke(config, "validate", "--json", "--junit", str(junit), "--html", str(page))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "pass", [(c["name"], c["status"], c["finding"]) for c in data["checks"]]
    # defaults from the policy file: both listed users as pilots, someone else as the negative user
    assert data["pilot"] == [u.upn for u in app.pilot_users]
    assert len(data["negative"]) == 1 and data["negative"][0] not in data["pilot"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and len(suite.findall("testcase")) == 9
    assert page.read_text().startswith("<!DOCTYPE html>")

    # break it: a pilot loses the policy → exit 1, the positive test names the grant to make
    app.control.grant_policy(app.tenant_id, None, user=app.pilot_users[0].id)
    failed = invoke(config, "validate", "--json", "--junit", str(junit))
    assert failed.exit_code == 1
    checks = {c["name"]: c for c in json.loads(failed.stdout)["checks"]}
    assert checks["policy_positive"]["status"] == "fail"
    assert "Grant-CsApplicationAccessPolicy" in checks["policy_positive"]["remedy"]
    failures = ET.parse(junit).getroot().iter("failure")
    assert [f.get("message") for f in failures] == [checks["policy_positive"]["finding"]]


def test_a_pilot_given_by_hand_is_never_also_the_default_negative_user(setup):
    """--pilot names a user the policy does not cover (the mistake validate exists to catch): the
    default negative user is someone else, and policy_positive fails with the grant to make —
    not organizer_lookup with "given both as pilot and negative", which no --negative was given for."""
    config, app, _ = setup
    if not app.policy_granted:
        pytest.skip("this sandbox has no meetings routes / policy engine yet")
    first = json.loads(invoke(config, "validate", "--json", "--no-keep").stdout)
    outsider = first["negative"][0]
    result = invoke(config, "validate", "--pilot", outsider, "--json", "--no-keep")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["pilot"] == [outsider]
    assert data["negative"] and outsider not in data["negative"]
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["organizer_lookup"]["status"] == "pass", checks["organizer_lookup"]
    assert checks["policy_positive"]["status"] == "fail"
    assert "Grant-CsApplicationAccessPolicy" in checks["policy_positive"]["remedy"]


def test_golive_go_then_no_go_then_start(setup):
    config, app, tmp = setup
    if not app.policy_granted:
        pytest.skip("this sandbox has no meetings routes / policy engine yet")
    common = ("--backend", "powershell", "--pwsh", STANDIN)
    assert invoke(config, "validate").exit_code == 0
    # no monitoring run yet → NO-GO on that item alone; one `meetgate monitor` pass fixes it
    unmonitored = invoke(config, "golive", *common, "--json")
    assert unmonitored.exit_code == 1
    unmonitored_items = {i["name"]: i for i in json.loads(unmonitored.stdout)["items"]}
    assert unmonitored_items["monitoring"]["status"] == "fail"
    assert [name for name, item in unmonitored_items.items() if item["status"] == "fail"] == ["monitoring"]
    monitored = invoke(config, "monitor", "report", "--no-collect", "--since", "1h")
    assert monitored.exit_code in (0, 1), monitored.output
    md, page = tmp / "golive.md", tmp / "golive.html"
    go = invoke(config, "golive", *common, "--json", "--markdown", str(md), "--html", str(page))
    assert go.exit_code == 0, go.output
    report = json.loads(go.stdout)
    assert report["verdict"] == "GO", report["reasons"]
    items = {i["name"]: i for i in report["items"]}
    assert items["monitoring"]["status"] == "pass"
    assert items["policy_scope"]["evidence"]["holders"] == len(app.pilot_users)
    assert "**Verdict: GO**" in md.read_text() and "GO" in page.read_text()

    # a Global grant on purpose → NO-GO naming it; revoke → GO again
    app.control.grant_policy(app.tenant_id, "TeamsMeetingsIntegration", global_=True)
    nogo = invoke(config, "golive", *common, "--start")
    assert nogo.exit_code == 1
    assert "NO-GO" in nogo.output and "Global" in nogo.output and "not recorded" in nogo.output
    app.control.grant_policy(app.tenant_id, None, global_=True)

    started = invoke(config, "golive", *common, "--start", "--json")
    assert started.exit_code == 0, started.output
    window = json.loads(started.stdout)["hypercare"]

    from meetgate.admin.records import current_hypercare
    from meetgate.store import Store
    from meetgate.store.runs import RunRepository

    store = Store.open(f"sqlite:///{tmp / 'meetgate.db'}")
    current = current_hypercare(RunRepository(store), app.client_id)
    store.close()
    assert current is not None and current.ends_at.isoformat() == window["ends_at"]


def test_validate_a_delegated_token_handed_over(setup, monkeypatch):
    config, app, _ = setup
    token = app.control.delegated_token(app.tenant_id, app.pilot_users[0].id, app.client_id, ["User.Read"])
    monkeypatch.setenv("THIRD_PARTY_TOKEN", token)
    result = invoke(config, "validate", "--access-token-env", "THIRD_PARTY_TOKEN", "--no-keep")
    assert result.exit_code == 1
    assert "DELEGATED" in result.output
    assert token not in result.output


def test_client_secrets_are_reported_from_the_registration_and_the_environment(setup, monkeypatch):
    from meetgate import certificates

    config, app, tmp = setup
    app.control.add_secret(app.tenant_id, app.client_id)
    pair = certificates.generate_self_signed()
    key, cert = tmp / "auto.key.pem", tmp / "auto.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key))
    certificates.write_public_file(cert, certificates.certificate_pem(pair.certificate))
    auto = app.control.register_app(
        app.tenant_id,
        "automation",
        certificate_pem=certificates.certificate_pem(pair.certificate),
        roles=["Application.Read.All"],
    )
    text = config.read_text()
    sandbox_section = text.split("[profiles.sandbox]\n", 1)[1]
    auto_section = sandbox_section.replace(app.client_id, auto["appId"])
    auto_section = auto_section.replace(str(app.private_key_path), str(key)).replace(
        str(app.certificate_path), str(cert)
    )
    config.write_text(text + "\n[profiles.automation]\n" + auto_section)
    monkeypatch.setenv("MEETGATE_CLIENT_SECRET", "not-a-real-secret-value")
    result = invoke(
        config,
        "validate",
        "--as-app",
        "automation",
        "--only",
        "configuration",
        "--only",
        "certificate",
        "--json",
        "--no-keep",
    )
    assert result.exit_code == 0, result.output
    check = {c["name"]: c for c in json.loads(result.stdout)["checks"]}["certificate"]
    assert check["status"] == "warn"
    assert check["evidence"]["app_client_secrets"] == 1
    assert "the app has a client secret" in check["finding"]
    assert "MEETGATE_CLIENT_SECRET" in check["finding"]
    assert "not-a-real-secret-value" not in result.output
