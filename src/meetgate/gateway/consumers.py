"""Managing consumers (the apps that call the gateway): add, list, show, update (default placement),
revoke, rotate-key.

A consumer's organizers must lie inside the application access policy scope: checked here when they
are given, and again by the gateway on every request (the policy can shrink later).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meetgate.errors import MeetgateError
from meetgate.gateway import keys
from meetgate.gateway.ports import PolicyScope
from meetgate.gateway.schemas import Organizer
from meetgate.store import ConsumerRecord, Store

#: the placements a consumer's meetings can get by default
PLACEMENTS = ("standalone", "calendar")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class ConsumerError(MeetgateError, ValueError):
    """A consumer (API key) request cannot be carried out; ``remedy`` says what to do."""


@dataclass(frozen=True)
class IssuedKey:
    """A consumer and its API key, which is shown this once and never stored."""

    consumer: ConsumerRecord
    api_key: str

    def __repr__(self) -> str:
        return f"IssuedKey(consumer={self.consumer!r}, api_key='***')"


def _check_organizer_format(values: Sequence[str]) -> list[str]:
    from pydantic import TypeAdapter, ValidationError

    adapter: TypeAdapter[str] = TypeAdapter(Organizer)
    cleaned: list[str] = []
    for value in values:
        try:
            cleaned.append(adapter.validate_python(value).lower())
        except ValidationError:
            raise ConsumerError(
                f"{value!r} is neither a UPN nor an object id",
                "give organizers as UPNs (name@domain) or GUIDs",
            ) from None
    return sorted(set(cleaned))


def check_placement(value: str | None) -> str | None:
    """``--placement`` checked (None: leave the gateway's default, standalone)."""
    if value is None:
        return None
    placement = value.strip().lower()
    if placement not in PLACEMENTS:
        raise ConsumerError(
            f"--placement {value!r} is not a placement",
            "give standalone (an onlineMeeting on nobody's calendar) or calendar (an event in the "
            "organizer's calendar: needs the app's mailbox scope, `meetgate mailbox-scope`)",
        )
    return placement


def parse_expiry(text: str) -> dt.datetime:
    """``--expires`` as an aware UTC datetime: a date (``2026-12-31``: the key stops working at
    00:00 UTC that day) or a date and time with an offset (``2026-12-31T17:00:00+01:00``)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConsumerError(
            f"--expires {text!r} is not a date",
            "give a date such as 2026-12-31 (the key stops working at 00:00 UTC that day), "
            "or a time with an offset such as 2026-12-31T17:00:00+01:00",
        ) from None
    if moment.tzinfo is None:
        raise ConsumerError(
            f"--expires {text!r} has a time but no time zone",
            "add Z (UTC) or an offset such as +02:00, or give the date alone",
        )
    return moment.astimezone(dt.UTC)


def format_instant(moment: dt.datetime) -> str:
    """``2026-12-31 00:00 UTC``: how keys' expiry and rotation times are shown and reported."""
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


class ConsumerAdmin:
    """Add, list, show, revoke consumers and rotate their keys. ``clock`` (UTC now) decides whether
    an expiry lies in the future."""

    def __init__(
        self, store: Store, scope: PolicyScope, clock: Callable[[], dt.datetime] | None = None
    ) -> None:
        self.store = store
        self.scope = scope
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def _future(self, expires_at: dt.datetime | None) -> dt.datetime | None:
        if expires_at is None:
            return None
        if expires_at.tzinfo is None:
            raise ConsumerError("the key's expiry has no time zone", "give it in UTC or with an offset")
        if expires_at <= self.clock():
            raise ConsumerError(
                f"--expires {format_instant(expires_at)} is not in the future",
                "give a later date, or leave --expires out for a key that does not expire",
            )
        return expires_at.astimezone(dt.UTC)

    def add(
        self,
        name: str,
        *,
        organizers: Sequence[str] = (),
        from_policy: bool = False,
        rate_per_minute: int | None = None,
        daily_quota: int | None = None,
        expires_at: dt.datetime | None = None,
        placement: str | None = None,
    ) -> IssuedKey:
        """Register an app; its key expires at ``expires_at`` (None: never); its meetings get
        ``placement`` when a request names none (None: standalone)."""
        default_placement = check_placement(placement)
        if not name or len(name) > 100 or set(name) - _NAME_CHARS:
            raise ConsumerError(
                f"invalid consumer name {name!r}", "use 1-100 letters, digits, '-', '_' or '.'"
            )
        if from_policy == bool(organizers):
            raise ConsumerError(
                "give either --organizers or --organizers-from-policy",
                "list the organizers this app may act for, or take the whole policy scope",
            )
        if rate_per_minute is not None and rate_per_minute <= 0:
            raise ConsumerError(
                f"the rate must be positive, got {rate_per_minute}",
                "give a positive --rate (e.g. 60/min), or leave it out for the gateway's default rate",
            )
        if daily_quota is not None and daily_quota <= 0:
            raise ConsumerError(
                f"the daily quota must be positive, got {daily_quota}",
                "give a positive --daily-quota (meetings per UTC day), or leave it out for no daily quota",
            )
        expiry = self._future(expires_at)
        if from_policy:
            chosen = sorted(self.scope.organizers())
            if not chosen:
                raise ConsumerError(
                    "the application access policy scope is empty",
                    "grant the policy to the approved organizers first (`meetgate policy apply`)",
                )
        else:
            chosen = _check_organizer_format(organizers)
            outside = [o for o in chosen if not self.scope.contains(o)]
            if outside:
                raise ConsumerError(
                    f"outside the application access policy scope: {', '.join(outside)}",
                    "grant the policy to them first, or leave them out",
                )
        key = keys.new_key()
        record = self.store.add_consumer(
            name=name,
            key_id=key.key_id,
            key_hash=key.key_hash,
            organizers=chosen,
            organizers_from_policy=from_policy,
            rate_per_minute=rate_per_minute,
            daily_quota=daily_quota,
            key_expires_at=expiry,
            default_placement=default_placement,
        )
        return IssuedKey(record, key.api_key)

    def set_placement(self, name: str, placement: str | None) -> ConsumerRecord:
        """The placement the consumer's meetings get when a request names none (None: standalone).
        Meetings made before keep theirs; a retry of a creation keeps the placement it began with."""
        return self.store.set_default_placement(name_or_id=name, placement=check_placement(placement))

    def list(self) -> list[ConsumerRecord]:
        return self.store.list_consumers()

    def show(self, name: str) -> ConsumerRecord:
        return self.store.consumer(name_or_id=name)

    def revoke(self, name: str) -> ConsumerRecord:
        return self.store.revoke_consumer(name_or_id=name)

    def rotate_key(self, name: str, *, expires_at: dt.datetime | None = None) -> IssuedKey:
        """A new key (expiring at ``expires_at``, or never); the old one stops working at once, and
        its holder is told it was rotated."""
        expiry = self._future(expires_at)
        key = keys.new_key()
        record = self.store.replace_key(
            name_or_id=name, key_id=key.key_id, key_hash=key.key_hash, key_expires_at=expiry
        )
        return IssuedKey(record, key.api_key)


def consumer_summary(record: ConsumerRecord, now: dt.datetime | None = None) -> dict[str, object]:
    """What `consumers list/show` print: never the key hash. ``status``: active, revoked, or
    expired (the key's expiry has passed at ``now``)."""
    status = "active" if record.active else "revoked"
    if record.active and record.key_expired(now or dt.datetime.now(dt.UTC)):
        status = "expired"
    return {
        "id": record.id,
        "name": record.name,
        "status": status,
        "organizers": list(record.organizers),
        "organizersFromPolicy": record.organizers_from_policy,
        "ratePerMinute": record.rate_per_minute,
        "dailyQuota": record.daily_quota,
        "defaultPlacement": record.default_placement or "standalone",
        "keyId": record.key_id,
        "createdAt": record.created_at.isoformat(),
        "keyRotatedAt": record.key_rotated_at.isoformat() if record.key_rotated_at else None,
        "keyExpiresAt": record.key_expires_at.isoformat() if record.key_expires_at else None,
        "revokedAt": record.revoked_at.isoformat() if record.revoked_at else None,
    }
