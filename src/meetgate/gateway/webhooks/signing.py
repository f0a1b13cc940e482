"""The ``Meetgate-Signature`` header: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>``.

During a secret rotation's grace period the header carries one ``v1`` per valid secret (the new one
first); a receiver accepts the delivery when any of them matches its secret. The HMAC key is the
whole secret string (``whsec_...``) as UTF-8 bytes; ``body`` is the request body exactly as received.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence

HEADER = "Meetgate-Signature"
EVENT_ID_HEADER = "Meetgate-Event-Id"
EVENT_TYPE_HEADER = "Meetgate-Event-Type"
DELIVERY_ID_HEADER = "Meetgate-Delivery-Id"
SECRET_PREFIX = "whsec_"
#: how far a receiver should let ``t`` lie from its clock, seconds (replays beyond are refused)
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A new signing secret: ``whsec_`` and 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secrets_: Sequence[str], timestamp: int, body: bytes) -> str:
    """The header value, one ``v1`` per secret."""
    parts = [f"t={timestamp}"] + [f"v1={signature(s, timestamp, body)}" for s in secrets_]
    return ",".join(parts)


def verify(
    header: str,
    body: bytes,
    secret: str,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when ``header`` has a ``v1`` matching ``body`` under ``secret`` and its ``t`` lies within
    ``tolerance_seconds`` of ``now``. The recipe the integrator guide documents."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)
