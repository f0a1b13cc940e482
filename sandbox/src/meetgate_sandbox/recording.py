"""What happened: every request and every token issuance, per tenant, bounded, persisted."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_REQUESTS = 2000
MAX_TOKENS = 1000


def utc_stamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RequestRecord:
    time: str
    tenant_id: str | None
    app_id: str | None
    method: str
    path: str
    query: str
    status: int
    latency_ms: float
    client_ip: str
    request_id: str
    client_request_id: str
    user_agent: str
    #: set when the sandbox injected this outcome (``error``, ``dropped``, ``throttled``)
    fault: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "tenantId": self.tenant_id,
            "appId": self.app_id,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "latencyMs": self.latency_ms,
            "clientIp": self.client_ip,
            "requestId": self.request_id,
            "clientRequestId": self.client_request_id,
            "userAgent": self.user_agent,
            "fault": self.fault,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        return cls(
            time=data["time"],
            tenant_id=data.get("tenantId"),
            app_id=data.get("appId"),
            method=data["method"],
            path=data["path"],
            query=data.get("query", ""),
            status=int(data["status"]),
            latency_ms=float(data.get("latencyMs", 0.0)),
            client_ip=data.get("clientIp", ""),
            request_id=data.get("requestId", ""),
            client_request_id=data.get("clientRequestId", ""),
            user_agent=data.get("userAgent", ""),
            fault=data.get("fault"),
        )


@dataclass(frozen=True)
class TokenRecord:
    """One call to the token endpoint: a token issued, or the AADSTS error answered."""

    time: str
    tenant_id: str
    app_id: str | None
    success: bool
    grant_type: str
    #: ``certificate`` | ``secret`` | ``delegated`` | None (no usable credential)
    credential_type: str | None
    #: keyId of the key or password credential that was used (or tried)
    key_id: str | None
    #: SHA-1 thumbprint the client presented (``x5t``) or of the certificate found via ``x5t#S256``
    thumbprint: str | None
    error_code: int | None
    error: str | None
    client_ip: str
    request_id: str
    correlation_id: str
    roles: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "tenantId": self.tenant_id,
            "appId": self.app_id,
            "success": self.success,
            "grantType": self.grant_type,
            "credentialType": self.credential_type,
            "keyId": self.key_id,
            "thumbprint": self.thumbprint,
            "errorCode": self.error_code,
            "error": self.error,
            "clientIp": self.client_ip,
            "requestId": self.request_id,
            "correlationId": self.correlation_id,
            "roles": list(self.roles),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenRecord:
        return cls(
            time=data["time"],
            tenant_id=data["tenantId"],
            app_id=data.get("appId"),
            success=bool(data["success"]),
            grant_type=data.get("grantType", ""),
            credential_type=data.get("credentialType"),
            key_id=data.get("keyId"),
            thumbprint=data.get("thumbprint"),
            error_code=data.get("errorCode"),
            error=data.get("error"),
            client_ip=data.get("clientIp", ""),
            request_id=data.get("requestId", ""),
            correlation_id=data.get("correlationId", ""),
            roles=tuple(data.get("roles") or ()),
        )


class ActivityLog:
    """Bounded request and token logs (oldest entries fall off)."""

    def __init__(
        self,
        requests: Iterable[RequestRecord] = (),
        tokens: Iterable[TokenRecord] = (),
        *,
        max_requests: int = MAX_REQUESTS,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        self.requests: collections.deque[RequestRecord] = collections.deque(requests, maxlen=max_requests)
        self.tokens: collections.deque[TokenRecord] = collections.deque(tokens, maxlen=max_tokens)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": [r.to_dict() for r in self.requests],
            "tokens": [t.to_dict() for t in self.tokens],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ActivityLog:
        data = data or {}
        return cls(
            (RequestRecord.from_dict(r) for r in data.get("requests") or []),
            (TokenRecord.from_dict(t) for t in data.get("tokens") or []),
        )
