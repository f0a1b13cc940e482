"""The sandbox's verified-token cache: a token is checked once, but its lifetime still counts."""

import time

import jwt
import pytest

from meetgate import certificates
from meetgate_sandbox.tokens import AccessTokenError, TokenIssuer


class Clock:
    def __init__(self) -> None:
        # the issuer reads it both when issuing and when checking
        self.now = time.time() + 2

    def __call__(self) -> float:
        return self.now


def _issue(issuer: TokenIssuer, lifetime: int = 60) -> str:
    return issuer.issue_app_token(
        tenant_id="t",
        app_id="a",
        app_display_name="A",
        service_principal_id="sp",
        roles=["OnlineMeetings.ReadWrite.All"],
        certificate=True,
        lifetime=lifetime,
    ).access_token


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def issuer(clock):
    return TokenIssuer(certificates.generate_private_key(), clock=clock)


def test_a_cached_token_still_expires(issuer, clock):
    token = _issue(issuer)
    assert issuer.verify(token)["appid"] == "a"
    assert issuer.verify(token)["appid"] == "a"  # from the cache
    clock.now += 60  # the issuer's own clock set iat/exp: exp = int(issue time) + 60
    with pytest.raises(AccessTokenError, match="expired"):
        issuer.verify(token)


def test_a_token_signed_by_another_key_is_never_cached(issuer):
    other = TokenIssuer(certificates.generate_private_key())
    forged = _issue(other)
    for _ in range(2):
        with pytest.raises(AccessTokenError):
            issuer.verify(forged)


def test_the_cache_is_bounded(issuer):
    issuer.VERIFIED_CACHE_SIZE = 3
    tokens = [_issue(issuer) for _ in range(5)]
    for token in tokens:
        issuer.verify(token)
    assert len(issuer._verified) == 3
    # an evicted token is verified again, not refused
    assert issuer.verify(tokens[0])["tid"] == "t"
    assert jwt.get_unverified_header(tokens[0])["kid"] == issuer.kid
