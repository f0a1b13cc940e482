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


def graph_backend(profile: Profile) -> tuple[Any, Any, Any]:
    """(meetings port, token check, close) from the Graph client built for ``profile``."""
    import importlib
    import inspect

    from anyio import to_thread

    try:
        composition: Any = importlib.import_module("meetgate.composition")
        client_module: Any = importlib.import_module("meetgate.graph.client")
    except ImportError:
        raise ConfigError("this build of meetgate has no Graph client yet (meetgate.graph.client)") from None
    client = client_module.AsyncGraphClient(composition.graph_settings_from_profile(profile))

    async def token_check() -> None:
        result = client.tokens.get_token()
        if inspect.isawaitable(result):
            await result
        elif result is None:
            await to_thread.run_sync(client.tokens.get_token)

    async def close() -> None:
        closing = client.aclose() if hasattr(client, "aclose") else client.close()
        if inspect.isawaitable(closing):
            await closing

    return client.meetings, token_check, close
