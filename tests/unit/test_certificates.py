import datetime as dt
import stat

import pytest
from cryptography.hazmat.primitives import hashes

from meetgate import certificates as c


@pytest.fixture(scope="module")
def pair():
    return c.generate_self_signed()


def test_self_signed_defaults(pair):
    cert = pair.certificate
    assert cert.subject.rfc4514_string() == "CN=TeamsMeetingsIntegration"
    assert pair.private_key.key_size == 2048
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert days == 730
    assert len(pair.thumbprint_sha1) == 40 and pair.thumbprint_sha1.isupper()
    assert len(pair.thumbprint_sha256) == 64


def test_repr_hides_private_key(pair):
    assert "RSAPrivateKey" not in repr(pair) and "private_key" not in repr(pair)


def test_key_size_must_be_allowed():
    with pytest.raises(c.CertificateError, match="2048, 3072, 4096"):
        c.generate_private_key(1024)


def test_x5t_headers_are_base64url_digests(pair):
    import base64

    raw = base64.urlsafe_b64decode(c.x5t(pair.certificate) + "=")
    assert raw.hex().upper() == pair.thumbprint_sha1
    assert len(base64.urlsafe_b64decode(c.x5t_s256(pair.certificate) + "=")) == 32


def test_secret_file_is_0600_and_not_overwritten(tmp_path, pair):
    path = tmp_path / "k.pem"
    c.write_secret_file(path, c.private_key_pem(pair.private_key))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(c.CertificateError, match="--force"):
        c.write_secret_file(path, b"x")
    c.write_secret_file(path, c.private_key_pem(pair.private_key, b"pw"), force=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_overwriting_a_key_replaces_it_whole_or_not_at_all(tmp_path, pair, monkeypatch):
    """A write that fails half-way (disk full, a crash) leaves the old key as it was, and no
    temporary copy of key material behind."""
    import os

    path = tmp_path / "k.pem"
    old = c.private_key_pem(pair.private_key)
    c.write_secret_file(path, old)
    real_write = os.write

    def fail_half_way(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", fail_half_way)
    with pytest.raises(OSError, match="No space"):
        c.write_secret_file(path, c.private_key_pem(pair.private_key, b"pw"), force=True)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem"]


def test_encrypted_key_round_trip_and_clear_errors(tmp_path, pair):
    path = tmp_path / "k.pem"
    c.write_secret_file(path, c.private_key_pem(pair.private_key, b"correct horse"))
    key = c.load_private_key(path, b"correct horse")
    assert c.key_matches_certificate(key, pair.certificate)
    with pytest.raises(c.CertificateError, match="wrong passphrase"):
        c.load_private_key(path, b"wrong")
    with pytest.raises(c.CertificateError, match="encrypted: set the passphrase"):
        c.load_private_key(path, None)


def test_certificate_loads_from_pem_and_der(tmp_path, pair):
    (tmp_path / "a.cer").write_bytes(c.certificate_der(pair.certificate))
    (tmp_path / "a.pem").write_bytes(c.certificate_pem(pair.certificate))
    (tmp_path / "bad").write_bytes(b"junk")
    assert c.load_certificate(tmp_path / "a.cer") == pair.certificate
    assert c.load_certificate(tmp_path / "a.pem") == pair.certificate
    with pytest.raises(c.CertificateError, match="not a PEM or DER"):
        c.load_certificate(tmp_path / "bad")


def test_pfx_round_trip(tmp_path, pair):
    path = tmp_path / "a.pfx"
    path.write_bytes(c.pfx_bytes(pair, b"pw"))
    loaded = c.load_pfx(path, b"pw")
    assert loaded.certificate == pair.certificate
    with pytest.raises(c.CertificateError, match="wrong passphrase"):
        c.load_pfx(path, b"nope")
    with pytest.raises(c.CertificateError) as none_given:
        c.load_pfx(path, None)
    assert "without a passphrase" in str(none_given.value) and "wrong" not in str(none_given.value)


def test_ca_issues_server_certificate_for_ip_and_name():
    ca = c.generate_ca()
    server = c.issue_server_certificate(ca, ["127.0.0.1", "localhost"])
    assert server.certificate.issuer == ca.certificate.subject
    assert server.certificate.not_valid_after_utc > dt.datetime.now(dt.UTC)


def test_other_key_does_not_match(pair):
    other = c.generate_self_signed()
    assert not c.key_matches_certificate(other.private_key, pair.certificate)
