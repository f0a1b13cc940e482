"""Profile → the policy backends of runbook steps 4–5: Teams PowerShell (pwsh) or Graph."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from meetgate.config import ConfigError, Profile

if TYPE_CHECKING:
    from meetgate.admin.policy.model import DesiredPolicy
    from meetgate.graph.client import GraphClient

BACKENDS = ("powershell", "graph")


def pwsh_uses_access_tokens(profile: Profile, environ: Mapping[str, str] | None = None) -> bool:
    """Connect with ``-AccessTokens`` when asked (``MEETGATE_PWSH_CONNECT=tokens``) or when
    ``CreateFromPemFile`` cannot load the key (a PFX, or a passphrase-protected key); else the
    certificate."""
    env = os.environ if environ is None else environ
    choice = env.get("MEETGATE_PWSH_CONNECT", "").strip().lower()
    if choice in {"tokens", "certificate"}:
        return choice == "tokens"
    if choice:
        raise ConfigError(f"MEETGATE_PWSH_CONNECT must be 'tokens' or 'certificate', not {choice!r}")
    return (
        profile.pfx_path is not None or profile.private_key_path is None or profile.passphrase() is not None
    )


def teams_token_pair(profile: Profile) -> Callable[[], tuple[str, str]]:
    """Graph and Teams tokens acquired by MSAL with the profile's credential (for ``-AccessTokens``)."""
    from meetgate.admin.policy.powershell import TEAMS_RESOURCE_SCOPE
    from meetgate.composition.graph import graph_settings_from_profile
    from meetgate.graph.auth import TokenProvider

    settings = graph_settings_from_profile(profile)
    graph = TokenProvider(settings)
    teams = TokenProvider(replace(settings, graph_scope=TEAMS_RESOURCE_SCOPE))
    return lambda: (graph.get_token().token, teams.get_token().token)


def policy_backend(
    profile: Profile,
    backend: str,
    *,
    pwsh: str,
    desired: DesiredPolicy,
    graph_client: Callable[[], GraphClient],
    graph_users: Callable[[GraphClient], Any],
) -> Any:
    """The backend named ``backend`` for ``profile``: pwsh running the MicrosoftTeams cmdlets, or Graph's
    Teams policy assignment (``graph_client`` builds the client when first needed)."""
    if backend == "powershell":
        from meetgate.admin.policy.powershell import PowerShellBackend, PwshConnection, SubprocessPwshRunner

        profile.require("tenant_id", "client_id")
        conn = PwshConnection(
            str(profile.tenant_id),
            profile.client_id,
            profile.certificate_path,
            profile.private_key_path,
            tokens=teams_token_pair(profile) if pwsh_uses_access_tokens(profile) else None,
        )
        return PowerShellBackend(conn, SubprocessPwshRunner(tuple(shlex.split(pwsh))))
    if backend == "graph":
        from meetgate.admin.policy.graph import GraphPolicyBackend
        from meetgate.admin.policy.model import PolicyDefinition

        client = graph_client()
        return GraphPolicyBackend(
            client.http,
            PolicyDefinition(desired.identity, desired.app_ids, desired.description),
            users=lambda: graph_users(client),
        )
    raise ConfigError(f"unknown backend {backend!r}: use --backend powershell or --backend graph")
