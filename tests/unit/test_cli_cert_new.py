"""`meetgate cert new` driven in-process."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from meetgate import certificates as certs
from meetgate.cli.main import app


def test_cert_new_json(tmp_path):
    result = CliRunner().invoke(app, ["cert", "new", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["subject"] == "CN=TeamsMeetingsIntegration" and data["key_size"] == 2048
    cert = certs.load_certificate(tmp_path / "TeamsMeetingsIntegration.cer")
    assert data["thumbprint_sha1"] == certs.thumbprint_sha1(cert)
    assert data["thumbprint_sha256"] == certs.thumbprint_sha256(cert)
    assert certs.file_mode(tmp_path / "TeamsMeetingsIntegration.key.pem") == 0o600


def test_cert_new_readable_output_and_passphrase_from_env(tmp_path):
    env = {"MY_PASS": "correct horse"}
    result = CliRunner().invoke(
        app,
        ["cert", "new", "-o", str(tmp_path), "--passphrase-env", "MY_PASS", "--pfx", "--key-size", "4096"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "thumbprint SHA-1" in result.stdout and "correct horse" not in result.output
    key = certs.load_private_key(tmp_path / "TeamsMeetingsIntegration.key.pem", b"correct horse")
    assert key.key_size == 4096
    assert (tmp_path / "TeamsMeetingsIntegration.pfx").exists()


def test_cert_new_refuses_to_overwrite_and_changes_nothing(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["cert", "new", "-o", str(tmp_path)]).exit_code == 0
    before = (tmp_path / "TeamsMeetingsIntegration.key.pem").read_bytes()
    result = runner.invoke(app, ["cert", "new", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "--force" in result.output
    assert (tmp_path / "TeamsMeetingsIntegration.key.pem").read_bytes() == before
    assert runner.invoke(app, ["cert", "new", "-o", str(tmp_path), "--force"]).exit_code == 0
    assert (tmp_path / "TeamsMeetingsIntegration.key.pem").read_bytes() != before


def test_unset_passphrase_variable_is_an_error(tmp_path):
    result = CliRunner().invoke(
        app, ["cert", "new", "-o", str(tmp_path), "--passphrase-env", "NOT_SET_ANYWHERE"], env={}
    )
    assert result.exit_code == 2 and "NOT_SET_ANYWHERE" in result.output
    assert not (tmp_path / "TeamsMeetingsIntegration.key.pem").exists()


def test_bad_key_size_is_an_error(tmp_path):
    result = CliRunner().invoke(app, ["cert", "new", "-o", str(tmp_path), "--key-size", "1024"])
    assert result.exit_code == 2 and "2048, 3072, 4096" in result.output


def test_a_named_certificate_takes_its_name_as_subject_and_says_where_to_upload_it(tmp_path):
    result = CliRunner().invoke(app, ["cert", "new", "--out", str(tmp_path), "--name", "MonitoringReader"])
    assert result.exit_code == 0, result.output
    cert = certs.load_certificate(tmp_path / "MonitoringReader.cer")
    assert cert.subject.rfc4514_string() == "CN=MonitoringReader"
    # no profile was changed, so the hint cannot assume the integration app's profile
    assert "meetgate --profile PROFILE cert upload --certificate" in result.output
    assert "MonitoringReader.pem" in result.output
    explicit = CliRunner().invoke(
        app, ["cert", "new", "--out", str(tmp_path / "x"), "--name", "R", "--subject", "CN=Reader", "--json"]
    )
    assert json.loads(explicit.stdout)["subject"] == "CN=Reader"
