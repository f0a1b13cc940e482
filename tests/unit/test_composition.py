import pytest
from graph_fakes import AUTHORITY, CLIENT_ID, GRAPH, TENANT

from meetgate import certificates
from meetgate.composition import graph_client_from_profile, graph_settings_from_profile
from meetgate.config import ConfigError, Profile
from meetgate.graph.credentials import CertificateCredential, ClientSecretCredential
from meetgate.graph.errors import CredentialError


def _profile(tmp_path, **kw) -> Profile:
    base = {"tenant_id": TENANT, "client_id": CLIENT_ID, "authority_url": AUTHORITY, "graph_url": GRAPH}
    base.update(kw)
    return Profile(**base)


def test_pem_profile(tmp_path):
    pair = certificates.generate_self_signed("comp")
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key, b"pw"))
    certificates.write_public_file(cert, certificates.certificate_pem(pair.certificate))
    profile = _profile(
        tmp_path, private_key_path=key, certificate_path=cert, ca_bundle=None, timeout_seconds=7.0
    )
    s = graph_settings_from_profile(profile, {"MEETGATE_KEY_PASSPHRASE": "pw"})
    assert isinstance(s.credential, CertificateCredential)
    assert s.credential.thumbprint_sha1 == pair.thumbprint_sha1
    assert s.timeout_seconds == 7.0 and s.graph_url == GRAPH and s.authority == f"{AUTHORITY}/{TENANT}"
    with pytest.raises(CredentialError, match="encrypted"):
        graph_settings_from_profile(profile, {})


def test_pfx_profile(tmp_path):
    pair = certificates.generate_self_signed("comp")
    pfx = tmp_path / "a.pfx"
    pfx.write_bytes(certificates.pfx_bytes(pair, b"x"))
    s = graph_settings_from_profile(_profile(tmp_path, pfx_path=pfx), {"MEETGATE_KEY_PASSPHRASE": "x"})
    assert s.credential.thumbprint_sha256 == pair.thumbprint_sha256


def test_a_missing_passphrase_variable_is_named_not_called_a_wrong_passphrase(tmp_path):
    pair = certificates.generate_self_signed("comp")
    pfx = tmp_path / "a.pfx"
    pfx.write_bytes(certificates.pfx_bytes(pair, b"x"))
    profile = _profile(tmp_path, pfx_path=pfx, passphrase_env="APP_PFX_PASS")
    with pytest.raises(CredentialError) as unset:
        graph_settings_from_profile(profile, {})
    message = str(unset.value)
    assert "the environment variable APP_PFX_PASS (passphrase_env) is not set" in message
    assert "wrong passphrase" not in message
    assert unset.value.remedy and "APP_PFX_PASS" in unset.value.remedy
    with pytest.raises(CredentialError, match="wrong passphrase"):  # set, but wrong
        graph_settings_from_profile(profile, {"APP_PFX_PASS": "nope"})
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key, b"pw"))
    certificates.write_public_file(cert, certificates.certificate_pem(pair.certificate))
    pem = _profile(tmp_path, private_key_path=key, certificate_path=cert, passphrase_env="APP_KEY_PASS")
    with pytest.raises(CredentialError, match=r"APP_KEY_PASS \(passphrase_env\) is not set"):
        graph_settings_from_profile(pem, {})


def test_secret_profile_and_missing_credential(tmp_path):
    s = graph_settings_from_profile(_profile(tmp_path), {"MEETGATE_CLIENT_SECRET": "shh"})
    assert isinstance(s.credential, ClientSecretCredential) and s.uses_weak_credential
    with pytest.raises(ConfigError, match="no credential"):
        graph_settings_from_profile(_profile(tmp_path), {})
    with pytest.raises(ConfigError, match="tenant_id"):
        graph_settings_from_profile(Profile(client_id=CLIENT_ID), {})
    with pytest.raises(ConfigError, match="certificate_path"):
        graph_settings_from_profile(_profile(tmp_path, private_key_path=tmp_path / "k"), {})


def test_client_from_profile_gets_tokens(tmp_path, monkeypatch):
    monkeypatch.setenv("MEETGATE_CLIENT_SECRET", "shh")
    client = graph_client_from_profile(_profile(tmp_path))
    assert client.credential_warning and "certificate" in client.credential_warning
    client.close()
