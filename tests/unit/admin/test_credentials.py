"""cert new / status / upload / remove logic on files in tmp_path and an in-memory credential store."""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Sequence

import pytest
from cryptography.hazmat.primitives import hashes

from meetgate import certificates as certs
from meetgate.admin import credential_status as cs
from meetgate.admin import credentials as cr
from meetgate.graph.applications import KeyCredential, PasswordCredential

NOW = dt.datetime(2026, 6, 11, 10, 0, tzinfo=dt.UTC)


def _kc(cert, **extra) -> KeyCredential:
    extra.setdefault("start_date_time", NOW - dt.timedelta(days=1))
    return cr.key_credential_for(cert).model_copy(update={"key_id": extra.pop("key_id", "k1"), **extra})


@pytest.fixture(scope="module")
def pair():
    return certs.generate_self_signed(valid_days=730)


# --- cert new --------------------------------------------------------------------------------


def test_create_writes_der_pem_and_a_0600_key(tmp_path):
    result = cr.create_certificate(tmp_path)
    f = result.files
    assert certs.file_mode(f.key_path) == 0o600
    cert = certs.load_certificate(f.cer_path)
    assert cert == certs.load_certificate(f.certificate_path)
    assert not f.cer_path.read_bytes().startswith(b"-----")  # DER
    assert cert.subject.rfc4514_string() == "CN=TeamsMeetingsIntegration"
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 730
    key = certs.load_private_key(f.key_path)
    assert key.key_size == 2048 and certs.key_matches_certificate(key, cert)
    assert result.thumbprint_sha1 == certs.thumbprint_sha1(cert)
    assert result.thumbprint_sha256 == certs.thumbprint_sha256(cert)
    assert result.key_encrypted is False and f.pfx_path is None


def test_create_with_passphrase_encrypts_key_and_pfx(tmp_path):
    result = cr.create_certificate(
        tmp_path,
        name="x",
        subject="Contoso Bookings",
        key_size=3072,
        valid_days=30,
        passphrase=b"s3cret",
        pfx=True,
    )
    f = result.files
    assert b"ENCRYPTED" in f.key_path.read_bytes()
    with pytest.raises(certs.CertificateError, match="encrypted: set the passphrase"):
        certs.load_private_key(f.key_path)
    with pytest.raises(certs.CertificateError, match="wrong passphrase"):
        certs.load_private_key(f.key_path, b"wrong")
    assert certs.load_private_key(f.key_path, b"s3cret").key_size == 3072
    assert certs.file_mode(f.pfx_path) == 0o600
    assert certs.load_pfx(f.pfx_path, b"s3cret").thumbprint_sha1 == result.thumbprint_sha1
    assert result.subject == "CN=Contoso Bookings"


def test_existing_file_without_force_writes_nothing(tmp_path):
    first = cr.create_certificate(tmp_path)
    before = {p: p.read_bytes() for p in first.files.all()}
    (tmp_path / "TeamsMeetingsIntegration.cer").unlink()  # only some files exist: still refused
    with pytest.raises(certs.CertificateError, match="already exist"):
        cr.create_certificate(tmp_path)
    assert not (tmp_path / "TeamsMeetingsIntegration.cer").exists()
    assert first.files.key_path.read_bytes() == before[first.files.key_path]
    again = cr.create_certificate(tmp_path, force=True)
    assert again.thumbprint_sha1 != first.thumbprint_sha1
    assert certs.file_mode(again.files.key_path) == 0o600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key_size": 1024}, "2048, 3072, 4096"),
        ({"valid_days": 0}, "between 1 and 3650"),
        ({"subject": "CN=a,O=b"}, "single common name"),
        ({"name": "../x"}, "not a usable file name"),
    ],
)
def test_bad_input_is_refused_before_writing(tmp_path, kwargs, message):
    with pytest.raises(certs.CertificateError, match=message):
        cr.create_certificate(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


# --- status ----------------------------------------------------------------------------------


def test_status_of_an_application_the_profile_does_not_sign_in_as_is_an_error(pair):
    valid = _kc(pair.certificate, end_date_time=NOW + dt.timedelta(days=400))
    app_id, other = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    same = cs.certificate_status([valid], [], now=NOW, app_id=app_id, profile_client_id=app_id.upper())
    assert same.ok and not any(f.code == "profile.client_id_mismatch" for f in same.findings)
    wrong = cs.certificate_status([valid], [], now=NOW, app_id=app_id, profile_client_id=other)
    [finding] = [f for f in wrong.findings if f.code == "profile.client_id_mismatch"]
    assert not wrong.ok and other in finding.message and app_id in finding.message
    assert finding.remedy and "meetgate setup app" in finding.remedy


def test_status_flags_expired_expiring_and_secrets(pair):
    valid = _kc(
        pair.certificate,
        start_date_time=NOW - dt.timedelta(days=1),
        end_date_time=NOW + dt.timedelta(days=400),
    )
    soon = _kc(
        pair.certificate,
        key_id="k2",
        key=None,
        custom_key_identifier=base64.b64encode(b"\x01" * 20).decode(),
        end_date_time=NOW + dt.timedelta(days=20),
    )
    later = _kc(
        pair.certificate,
        key_id="k3",
        key=None,
        custom_key_identifier="AB" * 20,
        end_date_time=NOW + dt.timedelta(days=60),
    )
    old = _kc(
        pair.certificate,
        key_id="k4",
        key=None,
        custom_key_identifier="CD" * 20,
        start_date_time=NOW - dt.timedelta(days=900),
        end_date_time=NOW - dt.timedelta(days=1),
    )
    secret = PasswordCredential(
        key_id="s1", display_name="legacy", end_date_time=NOW + dt.timedelta(days=100)
    )
    report = cs.certificate_status([valid, soon, later, old], [secret], now=NOW)
    codes = {(f.code, f.subject) for f in report.findings}
    assert ("certificate.expiring_30d", "01" * 20) in codes
    assert ("certificate.expiring_90d", "AB" * 20) in codes
    assert ("certificate.expired", "CD" * 20) in codes
    assert ("client_secret.present", "s1") in codes
    assert report.ok  # one valid certificate: no error
    states = {c.key_id: c.state for c in report.credentials}
    assert states == {"k1": "valid", "k2": "expiring", "k3": "expiring", "k4": "expired", "s1": "valid"}
    assert report.to_dict()["credentials"][0]["thumbprint_sha1"]


def test_status_without_any_valid_certificate_is_an_error(pair):
    old = _kc(pair.certificate, end_date_time=NOW - dt.timedelta(days=1))
    assert "certificate.none_valid" in {f.code for f in cs.certificate_status([old], [], now=NOW).findings}
    report = cs.certificate_status([], [], now=NOW)
    assert not report.ok and report.findings[0].code == "certificate.none"


def test_local_key_mode_mismatch_and_not_uploaded(tmp_path, pair):
    made = cr.create_certificate(tmp_path)
    os.chmod(made.files.key_path, 0o644)
    other = certs.generate_self_signed()
    (tmp_path / "other.pem").write_bytes(certs.certificate_pem(other.certificate))
    local = cr.inspect_local_certificate(
        key_path=made.files.key_path, certificate_path=tmp_path / "other.pem"
    )
    assert local.key_matches is False and local.key_mode == 0o644
    report = cs.certificate_status([_kc(pair.certificate)], [], local=local, now=NOW)
    assert {"local_key.mode", "local_key.mismatch", "local_certificate.not_uploaded"} <= {
        f.code for f in report.findings
    }
    assert not report.ok


def test_local_certificate_that_is_uploaded_is_fine(tmp_path):
    made = cr.create_certificate(tmp_path)
    cert = certs.load_certificate(made.files.certificate_path)
    local = cr.inspect_local_certificate(
        key_path=made.files.key_path, certificate_path=made.files.certificate_path
    )
    uploaded = cr.key_credential_for(cert)
    report = cs.certificate_status([uploaded], [], local=local, now=dt.datetime.now(dt.UTC))
    assert report.findings == () and report.ok


def test_wrong_passphrase_is_reported_without_the_passphrase(tmp_path):
    made = cr.create_certificate(tmp_path, passphrase=b"right-horse")
    local = cr.inspect_local_certificate(
        key_path=made.files.key_path, certificate_path=made.files.certificate_path, passphrase=b"wrong-horse"
    )
    assert local.error and "wrong passphrase" in local.error and "horse" not in local.error
    assert "local_key.unreadable" in {f.code for f in cs.certificate_status([], [], local=local).findings}


# --- upload / remove -------------------------------------------------------------------------


class InMemoryKeyCredentials:
    def __init__(self, initial: Sequence[KeyCredential] = ()) -> None:
        self.credentials = list(initial)
        self.writes = 0

    def get_key_credentials(self, object_id: str) -> list[KeyCredential]:
        return list(self.credentials)

    def set_key_credentials(self, object_id: str, credentials: Sequence[KeyCredential]) -> None:
        self.credentials = list(credentials)
        self.writes += 1


def test_upload_keeps_others_and_is_idempotent(pair):
    existing = certs.generate_self_signed()
    store = InMemoryKeyCredentials([_kc(existing.certificate)])
    change = cr.upload_certificate(store, "obj", pair.certificate)
    assert change.action == "upload"
    assert [kc.thumbprint_sha1 for kc in store.credentials] == [
        existing.thumbprint_sha1,
        pair.thumbprint_sha1,
    ]
    new = store.credentials[1]
    assert (new.type, new.usage) == ("AsymmetricX509Cert", "Verify")
    assert base64.b64decode(new.key) == certs.certificate_der(pair.certificate)
    assert cr.upload_certificate(store, "obj", pair.certificate).action == "none"
    assert store.writes == 1


def test_upload_refuses_an_expired_certificate(pair):
    store = InMemoryKeyCredentials()
    with pytest.raises(cr.CredentialChangeError, match="expired"):
        cr.upload_certificate(store, "obj", pair.certificate, now=NOW + dt.timedelta(days=3000))
    assert store.writes == 0


def test_remove_by_thumbprint_keeps_others_and_guards_the_one_in_use(pair):
    other = certs.generate_self_signed()
    store = InMemoryKeyCredentials([_kc(pair.certificate), _kc(other.certificate, key_id="k2")])
    with pytest.raises(cr.CredentialChangeError, match="signs in with"):
        cr.remove_certificate(store, "obj", pair.thumbprint_sha1, in_use=pair.thumbprint_sha1)
    with pytest.raises(cr.CredentialChangeError, match="no certificate with thumbprint"):
        cr.remove_certificate(store, "obj", "00" * 20)
    with pytest.raises(cr.CredentialChangeError, match="40 hex"):
        cr.remove_certificate(store, "obj", "nope")
    assert store.writes == 0
    lower_colons = ":".join(other.thumbprint_sha1[i : i + 2] for i in range(0, 40, 2)).lower()
    change = cr.remove_certificate(store, "obj", lower_colons, in_use=pair.thumbprint_sha1)
    assert change.action == "remove" and change.kept == (pair.thumbprint_sha1,)
    assert [kc.thumbprint_sha1 for kc in store.credentials] == [pair.thumbprint_sha1]


# --- rotate ----------------------------------------------------------------------------------


def test_rotate_adds_verifies_switches_then_removes_old_only_when_asked(tmp_path, pair):
    store = InMemoryKeyCredentials([_kc(pair.certificate)])
    writer = cr.AdminCredentialWriter(store, "obj")
    events: list[str] = []

    def verify(files):
        events.append("verify")
        # the old certificate is still there while the new one is verified
        assert pair.thumbprint_sha1 in [kc.thumbprint_sha1 for kc in store.credentials]
        return ["OnlineMeetings.ReadWrite.All"]

    result = cr.rotate_certificate(
        writer,
        directory=tmp_path,
        name="next",
        previous_thumbprint=pair.thumbprint_sha1,
        verify=verify,
        switch_profile=lambda files: events.append(f"switch:{files.key_path.name}"),
    )
    assert events == ["verify", "switch:next.key.pem"]
    assert result.removed is None and result.verified_roles == ("OnlineMeetings.ReadWrite.All",)
    assert [kc.thumbprint_sha1 for kc in store.credentials] == [
        pair.thumbprint_sha1,
        result.new.thumbprint_sha1,
    ]

    again = cr.rotate_certificate(
        writer,
        directory=tmp_path,
        name="third",
        previous_thumbprint=result.new.thumbprint_sha1,
        verify=lambda files: ["x"],
        switch_profile=lambda files: None,
        remove_old=True,
    )
    assert again.removed is not None and again.removed.thumbprint_sha1 == result.new.thumbprint_sha1
    assert [kc.thumbprint_sha1 for kc in store.credentials] == [
        pair.thumbprint_sha1,
        again.new.thumbprint_sha1,
    ]


def test_rotate_retries_verification_then_fails_without_switching(tmp_path, pair):
    store = InMemoryKeyCredentials([_kc(pair.certificate)])
    sleeps: list[float] = []
    switched: list[object] = []

    def verify(files):
        raise RuntimeError("AADSTS700027: key not found")

    with pytest.raises(cr.CredentialChangeError, match="no token could be taken") as info:
        cr.rotate_certificate(
            cr.AdminCredentialWriter(store, "obj"),
            directory=tmp_path,
            name="next",
            previous_thumbprint=pair.thumbprint_sha1,
            verify=verify,
            switch_profile=switched.append,
            remove_old=True,
            attempts=3,
            sleep=sleeps.append,
        )
    assert sleeps == [1.0, 2.0] and switched == []
    assert "cert remove --thumbprint" in info.value.remedy
    assert pair.thumbprint_sha1 in [kc.thumbprint_sha1 for kc in store.credentials]


class FakeRoller(InMemoryKeyCredentials):
    def __init__(self, initial, object_id):
        super().__init__(initial)
        self.object_id = object_id
        self.proofs: list[dict] = []

    def _check(self, proof):
        import jwt

        header = jwt.get_unverified_header(proof)
        for kc in self.credentials:
            cert = certs.load_certificate_bytes(base64.b64decode(kc.key))
            if certs.x5t(cert) == header["x5t"]:
                claims = jwt.decode(
                    proof,
                    cert.public_key(),
                    algorithms=["RS256"],
                    audience="00000002-0000-0000-c000-000000000000",
                )
                assert claims["iss"] == self.object_id and claims["exp"] - claims["nbf"] == 600
                self.proofs.append(claims)
                return
        raise AssertionError("proof not signed by a registered certificate")

    def add_key(self, object_id, credential, proof):
        self._check(proof)
        self.credentials.append(credential.model_copy(update={"key_id": f"k{len(self.credentials) + 1}"}))
        return credential

    def remove_key(self, object_id, key_id, proof):
        self._check(proof)
        self.credentials = [kc for kc in self.credentials if kc.key_id != key_id]


def test_self_service_writer_signs_proofs_with_the_current_key(tmp_path, pair):
    roller = FakeRoller([_kc(pair.certificate)], "obj-1")
    writer = cr.SelfServiceCredentialWriter(roller, "obj-1", pair)
    result = cr.rotate_certificate(
        writer,
        directory=tmp_path,
        name="next",
        previous_thumbprint=pair.thumbprint_sha1,
        verify=lambda files: ["r"],
        switch_profile=lambda files: None,
        remove_old=True,
        on_new_signer=lambda files: setattr(
            writer,
            "signer",
            certs.KeyPair(
                certs.load_private_key(files.key_path), certs.load_certificate(files.certificate_path)
            ),
        ),
    )
    assert [kc.thumbprint_sha1 for kc in roller.credentials] == [result.new.thumbprint_sha1]
    assert len(roller.proofs) == 2


def test_a_list_read_without_keys_is_never_written_back(pair):
    other = certs.generate_self_signed()
    keyless = _kc(other.certificate, key=None, custom_key_identifier=other.thumbprint_sha1)
    store = InMemoryKeyCredentials([keyless])
    with pytest.raises(cr.CredentialChangeError, match="could drop them") as info:
        cr.upload_certificate(store, "obj", pair.certificate)
    assert "--self" in info.value.remedy and store.writes == 0
    store = InMemoryKeyCredentials([keyless, _kc(pair.certificate, key_id="k2")])
    with pytest.raises(cr.CredentialChangeError, match="nothing was changed"):
        cr.remove_certificate(store, "obj", pair.thumbprint_sha1)
    assert store.writes == 0
