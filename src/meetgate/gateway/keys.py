"""API keys: ``mgk_<key id>_<secret>``. Shown once; the store keeps the key id and a SHA-256 hash.

The secret has 256 bits of entropy, so a fast hash is enough (no password-style stretching); hashes
are compared with :func:`hmac.compare_digest`, and an unknown key id still costs one comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "mgk"
_DUMMY_HASH = hashlib.sha256(b"meetgate-no-such-key").hexdigest()


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key_hash: str
    api_key: str

    def __repr__(self) -> str:
        return f"NewKey(key_id={self.key_id!r}, api_key='***')"


def hash_secret(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()


def new_key() -> NewKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id=key_id, key_hash=hash_secret(key_id, secret), api_key=f"{PREFIX}_{key_id}_{secret}")


def parse(api_key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    parts = api_key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 16 or not parts[2]:
        return None
    if any(c not in "0123456789abcdef" for c in parts[1]) or len(parts[2]) > 128:
        return None
    return parts[1], parts[2]


def verify(key_id: str, secret: str, stored_hash: str | None) -> bool:
    """Constant-time check of ``secret`` against ``stored_hash`` (None: unknown key id)."""
    candidate = hash_secret(key_id, secret)
    expected = stored_hash if stored_hash is not None else _DUMMY_HASH
    return hmac.compare_digest(candidate, expected) and stored_hash is not None
