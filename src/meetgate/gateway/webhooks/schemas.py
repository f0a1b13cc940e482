"""The ``/v1/webhooks`` bodies: endpoints (the secret only in the answers that issue one), deliveries
with their attempts."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from meetgate.store.webhooks import DeliveryRecord, EndpointRecord

EventType = Literal[
    "meeting.started",
    "meeting.ended",
    "attendance.ready",
    "transcript.ready",
    "recording.ready",
    "meeting.updated",
    "meeting.cancelled",
]


class WebhookCreate(BaseModel):
    url: str = Field(min_length=8, max_length=2048, description="https URL the events are POSTed to")
    events: list[EventType] = Field(min_length=1, description="The event types to receive")
    description: str | None = Field(default=None, max_length=200)


class WebhookPatch(BaseModel):
    url: str | None = Field(default=None, min_length=8, max_length=2048)
    events: list[EventType] | None = Field(default=None, min_length=1)
    description: str | None = Field(default=None, max_length=200)


class WebhookRotate(BaseModel):
    grace_hours: float | None = Field(
        default=None, ge=0, le=168, description="How long the current secret keeps signing too (default 24)"
    )


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None = None
    created_at: dt.datetime
    secret_rotated_at: dt.datetime | None = None
    previous_secret_valid_until: dt.datetime | None = Field(
        default=None, description="Until then deliveries carry a second signature, by the previous secret"
    )


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="The signing secret: shown this once, store it now")


class WebhookList(BaseModel):
    value: list[WebhookOut]


class AttemptOut(BaseModel):
    at: dt.datetime
    status_code: int | None = Field(description="The receiver's HTTP status (null: no answer)")
    latency_ms: float
    error: str | None = None
    ok: bool


class DeliveryOut(BaseModel):
    id: str
    event_id: str = Field(description="The event's id: the same on every retry and replay")
    event_type: str
    meeting_id: str | None = None
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None = Field(
        description="Pending deliveries: when the next attempt is due"
    )
    finished_at: dt.datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    replay_of: str | None = None
    history: list[AttemptOut] = Field(default_factory=list)


class DeliveryList(BaseModel):
    value: list[DeliveryOut]


class TestEventOut(BaseModel):
    event_id: str


def webhook_out(record: EndpointRecord, now: dt.datetime | None = None) -> WebhookOut:
    """What the API shows of an endpoint (never a secret)."""
    until = record.previous_secret_until
    if until is not None and until <= (now or dt.datetime.now(dt.UTC)):
        until = None
    return WebhookOut(
        id=record.id,
        url=record.url,
        events=list(record.events),
        description=record.description,
        created_at=record.created_at,
        secret_rotated_at=record.secret_rotated_at,
        previous_secret_valid_until=until,
    )


def delivery_out(record: DeliveryRecord) -> DeliveryOut:
    return DeliveryOut(
        id=record.id,
        event_id=record.event_id,
        event_type=record.event_type,
        meeting_id=record.meeting_id,
        status=record.status,
        attempts=record.attempts,
        created_at=record.created_at,
        next_attempt_at=record.next_attempt_at if record.status == "pending" else None,
        finished_at=record.finished_at,
        last_status_code=record.last_status_code,
        last_error=record.last_error,
        replay_of=record.replay_of,
        history=[
            AttemptOut(
                at=h.at, status_code=h.status_code, latency_ms=round(h.latency_ms, 1), error=h.error, ok=h.ok
            )
            for h in record.history
        ],
    )
