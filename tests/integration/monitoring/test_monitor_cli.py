"""`meetgate monitor report / watch` in-process against the sandbox."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from meetgate.cli.main import app
from meetgate.config import save_profile_values
from meetgate.graph.errors import AuthenticationError

runner = CliRunner()


def _sign_in_values(profile):
    """What a profile needs to sign in to the sandbox tenant (and its store, when it has one)."""
    keys = ("tenant_id", "client_id", "private_key_path", "certificate_path", "authority_url", "graph_url",
            "ca_bundle", "store_url")  # fmt: skip
    return {k: getattr(profile, k) for k in keys if getattr(profile, k) is not None}


@pytest.fixture
def config(world, tmp_path):
    path = tmp_path / "meetgate.toml"
    reader = dataclasses.replace(world.reader, store_url=f"sqlite:///{tmp_path}/meetgate.db")
    save_profile_values(path, "reader", _sign_in_values(reader))
    return {"MEETGATE_CONFIG": str(path), "MEETGATE_CLIENT_SECRET": ""}


def test_report_json_html_and_watch(world, config, tmp_path):
    world.sign_in(2)
    world.sign_in(1, forwarded_for="198.51.100.4")
    day = tmp_path / "day.toml"  # tests run at any hour: the whole day is working time here
    day.write_text("active_hours = [0, 24]\n")
    args = ["monitor", "report", "--since", "1h", "--app-id", world.app.client_id, "--thresholds", str(day)]
    result = runner.invoke(app, [*args, "--json"], env=config)
    assert result.exit_code == 1, result.output  # alerts found
    data = json.loads(result.stdout)
    assert data["signIns"]["total"] == 3 and data["signIns"]["ips"] == ["127.0.0.1", "198.51.100.4"]
    assert data["collected"]["newSignIns"] == 3
    assert sorted(a["rule"] for a in data["alerts"]) == ["sign_in_new_ip", "sign_in_new_location"]

    html = tmp_path / "report.html"
    thresholds = tmp_path / "t.toml"
    thresholds.write_text("sign_in_failures = 1\nactive_hours = [0, 24]\n")
    key, cert = world.tmp_path / "Admin automation.key.pem", world.tmp_path / "Admin automation.pem"
    wrong = dataclasses.replace(world.profile, private_key_path=key, certificate_path=cert)
    with pytest.raises(AuthenticationError), world.client(wrong) as client:
        client.tokens.get_token()
    result = runner.invoke(app, [*args, "--no-collect", "--html", str(html)], env=config)
    assert result.exit_code == 1 and "2 alert(s)" in result.stdout, result.output
    assert "1 failed" not in html.read_text()  # not collected yet
    result = runner.invoke(
        app, [*args[:-2], "--thresholds", str(thresholds), "--html", str(html)], env=config
    )
    assert result.exit_code == 1, result.output
    page = html.read_text()
    assert "4 sign-in(s), 1 failed" in page and "<svg" in page and "<script" not in page
    assert "failed sign-in(s)" in page  # the alert

    alerts = tmp_path / "alerts.jsonl"
    watch = [
        "monitor",
        "watch",
        "--app-id",
        world.app.client_id,
        "--thresholds",
        str(thresholds),
        "--iterations",
        "1",
        "--jsonl",
        str(alerts),
        "--window",
        "1h",
    ]
    result = runner.invoke(app, watch, env=config)
    assert result.exit_code == 0, result.output
    # the report raised it already: watch sees it again but sends only what is new
    assert "0 new alert(s)" in result.stderr and not alerts.exists()
    world.sign_in(1, forwarded_for="192.0.2.8")  # Sao Paulo
    result = runner.invoke(app, watch, env=config)
    assert result.exit_code == 0 and "2 new alert(s)" in result.stderr, result.output
    sent = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert sorted(a["rule"] for a in sent) == ["sign_in_new_ip", "sign_in_new_location"]
    assert "192.0.2.8" in result.stdout


def test_bad_inputs_say_what_to_do(config, tmp_path):
    result = runner.invoke(app, ["monitor", "report", "--since", "yesterday"], env=config)
    assert result.exit_code == 2 and "30m, 24h, 7d" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("sign_in_failure = 2\n")
    result = runner.invoke(app, ["monitor", "report", "--thresholds", str(bad)], env=config)
    assert result.exit_code == 2 and "sign_in_failures" in result.stderr
    result = runner.invoke(
        app, ["monitor", "watch", "--webhook", "http://hooks.example.com/x", "--iterations", "1"], env=config
    )
    assert result.exit_code == 2 and "https://" in result.stderr


def test_report_with_a_policy_snapshot_through_the_cmdlets(world, tmp_path):
    """--policy-backend powershell (the pwsh stand-in): a user granted beyond the policy file."""
    import shlex
    import sys

    from monitor_kit import register

    # a reader that may also read Teams policy assignments
    reader = register(
        world.app,
        tmp_path,
        "Reader with Teams",
        ["AuditLog.Read.All", "Directory.Read.All", "User.Read.All", "TeamsPolicyUserAssign.ReadWrite.All"],
    )
    pilots = [u.upn for u in world.app.pilot_users]
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[policy]\nidentity = "Tag:TeamsMeetingsIntegration"\n'
        f'app_ids = ["{world.app.client_id}"]\n'
        "[organizers]\n"
        f"users = {json.dumps(pilots)}\n"
    )
    path = tmp_path / "with-policy.toml"
    values = _sign_in_values(reader)
    save_profile_values(
        path, "reader", {**values, "store_url": f"sqlite:///{tmp_path}/p.db", "policy_file": policy}
    )
    outsider = world.app.other_users[0]
    world.app.control.grant_policy(world.app.tenant_id, "TeamsMeetingsIntegration", user=outsider.id)
    day = tmp_path / "day.toml"
    day.write_text("active_hours = [0, 24]\n")
    env = {
        "MEETGATE_CONFIG": str(path),
        "MEETGATE_CLIENT_SECRET": "",
        "MEETGATE_SANDBOX_CONTROL_URL": world.app.control.control_url,
        "MEETGATE_SANDBOX_CA_BUNDLE": str(world.app.ca_bundle),
        "MEETGATE_SANDBOX_AUTHORITY_URL": world.app.authority_url,
    }
    pwsh = f"{shlex.quote(sys.executable)} -m meetgate_sandbox.pwsh"
    result = runner.invoke(
        app,
        [
            "monitor",
            "report",
            "--json",
            "--app-id",
            world.app.client_id,
            "--thresholds",
            str(day),
            "--policy-backend",
            "powershell",
            "--pwsh",
            pwsh,
        ],
        env=env,
    )
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["policy"] == {"approved": 2, "holding": 2, "beyondApproved": 1, "missing": 0, "global": False}
    (alert,) = data["alerts"]
    assert alert["rule"] == "policy_beyond_approved" and outsider.upn in alert["evidence"][0]


def test_a_reader_watching_another_app_sees_the_audits_that_name_only_its_object_ids(world, config):
    """Consent is audited on the service principal's object id, not the app id: a monitoring app
    watching the integration with --app-id looks those ids up in the directory."""
    from meetgate.graph.applications import ApplicationsService

    with world.client(world.admin) as admin:
        apps = ApplicationsService(admin.http)
        graph_sp = apps.graph_service_principal()
        role = next(r for r in graph_sp.app_roles if r.value == "Directory.ReadWrite.All")
        apps.grant_app_role(
            resource_id=graph_sp.id, principal_id=world.app.service_principal_id, app_role_id=role.id
        )
    args = ["monitor", "report", "--since", "1h", "--app-id", world.app.client_id, "--json"]
    result = runner.invoke(app, args, env=config)
    assert result.exit_code == 1, result.output
    rules = [a["rule"] for a in json.loads(result.stdout)["alerts"]]
    assert "permission_change" in rules, rules


def test_a_reader_watching_another_app_checks_that_apps_certificate_not_its_own(world, config):
    """The certificate the monitor watches for expiry is the integration app's, read from its
    registration: the reader profile's own certificate is not the watched app's."""
    from meetgate.certificates import load_certificate, thumbprint_sha1

    def thumbprint(path):
        return thumbprint_sha1(load_certificate(path))

    args = ["monitor", "report", "--since", "1h", "--app-id", world.app.client_id, "--json"]
    result = runner.invoke(app, args, env=config)
    assert result.exit_code in (0, 1), result.output
    certificates = json.loads(result.stdout)["certificates"]
    assert [c["thumbprint"] for c in certificates] == [thumbprint(world.app.certificate_path)]
    assert thumbprint(world.reader.certificate_path) != certificates[0]["thumbprint"]
    assert certificates[0]["source"] == f"registration of app {world.app.client_id}"


@pytest.mark.parametrize("command", ["report", "watch"])
def test_help_names_the_hypercare_table_of_the_thresholds_file(command):
    result = runner.invoke(app, ["monitor", command, "--help"])
    assert result.exit_code == 0 and "[hypercare]" in result.output


def test_watch_retries_a_failed_sink_at_the_next_poll_and_only_that_sink(world, config, tmp_path):
    """A webhook that answered 500 gets the missed alerts at the next poll; the JSON lines file once."""
    import http.server
    import threading

    bodies: list[dict[str, object]] = []

    class Flaky(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(500 if len(bodies) == 1 else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    world.sign_in(1)
    world.sign_in(1, forwarded_for="198.51.100.4")  # a new IP and location: two alerts
    thresholds = tmp_path / "t.toml"
    thresholds.write_text("active_hours = [0, 24]\n")
    alerts = tmp_path / "alerts.jsonl"
    watch = [
        "monitor",
        "watch",
        "--app-id",
        world.app.client_id,
        "--thresholds",
        str(thresholds),
        "--interval",
        "0",
    ]
    url = f"http://127.0.0.1:{server.server_port}/hook/secret"
    try:
        result = runner.invoke(
            app,
            [*watch, "--iterations", "2", "--window", "1h", "--jsonl", str(alerts), "--webhook", url],
            env=config,
        )
    finally:
        server.shutdown()
    assert result.exit_code == 0, result.output
    assert "sink webhook failed" in result.stderr and "secret" not in result.output
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the missed alerts, again
    assert len(alerts.read_text().splitlines()) == len(bodies[0]["alerts"])  # type: ignore[arg-type]
