"""The store's tables (SQLAlchemy Core). The Alembic migrations in ``migrations/`` create them.

- ``consumers``: the third-party apps allowed to call the gateway; the API key is kept only as a hash,
  with its optional expiry, and the placement its meetings get when a request names none.
- ``retired_keys``: the key ids and hashes rotation replaced, with when (for the 401 they get).
- ``meetings``: consumer + Idempotency-Key → Graph meeting (its placement, the onlineMeeting's or
  the calendar event's id, join URL, state, last snapshot, and the revision its invitation carries
  as SEQUENCE).
- ``audit_log``: one row per request, append-only (triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

consumers = sa.Table(
    "consumers",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("key_id", sa.String(32), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(128), nullable=False),
    sa.Column("organizers", sa.JSON, nullable=False),
    sa.Column("organizers_from_policy", sa.Boolean, nullable=False, default=False),
    sa.Column("rate_per_minute", sa.Integer, nullable=True),
    sa.Column("daily_quota", sa.Integer, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("key_rotated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    #: when the current key stops working (None: never)
    sa.Column("key_expires_at", sa.DateTime(timezone=True), nullable=True),
    #: the placement of its meetings when a request names none (None: standalone)
    sa.Column("default_placement", sa.String(16), nullable=True),
)

#: keys a rotation replaced: kept (as hashes) only so that their 401 can say "rotated, and when"
retired_keys = sa.Table(
    "retired_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("consumer_id", sa.String(36), sa.ForeignKey("consumers.id"), nullable=False),
    sa.Column("key_hash", sa.String(128), nullable=False),
    sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
)

meetings = sa.Table(
    "meetings",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("consumer_id", sa.String(36), sa.ForeignKey("consumers.id"), nullable=False),
    sa.Column("idempotency_key", sa.String(255), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("organizer", sa.String(320), nullable=False),
    sa.Column("external_id", sa.String(80), nullable=False),
    sa.Column("graph_meeting_id", sa.Text, nullable=True),
    sa.Column("join_url", sa.Text, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("snapshot", sa.JSON, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    #: 0 at creation, +1 for every change the gateway makes (update, lock, cancel): the ICS SEQUENCE
    sa.Column("revision", sa.Integer, nullable=False, server_default="0"),
    #: ``standalone`` (an onlineMeeting: graph_meeting_id) or ``calendar`` (an Exchange event:
    #: graph_event_id, with the onlineMeeting behind it in graph_meeting_id once known)
    sa.Column("placement", sa.String(16), nullable=False, server_default="standalone"),
    sa.Column("graph_event_id", sa.Text, nullable=True),
    sa.UniqueConstraint("consumer_id", "idempotency_key", name="uq_meetings_consumer_key"),
    sa.Index("ix_meetings_consumer_join_url", "consumer_id", "join_url"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("consumer_id", sa.String(36), nullable=True),
    sa.Column("consumer_name", sa.String(100), nullable=True),
    sa.Column("organizer", sa.String(320), nullable=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("meeting_id", sa.String(40), nullable=True),
    sa.Column("outcome", sa.String(60), nullable=False),
    sa.Column("http_status", sa.Integer, nullable=False),
    sa.Column("graph_status", sa.Integer, nullable=True),
    sa.Column("graph_request_id", sa.String(64), nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("client_ip", sa.String(64), nullable=True),
    sa.Index("ix_audit_consumer_at", "consumer_id", "at"),
)

# --- validation and go-live (runbook steps 6 and 8) ------------------------------------------------

#: ``meetgate validate`` runs; ``result`` is the whole run as JSON (checks, evidence, fixes)
validation_runs = sa.Table(
    "validation_runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("tenant_id", sa.String(255), nullable=True),
    sa.Column("client_id", sa.String(64), nullable=True),
    sa.Column("profile", sa.String(100), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("covers_policy_tests", sa.Boolean, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Index("ix_validation_runs_client_started", "client_id", "started_at"),
)

#: test meetings announced before creation and removed once deleted (cleanup after a hard kill)
validation_pending = sa.Table(
    "validation_pending",
    metadata,
    sa.Column("organizer_id", sa.String(64), primary_key=True),
    sa.Column("external_id", sa.String(80), primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=True),
    sa.Column("meeting_id", sa.Text, nullable=True),
    sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
)

#: go-live events (``meetgate golive --start``): the hypercare window monitoring reads
golive_events = sa.Table(
    "golive_events",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("tenant_id", sa.String(255), nullable=True),
    sa.Column("client_id", sa.String(64), nullable=True),
    sa.Column("verdict", sa.String(8), nullable=False),
    sa.Column("hypercare_until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("report", sa.JSON, nullable=True),
)

# --- monitoring (runbook step 7) -------------------------------------------------------------------

#: records collected from Entra's logs and snapshots taken by ``meetgate monitor``; ``source`` is
#: ``signin``, ``directory_audit`` or ``policy``; (source, id) is unique, so collection never repeats one
monitor_records = sa.Table(
    "monitor_records",
    metadata,
    sa.Column("source", sa.String(20), primary_key=True),
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("tenant_id", sa.String(255), nullable=False),
    sa.Column("app_id", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_monitor_records_scope_at", "tenant_id", "app_id", "source", "at"),
)

#: where collection of each source stopped (the newest record time seen), per tenant and app
monitor_cursors = sa.Table(
    "monitor_cursors",
    metadata,
    sa.Column("tenant_id", sa.String(255), primary_key=True),
    sa.Column("app_id", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(20), primary_key=True),
    sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

#: alerts raised by the rules; ``key`` de-duplicates (same rule, same subject, same window)
monitor_alerts = sa.Table(
    "monitor_alerts",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(255), nullable=False),
    sa.Column("app_id", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(60), nullable=False),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_monitor_alerts_status", "status", "last_seen"),
)

# --- webhooks to consumers (the outbox) ------------------------------------------------------------

#: a consumer's webhook endpoints; the signing secret is kept encrypted (it must be recoverable to
#: sign), and during a rotation's grace period the previous one too
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("consumer_id", sa.String(36), sa.ForeignKey("consumers.id"), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("description", sa.String(200), nullable=True),
    sa.Column("secret_enc", sa.Text, nullable=False),
    sa.Column("previous_secret_enc", sa.Text, nullable=True),
    sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=True),
    #: removed endpoints keep their rows (their deliveries stay listed); they get no new deliveries
    sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_webhook_endpoints_consumer", "consumer_id"),
)

#: events, once each: the body sent is fixed at publication (byte-identical on every retry and replay);
#: ``dedupe_key`` makes a publication by the same cause (a Graph notification seen twice) one event
webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("consumer_id", sa.String(36), sa.ForeignKey("consumers.id"), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("meeting_id", sa.String(40), nullable=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("dedupe_key", sa.String(200), nullable=True),
    sa.UniqueConstraint("consumer_id", "dedupe_key", name="uq_webhook_events_dedupe"),
)

#: one delivery of an event to an endpoint; ``seq`` orders an endpoint's deliveries (the oldest
#: unfinished one goes first); a replica claims one by a lease (``lease_owner`` until ``lease_until``)
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("event_id", sa.String(40), sa.ForeignKey("webhook_events.id"), nullable=False),
    sa.Column("endpoint_id", sa.String(40), sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    #: pending, succeeded, failed (retries exhausted, or the endpoint removed)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(300), nullable=True),
    #: the delivery this one replays (None: the first)
    sa.Column("replay_of", sa.String(40), nullable=True),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "status", "seq"),
)

#: every attempt of a delivery: when, the receiver's status (None: no answer), latency, error
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(40), sa.ForeignKey("webhook_deliveries.id"), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("error", sa.String(300), nullable=True),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("replica", sa.String(64), nullable=True),
    sa.Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)


# --- Graph change notifications the gateway receives -----------------------------------------------

#: the gateway's own Graph subscriptions; the clientState is kept encrypted (it must be compared)
graph_subscriptions = sa.Table(
    "graph_subscriptions",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    #: ``transcripts``, ``recordings`` or ``events:{organizer}``
    sa.Column("kind", sa.String(120), nullable=False),
    sa.Column("resource", sa.Text, nullable=False),
    sa.Column("client_state_enc", sa.Text, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
)

#: every notification body as received (``notify`` or ``lifecycle``), persisted before it is answered
graph_notifications = sa.Table(
    "graph_notifications",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("channel", sa.String(12), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("outcome", sa.String(300), nullable=True),
    sa.Index("ix_graph_notifications_pending", "processed_at", "seq"),
)

#: the poller's progress per ended meeting (``done``: the artifact kinds already published)
graph_polls = sa.Table(
    "graph_polls",
    metadata,
    sa.Column("meeting_id", sa.String(40), sa.ForeignKey("meetings.id"), primary_key=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("done", sa.JSON, nullable=False),
)
