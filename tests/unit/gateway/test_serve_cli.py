from typer.testing import CliRunner

from meetgate.cli.main import app


def test_serve_refuses_an_unknown_log_level_with_a_usage_error():
    result = CliRunner().invoke(app, ["serve", "--log-level", "loud"])
    assert result.exit_code == 2
    assert "not a log level" in result.output
    assert "debug, info, warning, error" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_a_port_out_of_range():
    result = CliRunner().invoke(app, ["serve", "--port", "99999"])
    assert result.exit_code == 2
    assert "--port" in result.output


def test_serve_refuses_a_trusted_proxy_that_is_not_an_address():
    result = CliRunner().invoke(
        app, ["serve", "--trust-forwarded-for", "--forwarded-allow-ips", "10.0.0.0/8,proxy"]
    )
    assert result.exit_code == 2
    assert "--forwarded-allow-ips" in result.output and "'proxy'" in result.output
    assert "Traceback" not in result.output
