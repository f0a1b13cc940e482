"""The security headers every gateway answer carries, set by one middleware (:class:`SecurityHeaders`).

- ``Content-Security-Policy``: :data:`STRICT_POLICY` (``default-src 'none'``: nothing may load,
  run or frame the answer) unless the answer declares a policy of its own. A page that needs more
  builds it with :func:`page_policy`, which allows its inline ``<style>``/``<script>`` elements by
  their SHA-256 hashes (never ``'unsafe-inline'``) plus the sources it names.
- ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: nothing loads, nothing runs, nobody frames it, no form posts anywhere (JSON, problems, metrics)
STRICT_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

FIXED_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_INLINE = re.compile(r"<(script|style)(\s[^>]*)?>(.*?)</\1\s*>", re.DOTALL | re.IGNORECASE)


def inline_hashes(html: str) -> dict[str, list[str]]:
    """``{"script": [...], "style": [...]}``: the CSP hash sources (``'sha256-…'``) of the inline
    ``<script>`` and ``<style>`` elements in ``html`` (a ``<script src=…>`` is not inline)."""
    found: dict[str, list[str]] = {"script": [], "style": []}
    for match in _INLINE.finditer(html):
        tag, attributes, body = match.group(1).lower(), match.group(2) or "", match.group(3)
        if tag == "script" and re.search(r"\bsrc\s*=", attributes, re.IGNORECASE):
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        found[tag].append(f"'sha256-{digest}'")
    return found


def page_policy(
    html: str,
    *,
    script_src: Iterable[str] = (),
    style_src: Iterable[str] = (),
    img_src: Iterable[str] = (),
    connect_src: Iterable[str] = (),
) -> str:
    """:data:`STRICT_POLICY` opened just enough for the page ``html``: its own inline elements (by
    hash) and the sources given, directive by directive."""
    hashes = inline_hashes(html)
    directives = [
        ("script-src", [*hashes["script"], *script_src]),
        ("style-src", [*hashes["style"], *style_src]),
        ("img-src", list(img_src)),
        ("connect-src", list(connect_src)),
    ]
    extra = "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives if sources)
    return f"{STRICT_POLICY}; {extra}" if extra else STRICT_POLICY


class SecurityHeaders:
    """Pure ASGI middleware: every HTTP answer gets :data:`FIXED_HEADERS`, and
    :data:`STRICT_POLICY` as its ``Content-Security-Policy`` unless it set one itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in FIXED_HEADERS.items():
                    headers[name] = value
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = STRICT_POLICY
            await send(message)

        await self.app(scope, receive, send_with_headers)
