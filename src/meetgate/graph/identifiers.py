"""What Entra's identifiers look like: a directory (tenant) id is a GUID or one of its verified domains.

Checked before anything is sent, so a typo is refused here with the field named instead of coming
back from Entra as a paragraph about tenant discovery. No imports beyond the standard library.
"""

from __future__ import annotations

import base64
import binascii
import re

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: a DNS name with at least two labels (contoso.com, contoso.onmicrosoft.com, contoso.onmicrosoft.us)
DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
#: Entra's multi-tenant aliases: they name no tenant, and app-only sign-in needs one
MULTI_TENANT_ALIASES = frozenset({"common", "organizations", "consumers"})


def tenant_problem(value: str) -> str | None:
    """Why ``value`` cannot be a tenant, or None when it is a GUID or a domain name."""
    text = value.strip()
    if GUID.match(text) or DOMAIN.match(text):
        return None
    if text.lower() in MULTI_TENANT_ALIASES:
        return (
            f"{text!r} is Entra's alias for any tenant; meetgate acts in one tenant: give its directory id "
            "(a GUID) or a verified domain such as contoso.onmicrosoft.com"
        )
    return (
        f"{text!r} is neither a directory id (a GUID such as 11111111-2222-3333-4444-555555555555) nor a "
        "domain such as contoso.onmicrosoft.com; copy the Directory (tenant) ID from the app "
        "registration's overview in the Entra admin center"
    )


def meeting_id_shape(meeting_id: str) -> str | None:
    """``calendar`` or ``standalone`` when ``meeting_id`` has one of the two shapes, else None.

    A standalone meeting's id is base64 of ``1*{organizerId}*0**{threadId}`` (it decodes to text
    starting ``1*``); an Exchange item id (event, occurrence, attendee's copy) is base64 of binary
    data starting with a zero or one byte (``AAMk…``, ``AQMk…``, immutable ``AAkA…``).
    """
    head = meeting_id.strip()[:8].replace("-", "+").replace("_", "/")
    try:
        decoded = base64.b64decode(head + "=" * (-len(head) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    if decoded.startswith(b"1*"):
        return "standalone"
    return "calendar" if decoded[:1] in (b"\x00", b"\x01") else None
