"""App-only access tokens through MSAL, and what a token says about itself.

:class:`TokenProvider` asks MSAL (client credentials, certificate or secret) for a Graph token, keeps
it in memory, and refreshes it *before* it expires (five minutes ahead, or a tenth of its lifetime for
short-lived tokens). After a 401 the HTTP layer calls ``get_token(force_refresh=True, rejected=...)``
once; if several threads do so at the same time only one new token is fetched.

MSAL talks through :class:`~meetgate.graph.msal_http.MsalHttpxAdapter` over an ``httpx.Client`` whose
TLS trust is an explicit ``ssl.SSLContext`` (system CAs plus ``ca_bundle``): MSAL's own requests
session would take ``REQUESTS_CA_BUNDLE`` over anything we ask.

:func:`decode_claims` reads a token's claims *without verifying it* — for diagnosis only (is it
app-only, which roles does it carry), never for a security decision.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from meetgate.graph.credentials import report_weak_credential
from meetgate.graph.errors import (
    AuthenticationError,
    CredentialError,
    InvalidTokenError,
    TokenServiceUnavailable,
    TransportError,
)
from meetgate.graph.retry import RetryPolicy
from meetgate.graph.settings import GraphSettings

if TYPE_CHECKING:
    from meetgate.graph.msal_http import MsalHttpxAdapter

log = logging.getLogger("meetgate.graph.auth")

#: Application permissions the meetings integration needs (runbook step 2).
MEETINGS_ROLES = ("OnlineMeetings.ReadWrite.All",)
#: Any one of these lets the client resolve UPNs through /users.
USER_READ_ROLES = (
    "User.Read.All",
    "User.ReadBasic.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)


def build_ssl_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """The system's trusted CAs, plus ``ca_bundle`` (the sandbox's CA) when given."""
    context = ssl.create_default_context()
    if ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise CredentialError(
                f"cannot load CA bundle {ca_bundle}: {exc}",
                remedy="ca_bundle must be a PEM file of CA certificates (the sandbox writes ca.pem).",
            ) from None
    return context


# --- tokens and claims ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when it expires. The token never appears in the repr."""

    token: str = field(repr=False)
    expires_at: dt.datetime
    #: seconds of validity the token had when we got it (sets the refresh margin)
    lifetime: float = 3600.0
    #: "identity_provider" (fresh from Entra) or "cache" (MSAL's cache) or "static"
    source: str = "identity_provider"

    @property
    def expires_on(self) -> float:
        return self.expires_at.timestamp()

    def seconds_left(self, now: float | None = None) -> float:
        return self.expires_on - (time.time() if now is None else now)

    @property
    def claims(self) -> TokenClaims:
        return decode_claims(self.token)


@dataclass(frozen=True)
class TokenClaims:
    """What an access token says about itself (decoded, **not** verified)."""

    is_app_only: bool
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    appid: str | None = None
    appidacr: str | None = None
    tid: str | None = None
    oid: str | None = None
    idtyp: str | None = None
    aud: str | None = None
    iss: str | None = None
    expires_at: dt.datetime | None = None
    not_before: dt.datetime | None = None
    upn: str | None = None

    @property
    def credential_kind(self) -> str:
        """How the app authenticated: ``certificate`` (appidacr 2), ``client_secret`` (1), ``public`` (0)."""
        return {"2": "certificate", "1": "client_secret", "0": "public"}.get(self.appidacr or "", "unknown")

    def missing_roles(self, required: Iterable[str]) -> list[str]:
        """The roles of ``required`` that this token does not carry (case-insensitive)."""
        have = {role.lower() for role in self.roles}
        return [role for role in required if role.lower() not in have]

    def has_any_role(self, any_of: Iterable[str]) -> bool:
        have = {role.lower() for role in self.roles}
        return any(role.lower() in have for role in any_of)


def _b64url_json(part: str) -> dict[str, Any]:
    padded = part + "=" * (-len(part) % 4)
    data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _epoch(value: Any) -> dt.datetime | None:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return None


def decode_claims(token: str) -> TokenClaims:
    """Decode a JWT access token's payload without verifying the signature (diagnosis only)."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise InvalidTokenError(
            "the access token is not a JWT", remedy="Pass the access_token value of a token response."
        )
    try:
        claims = _b64url_json(parts[1])
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidTokenError(
            "the access token's payload cannot be decoded",
            remedy="Pass the access_token value of a token response.",
        ) from None
    roles = claims.get("roles") or []
    scp = claims.get("scp") or ""
    scopes = tuple(scp.split()) if isinstance(scp, str) else ()
    idtyp = claims.get("idtyp")
    is_app_only = not scopes and (idtyp in (None, "app"))
    return TokenClaims(
        is_app_only=is_app_only,
        roles=tuple(str(r) for r in roles) if isinstance(roles, list) else (),
        scopes=scopes,
        appid=claims.get("appid") or claims.get("azp"),
        appidacr=str(claims.get("appidacr") or claims.get("azpacr") or "") or None,
        tid=claims.get("tid"),
        oid=claims.get("oid"),
        idtyp=idtyp,
        aud=claims.get("aud"),
        iss=claims.get("iss"),
        expires_at=_epoch(claims.get("exp")),
        not_before=_epoch(claims.get("nbf")),
        upn=claims.get("upn") or claims.get("preferred_username"),
    )


# --- providers --------------------------------------------------------------------------------------


class TokenSource(Protocol):
    """What the HTTP layer needs from a token provider (a port: fakes implement it in tests)."""

    def get_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> AccessToken: ...

    def peek(self) -> AccessToken | None: ...


class StaticTokenProvider:
    """A fixed token (e.g. one handed over by a caller). It cannot be refreshed."""

    def __init__(self, token: str, *, expires_at: dt.datetime | None = None) -> None:
        claims_exp = None
        with contextlib.suppress(InvalidTokenError):
            claims_exp = decode_claims(token).expires_at
        expiry = expires_at or claims_exp or (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        self._token = AccessToken(token=token, expires_at=expiry, source="static")

    def get_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> AccessToken:
        return self._token

    def peek(self) -> AccessToken | None:
        return self._token

    def __repr__(self) -> str:
        return "StaticTokenProvider(<token hidden>)"


_AADSTS = re.compile(r"AADSTS(\d+)")
_TRANSIENT_TOKEN_ERRORS = {"temporarily_unavailable", "server_error"}


class TokenProvider:
    """App-only Graph tokens for one app in one tenant, through MSAL (client credentials)."""

    def __init__(
        self,
        settings: GraphSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        refresh_margin_seconds: float = 300.0,
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._http_client = http_client
        self._owns_client = http_client is None
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._margin = refresh_margin_seconds
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self._app: Any = None
        self._adapter: MsalHttpxAdapter | None = None
        #: number of tokens fetched from the identity provider or MSAL (for tests and metrics)
        self.acquisitions = 0
        report_weak_credential(settings.credential, settings.client_id)  # once per app and process

    # -- public ---------------------------------------------------------------------------------

    def peek(self) -> AccessToken | None:
        """The cached token when it is still comfortably valid, else None (never does I/O)."""
        token = self._token
        if token is not None and not self._needs_refresh(token):
            return token
        return None

    def get_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> AccessToken:
        """A valid token; fetched when missing, about to expire, or ``force_refresh``.

        ``rejected`` is the token Graph just refused: a forced refresh is skipped when another thread
        has already replaced it.
        """
        token = self._token
        if token is not None and not force_refresh and not self._needs_refresh(token):
            return token
        with self._lock:
            token = self._token
            if token is not None:
                replaced = rejected is not None and token.token != rejected
                if (not force_refresh or replaced) and not self._needs_refresh(token):
                    return token
            self._token = self._acquire()
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None
            self._evict_msal_cache()

    def claims(self) -> TokenClaims:
        return self.get_token().claims

    def close(self) -> None:
        if self._owns_client and self._http_client is not None:
            self._http_client.close()
            self._http_client = None

    def __repr__(self) -> str:
        return f"TokenProvider(tenant_id={self.settings.tenant_id!r}, client_id={self.settings.client_id!r})"

    # -- internals --------------------------------------------------------------------------------

    def _needs_refresh(self, token: AccessToken) -> bool:
        margin = min(self._margin, token.lifetime * 0.1)
        return token.expires_on - self._clock() <= margin

    def _client(self) -> httpx.Client:
        if self._http_client is None:
            if self._transport is not None:
                self._http_client = httpx.Client(
                    transport=self._transport, timeout=self.settings.timeout_seconds
                )
            else:
                self._http_client = httpx.Client(
                    verify=build_ssl_context(self.settings.ca_bundle),
                    timeout=self.settings.timeout_seconds,
                    trust_env=False,
                )
        return self._http_client

    def _msal(self) -> Any:
        if self._app is None:
            import msal

            from meetgate.graph.msal_http import MsalHttpxAdapter

            self._adapter = MsalHttpxAdapter(self._client(), retry=self._retry, sleep=self._sleep)
            self._app = msal.ConfidentialClientApplication(
                self.settings.client_id,
                authority=self.settings.authority,
                client_credential=self.settings.credential.msal_credential(),
                http_client=self._adapter,
                instance_discovery=False,
                validate_authority=False,
                token_cache=msal.TokenCache(),
            )
        return self._app

    def _evict_msal_cache(self) -> None:
        if self._app is None:
            return
        import msal

        cache = self._app.token_cache
        for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
            cache.remove_at(item)

    def _acquire(self) -> AccessToken:
        """One token from MSAL. Its HTTP requests are retried by the adapter (``graph/msal_http.py``)."""
        import msal

        scope = [self.settings.graph_scope]
        try:
            app = self._msal()
            # We only get here when our own copy is missing, due for refresh or rejected: MSAL's cache
            # (which judges expiry by its own clock and margin) must not hand back the same token.
            self._evict_msal_cache()
            result = app.acquire_token_for_client(scopes=scope)
        except httpx.TransportError as exc:
            raise TransportError(
                f"cannot reach the token endpoint at {self.settings.authority_url}: {type(exc).__name__}",
                remedy="Check authority_url, the network and ca_bundle (the sandbox's CA).",
            ) from None
        except msal.exceptions.MsalServiceError as exc:
            # MSAL raises this for a failing discovery answer (and for a failure it had cached)
            raise self._unavailable(str(exc)) from None
        except CredentialError:
            raise
        except ValueError as exc:
            failure = self._adapter.last_failure if self._adapter is not None else None
            if failure is not None and failure.status:  # discovery answered 429 after every retry
                raise self._unavailable(str(exc)) from None
            text = f"{exc} {exc.__context__ or ''}"
            if "discovery" in text.lower() or "authority configuration" in text.lower():
                raise self._discovery_error(text) from None
            raise AuthenticationError(
                f"MSAL refused the configuration of app {self.settings.client_id}: {exc}",
                remedy="Check authority_url, tenant_id and the credential in the profile.",
            ) from None
        if not isinstance(result, dict):
            raise AuthenticationError("the token service returned no result")
        if "access_token" in result:
            self.acquisitions += 1
            expires_in = float(result.get("expires_in") or 3599)
            source = str(result.get("token_source") or "identity_provider")
            log.debug("access token obtained (%s), valid %.0fs", source, expires_in)
            return AccessToken(
                token=str(result["access_token"]),
                expires_at=dt.datetime.fromtimestamp(self._clock() + expires_in, dt.UTC),
                lifetime=expires_in,
                source=source,
            )
        failure = self._adapter.last_failure if self._adapter is not None else None
        if (failure is not None and failure.status) or result.get("error") in _TRANSIENT_TOKEN_ERRORS:
            raise self._unavailable(str(result.get("error") or "no token"))
        raise self._token_error(result)

    def _unavailable(self, detail: str) -> TokenServiceUnavailable:
        failure = self._adapter.last_failure if self._adapter is not None else None
        status = failure.status if failure is not None else 0
        what = (
            "tenant discovery" if failure is not None and "openid-configuration" in failure.url else "token"
        )
        # the status is shown by GraphError itself; without one, say what MSAL saw
        answer = "" if status else f" ({detail.splitlines()[0][:120]})" if detail else ""
        return TokenServiceUnavailable(
            f"the identity platform's {what} endpoint at {self.settings.authority_url} kept failing"
            f"{answer} for app {self.settings.client_id}",
            status=status if status else 503,
            code="token_service_unavailable",
            retry_after=failure.retry_after if failure is not None else None,
        )

    def _token_error(self, result: dict[str, Any]) -> AuthenticationError:
        description = str(result.get("error_description") or result.get("error") or "unknown error")
        first_line = description.splitlines()[0].strip() if description else ""
        codes = result.get("error_codes") or []
        code_number: int | None = int(codes[0]) if codes and str(codes[0]).isdigit() else None
        if code_number is None:
            match = _AADSTS.search(description)
            code_number = int(match.group(1)) if match else None
        return AuthenticationError(
            f"the token endpoint refused app {self.settings.client_id}: {first_line}",
            aadsts_code=code_number,
            code=str(result.get("error") or "") or None,
            request_id=result.get("trace_id"),
            client_request_id=result.get("correlation_id"),
        )

    def _discovery_error(self, text: str) -> AuthenticationError:
        match = _AADSTS.search(text)
        code_number = int(match.group(1)) if match else None
        description = ""
        brace = text.find("{")
        if brace >= 0:
            try:
                body = json.loads(text[brace:])
                description = str(body.get("error_description", "")).splitlines()[0]
            except (ValueError, AttributeError, IndexError):
                description = ""
        # Entra's paragraph ("Check to make sure… subscription administrator…"): its first sentence
        # says what happened; the remedy says what to do
        description = description.split(". ", 1)[0].rstrip(".") + "." if description else ""
        return AuthenticationError(
            f"tenant discovery failed for {self.settings.authority}"
            + (f": {description}" if description else ""),
            aadsts_code=code_number or 90002,
            code="invalid_tenant" if (code_number or 90002) == 90002 else None,
        )
