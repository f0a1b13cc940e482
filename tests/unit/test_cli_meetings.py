"""`meetgate meetings` input checks that fail before any network call (operations are covered by the
integration tests against the sandbox)."""

from typer.testing import CliRunner

from meetgate.cli.main import app
from meetgate.graph import credentials as credentials_module

runner = CliRunner()


def _env(tmp_path):
    """A settings file with no profile in it (a missing file is refused before the profile is read)."""
    (tmp_path / "none.toml").touch()
    return {"MEETGATE_CONFIG": str(tmp_path / "none.toml"), "MEETGATE_CLIENT_SECRET": ""}


def test_meetings_help_lists_every_command():
    result = runner.invoke(app, ["meetings", "--help"])
    assert result.exit_code == 0
    for command in ("create", "get", "find", "update", "cancel", "ics", "attendance"):
        assert command in result.output


def test_times_need_a_timezone(tmp_path):
    result = runner.invoke(
        app,
        ["meetings", "create", "-o", "a@b.c", "--start", "2030-06-11T10:00", "--end", "2030-06-11T11:00Z"],
        env=_env(tmp_path),
    )
    assert result.exit_code == 2
    assert "no timezone" in result.output


def test_bad_time_and_bad_attendee(tmp_path):
    result = runner.invoke(
        app, ["meetings", "create", "-o", "a@b.c", "--start", "tomorrow"], env=_env(tmp_path)
    )
    assert result.exit_code == 2 and "ISO 8601" in result.output
    result = runner.invoke(app, ["meetings", "create", "-o", "a@b.c", "-a", "bob"], env=_env(tmp_path))
    assert result.exit_code == 2 and "name@domain" in result.output


def test_update_rules_are_checked_before_connecting(tmp_path):
    result = runner.invoke(
        app, ["meetings", "update", "m1", "-o", "a@b.c", "--end", "2030-06-11T11:00Z"], env=_env(tmp_path)
    )
    assert result.exit_code == 2 and "--end needs --start" in result.output


def test_meeting_rules_are_checked_before_connecting(tmp_path):
    """The library's rules, before the profile is read: the gateway refuses these too."""
    create = ["meetings", "create", "-o", "a@b.c"]
    result = runner.invoke(app, [*create, "--subject", "x" * 100_000], env=_env(tmp_path))
    assert result.exit_code == 2 and "--subject: subject has 100,000 characters" in result.output
    result = runner.invoke(app, [*create, "--subject", "bell\x07"], env=_env(tmp_path))
    assert result.exit_code == 2 and "U+0007" in result.output
    past = ["--start", "2020-06-11T10:00:00Z", "--end", "2020-06-11T11:00:00Z"]
    result = runner.invoke(app, [*create, *past], env=_env(tmp_path))
    assert result.exit_code == 2 and "--start: start 2020-06-11T10:00:00Z is in the past" in result.output
    assert "--allow-past" in " ".join(result.output.split())
    result = runner.invoke(
        app,
        ["meetings", "update", "m1", "-o", "a@b.c", "--start", "2020-06-11T10:00:00Z"],
        env=_env(tmp_path),
    )
    assert result.exit_code == 2 and "in the past" in result.output
    # allowed: the rules pass, and it gets as far as the (missing) profile
    result = runner.invoke(app, [*create, *past, "--allow-past"], env=_env(tmp_path))
    assert result.exit_code == 2 and "in the past" not in result.output


def test_cancel_mode_and_find_arguments(tmp_path):
    result = runner.invoke(
        app, ["meetings", "cancel", "m1", "-o", "a@b.c", "--mode", "archive"], env=_env(tmp_path)
    )
    assert result.exit_code == 2 and "delete or lock" in result.output
    result = runner.invoke(app, ["meetings", "find", "-o", "a@b.c"], env=_env(tmp_path))
    assert result.exit_code == 2 and "exactly one" in result.output


def test_missing_profile_says_what_to_set(tmp_path):
    result = runner.invoke(app, ["meetings", "get", "m1", "-o", "a@b.c"], env=_env(tmp_path))
    assert result.exit_code == 2
    assert "tenant_id" in result.output


def test_unknown_option_values_are_refused_before_anything_is_sent(tmp_path):
    # Graph refuses them only in the PATCH after createOrGet, when the meeting already exists.
    for option, value in (("--lobby", "organisation"), ("--presenters", "all"), ("--chat", "off")):
        result = runner.invoke(app, ["meetings", "create", "-o", "a@b.c", option, value], env=_env(tmp_path))
        assert result.exit_code == 2, result.output
        assert "not a known value" in result.output and "tenant_id" not in result.output
    result = runner.invoke(
        app, ["meetings", "update", "m1", "-o", "a@b.c", "--lobby", "nobody"], env=_env(tmp_path)
    )
    assert result.exit_code == 2 and "organizationAndFederated" in result.output


def test_unknown_settings_in_the_profile_are_warned_about(tmp_path):
    config = tmp_path / "meetgate.toml"
    config.write_text('[profiles.default]\ntenant_id = "t.example"\ncabundle = "ca.pem"\n')
    env = {"MEETGATE_CONFIG": str(config), "MEETGATE_CLIENT_SECRET": ""}
    result = runner.invoke(app, ["meetings", "get", "m1", "-o", "a@b.c"], env=env)
    assert result.exit_code == 2
    assert "unknown setting(s) cabundle ignored" in result.output


def test_a_client_secret_is_warned_about_once(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(credentials_module, "_weak_reported", set())
    monkeypatch.setattr(credentials_module, "_weak_reporter", credentials_module._log_weak_credential)
    caplog.set_level("WARNING")
    config = tmp_path / "meetgate.toml"
    config.write_text(
        'default_profile = "p"\n[profiles.p]\ntenant_id = "contoso.onmicrosoft.com"\n'
        'client_id = "11111111-1111-1111-1111-111111111111"\n'
        'authority_url = "https://127.0.0.1:9"\ngraph_url = "https://127.0.0.1:9"\n'
    )
    env = {"MEETGATE_CONFIG": str(config), "MEETGATE_CLIENT_SECRET": "s3cr3t-value"}
    # an empty meeting id fails after the client is built and before anything is sent
    result = runner.invoke(
        app, ["meetings", "get", "", "-o", "0f0e0d0c-0b0a-4909-8807-060504030201"], env=env
    )
    assert result.exit_code == 2 and "meeting id is empty" in result.output
    shown = result.output.count("client secret") + caplog.text.count("client secret")
    assert shown == 1, (result.output, caplog.text)
    assert "warning: a client secret is in use" in result.output
    assert "s3cr3t-value" not in result.output
    # the CLI renders it only while its command runs: library users in the same process keep the log
    assert credentials_module._weak_reporter is credentials_module._log_weak_credential


def test_the_placement_is_told_from_the_id():
    from meetgate.cli.meetings_calendar import id_shape, placement_of

    # Graph's documented onlineMeeting id: base64 of 1*{organizer}*0**19:meeting_…@thread.v2
    standalone = "MSpkYzE3Njc0Yy04MWQ5LTRhZGItYmZiMi04ZjZhNDQyZTRmMDYqMCoqMTk6bWVldGluZ19NalEzTVRrek5tTXRNamd6WXkwMFl6STNMV0ZtTW1RdE1UZzJPREZsTlRVeU9EWTBAdGhyZWFkLnYy"
    event = "AAMkAGIAAAoZDOFAAA="
    immutable = "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0AgsDNCu0P2UCS4M7bsOSuPQAAAAAA"
    assert id_shape(standalone) == "standalone" and placement_of(standalone, None) == "standalone"
    assert id_shape(event) == "calendar" == placement_of(event, None) == id_shape(immutable)
    assert id_shape("m1") is None and placement_of("m1", None) == "standalone"
    assert placement_of(standalone, True) == "calendar" and placement_of(event, False) == "standalone"


def test_calendar_only_options_need_calendar(tmp_path):
    create = ["meetings", "create", "-o", "a@b.c", "--start", "2030-06-11T10:00Z"]
    for extra in (["--body", "x"], ["--location", "Room 4"], ["--optional-attendee", "p@example.org"]):
        result = runner.invoke(app, [*create, *extra], env=_env(tmp_path))
        assert result.exit_code == 2 and "Add --calendar" in result.output, extra
    result = runner.invoke(
        app, ["meetings", "cancel", "MSpkYzE3", "-o", "a@b.c", "--message", "bye"], env=_env(tmp_path)
    )
    assert result.exit_code == 2 and "standalone meeting's id" in result.output
    result = runner.invoke(
        app, ["meetings", "cancel", "AAMkAGI=", "-o", "a@b.c", "--mode", "lock"], env=_env(tmp_path)
    )
    assert result.exit_code == 2 and "--mode is for standalone meetings" in result.output
    result = runner.invoke(app, ["meetings", "occurrences", "MSpkYzE3", "-o", "a@b.c"], env=_env(tmp_path))
    assert result.exit_code == 2 and "cannot recur" in result.output
    result = runner.invoke(app, ["meetings", "ics", "AAMkAGI=", "-o", "a@b.c", "--json"], env=_env(tmp_path))
    assert result.exit_code == 2 and "Exchange already sent" in result.output
