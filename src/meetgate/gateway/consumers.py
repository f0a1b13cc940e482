"""Managing consumers (the apps that call the gateway): add, list, show, revoke, rotate-key.

A consumer's organizers must lie inside the application access policy scope: checked here when they
are given, and again by the gateway on every request (the policy can shrink later).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meetgate.gateway import keys
from meetgate.gateway.ports import PolicyScope
from meetgate.gateway.schemas import Organizer
from meetgate.store import ConsumerRecord, Store

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class ConsumerError(ValueError):
    def __init__(self, message: str, remedy: str | None = None) -> None:
        super().__init__(message)
        self.remedy = remedy


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


class ConsumerAdmin:
    def __init__(self, store: Store, scope: PolicyScope) -> None:
        self.store = store
        self.scope = scope

    def add(
        self,
        name: str,
        *,
        organizers: Sequence[str] = (),
        from_policy: bool = False,
        rate_per_minute: int | None = None,
        daily_quota: int | None = None,
    ) -> IssuedKey:
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
        )
        return IssuedKey(record, key.api_key)

    def list(self) -> list[ConsumerRecord]:
        return self.store.list_consumers()

    def show(self, name: str) -> ConsumerRecord:
        return self.store.consumer(name_or_id=name)

    def revoke(self, name: str) -> ConsumerRecord:
        return self.store.revoke_consumer(name_or_id=name)

    def rotate_key(self, name: str) -> IssuedKey:
        key = keys.new_key()
        record = self.store.replace_key(name_or_id=name, key_id=key.key_id, key_hash=key.key_hash)
        return IssuedKey(record, key.api_key)


def consumer_summary(record: ConsumerRecord) -> dict[str, object]:
    """What `consumers list/show` print: never the key hash."""
    return {
        "id": record.id,
        "name": record.name,
        "status": "active" if record.active else "revoked",
        "organizers": list(record.organizers),
        "organizersFromPolicy": record.organizers_from_policy,
        "ratePerMinute": record.rate_per_minute,
        "dailyQuota": record.daily_quota,
        "keyId": record.key_id,
        "createdAt": record.created_at.isoformat(),
        "keyRotatedAt": record.key_rotated_at.isoformat() if record.key_rotated_at else None,
        "revokedAt": record.revoked_at.isoformat() if record.revoked_at else None,
    }
