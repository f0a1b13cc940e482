"""The client address the audit log records: the socket peer, or the address trusted proxies saw.

``X-Forwarded-For`` is a list each proxy appends its own peer to, so only its right-hand end is
written by machines the operator trusts; everything to the left of the first untrusted address is
whatever the client chose to send. :func:`client_address` therefore walks the list from the right,
starting at the socket peer, past the configured trusted proxies, and takes the first address that
is not one of them. A peer that is not a trusted proxy is the client, whatever the header says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: the proxies trusted when none are configured: a reverse proxy on the same machine
DEFAULT_TRUSTED = ("127.0.0.1",)


def _address(text: str) -> Address | None:
    """The address in one ``X-Forwarded-For`` entry (``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``,
    ``[2001:db8::1]:443``), IPv4-mapped IPv6 as IPv4; None when it is not an address."""
    value = text.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` entries are believed: IP addresses and networks."""

    def __init__(self, entries: Iterable[str] = DEFAULT_TRUSTED) -> None:
        networks: list[Network] = []
        for entry in entries:
            text = entry.strip()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ValueError(
                    f"{text!r} is neither an IP address nor a network (such as 10.0.0.0/8)"
                ) from None
        self.networks: tuple[Network, ...] = tuple(networks)

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """From a comma-separated list, as ``--forwarded-allow-ips`` takes it."""
        return cls(text.split(","))

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return any(address.version == net.version and address in net for net in self.networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({', '.join(str(n) for n in self.networks)})"


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: TrustedProxies | None
) -> str | None:
    """The client's address for a request from ``peer`` carrying the ``X-Forwarded-For`` header
    values ``forwarded_for`` (in the order received).

    ``trusted`` None: the header is ignored and the peer is the client. Otherwise the right-most
    address that is not a trusted proxy, the peer counting as the right-most of all; an entry that
    is not an address ends the walk (nobody trusted wrote it), leaving the last trusted hop.
    """
    if trusted is None or peer is None:
        return peer
    nearest = _address(peer)
    if nearest is None or nearest not in trusted:
        return peer
    hops = [entry for value in forwarded_for for entry in value.split(",") if entry.strip()]
    for entry in reversed(hops):
        address = _address(entry)
        if address is None:
            break
        nearest = address
        if address not in trusted:
            break
    return str(nearest)
