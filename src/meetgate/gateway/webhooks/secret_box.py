"""Webhook secrets at rest: encrypted with AES-256-GCM under the gateway's webhook key.

Unlike an API key, which the gateway only has to recognise (so it keeps a hash), a webhook secret is
a key the gateway signs with: it must be recoverable. It is encrypted, with the endpoint id as
associated data (a ciphertext copied to another endpoint does not decrypt). The key comes from
``MEETGATE_WEBHOOK_KEY`` (base64url, 32 bytes) or a private key file beside the store
(``.meetgate/webhook.key``, mode 0600, created on first use); without it the database alone reveals no
secret.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from meetgate.errors import MeetgateError
from meetgate.private_files import write_private_file

_VERSION = "v1"


class SecretBoxError(MeetgateError, ValueError):
    """The webhook key is missing, malformed, or not the one the secrets were encrypted with."""


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise SecretBoxError(
            "the webhook key is not 32 bytes of base64url",
            'make one with `python -c "import secrets,base64;print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"`',
        )
    return raw


def load_or_create_key_file(path: Path) -> str:
    """The key in ``path``, created (mode 0600, folder 0700 when new) when absent."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    text = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    try:
        # written aside and linked into place: a reader never sees the file empty or half written
        write_private_file(path, (text + "\n").encode(), replace=False)
    except FileExistsError:  # another process or thread made it first: use theirs
        return path.read_text().strip()
    return text


class SecretBox:
    """Encrypt and decrypt webhook secrets (AES-256-GCM, endpoint id as associated data)."""

    def __init__(self, key: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(_decode_key(key))

    def __repr__(self) -> str:
        return "SecretBox(key='***')"

    def seal(self, endpoint_id: str, secret: str) -> str:
        """``v1.<nonce>.<ciphertext>`` (base64url)."""
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), endpoint_id.encode())
        b64 = base64.urlsafe_b64encode
        return f"{_VERSION}.{b64(nonce).decode()}.{b64(sealed).decode()}"

    def open(self, endpoint_id: str, sealed: str) -> str:
        """The secret sealed for ``endpoint_id``."""
        from cryptography.exceptions import InvalidTag

        try:
            version, nonce, data = sealed.split(".")
            if version != _VERSION:
                raise ValueError(version)
            plain = self._aead.decrypt(
                base64.urlsafe_b64decode(nonce), base64.urlsafe_b64decode(data), endpoint_id.encode()
            )
        except (ValueError, InvalidTag):
            raise SecretBoxError(
                "a webhook secret does not decrypt with this webhook key",
                "start the gateway with the webhook key the endpoints were registered with "
                "(MEETGATE_WEBHOOK_KEY or the webhook key file), or rotate the endpoint's secret",
            ) from None
        return plain.decode()
