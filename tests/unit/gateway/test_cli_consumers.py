"""`meetgate consumers …` driven in-process, with a policy file as the scope."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from meetgate.cli.main import app
from meetgate.gateway import keys
from meetgate.store import Store


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    (tmp_path / "policy.toml").write_text(
        '[policy]\nidentity = "Tag:TeamsMeetingsIntegration"\napp_ids = ["11111111-2222-3333-4444-555555555555"]\n\n'
        '[organizers]\nusers = ["alice@contoso.test", "Bob@contoso.test"]\ncsv = ["more.csv"]\n'
    )
    (tmp_path / "more.csv").write_text("upn\ncarol@contoso.test\n")
    (tmp_path / "meetgate.toml").write_text(
        f'[profiles.default]\nstore_url = "sqlite:///{tmp_path}/gw.db"\npolicy_file = "policy.toml"\n'
    )
    for var in ("MEETGATE_STORE_URL", "MEETGATE_POLICY_FILE", "MEETGATE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def run(env, *args):
    return CliRunner().invoke(app, ["--config", str(env / "meetgate.toml"), "consumers", *args])


def test_add_list_show_revoke_rotate(cli_env):
    added = run(
        cli_env,
        "add",
        "booking",
        "--organizers",
        "alice@contoso.test,bob@contoso.test",
        "--rate",
        "60/min",
        "--daily-quota",
        "100",
        "--json",
    )
    assert added.exit_code == 0, added.output
    data = json.loads(added.output)
    key_id, secret = keys.parse(data["apiKey"])
    assert data["organizers"] == ["alice@contoso.test", "bob@contoso.test"]
    assert (data["ratePerMinute"], data["dailyQuota"]) == (60, 100)

    store = Store.open(f"sqlite:///{cli_env}/gw.db")
    record = store.consumer(name_or_id="booking")
    assert record.key_hash == keys.hash_secret(key_id, secret) and secret not in record.key_hash

    listed = run(cli_env, "list", "--json")
    assert [c["name"] for c in json.loads(listed.output)] == ["booking"]
    assert data["apiKey"] not in listed.output and record.key_hash not in listed.output
    assert "booking" in run(cli_env, "list").output
    assert "alice@contoso.test" in run(cli_env, "show", "booking").output

    revoked = run(cli_env, "revoke", "booking", "--json")
    assert json.loads(revoked.output)["status"] == "revoked"
    rotated = run(cli_env, "rotate-key", "booking")
    assert rotated.exit_code == 0 and "shown once" in rotated.output
    assert store.consumer(name_or_id="booking").active
    assert store.consumer(name_or_id="booking").key_id != key_id
    store.close()


def test_organizers_must_lie_inside_the_policy_scope(cli_env):
    result = run(
        cli_env, "add", "crm", "--organizers", "alice@contoso.test", "--organizers", "mallory@contoso.test"
    )
    assert result.exit_code == 2
    assert "mallory@contoso.test" in result.output and "outside" in result.output
    from_policy = run(cli_env, "add", "crm", "--organizers-from-policy", "--json")
    assert json.loads(from_policy.output)["organizers"] == [
        "alice@contoso.test",
        "bob@contoso.test",
        "carol@contoso.test",
    ]
    assert run(cli_env, "add", "crm", "--organizers-from-policy").exit_code == 2  # the name is taken
    assert run(cli_env, "add", "x", "--organizers", "not-an-upn").exit_code == 2
    assert run(cli_env, "add", "y", "--organizers", "alice@contoso.test", "--rate", "fast").exit_code == 2
    assert run(cli_env, "show", "nobody").exit_code == 2


@pytest.mark.parametrize("quota", ["0", "-5"])
def test_a_daily_quota_that_is_not_positive_is_refused_with_what_to_do(cli_env, quota):
    result = run(cli_env, "add", "booking", "--organizers", "alice@contoso.test", "--daily-quota", quota)
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # the console wraps long lines
    assert f"the daily quota must be positive, got {quota}" in output
    assert "what to do:" in output and "leave it out for no daily quota" in output
    assert run(cli_env, "list", "--json").output.strip() == "[]"


def test_add_and_rotate_key_take_an_expiry_date(cli_env):
    added = run(cli_env, "add", "partner", "--organizers", "alice@contoso.test", "--expires", "2099-12-31")
    assert added.exit_code == 0, added.output
    assert "the key expires on 2099-12-31 00:00 UTC" in added.output
    shown = json.loads(run(cli_env, "show", "partner", "--json").output)
    assert (shown["keyExpiresAt"], shown["status"]) == ("2099-12-31T00:00:00+00:00", "active")
    assert "2099-12-31" in run(cli_env, "list").output

    rotated = run(cli_env, "rotate-key", "partner", "--expires", "2099-06-30T12:00:00+02:00", "--json")
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.output)["keyExpiresAt"] == "2099-06-30T10:00:00+00:00"
    plain = run(cli_env, "rotate-key", "partner")
    assert plain.exit_code == 0 and "the key does not expire" in plain.output


def test_a_bad_or_past_expiry_is_a_usage_error_naming_the_option(cli_env):
    for value, says in (
        ("31/12/2099", "is not a date"),
        ("2099-12-31T10:00", "no time zone"),
        ("2001-01-01", "is not in the future"),
    ):
        result = run(cli_env, "add", "partner", "--organizers", "alice@contoso.test", "--expires", value)
        assert result.exit_code == 2, result.output
        assert "--expires" in result.output and says in result.output and "what to do" in result.output
        assert "Traceback" not in result.output
    assert run(cli_env, "add", "partner", "--organizers", "alice@contoso.test").exit_code == 0
    past = run(cli_env, "rotate-key", "partner", "--expires", "2001-01-01")
    assert past.exit_code == 2 and "is not in the future" in past.output


def test_webhook_add_list_test_rotate_remove(cli_env):
    with (cli_env / "meetgate.toml").open("a") as fh:
        fh.write("gateway_webhook_allow_local_http = true\n")
    assert run(cli_env, "add", "booking", "--organizers", "alice@contoso.test").exit_code == 0
    refused = run(
        cli_env, "webhook", "add", "booking", "https://10.0.0.1/hook", "--events", "meeting.updated"
    )
    assert refused.exit_code != 0 and "private" in refused.output
    added = run(
        cli_env,
        "webhook",
        "add",
        "booking",
        "http://127.0.0.1:9/hook",
        "--events",
        "meeting.updated,meeting.ended",
        "--json",
    )
    assert added.exit_code == 0, added.output
    endpoint = json.loads(added.output)
    assert endpoint["secret"].startswith("whsec_") and endpoint["events"] == [
        "meeting.ended",
        "meeting.updated",
    ]
    listed = json.loads(run(cli_env, "webhook", "list", "booking", "--json").output)
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]
    tested = run(cli_env, "webhook", "test", "booking", endpoint["id"], "--json")
    assert tested.exit_code == 0 and json.loads(tested.output)["eventId"].startswith("evt_")
    rotated = json.loads(run(cli_env, "webhook", "rotate-secret", "booking", endpoint["id"], "--json").output)
    assert rotated["secret"] != endpoint["secret"] and rotated["previous_secret_valid_until"]
    assert endpoint["secret"] not in (cli_env / "gw.db").read_bytes().decode("latin-1")
    assert run(cli_env, "webhook", "remove", "booking", endpoint["id"]).exit_code == 0
    assert json.loads(run(cli_env, "webhook", "list", "booking", "--json").output) == []
    assert (cli_env / "webhook.key").stat().st_mode & 0o777 == 0o600
