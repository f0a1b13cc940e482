"""The sandbox's proof-of-possession check for addKey / removeKey."""

from __future__ import annotations

import datetime as dt
import time

import jwt
import pytest

from meetgate import certificates as certs
from meetgate.graph.applications import key_proof
from meetgate_sandbox.app_registrations import verify_proof
from meetgate_sandbox.apps import Application, KeyCredential
from meetgate_sandbox.http import GraphErrorResponse


@pytest.fixture(scope="module")
def pair():
    return certs.generate_self_signed()


def _app(*pairs, expired=()):
    app = Application(id="obj-1", app_id="app-1", display_name="A", created=dt.datetime.now(dt.UTC))
    app.key_credentials = [KeyCredential.from_certificate(p.certificate) for p in pairs]
    for p in expired:
        kc = KeyCredential.from_certificate(p.certificate)
        kc.end = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        app.key_credentials.append(kc)
    return app


def test_a_proof_from_a_current_key_is_accepted(pair):
    other = certs.generate_self_signed()
    app = _app(other, pair)
    assert (
        verify_proof(app, key_proof(pair.private_key, pair.certificate, "obj-1")).thumbprint_sha1
        == pair.thumbprint_sha1
    )


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"aud": "00000002-0000-0000-c000-000000000000", "iss": "someone-else"}, "Invalid issuer"),
        ({"aud": "https://graph.microsoft.com", "iss": "obj-1"}, "Audience"),
    ],
)
def test_wrong_claims_are_refused(pair, claims, message):
    now = int(time.time())
    proof = jwt.encode({**claims, "nbf": now, "exp": now + 600}, pair.private_key, algorithm="RS256")
    with pytest.raises(GraphErrorResponse, match=message):
        verify_proof(_app(pair), proof)


def test_expired_too_long_unsigned_and_foreign_proofs_are_refused(pair):
    old = time.time() - 3600
    with pytest.raises(GraphErrorResponse, match="expired"):
        verify_proof(_app(pair), key_proof(pair.private_key, pair.certificate, "obj-1", now=old))
    now = int(time.time())
    long_lived = jwt.encode(
        {"aud": "00000002-0000-0000-c000-000000000000", "iss": "obj-1", "nbf": now, "exp": now + 3600},
        pair.private_key,
        algorithm="RS256",
    )
    with pytest.raises(GraphErrorResponse, match="10 minutes"):
        verify_proof(_app(pair), long_lived)
    stranger = certs.generate_self_signed()
    with pytest.raises(GraphErrorResponse, match="not signed by a current certificate"):
        verify_proof(_app(pair), key_proof(stranger.private_key, stranger.certificate, "obj-1"))
    with pytest.raises(GraphErrorResponse, match="required"):
        verify_proof(_app(pair), None)


def test_an_app_without_a_valid_certificate_cannot_use_addkey(pair):
    with pytest.raises(GraphErrorResponse, match="no valid certificate") as info:
        verify_proof(_app(expired=[pair]), key_proof(pair.private_key, pair.certificate, "obj-1"))
    assert info.value.status == 400
