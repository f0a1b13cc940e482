"""The gateway's settings: one frozen object handed to :func:`meetgate.gateway.app.create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from meetgate.gateway.forwarded import DEFAULT_TRUSTED


@dataclass(frozen=True)
class GatewaySettings:
    #: SQLAlchemy URL of the store (SQLite file, or PostgreSQL shared by replicas).
    store_url: str = "sqlite:///.meetgate/meetgate.db"
    #: Redis URL: rate limits and quotas shared by every replica; in-process when None.
    redis_url: str | None = None
    #: Prefix of every Redis key (several gateways, or test runs, can share one Redis).
    redis_prefix: str = "meetgate:"
    #: Apply pending store migrations at start-up (replicas serialise on a database lock).
    migrate: bool = True
    #: Requests per minute per consumer when the consumer has no rate of its own.
    default_consumer_rate_per_minute: int = 600
    #: Requests per minute per organizer, over all consumers (None: no limit).
    organizer_rate_per_minute: int | None = 300
    #: Meetings created per organizer per UTC day, over all consumers (None: no limit).
    organizer_daily_quota: int | None = 2000
    #: Client-side limit toward Graph for this app, calls per second over all replicas (None: off).
    graph_rate_per_second: float | None = 300.0
    #: Calls allowed at once before the Graph limit starts spacing them.
    graph_burst: int = 300
    #: Longest a request waits for a Graph slot before it is refused with 503.
    graph_max_wait_seconds: float = 10.0
    #: How long a retry waits for a creation another request (or replica) has in flight, seconds,
    #: before it takes the creation over (createOrGet keeps that safe).
    pending_wait_seconds: float = 5.0
    #: How long answers about the policy scope are reused, seconds.
    policy_cache_seconds: float = 60.0
    #: Take the client IP from X-Forwarded-For: the right-most address that is not one of
    #: ``forwarded_allow_ips`` (only behind a trusted proxy). Off: the socket peer.
    trust_forwarded_for: bool = False
    #: The trusted proxies (IP addresses and CIDR networks) whose X-Forwarded-For entries are believed.
    forwarded_allow_ips: tuple[str, ...] = DEFAULT_TRUSTED
    #: SHA-256 (hex) of the admin key that opens /admin/dashboard; the dashboard is off when None.
    admin_key_sha256: str | None = None
    #: The meeting artifacts consumers may read (any of attendance, transcripts, recordings: the
    #: profile's ``artifacts``); a kind not listed is refused with ``artifact-kind-disabled``.
    artifacts: tuple[str, ...] = ()
    #: Public title of the OpenAPI document.
    title: str = "meetgate gateway"
    #: Run the webhook delivery worker in this process (every replica may: they share the outbox).
    webhook_worker: bool = True
    #: Allow webhook URLs http://127.0.0.1, http://[::1] and http://localhost (development only).
    webhook_allow_local_http: bool = False
    #: Allow webhook targets at private, loopback and link-local addresses (a receiver inside the
    #: network; off: refused, against server-side request forgery).
    webhook_allow_private: bool = False
    #: How long a delivery is retried after its event, hours (at least 24 is the contract).
    webhook_retry_hours: float = 24.0
    #: How long a rotated webhook secret keeps signing beside the new one, hours.
    webhook_secret_grace_hours: float = 24.0
    #: A receiver must answer within this, seconds.
    webhook_timeout_seconds: float = 10.0
    #: The key webhook secrets are encrypted with (base64url, 32 bytes); None: MEETGATE_WEBHOOK_KEY,
    #: else the key file (made on first use).
    webhook_key: str | None = field(default=None, repr=False)
    #: The webhook key's file when no key is given (None: beside an SQLite store, else .meetgate/).
    webhook_key_file: str | None = None
    #: How the gateway learns about meeting artifacts (Graph change notifications): ``off``,
    #: ``push`` (Graph subscriptions to ``notification_url``) or ``poll`` (read after each meeting's end).
    notifications: str = "off"
    #: The gateway's public base URL Graph posts to (``push``): ``{url}/graph/notifications`` and
    #: ``{url}/graph/lifecycle``.
    notification_url: str | None = None
    #: Folder of the notifications' encryption certificate (0700; None: beside an SQLite store, else
    #: .meetgate/notifications).
    notification_key_dir: Path | str | None = None
    #: Seconds between rounds of subscription upkeep (``push``) or polling (``poll``).
    notification_interval_seconds: float = 60.0
