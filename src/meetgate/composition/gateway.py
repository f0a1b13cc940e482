"""Profile → the gateway's parts (`meetgate serve`, `meetgate consumers`): policy scope, Graph backend.

Imported only inside those commands (it pulls in httpx, the gateway and the store).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meetgate.config import ConfigError, Profile
from meetgate.gateway.ports import PolicyScope, TokenCheck
from meetgate.gateway.scope import StaticPolicyScope

if TYPE_CHECKING:
    from meetgate.gateway.settings import GatewaySettings


def file_policy_scope(profile: Profile) -> StaticPolicyScope:
    """The organizers the desired-state policy file approves: users, CSV files and (through Graph)
    the transitive members of its groups."""
    from meetgate.admin.policy.loader import load_desired_state, read_organizer_csv
    from meetgate.admin.policy.model import PolicyError

    assert profile.policy_file is not None
    try:
        desired = load_desired_state(profile.policy_file, profile.policy_name)
        users = list(desired.organizers.users)
        for csv_path in desired.organizers.csv_files:
            users.extend(read_organizer_csv(csv_path))
    except (PolicyError, OSError) as exc:
        raise ConfigError(f"cannot read the policy file {profile.policy_file}: {exc}") from None
    if desired.organizers.groups:
        from meetgate.composition.graph import graph_client_from_profile

        with graph_client_from_profile(profile) as client:
            for group in desired.organizers.groups:
                for member in client.directory.group_members(group):
                    users.append(member.user_principal_name or member.id)
    return StaticPolicyScope(users)


class PolicyStateScope:
    """The scope as the tenant holds it now, read through a policy backend (``PolicyStatePort``):
    organizers whose effective policy is ``identity`` and lists ``app_id``. One read per ``ttl``."""

    def __init__(self, port: Any, identity: str, app_id: str, ttl_seconds: float = 60.0) -> None:
        import time

        self._port = port
        self._identity = identity
        self._app_id = app_id
        self._ttl = ttl_seconds
        self._clock = time.monotonic
        self._cached: tuple[float, frozenset[str]] | None = None

    def organizers(self) -> frozenset[str]:
        from meetgate.admin.policy.model import policy_key

        now = self._clock()
        if self._cached is not None and now - self._cached[0] < self._ttl:
            return self._cached[1]
        state = self._port.read_state(self._identity)
        definition = state.policy(self._identity)
        allowed: set[str] = set()
        if definition is not None and definition.lists_any([self._app_id]):
            candidates = set(state.upns) | set(state.direct)
            for grant in state.group_grants:
                candidates.update(grant.members)
            for user_id in candidates:
                name, _source = state.effective(user_id)
                if name is not None and policy_key(name) == policy_key(self._identity):
                    allowed.add(user_id.lower())
                    if user_id in state.upns:
                        allowed.add(state.upns[user_id].lower())
            # a Global grant reaches users the reader did not list: they are checked by Graph
        value = frozenset(allowed)
        self._cached = (now, value)
        return value

    def contains(self, organizer: str) -> bool:
        return organizer.strip().lower() in self.organizers()


#: entry-point group of policy-scope sources a plugin contributes: ``name = "module:factory"`` where
#: ``factory(url: str, profile: Profile) -> PolicyScope`` (meetgate-sandbox adds ``sandbox-control``)
POLICY_SCOPES_GROUP = "meetgate.policy_scopes"


def _plugin_policy_scope(name: str, url: str, profile: Profile) -> PolicyScope:
    from importlib.metadata import entry_points

    point = next((p for p in entry_points(group=POLICY_SCOPES_GROUP) if p.name == name), None)
    if point is None:
        raise ConfigError(
            "--sandbox-control needs meetgate-sandbox, which is not installed: "
            "`pip install meetgate-sandbox` (same version as meetgate), or set policy_file instead"
        )
    scope: PolicyScope = point.load()(url, profile)
    return scope


def policy_scope(profile: Profile, sandbox_control: str | None) -> PolicyScope:
    if sandbox_control:
        return _plugin_policy_scope("sandbox-control", sandbox_control, profile)
    if profile.policy_file is not None:
        return file_policy_scope(profile)
    raise ConfigError(
        "the gateway needs the application access policy scope to check organizers against: set "
        "policy_file in the profile (or MEETGATE_POLICY_FILE), or pass --sandbox-control URL"
    )


@dataclass(frozen=True)
class GraphBackend:
    """What the gateway takes from its Graph client (``create_app``'s Graph-side arguments)."""

    #: the client's ``AsyncMeetingsService``
    meetings: Any
    #: the client's ``AsyncCalendarEventsService`` (calendar-backed meetings)
    events: Any
    #: for /readyz: takes a token unless a valid one is held
    token_check: TokenCheck
    #: closes the client's connections (on shutdown)
    close: Callable[[], Awaitable[None]]
    #: seconds left of the pause Graph asked for (the limiter's)
    graph_pause: Callable[[], float]
    #: the client's ``AsyncArtifactsService`` (attendance, transcripts, recordings)
    artifacts: Any = None
    #: an app-only access token for Graph (the client's, cached)
    token: Callable[[], Awaitable[str]] | None = None


def graph_backend(
    profile: Profile, metrics: Any, redis_prefix: str = "meetgate:", max_wait_seconds: float = 10.0
) -> GraphBackend:
    """The gateway's async Graph client for ``profile``, as :class:`GraphBackend`.

    With ``redis_url`` set, replicas share access tokens through Redis. Retries inside one call end
    within ``max_wait_seconds`` (a longer ``Retry-After`` is handed to the consumer instead).
    """
    from anyio import to_thread

    from meetgate.composition.graph import graph_settings_from_profile, limiter_from_profile
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
    from meetgate.gateway.graph_transport import ObservedGraphTransport

    transport = ObservedGraphTransport.for_graph(metrics, ca_bundle=settings.ca_bundle)
    # the adaptive Graph limiter: shared through Redis with other replicas and bulk jobs of this app
    # slow start all the way: consumers' bursts find the concurrency they need within a few round
    # trips (it still halves on the first 429 and grows no further while answers slow down)
    limiter = limiter_from_profile(profile, max_concurrency=256, slow_start_limit=256)
    from meetgate.graph.retry import RetryPolicy

    # a consumer waits at most max_wait_seconds for Graph; beyond that it gets 503 + Retry-After and
    # retries with its Idempotency-Key (createOrGet makes that safe)
    retry = RetryPolicy(max_total_seconds=max_wait_seconds)
    client = AsyncGraphClient(settings, tokens=tokens, transport=transport, limiter=limiter, retry=retry)

    async def token_check() -> None:
        if client.tokens.peek() is None:
            await to_thread.run_sync(client.tokens.get_token)

    async def access_token() -> str:
        return (await to_thread.run_sync(client.tokens.get_token)).token

    return GraphBackend(
        client.meetings,
        client.events,
        token_check,
        client.aclose,
        limiter.paused_for,
        artifacts=client.artifacts,
        token=access_token,
    )


def gateway_settings_from_profile(
    profile: Profile, *, admin_key: str | None = None, **overrides: Any
) -> GatewaySettings:
    """:class:`GatewaySettings` for ``profile``: its ``gateway_*`` keys, then ``overrides`` (the flags of
    `meetgate serve`, None = not given), else the gateway's defaults. A limit of 0 means none."""
    from meetgate.config import GATEWAY_KEYS
    from meetgate.gateway.dashboard import hash_admin_key
    from meetgate.gateway.forwarded import TrustedProxies
    from meetgate.gateway.settings import GatewaySettings

    values: dict[str, Any] = {}
    for key, name in GATEWAY_KEYS.items():
        value = overrides.pop(name, None)
        if value is None:
            value = getattr(profile, key)
        if value is not None:
            values[name] = value
    if overrides:
        raise TypeError(f"unknown gateway settings: {', '.join(sorted(overrides))}")
    for name in ("organizer_rate_per_minute", "organizer_daily_quota", "graph_rate_per_second"):
        if values.get(name) == 0:
            values[name] = None
    allowed = values.pop("forwarded_allow_ips", None)
    if allowed is not None:
        try:
            trusted = TrustedProxies.parse(str(allowed))
        except ValueError as exc:
            raise ConfigError(
                f"forwarded_allow_ips (--forwarded-allow-ips / gateway_forwarded_allow_ips): {exc}",
                "give IP addresses or networks, comma-separated: 127.0.0.1,10.0.0.0/8",
            ) from None
        values["forwarded_allow_ips"] = tuple(str(n) for n in trusted.networks)
    settings = GatewaySettings(
        admin_key_sha256=hash_admin_key(admin_key) if admin_key else None,
        artifacts=tuple(profile.artifacts),
        store_url=profile.store_url,
        redis_url=profile.redis_url,
        **values,
    )
    if settings.trust_forwarded_for and not settings.forwarded_allow_ips:
        raise ConfigError(
            "--forwarded-allow-ips is empty", "name the proxies in front of the gateway, e.g. 127.0.0.1"
        )
    if settings.notifications not in ("off", "push", "poll"):
        raise ConfigError(
            f"gateway_notifications must be off, push or poll, got {settings.notifications!r}",
            "push where Graph can reach the gateway, poll where it cannot",
        )
    if settings.notifications == "push" and not settings.notification_url:
        raise ConfigError(
            "gateway_notifications = push needs gateway_notification_url",
            "give the gateway's public https base URL, or use poll",
        )
    return settings


def gateway_app(
    profile: Profile,
    settings: GatewaySettings,
    *,
    sandbox_control: str | None = None,
    metrics: Any = None,
) -> Any:
    """The gateway's ASGI app for ``profile``: Graph backend, policy scope, store (opened by the app)."""
    from meetgate.gateway.app import create_app
    from meetgate.gateway.metrics import GatewayMetrics

    metrics = metrics or GatewayMetrics()
    graph = graph_backend(
        profile, metrics, settings.redis_prefix, max_wait_seconds=settings.graph_max_wait_seconds
    )
    return create_app(
        settings,
        meetings=graph.meetings,
        events=graph.events,
        scope=policy_scope(profile, sandbox_control),
        token_check=graph.token_check,
        metrics=metrics,
        on_shutdown=graph.close,
        graph_pause=graph.graph_pause,
        artifacts=graph.artifacts,
        notifications=notifications_factory(profile, settings, graph)
        if settings.notifications != "off"
        else None,
    )


def notifications_factory(profile: Profile, settings: GatewaySettings, graph: GraphBackend) -> Any:
    """What ``create_app`` calls to make the Graph notifications' service (``settings.notifications``
    ``push`` or ``poll``): Graph calls with the backend's token, the authority's signing keys, the
    encryption certificate in ``notification_key_dir``."""
    from pathlib import Path

    import httpx
    import sqlalchemy as sa

    from meetgate.composition.graph import graph_settings_from_profile
    from meetgate.gateway.notifications.service import NotificationConfig, NotificationService
    from meetgate.gateway.notifications.subscriptions import HttpGraphCalls
    from meetgate.graph.auth import build_ssl_context
    from meetgate.store.notifications import NotificationStore

    graph_settings = graph_settings_from_profile(profile)
    verify = build_ssl_context(graph_settings.ca_bundle)
    key_dir = settings.notification_key_dir
    if key_dir is None:
        url = sa.make_url(settings.store_url)
        local = url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:"
        key_dir = (
            Path(str(url.database)).parent / "notifications" if local else Path(".meetgate/notifications")
        )
    assert graph.token is not None

    def fetch_keys(url: str) -> Any:
        return httpx.get(url, verify=verify, timeout=10).json()

    def make(store: Any, webhooks: Any) -> NotificationService:
        config = NotificationConfig(
            mode=settings.notifications,
            public_url=settings.notification_url,
            tenant_id=graph_settings.tenant_id,
            app_id=graph_settings.client_id,
            keys_url=f"{graph_settings.authority_url}/common/discovery/v2.0/keys",
            key_dir=Path(key_dir),
            interval_seconds=settings.notification_interval_seconds,
        )
        assert graph.token is not None
        calls = HttpGraphCalls(graph_settings.base_url, graph.token, verify=verify)
        return NotificationService(
            config, NotificationStore(store), calls, webhooks.publisher, webhooks.box, fetch_keys
        )

    return make


def create_gateway_app() -> Any:
    """ASGI factory: ``uvicorn --factory meetgate.composition.gateway:create_gateway_app`` (or any ASGI
    server that calls a factory). Reads the profile as every command does — ``MEETGATE_CONFIG``
    (default ``./meetgate.toml``), ``MEETGATE_PROFILE``, ``MEETGATE_*`` overrides — and the admin key
    from ``MEETGATE_ADMIN_KEY``; logs JSON like `meetgate serve` (``MEETGATE_LOG_LEVEL``, default info)."""
    import os

    from meetgate.config import load_profile
    from meetgate.gateway.logs import configure_logging

    configure_logging(os.environ.get("MEETGATE_LOG_LEVEL", "info").upper())
    profile = load_profile()
    settings = gateway_settings_from_profile(profile, admin_key=os.environ.get("MEETGATE_ADMIN_KEY"))
    return gateway_app(profile, settings)
