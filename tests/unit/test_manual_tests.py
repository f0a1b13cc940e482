"""The manual-test kit's rendering (meetgate.admin.manual_tests) and the assertion it carries; the
kit run end to end with newman and the pwsh stand-in is tests/integration/test_validate_export.py."""

from __future__ import annotations

import datetime as dt
import json

import jwt
import pytest

from meetgate import certificates
from meetgate.admin import manual_tests as mt
from meetgate.graph.credentials import CertificateCredential
from meetgate.graph.errors import CredentialError

NOW = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)


def _spec(
    credential: mt.KitCredential, *, negative: bool = True, thumbprint: str | None = "AB12"
) -> mt.KitSpec:
    return mt.KitSpec(
        tenant_id="11111111-1111-1111-1111-111111111111",
        client_id="22222222-2222-2222-2222-222222222222",
        authority_url="https://login.microsoftonline.com/",
        graph_url="https://graph.microsoft.com",
        graph_scope="https://graph.microsoft.com/.default",
        policy_name="Tag:TeamsMeetingsIntegration",
        pilot=mt.TestUser("pilot-oid", "adele@contoso.com"),
        negative=mt.TestUser("other-oid", "megan@contoso.com") if negative else None,
        credential=credential,
        thumbprint=thumbprint,
        generated_at=NOW,
        meetgate_version="0.0.test",
    )


def _files(spec: mt.KitSpec) -> dict[str, mt.KitFile]:
    return {f.name: f for f in mt.build_kit(spec)}


def test_a_secret_profile_gets_the_secret_in_a_secret_file_and_no_powershell_script():
    files = _files(_spec(mt.KitCredential("secret", "s3cr3t-value"), thumbprint=None))
    assert set(files) == {mt.COLLECTION_FILE, mt.ENVIRONMENT_FILE, mt.README_FILE}
    assert [f.name for f in files.values() if f.secret] == [mt.ENVIRONMENT_FILE]
    env = json.loads(files[mt.ENVIRONMENT_FILE].text)
    assert {"key": "clientSecret", "value": "s3cr3t-value", "type": "secret", "enabled": True} in env[
        "values"
    ]
    assert "s3cr3t-value" not in files[mt.COLLECTION_FILE].text + files[mt.README_FILE].text
    token = json.loads(files[mt.COLLECTION_FILE].text)["item"][0]["request"]["body"]["urlencoded"]
    assert {f["key"] for f in token} == {"client_id", "scope", "grant_type", "client_secret"}
    assert "the secret itself" in files[mt.README_FILE].text


def test_the_collection_follows_the_runbook_and_uses_object_ids():
    expires = NOW + dt.timedelta(minutes=15)
    files = _files(_spec(mt.KitCredential("assertion", "eyJ.a.b", expires)))
    collection = json.loads(files[mt.COLLECTION_FILE].text)
    assert collection["info"]["schema"] == mt.POSTMAN_SCHEMA
    names = [i["name"] for i in collection["item"]]
    assert [n.split()[0] for n in names] == ["1", "2", "3", "4", "5"]
    assert "{{pilotUserId}}" in collection["item"][1]["request"]["url"]
    body = json.loads(collection["item"][1]["request"]["body"]["raw"])
    assert body["lobbyBypassSettings"] == {
        "scope": "everyone",
        "isDialInBypassEnabled": True,
    }  # the runbook's payload
    env = json.loads(files[mt.ENVIRONMENT_FILE].text)
    values = {v["key"]: v["value"] for v in env["values"]}
    assert (
        values["pilotUserId"] == "pilot-oid" and values["authorityUrl"] == "https://login.microsoftonline.com"
    )
    assert values["assertionExpiresAt"] == "2026-12-07 09:45:00 UTC"
    assert "valid until 2026-12-07 09:45:00 UTC" in env["description"]
    script = files[mt.POWERSHELL_FILE].text
    assert (
        script.index("Connect-MgGraph")
        < script.index("Connect-MicrosoftTeams")
        < script.index("New-MgUserOnlineMeeting")
    )
    assert "[string]$CertificateThumbprint = 'AB12'" in script


def test_without_a_negative_user_the_negative_steps_are_left_out_or_skipped():
    files = _files(_spec(mt.KitCredential("secret", "x"), negative=False))
    names = [i["name"] for i in json.loads(files[mt.COLLECTION_FILE].text)["item"]]
    assert len(names) == 4 and not any("outside the policy" in n for n in names)
    assert "SKIP  4" in files[mt.POWERSHELL_FILE].text


def test_the_credential_never_shows_in_its_repr():
    credential = mt.KitCredential("assertion", "eyJhbGciOi.secret.sig", NOW)
    assert "eyJ" not in repr(credential) and "<redacted>" in repr(credential)


def test_the_assertion_is_what_entra_expects_and_expires_when_asked():
    pair = certificates.generate_self_signed()
    credential = CertificateCredential(pair.private_key, pair.certificate)
    url = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    token = credential.client_assertion(url, "app-id", lifetime_seconds=300, now=1_800_000_000.7)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "PS256" and header["x5t#S256"] == certificates.x5t_s256(pair.certificate)
    claims = jwt.decode(
        token,
        pair.certificate.public_key(),
        algorithms=["PS256"],
        audience=url,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == "app-id"
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == 1_800_000_000
    with pytest.raises(CredentialError, match="between 1 second and 1 hour"):
        credential.client_assertion(url, "app-id", lifetime_seconds=7200, now=0)
