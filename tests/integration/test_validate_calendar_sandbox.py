"""`meetgate validate` with calendar placement scoped ([mailbox_scope] in the policy file), driven
in-process against the sandbox: the calendar positive and negative tests pass when both planes hold,
fail when a pilot is out of the mailbox scope or an outside mailbox is in it, leave no event behind,
and are absent (no calendar call at all) without the section."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from calendar_scope import EXCHANGE, scope_calendars
from typer.testing import CliRunner

from meetgate.admin.validation import CHECKS
from meetgate.cli.main import app as cli
from meetgate.composition import graph_settings_from_profile
from meetgate.graph.client import GraphClient
from meetgate.graph.errors import NotFoundError


def _write_files(app, tmp_path: Path, mailbox_scope: str | None) -> Path:
    policy = tmp_path / "policy.toml"
    users = ", ".join(f'"{u.upn}"' for u in app.pilot_users)
    text = (
        f'[policy]\nidentity = "Tag:TeamsMeetingsIntegration"\napp_ids = ["{app.client_id}"]\n'
        f"[organizers]\nusers = [{users}]\n"
    )
    if mailbox_scope is not None:
        text += f"[mailbox_scope]\n{mailbox_scope}"
    policy.write_text(text)
    config = tmp_path / "meetgate.toml"
    config.write_text(
        'default_profile = "sandbox"\n[profiles.sandbox]\n'
        f'tenant_id = "{app.tenant_id}"\nclient_id = "{app.client_id}"\n'
        f'private_key_path = "{app.private_key_path}"\ncertificate_path = "{app.certificate_path}"\n'
        f'authority_url = "{app.authority_url}"\ngraph_url = "{app.graph_url}"\n'
        f'ca_bundle = "{app.ca_bundle}"\npolicy_file = "{policy}"\n'
        f'store_url = "sqlite:///{tmp_path / "meetgate.db"}"\n'
    )
    return config


@pytest.fixture
def app(sandbox_app, monkeypatch):
    if not sandbox_app.policy_granted:
        pytest.skip("this sandbox has no meetings routes / policy engine yet")
    for key in ("MEETGATE_CLIENT_SECRET", "MEETGATE_PWSH", "MEETGATE_PROFILE", "MEETGATE_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    return sandbox_app


@pytest.fixture
def scoped(app):
    """The app's calendar access scoped to the pilots by Exchange RBAC for Applications."""
    scope_calendars(app)
    return app


def _tag(app, user_id: str, value: str) -> None:
    app.control.request(
        "PATCH",
        f"{EXCHANGE.format(tid=app.tenant_id)}/mailboxes/{user_id}",
        json={"customAttributes": {"CustomAttribute7": value}},
    )


def validate(config: Path, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["--config", str(config), "validate", "--json", *args])
    assert result.stdout.lstrip().startswith("{"), result.output
    return result.exit_code, json.loads(result.stdout)


def checks(data: dict) -> dict[str, dict]:
    return {c["name"]: c for c in data["checks"]}


def assert_gone(app, evidence: dict) -> None:
    """Every event a calendar test made is deleted (read as the scoped app where it may read)."""
    with GraphClient(graph_settings_from_profile(app.profile(), environ={})) as graph:
        for item in evidence.values():
            if item.get("event_id"):
                assert item["deleted"] is True, item
                with pytest.raises(NotFoundError):
                    graph.events.get(item["organizer"], item["event_id"])


def test_both_planes_hold_the_calendar_tests_pass_and_leave_nothing(scoped, tmp_path):
    outside = scoped.other_users[0].upn
    config = _write_files(scoped, tmp_path, f'outside = ["{outside}"]\n')
    junit = tmp_path / "validate.xml"
    code, data = validate(config, "--junit", str(junit))
    by_name = checks(data)
    assert code == 0, {n: (c["status"], c["finding"]) for n, c in by_name.items()}
    positive, negative = by_name["calendar_positive"], by_name["calendar_negative"]
    assert positive["status"] == "pass" and negative["status"] == "pass"
    organizers = positive["evidence"]["organizers"]
    assert list(organizers) == [u.upn for u in scoped.pilot_users]
    for item in organizers.values():
        assert item["created"] and item["join_url"] and item["online_meeting_id"] and item["deleted"]
    assert_gone(scoped, organizers)
    assert negative["evidence"]["from"] == "[mailbox_scope] outside"
    assert negative["evidence"]["outside"][outside]["error"] == "MailboxAccessDenied"
    names = [c["name"] for c in data["checks"]]
    assert names.index("calendar_negative") == names.index("calendar_positive") + 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == len(CHECKS) + 2


def test_a_pilot_out_of_the_mailbox_scope_fails_the_positive_test(scoped, tmp_path):
    config = _write_files(scoped, tmp_path, "")
    _tag(scoped, scoped.pilot_users[1].id, "")
    code, data = validate(config)
    assert code == 1
    by_name = checks(data)
    positive = by_name["calendar_positive"]
    assert positive["status"] == "fail", positive
    assert scoped.pilot_users[1].upn in positive["finding"] and "MailboxAccessDenied" in positive["finding"]
    assert "meetgate mailbox-scope apply" in positive["remedy"] and "2 hours" in positive["remedy"]
    # the Teams plane still holds: only the calendar plane is blamed
    assert by_name["policy_positive"]["status"] == "pass"
    assert_gone(
        scoped,
        {k: v for k, v in positive["evidence"]["organizers"].items() if k != scoped.pilot_users[1].upn},
    )
    # without an outside list, the negative test uses validate's negative user
    negative = by_name["calendar_negative"]
    assert negative["status"] == "pass" and negative["evidence"]["from"] == "the negative users"
    assert list(negative["evidence"]["outside"]) == data["negative"]


def test_an_outside_mailbox_in_the_scope_is_a_loud_failure_and_its_event_is_deleted(scoped, tmp_path):
    intruder = scoped.other_users[0]
    config = _write_files(scoped, tmp_path, f'outside = ["{intruder.upn}"]\n')
    _tag(scoped, intruder.id, "meetgate")
    code, data = validate(config)
    assert code == 1
    negative = checks(data)["calendar_negative"]
    assert negative["status"] == "fail" and negative["finding"].startswith("MAILBOX SCOPE NOT ENFORCED")
    assert intruder.upn in negative["finding"] and "deleted again" in negative["finding"]
    assert "mailbox-scope" in negative["remedy"] and "union rule" in negative["remedy"]
    assert negative["evidence"]["outside"][intruder.upn]["created"] is True
    assert_gone(scoped, negative["evidence"]["outside"])


def test_without_a_mailbox_scope_section_nothing_changes(app, tmp_path):
    config = _write_files(app, tmp_path, None)
    code, data = validate(config, "--no-keep")
    assert code == 0, [(c["name"], c["status"], c["finding"]) for c in data["checks"]]
    assert [c["name"] for c in data["checks"]] == [name for name, _ in CHECKS]
    assert not any(c["name"].startswith("calendar") for c in data["checks"])


def test_golive_counts_the_calendar_tests_once_a_scope_exists(scoped, tmp_path, sandbox, monkeypatch):
    """A validation from before the [mailbox_scope] section does not carry golive once the section is
    there: validation_recent says the calendar tests did not run; a validation with them passes it."""
    info = sandbox.info
    for key, value in {
        "MEETGATE_SANDBOX_CONTROL_URL": info.control_url,
        "MEETGATE_SANDBOX_CA_BUNDLE": str(info.ca_bundle),
        "MEETGATE_SANDBOX_AUTHORITY_URL": info.authority_url,
    }.items():
        monkeypatch.setenv(key, value)
    golive = [
        "golive",
        "--backend",
        "powershell",
        "--pwsh",
        f"{sys.executable} -m meetgate_sandbox.pwsh",
        "--json",
    ]
    config = _write_files(scoped, tmp_path, None)
    assert validate(config)[0] == 0
    config = _write_files(scoped, tmp_path, "")
    before = CliRunner().invoke(cli, ["--config", str(config), *golive])
    item = {i["name"]: i for i in json.loads(before.stdout)["items"]}["validation_recent"]
    assert (
        item["status"] == "fail" and "calendar" in item["finding"] and "did not run them" in item["finding"]
    )
    assert validate(config)[0] == 0
    after = CliRunner().invoke(cli, ["--config", str(config), *golive])
    item = {i["name"]: i for i in json.loads(after.stdout)["items"]}["validation_recent"]
    assert item["status"] == "pass" and "calendar tests passed" in item["finding"], item
