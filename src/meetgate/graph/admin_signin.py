"""An administrator's sign-in for provisioning: the device code flow through MSAL.

Runbook steps 1–3 need directory rights the integration app must never hold. The administrator
(Global Administrator, Application Administrator...) signs in with a public client — by default
Microsoft Graph Command Line Tools, a first-party app present in every tenant — and meetgate acts
with the resulting *delegated* token (``scp``). Given a :class:`~meetgate.graph.signin_cache.SigninCache`
the sign-in is kept between commands (MSAL's refresh token renews it silently); without one it is
kept in memory only.

:class:`DeviceCodeTokenSource` implements the client's ``TokenSource`` port, so the ordinary
:class:`~meetgate.graph.client.GraphClient` (retry, error mapping) carries the admin's calls:
:func:`admin_graph_client` wires it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import httpx

from meetgate.graph.auth import AccessToken, build_ssl_context
from meetgate.graph.errors import AuthenticationError, TransportError
from meetgate.graph.settings import DEFAULT_AUTHORITY_URL, DEFAULT_GRAPH_URL, GraphSettings
from meetgate.graph.signin_cache import SigninCache

log = logging.getLogger(__name__)

#: Microsoft Graph Command Line Tools (first-party public client, in every tenant)
GRAPH_COMMAND_LINE_TOOLS = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
#: delegated permissions provisioning needs
ADMIN_SCOPES = (
    "https://graph.microsoft.com/Application.ReadWrite.All",
    "https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All",
)


class PublicClient:
    """The "credential" of a public client: there is none; the user signs in instead."""

    kind = "public_client"
    is_weak = False
    warning = None

    def msal_credential(self) -> None:
        return None

    def describe(self) -> str:
        return "administrator sign-in (device code flow, delegated token)"

    def __repr__(self) -> str:
        return "PublicClient()"


class DeviceCodeTokenSource:
    """Delegated Graph tokens from the device code flow (``TokenSource`` port of the client).

    ``prompt`` receives Entra's instruction ("To sign in, use a web browser to open … and enter the
    code …"). The flow runs on first use and again when the token is about to expire — unless
    ``cache`` holds a sign-in MSAL can use or renew silently; then ``prompt`` hears "signed in as …".
    """

    def __init__(
        self,
        *,
        tenant: str,
        authority_url: str = DEFAULT_AUTHORITY_URL,
        client_id: str = GRAPH_COMMAND_LINE_TOOLS,
        scopes: Sequence[str] = ADMIN_SCOPES,
        ca_bundle: Path | None = None,
        prompt: Callable[[str], None] = print,
        timeout_seconds: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        cache: SigninCache | None = None,
    ) -> None:
        self.tenant = tenant
        self.authority = f"{authority_url.rstrip('/')}/{tenant}"
        self.client_id = client_id
        self.scopes = list(scopes)
        self._ca_bundle = ca_bundle
        self._prompt = prompt
        self._timeout = timeout_seconds
        self._transport = transport
        self._clock = clock
        self._cache = cache
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self._app: Any = None
        self._http: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"DeviceCodeTokenSource(authority={self.authority!r}, client_id={self.client_id!r})"

    def peek(self) -> AccessToken | None:
        token = self._token
        if token is not None and token.expires_on - self._clock() > 120:
            return token
        return None

    def get_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> AccessToken:
        with self._lock:
            token = self._token
            if token is not None and not force_refresh and token.expires_on - self._clock() > 120:
                return token
            if token is not None and rejected is not None and token.token != rejected:
                return token
            self._token = self._silent(force_refresh or rejected is not None) or self._sign_in()
            return self._token

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- internals --------------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._app is None:
            import msal

            from meetgate.graph.msal_http import MsalHttpxAdapter

            if self._transport is not None:
                self._http = httpx.Client(transport=self._transport, timeout=self._timeout)
            else:
                self._http = httpx.Client(
                    verify=build_ssl_context(self._ca_bundle), timeout=self._timeout, trust_env=False
                )
            try:
                self._app = msal.PublicClientApplication(
                    self.client_id,
                    authority=self.authority,
                    http_client=MsalHttpxAdapter(self._http),
                    instance_discovery=False,
                    validate_authority=False,
                    token_cache=self._cache.cache if self._cache is not None else msal.TokenCache(),
                )
            except ValueError as exc:
                raise AuthenticationError(
                    f"tenant {self.tenant!r} was not found at {self.authority} ({_first_line(exc)})",
                    code="tenant_not_found",
                    remedy="check tenant_id (or --tenant): a directory id GUID or a verified domain of the tenant",
                ) from None
            except httpx.TransportError as exc:
                raise TransportError(
                    f"cannot reach the sign-in endpoint {self.authority}: {type(exc).__name__}",
                    remedy="check authority_url, the network and ca_bundle",
                ) from None
        return self._app

    def _silent(self, force_refresh: bool) -> AccessToken | None:
        """The kept sign-in's token (renewed with its refresh token when due), or None."""
        if self._cache is None:
            return None
        app = self._client()
        accounts = app.get_accounts()
        if not accounts:
            return None
        try:
            result = app.acquire_token_silent_with_error(
                self.scopes, account=accounts[0], force_refresh=force_refresh
            )
        except httpx.TransportError as exc:
            raise TransportError(
                f"cannot reach the sign-in endpoint {self.authority}: {type(exc).__name__}",
                remedy="check authority_url, the network and ca_bundle",
            ) from None
        if not result or "access_token" not in result:
            reason = (result or {}).get("error") or "no usable token"
            log.info("the kept sign-in could not be renewed (%s); signing in again", reason)
            return None
        self._prompt(
            f"Signed in as {accounts[0].get('username') or 'the administrator'} "
            "(kept sign-in; `meetgate signout` forgets it)."
        )
        return self._keep(result, "signin_cache")

    def _keep(self, result: dict[str, Any], source: str) -> AccessToken:
        expires_in = float(result.get("expires_in") or 3599)
        if self._cache is not None:
            tid = (result.get("id_token_claims") or {}).get("tid")
            if isinstance(tid, str) and tid:
                self._cache.remember_tenant_id(tid)
            self._cache.save()
        return AccessToken(
            token=str(result["access_token"]),
            expires_at=dt.datetime.fromtimestamp(self._clock() + expires_in, dt.UTC),
            lifetime=expires_in,
            source=source,
        )

    def _sign_in(self) -> AccessToken:
        app = self._client()
        try:
            flow = app.initiate_device_flow(scopes=self.scopes)
        except httpx.TransportError as exc:
            raise TransportError(
                f"cannot reach the sign-in endpoint {self.authority}: {type(exc).__name__}",
                remedy="check authority_url, the network and ca_bundle",
            ) from None
        if "user_code" not in flow:
            raise _token_error("the device code request was refused", flow)
        self._prompt(str(flow.get("message") or f"enter code {flow['user_code']}"))
        try:
            result = app.acquire_token_by_device_flow(flow)
        except httpx.TransportError as exc:
            raise TransportError(
                f"lost the sign-in endpoint while waiting for the sign-in: {type(exc).__name__}",
                remedy="check the network and sign in again",
            ) from None
        if "access_token" not in result:
            raise _token_error("the administrator sign-in failed", result)
        return self._keep(result, "device_code")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _token_error(what: str, result: dict[str, Any]) -> AuthenticationError:
    import re

    description = str(result.get("error_description") or result.get("error") or "unknown error")
    first = description.splitlines()[0].strip()
    codes = result.get("error_codes") or []
    number = int(codes[0]) if codes and str(codes[0]).isdigit() else None
    if number is None:
        match = re.search(r"AADSTS(\d+)", description)
        number = int(match.group(1)) if match else None
    remedy = {
        "authorization_declined": "the sign-in was declined; sign in again and approve it",
        "expired_token": "the code expired before anyone signed in; run the command again",
    }.get(str(result.get("error")), "check tenant_id and that the account may sign in to this tenant")
    return AuthenticationError(
        f"{what}: {first}", aadsts_code=number, code=str(result.get("error") or "") or None, remedy=remedy
    )


def admin_settings(
    tenant: str,
    *,
    authority_url: str = DEFAULT_AUTHORITY_URL,
    graph_url: str = DEFAULT_GRAPH_URL,
    ca_bundle: Path | None = None,
    timeout_seconds: float = 30.0,
    client_id: str = GRAPH_COMMAND_LINE_TOOLS,
) -> GraphSettings:
    """GraphSettings for the admin's public client (no client credential: the user signs in)."""
    return GraphSettings(
        tenant_id=tenant,
        client_id=client_id,
        credential=cast(Any, PublicClient()),
        authority_url=authority_url,
        graph_url=graph_url,
        ca_bundle=ca_bundle,
        timeout_seconds=timeout_seconds,
    )


def admin_graph_client(
    tenant: str,
    *,
    authority_url: str = DEFAULT_AUTHORITY_URL,
    graph_url: str = DEFAULT_GRAPH_URL,
    ca_bundle: Path | None = None,
    timeout_seconds: float = 30.0,
    client_id: str = GRAPH_COMMAND_LINE_TOOLS,
    prompt: Callable[[str], None] = print,
    transport: httpx.BaseTransport | None = None,
    cache: SigninCache | None = None,
) -> Any:
    """A :class:`GraphClient` acting as the administrator who signs in with the device code flow."""
    from meetgate.graph.client import GraphClient

    settings = admin_settings(
        tenant,
        authority_url=authority_url,
        graph_url=graph_url,
        ca_bundle=ca_bundle,
        timeout_seconds=timeout_seconds,
        client_id=client_id,
    )
    tokens = DeviceCodeTokenSource(
        tenant=tenant,
        authority_url=authority_url,
        client_id=client_id,
        ca_bundle=ca_bundle,
        prompt=prompt,
        timeout_seconds=timeout_seconds,
        transport=transport,
        cache=cache,
    )
    return GraphClient(settings, transport=transport, tokens=tokens)
