"""The gateway's policy scope read live from a sandbox's policy engine (`meetgate serve
--sandbox-control URL`), contributed to meetgate through the entry-point group
``meetgate.policy_scopes`` so that the product carries no sandbox code."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from meetgate.config import Profile


class ControlApiPolicyScope:
    """The scope as the sandbox's policy engine sees it (its control API, on 127.0.0.1): an organizer
    is in scope when the app's id is among the policy's effective app ids for that user."""

    def __init__(self, control_url: str, tenant_id: str, app_id: str, ca_bundle: Path | None) -> None:
        context = ssl.create_default_context()
        if ca_bundle is not None:
            context.load_verify_locations(cafile=str(ca_bundle))
        self._http = httpx.Client(base_url=control_url.rstrip("/"), verify=context, timeout=10.0)
        self._tenant = tenant_id
        self._app = app_id.lower()

    def _effective_app_ids(self, user: str) -> set[str]:
        resp = self._http.get(f"/tenants/{self._tenant}/users/{user}/policy")
        if resp.status_code == 404:
            return set()
        resp.raise_for_status()
        return {str(a).lower() for a in resp.json().get("effectiveAppIds") or []}

    def contains(self, organizer: str) -> bool:
        return self._app in self._effective_app_ids(organizer)

    def organizers(self) -> frozenset[str]:
        tenant = self._http.get(f"/tenants/{self._tenant}").json()
        return frozenset(
            u["userPrincipalName"].lower()
            for u in tenant.get("users", [])
            if self.contains(u["userPrincipalName"])
        )


def from_profile(control_url: str, profile: Profile) -> ControlApiPolicyScope:
    """The ``meetgate.policy_scopes`` entry point: the profile's tenant and app against ``control_url``."""
    profile.require("tenant_id", "client_id")
    assert profile.tenant_id is not None and profile.client_id is not None
    return ControlApiPolicyScope(control_url, profile.tenant_id, profile.client_id, profile.ca_bundle)
