"""The sign-in behind ``meetgate setup`` and ``meetgate cert``: an administrator by device code, an
automation app (``--as-app PROFILE``), or the integration app itself (``--self``).

Imported lazily by the commands (it pulls in httpx and MSAL).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meetgate.admin.signin import AdminRights, admin_rights
from meetgate.config import ConfigError, Profile, config_path, load_profile
from meetgate.graph.applications import ApplicationsService
from meetgate.graph.client import GraphClient


@dataclass
class Session:
    """A Graph client acting for someone, with what they may do to app registrations."""

    client: GraphClient
    service: ApplicationsService
    rights: AdminRights
    #: the tenant's directory id, from the token (the profile may name a domain)
    tenant_id: str

    def close(self) -> None:
        self.client.close()
        close = getattr(self.client.tokens, "close", None)
        if callable(close):
            close()


def _session(client: GraphClient, rights: AdminRights, tenant_id: str) -> Session:
    return Session(client, ApplicationsService(client.http), rights, tenant_id)


def open_session(
    profile: Profile,
    *,
    config: Path | None,
    as_app: str | None = None,
    as_self: bool = False,
    tenant: str | None = None,
    admin_client_id: str | None = None,
    prompt: Any = None,
) -> Session:
    """Sign in and find out what the identity may do. Nothing is changed here."""
    from meetgate.composition import graph_client_from_profile

    if as_app and as_self:
        raise ConfigError("use either --as-app PROFILE or --self, not both")
    if tenant is not None:
        from meetgate.graph.identifiers import tenant_problem

        problem = tenant_problem(tenant)
        if problem:
            raise ConfigError(f"--tenant {problem}")
    if as_app or as_self:
        acting = load_profile(config, as_app) if as_app else profile
        if tenant and acting.tenant_id and tenant.lower() != acting.tenant_id.lower():
            raise ConfigError(
                f"--tenant {tenant} differs from profile '{acting.name}' tenant {acting.tenant_id}"
            )
        client = graph_client_from_profile(acting)
        try:
            claims = client.token_claims()
        except Exception:
            client.close()
            raise
        rights = admin_rights(
            is_app_only=True, name=claims.appid or str(acting.client_id), permissions=claims.roles
        )
        return _session(client, rights, claims.tid or str(acting.tenant_id))

    from meetgate.graph.admin_signin import GRAPH_COMMAND_LINE_TOOLS, admin_graph_client
    from meetgate.graph.signin_cache import SigninCache, cache_folder

    target = tenant or profile.tenant_id
    if not target:
        if profile.not_found:
            raise ConfigError(f"{profile.not_found}: check --config and --profile, or pass --tenant")
        raise ConfigError(
            f"profile '{profile.name}' has no tenant_id: pass --tenant (the directory id or a verified domain)"
        )
    client = admin_graph_client(
        target,
        authority_url=profile.authority_url,
        graph_url=profile.graph_url,
        ca_bundle=profile.ca_bundle,
        timeout_seconds=profile.timeout_seconds,
        client_id=admin_client_id or GRAPH_COMMAND_LINE_TOOLS,
        prompt=prompt or print,
        cache=SigninCache(cache_folder(config_path(config)), profile.name, target),
    )
    try:
        claims = client.token_claims()
        service = ApplicationsService(client.http)
        role_ids = [r.role_template_id for r in service.my_directory_roles() if r.role_template_id]
    except Exception:
        client.close()
        raise
    rights = admin_rights(
        is_app_only=False,
        name=claims.upn or claims.oid or "the signed-in user",
        permissions=claims.scopes,
        role_template_ids=role_ids,
    )
    return Session(client, service, rights, claims.tid or target)


def settings_file(config: Path | None) -> Path:
    return config_path(config)


def relative_to_config(path: Path, config_file: Path) -> Path:
    """Paths written into the toml are relative to it when they live under its folder."""
    try:
        return path.resolve().relative_to(config_file.resolve().parent)
    except ValueError:
        return path.resolve()
