"""Profile → Graph: settings, sync and async clients, the adaptive limiter, a client for a handed-over
token."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from meetgate.config import ConfigError, Profile

if TYPE_CHECKING:
    from meetgate.graph.client import AsyncGraphClient, GraphClient
    from meetgate.graph.limiter import AdaptiveLimiter
    from meetgate.graph.retry import RetryPolicy
    from meetgate.graph.settings import GraphSettings


def graph_settings_from_profile(profile: Profile, environ: Mapping[str, str] | None = None) -> GraphSettings:
    """GraphSettings for ``profile``: certificate (PFX, or PEM key + certificate), else client secret.

    Raises :class:`~meetgate.config.ConfigError` naming what is missing, and
    :class:`~meetgate.graph.errors.CredentialError` when a key or certificate cannot be used.
    """
    from meetgate.graph.credentials import CertificateCredential, ClientSecretCredential
    from meetgate.graph.settings import GraphSettings

    env = os.environ if environ is None else environ
    profile.require("tenant_id", "client_id")
    credential: CertificateCredential | ClientSecretCredential
    if profile.pfx_path is not None:
        credential = CertificateCredential.from_pfx(
            profile.pfx_path, profile.passphrase(env), passphrase_env=profile.passphrase_env
        )
    elif profile.private_key_path is not None or profile.certificate_path is not None:
        profile.require("private_key_path", "certificate_path")
        assert profile.private_key_path is not None and profile.certificate_path is not None
        credential = CertificateCredential.from_pem_files(
            profile.private_key_path,
            profile.certificate_path,
            profile.passphrase(env),
            passphrase_env=profile.passphrase_env,
        )
    else:
        secret = profile.client_secret(env)
        if not secret:
            raise ConfigError(
                f"profile '{profile.name}' has no credential: set private_key_path + certificate_path "
                f"(or pfx_path), or put a client secret in ${profile.client_secret_env} "
                "(certificates are recommended); `meetgate cert new` makes one"
            )
        credential = ClientSecretCredential(secret)
    assert profile.tenant_id is not None and profile.client_id is not None
    return GraphSettings(
        tenant_id=profile.tenant_id,
        client_id=profile.client_id,
        credential=credential,
        authority_url=profile.authority_url,
        graph_url=profile.graph_url,
        graph_scope=profile.graph_scope,
        ca_bundle=profile.ca_bundle,
        timeout_seconds=profile.timeout_seconds,
        policy_name=profile.policy_name,
    )


def graph_client_from_profile(
    profile: Profile,
    environ: Mapping[str, str] | None = None,
    *,
    limiter: AdaptiveLimiter | None = None,
    retry: RetryPolicy | None = None,
) -> GraphClient:
    from meetgate.graph.client import GraphClient

    return GraphClient(graph_settings_from_profile(profile, environ), limiter=limiter, retry=retry)


def async_graph_client_from_profile(
    profile: Profile,
    environ: Mapping[str, str] | None = None,
    *,
    limiter: AdaptiveLimiter | None = None,
    retry: RetryPolicy | None = None,
    token_retry: RetryPolicy | None = None,
) -> AsyncGraphClient:
    """The async client for ``profile``; ``token_retry`` (default: ``retry``) governs the identity
    platform's requests, which long jobs keep on the standard budget while Graph calls get more."""
    from meetgate.graph.client import AsyncGraphClient

    return AsyncGraphClient(
        graph_settings_from_profile(profile, environ), limiter=limiter, retry=retry, token_retry=token_retry
    )


def limiter_from_profile(profile: Profile, **options: float | int | bool | None) -> AdaptiveLimiter:
    """The adaptive Graph limiter for ``profile``'s app: shared through Redis when ``redis_url`` is
    set (every process calling Graph as this app in this tenant then keeps to one budget), else in
    this process only. ``options`` go to :class:`~meetgate.graph.limiter.AdaptiveLimiter`."""
    from meetgate.graph.limiter import AdaptiveLimiter, LimiterStore, RedisLimiterStore

    store: LimiterStore | None = None
    if profile.redis_url:
        profile.require("tenant_id", "client_id")
        store = RedisLimiterStore.from_url(profile.redis_url, f"{profile.tenant_id}:{profile.client_id}")
    return AdaptiveLimiter(store=store, **options)  # type: ignore[arg-type]


def graph_client_with_token(profile: Profile, access_token: str) -> GraphClient:
    """A client that uses ``access_token`` (e.g. the one a third-party app was configured with) instead
    of signing in; the profile's credential is not needed, only its tenant, app and URLs."""
    from meetgate.graph.auth import StaticTokenProvider
    from meetgate.graph.client import GraphClient
    from meetgate.graph.credentials import ClientSecretCredential
    from meetgate.graph.errors import GraphError
    from meetgate.graph.settings import GraphSettings

    profile.require("tenant_id", "client_id")
    try:
        settings = graph_settings_from_profile(profile)
    except (ConfigError, GraphError):  # no credential needed: the token is handed over
        assert profile.tenant_id is not None and profile.client_id is not None
        settings = GraphSettings(
            tenant_id=profile.tenant_id,
            client_id=profile.client_id,
            credential=ClientSecretCredential("unused: an external token is validated"),
            authority_url=profile.authority_url,
            graph_url=profile.graph_url,
            ca_bundle=profile.ca_bundle,
            policy_name=profile.policy_name,
        )
    return GraphClient(settings, tokens=StaticTokenProvider(access_token))
