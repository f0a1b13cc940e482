"""Access tokens the sandbox issues and verifies: RS256 JWTs signed by one key per server.

The claims are those of Entra's v1.0 Graph tokens: app-only tokens carry ``roles`` (never ``scp``),
``idtyp`` app, ``appidacr`` 2 for a certificate and 1 for a secret, ``oid`` = the service
principal's object id; delegated tokens carry ``scp`` and the user's ``oid`` and ``upn``.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from meetgate import certificates
from meetgate_sandbox.apps import GRAPH_APP_ID, GRAPH_RESOURCE
from meetgate_sandbox.http import Caller

#: the directory role template id every app-only Graph token carries in ``wids``
_APP_WIDS = ["0997a1d0-0d1d-4acb-b408-d5ca73121e90"]


class AccessTokenError(Exception):
    """The bearer token is not acceptable; ``message`` is Graph's text for it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def sts_issuer(tenant_id: str) -> str:
    return f"https://sts.windows.net/{tenant_id}/"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str = ""
    expires_in: int = 0

    def __repr__(self) -> str:  # never show the token
        return f"IssuedToken(expires_in={self.expires_in})"


class TokenIssuer:
    """Signs and verifies the sandbox's access tokens."""

    #: verified tokens kept so a client's repeated bearer token is checked once (the hot path)
    VERIFIED_CACHE_SIZE = 4096

    def __init__(self, private_key: rsa.RSAPrivateKey, clock: Callable[[], float] = time.time) -> None:
        self._key = private_key
        #: the sandbox's clock for issuing and checking access tokens (the runtime adds
        #: ``clockOffsetSeconds`` to it, so tests let tokens expire without waiting)
        self.clock = clock
        #: token → its claims, for tokens whose signature, audience and issuer were checked
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.public_key = private_key.public_key()
        der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = certificates.b64url(hashlib.sha1(der, usedforsecurity=False).digest())

    def __repr__(self) -> str:
        return f"TokenIssuer(kid={self.kid!r})"

    @classmethod
    def load_or_create(cls, directory: Path | None) -> TokenIssuer:
        """Reuse ``token-signing.key.pem`` in ``directory`` so tokens survive a restart."""
        if directory is None:
            return cls(certificates.generate_private_key())
        path = directory / "token-signing.key.pem"
        if path.exists():
            return cls(certificates.load_private_key(path))
        key = certificates.generate_private_key()
        certificates.write_secret_file(path, certificates.private_key_pem(key), force=True)
        return cls(key)

    def jwks(self) -> dict[str, Any]:
        numbers = self.public_key.public_numbers()

        def _b64(value: int) -> str:
            return certificates.b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self.kid,
                    "x5t": self.kid,
                    "n": _b64(numbers.n),
                    "e": _b64(numbers.e),
                }
            ]
        }

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"typ": "JWT", "kid": self.kid, "x5t": self.kid}
        )

    def _times(self, lifetime: int) -> dict[str, int]:
        now = int(self.clock())
        return {"iat": now, "nbf": now, "exp": now + lifetime}

    def issue_app_token(
        self,
        *,
        tenant_id: str,
        app_id: str,
        app_display_name: str,
        service_principal_id: str,
        roles: list[str],
        certificate: bool,
        lifetime: int,
    ) -> IssuedToken:
        claims: dict[str, Any] = {
            "aud": GRAPH_RESOURCE,
            "iss": sts_issuer(tenant_id),
            **self._times(lifetime),
            "app_displayname": app_display_name,
            "appid": app_id,
            "appidacr": "2" if certificate else "1",
            "idp": sts_issuer(tenant_id),
            "idtyp": "app",
            "oid": service_principal_id,
            "rh": "0.sandbox.",
            "sub": service_principal_id,
            "tenant_region_scope": "NA",
            "tid": tenant_id,
            "uti": certificates.b64url(uuid.uuid4().bytes),
            "ver": "1.0",
            "wids": _APP_WIDS,
        }
        if roles:
            claims["roles"] = roles
        return IssuedToken(self._sign(claims), lifetime)

    def issue_delegated_token(
        self,
        *,
        tenant_id: str,
        app_id: str,
        app_display_name: str,
        user_id: str,
        upn: str,
        name: str,
        given_name: str,
        family_name: str,
        scopes: list[str],
        lifetime: int,
    ) -> IssuedToken:
        claims: dict[str, Any] = {
            "aud": GRAPH_RESOURCE,
            "iss": sts_issuer(tenant_id),
            **self._times(lifetime),
            "acr": "1",
            "amr": ["pwd"],
            "app_displayname": app_display_name,
            "appid": app_id,
            "appidacr": "0",
            "family_name": family_name,
            "given_name": given_name,
            "idtyp": "user",
            "name": name,
            "oid": user_id,
            "scp": " ".join(scopes),
            "sub": certificates.b64url(hashlib.sha256(f"{user_id}:{app_id}".encode()).digest()),
            "tid": tenant_id,
            "unique_name": upn,
            "upn": upn,
            "uti": certificates.b64url(uuid.uuid4().bytes),
            "ver": "1.0",
        }
        return IssuedToken(self._sign(claims), lifetime)

    def issue_id_token(self, *, tenant_id: str, client_id: str, user_id: str, upn: str, name: str) -> str:
        """An OpenID Connect v2.0 ID token for ``client_id`` (who signed in; not for calling APIs)."""
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": f"https://login.microsoftonline.com/{tenant_id}/v2.0",
            **self._times(3600),
            "name": name,
            "oid": user_id,
            "preferred_username": upn,
            "sub": certificates.b64url(hashlib.sha256(f"{user_id}:{client_id}:id".encode()).digest()),
            "tid": tenant_id,
            "ver": "2.0",
        }
        return self._sign(claims)

    def issue_notification_token(
        self, *, tenant_id: str, audience: str, app_id: str, lifetime: int = 3600
    ) -> str:
        """A ``validationTokens`` JWT of a rich change notification: issued by the tenant's v1.0 STS to
        ``audience`` (the subscribing app) on behalf of Graph's change tracking app ``app_id``."""
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": sts_issuer(tenant_id),
            **self._times(lifetime),
            "aio": certificates.b64url(uuid.uuid4().bytes),
            "appid": app_id,
            "appidacr": "2",
            "idp": sts_issuer(tenant_id),
            "tid": tenant_id,
            "uti": certificates.b64url(uuid.uuid4().bytes),
            "ver": "1.0",
        }
        return self._sign(claims)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this server issued, or :class:`AccessTokenError` with Graph's text.

        The signature, audience and issuer of a token never change, so a token that passed them is
        remembered (LRU, :data:`VERIFIED_CACHE_SIZE`) and later only its times are checked — exactly
        as PyJWT does (expired when ``exp <= now``, not yet valid when ``nbf > now``).
        """
        claims = self._verified.get(token)
        if claims is not None:
            now = self.clock()
            if float(claims["exp"]) <= now or float(claims["nbf"]) > now:
                del self._verified[token]
                raise AccessTokenError("Access token has expired or is not yet valid.")
            self._verified.move_to_end(token)
            return claims
        claims = self._verify_uncached(token)
        self._verified[token] = claims
        if len(self._verified) > self.VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _verify_uncached(self, token: str) -> dict[str, Any]:
        if token.count(".") != 2:
            raise AccessTokenError("IDX14100: JWT is not well formed, there are no dots (.).")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                audience=[GRAPH_RESOURCE, f"{GRAPH_RESOURCE}/", GRAPH_APP_ID],
                options={
                    "require": ["exp", "nbf", "iss", "tid", "aud"],
                    "verify_exp": False,  # checked below against the sandbox's clock
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            raise AccessTokenError("Access token has expired or is not yet valid.") from None
        except jwt.InvalidAudienceError:
            raise AccessTokenError("Access token validation failure. Invalid audience.") from None
        except jwt.DecodeError as exc:
            if isinstance(exc, jwt.InvalidSignatureError):
                raise AccessTokenError("Access token validation failure.") from None
            raise AccessTokenError("CompactToken parsing failed with error code: 80049217") from None
        except jwt.InvalidTokenError:
            raise AccessTokenError("Access token validation failure.") from None
        if claims.get("iss") != sts_issuer(str(claims.get("tid"))):
            raise AccessTokenError("Access token validation failure. Invalid issuer.")
        now = self.clock()
        try:
            expired = float(claims["exp"]) <= now or float(claims["nbf"]) > now
        except (TypeError, ValueError):
            raise AccessTokenError("Access token validation failure.") from None
        if expired:
            raise AccessTokenError("Access token has expired or is not yet valid.")
        return claims


def caller_from_claims(claims: dict[str, Any]) -> Caller:
    scp = str(claims.get("scp") or "")
    delegated = bool(scp) or claims.get("idtyp") == "user"
    return Caller(
        tenant_id=str(claims["tid"]),
        app_id=str(claims.get("appid") or ""),
        service_principal_id="" if delegated else str(claims.get("oid") or ""),
        roles=frozenset(claims.get("roles") or ()),
        delegated_user_id=str(claims.get("oid")) if delegated else None,
        scopes=frozenset(scp.split()),
    )


def b64_der(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")
