"""Which webhook URLs the gateway sends to (server-side request forgery).

``https`` only, to a name or address on the public internet. ``http://127.0.0.1``, ``http://[::1]`` and
``http://localhost`` only when ``allow_local_http`` (a receiver on the gateway's own machine, for
development); private, loopback, link-local (cloud metadata at 169.254.169.254), multicast and
reserved addresses only when ``allow_private``. A host name is resolved and every address it gives
must pass: at registration and again before each attempt (a name can change what it points to).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from meetgate.errors import MeetgateError

#: ``resolve(host, port)`` → the host's addresses
Resolver = Callable[[str, int], Sequence[str]]
_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


class WebhookUrlError(MeetgateError, ValueError):
    """The URL may not be a webhook endpoint; ``remedy`` says why and what to do."""


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses (IPv4 and IPv6) as the system resolves them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_url(
    url: str,
    *,
    allow_local_http: bool = False,
    allow_private: bool = False,
    resolve: Resolver | None = system_resolver,
) -> str:
    """``url`` when the gateway may send to it, else :class:`WebhookUrlError`. ``resolve=None``
    checks the URL's form and literal addresses only (no lookup)."""
    if len(url) > 2048:
        raise WebhookUrlError("the URL is longer than 2048 characters", "give a shorter URL")
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise WebhookUrlError(f"{url!r} is not an http(s) URL", "give an https:// URL")
    if parts.username or parts.password:
        raise WebhookUrlError("the URL carries credentials", "leave user:password out of the URL")
    if parts.fragment:
        raise WebhookUrlError("the URL has a fragment", "leave the #fragment out")
    local = host in _LOCAL_NAMES
    if parts.scheme == "http" and not (local and allow_local_http):
        raise WebhookUrlError(
            "webhook URLs must use https",
            "give an https:// URL (http://127.0.0.1 or http://localhost only on a gateway started "
            "with webhook_allow_local_http, for development)",
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookUrlError("the URL's port is not a number", "give a port from 1 to 65535") from None
    if local and allow_local_http:
        return url.strip()
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: Sequence[str] = [str(literal)]
    elif resolve is None:
        addresses = []
    else:
        try:
            addresses = resolve(host, port)
        except OSError:
            raise WebhookUrlError(
                f"{host} does not resolve", "check the host name, or register the endpoint once it exists"
            ) from None
    if not allow_private:
        for text in addresses:
            if not _public(ipaddress.ip_address(text)):
                raise WebhookUrlError(
                    f"{host} points to a private, loopback or link-local address",
                    "give a public https URL (private targets need a gateway started with "
                    "webhook_allow_private)",
                )
    return url.strip()
