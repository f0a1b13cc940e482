"""The sandbox tenant as the pwsh stand-in reaches it: a small HTTPS client and the control API.

Standard library only, so a pwsh session starts fast (no httpx import).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meetgate_sandbox.pwsh.errors import PSError


class _Response:
    def __init__(self, status_code: int, text: str) -> None:
        self.status_code = status_code
        self.text = text

    def json(self) -> Any:
        return json.loads(self.text)


class _Http:
    """A few HTTPS requests with the standard library (pwsh sessions start fast: no httpx import)."""

    def __init__(self, context: ssl.SSLContext, timeout: float = 30.0) -> None:
        self.context = context
        self.timeout = timeout
        self._connections: dict[str, Any] = {}

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        bearer: str | None = None,
    ) -> _Response:
        import http.client
        import urllib.parse

        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https":
            raise PSError(
                f"The sandbox must be reached over https, not {url!r}.", "InvalidUri", "InvalidArgument"
            )
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        payload: bytes | None = None
        if json_body is not None:
            payload = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            payload = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):  # a kept-alive connection the server closed is retried once
            conn = self._connections.get(parts.netloc)
            if conn is None:
                conn = http.client.HTTPSConnection(parts.netloc, timeout=self.timeout, context=self.context)
                self._connections[parts.netloc] = conn
            try:
                conn.request(method, target, body=payload, headers=headers)
                response = conn.getresponse()
                return _Response(response.status, response.read().decode("utf-8", "replace"))
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._connections.pop(parts.netloc, None)
                if attempt == 2:
                    raise PSError(
                        f"The remote server could not be reached: {exc}", "ConnectionError", "ConnectionError"
                    ) from None
        raise AssertionError("unreachable")

    def post(self, url: str, data: dict[str, str]) -> _Response:
        return self.request("POST", url, form=data)


class TenantControlClient:
    """The control API of a sandbox server, as the Teams cmdlets need it."""

    def __init__(
        self,
        control_url: str,
        ca_bundle: str | None,
        authority_url: str | None,
        graph_url: str | None = None,
    ) -> None:
        ctx = ssl.create_default_context()
        if ca_bundle:
            ctx.load_verify_locations(ca_bundle)
        base = control_url.rstrip("/")
        self.control_url = base.removesuffix("/_sandbox")  # sandbox.json names the control API root
        self.authority_url = (authority_url or self.control_url).rstrip("/")
        self.graph_url = (graph_url or self.control_url).rstrip("/")
        self.ca_bundle = ca_bundle
        self.http = _Http(ctx)

    @classmethod
    def locate(cls, environ: dict[str, str] | None = None, cwd: Path | None = None) -> TenantControlClient:
        env = dict(os.environ if environ is None else environ)
        url = env.get("MEETGATE_SANDBOX_CONTROL_URL")
        if url:
            return cls(
                url,
                env.get("MEETGATE_SANDBOX_CA_BUNDLE"),
                env.get("MEETGATE_SANDBOX_AUTHORITY_URL"),
                env.get("MEETGATE_SANDBOX_GRAPH_URL"),
            )
        candidates = [Path(env["MEETGATE_SANDBOX_JSON"])] if env.get("MEETGATE_SANDBOX_JSON") else []
        here = cwd or Path.cwd()
        candidates += [here / "sandbox.json", here / ".meetgate/sandbox/sandbox.json"]
        for path in candidates:
            if path.is_file():
                info = json.loads(path.read_text(encoding="utf-8"))
                control = info.get("control_url") or info.get("controlUrl") or info.get("graph_url")
                ca = info.get("ca_bundle") or info.get("caBundle")
                if ca and not Path(ca).is_absolute():
                    ca = str(path.parent / ca)
                return cls(
                    control,
                    ca,
                    info.get("authority_url") or info.get("authorityUrl"),
                    info.get("graph_url") or info.get("graphUrl"),
                )
        raise PSError(
            "No sandbox tenant to connect to: set MEETGATE_SANDBOX_CONTROL_URL (and MEETGATE_SANDBOX_CA_BUNDLE) "
            "or MEETGATE_SANDBOX_JSON, or run where sandbox.json is.",
            "SandboxNotFound",
            "ConnectionError",
        )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.control_url}/_sandbox{path}", json_body=body)
        if response.status_code >= 400:
            try:
                data = response.json()
                err = data.get("error", data)
                message = err.get("message") if isinstance(err, dict) else str(err)
            except ValueError:
                message = response.text
            raise PSError(
                str(message or f"HTTP {response.status_code}"),
                f"HTTP{response.status_code}",
                "InvalidOperation",
            )
        if response.status_code == 204 or not response.text:
            return None
        return response.json()


def _values(data: Any, *keys: str) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in (*keys, "value"):
            if isinstance(data.get(key), list):
                return list(data[key])
    return []


def _b64json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded))
    return value if isinstance(value, dict) else {}


@dataclass
class Connection:
    tenant_id: str
    account: str
    users: list[dict[str, Any]] = field(default_factory=list)
