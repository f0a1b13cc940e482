"""Composition for `meetgate serve` and `meetgate consumers`: profile → store, policy scope, Graph.

Imported only inside those commands (it pulls in httpx, the gateway and the store).
"""

from __future__ import annotations

import csv
import ssl
import tomllib
from pathlib import Path
from typing import Any

import httpx

from meetgate.config import ConfigError, Profile
from meetgate.gateway.ports import PolicyScope
from meetgate.gateway.scope import StaticPolicyScope


def file_policy_scope(path: Path) -> StaticPolicyScope:
    """The organizers a desired-state policy file approves (``[organizers] users`` and ``csv``)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the policy file {path}: {exc}") from None
    section = data.get("organizers", {})
    users: list[str] = [str(u) for u in section.get("users", [])]
    for name in section.get("csv", []):
        csv_path = Path(name) if Path(name).is_absolute() else path.parent / name
        with csv_path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                value = row.get("upn") or row.get("user") or row.get("userPrincipalName") or ""
                if value.strip():
                    users.append(value.strip())
    return StaticPolicyScope(users)


class ControlApiPolicyScope:
    """The scope as the sandbox's policy engine sees it (its control API, on 127.0.0.1)."""

    def __init__(self, control_url: str, tenant_id: str, app_id: str, ca_bundle: Path | None) -> None:
        context = ssl.create_default_context()
        if ca_bundle is not None:
            context.load_verify_locations(cafile=str(ca_bundle))
        self._http = httpx.Client(base_url=control_url.rstrip("/"), verify=context, timeout=10.0)
        self._tenant = tenant_id
        self._app = app_id.lower()

    def _effective_app_ids(self, user: str) -> set[str]:
        resp = self._http.get(f"/_sandbox/tenants/{self._tenant}/users/{user}/policy")
        if resp.status_code == 404:
            return set()
        resp.raise_for_status()
        effective: Any = resp.json().get("effective")
        if not isinstance(effective, dict):
            return set()
        inner = effective.get("policy")
        policy: dict[str, Any] = inner if isinstance(inner, dict) else effective
        return {str(a).lower() for a in policy.get("appIds", [])}

    def contains(self, organizer: str) -> bool:
        return self._app in self._effective_app_ids(organizer)

    def organizers(self) -> frozenset[str]:
        tenant = self._http.get(f"/_sandbox/tenants/{self._tenant}").json()
        return frozenset(
            u["userPrincipalName"].lower()
            for u in tenant.get("users", [])
            if self.contains(u["userPrincipalName"])
        )


def policy_scope(profile: Profile, sandbox_control: str | None) -> PolicyScope:
    if sandbox_control:
        profile.require("tenant_id", "client_id")
        assert profile.tenant_id is not None and profile.client_id is not None
        return ControlApiPolicyScope(sandbox_control, profile.tenant_id, profile.client_id, profile.ca_bundle)
    if profile.policy_file is not None:
        return file_policy_scope(profile.policy_file)
    raise ConfigError(
        "the gateway needs the application access policy scope to check organizers against: set "
        "policy_file in the profile (or MEETGATE_POLICY_FILE), or pass --sandbox-control URL"
    )


def open_store(profile: Profile) -> Any:
    from meetgate.store import Store

    return Store.open(profile.store_url)


def graph_backend(profile: Profile, redis_prefix: str = "meetgate:") -> tuple[Any, Any, Any]:
    """(meetings service, token check, close) of an async Graph client for ``profile``.

    With ``redis_url`` set, replicas share access tokens through Redis.
    """
    from anyio import to_thread

    from meetgate.composition import graph_settings_from_profile, limiter_from_profile
    from meetgate.graph.auth import TokenProvider
    from meetgate.graph.client import AsyncGraphClient

    settings = graph_settings_from_profile(profile)
    tokens: Any = None
    if profile.redis_url:
        from meetgate.gateway.tokens import RedisSharedTokens

        tokens = RedisSharedTokens(
            TokenProvider(settings),
            profile.redis_url,
            key=f"{redis_prefix}token:{settings.tenant_id}:{settings.client_id}",
        )
    # the adaptive Graph limiter: shared through Redis with other replicas and bulk jobs of this app
    limiter = limiter_from_profile(profile, max_concurrency=256)
    client = AsyncGraphClient(settings, tokens=tokens, limiter=limiter)

    async def token_check() -> None:
        if client.tokens.peek() is None:
            await to_thread.run_sync(client.tokens.get_token)

    return client.meetings, token_check, client.aclose
