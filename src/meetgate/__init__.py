"""meetgate: governed Microsoft Teams online meetings through Microsoft Graph.

The public surface is re-exported here lazily, so ``import meetgate`` (and ``meetgate --help``) stays
fast: heavy modules load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it. Extend as public pieces land; tests check every name resolves.
_EXPORTS: dict[str, str] = {
    "Profile": "meetgate.config",
    "ConfigError": "meetgate.config",
    "load_profile": "meetgate.config",
    "CertificateError": "meetgate.certificates",
    # the Graph client (meetgate.graph)
    "GraphClient": "meetgate.graph.client",
    "AsyncGraphClient": "meetgate.graph.client",
    "MeetingsClient": "meetgate.graph.client",
    "GraphSettings": "meetgate.graph.settings",
    "CertificateCredential": "meetgate.graph.credentials",
    "ClientSecretCredential": "meetgate.graph.credentials",
    "TokenProvider": "meetgate.graph.auth",
    "StaticTokenProvider": "meetgate.graph.auth",
    "AccessToken": "meetgate.graph.auth",
    "TokenClaims": "meetgate.graph.auth",
    "decode_claims": "meetgate.graph.auth",
    "RetryPolicy": "meetgate.graph.retry",
    "AdaptiveLimiter": "meetgate.graph.limiter",
    "RedisLimiterStore": "meetgate.graph.limiter",
    "fixed_concurrency": "meetgate.graph.limiter",
    "MeetingsService": "meetgate.graph.meetings",
    "AsyncMeetingsService": "meetgate.graph.meetings",
    "DirectoryService": "meetgate.graph.directory",
    "AsyncDirectoryService": "meetgate.graph.directory",
    "Attendee": "meetgate.graph.models",
    "MeetingRequest": "meetgate.graph.models",
    "MeetingUpdate": "meetgate.graph.models",
    "OnlineMeeting": "meetgate.graph.models",
    "CreateOrGetResult": "meetgate.graph.models",
    "AttendanceReport": "meetgate.graph.models",
    "User": "meetgate.graph.models",
    "LobbyBypassScope": "meetgate.graph.models",
    "OnlineMeetingPresenters": "meetgate.graph.models",
    "MeetingChatMode": "meetgate.graph.models",
    "meeting_invitation_ics": "meetgate.graph.ics",
    "meeting_cancellation_ics": "meetgate.graph.ics",
    "GraphError": "meetgate.graph.errors",
    "CredentialError": "meetgate.graph.errors",
    "AuthenticationError": "meetgate.graph.errors",
    "InvalidTokenError": "meetgate.graph.errors",
    "DelegatedTokenError": "meetgate.graph.errors",
    "AuthorizationError": "meetgate.graph.errors",
    "AccessPolicyMissing": "meetgate.graph.errors",
    "MissingRolesError": "meetgate.graph.errors",
    "NotFoundError": "meetgate.graph.errors",
    "UserNotFound": "meetgate.graph.errors",
    "OrganizerNotFound": "meetgate.graph.errors",
    "MeetingNotFound": "meetgate.graph.errors",
    "BadRequestError": "meetgate.graph.errors",
    "OrganizerIdRequired": "meetgate.graph.errors",
    "ConflictError": "meetgate.graph.errors",
    "ThrottledError": "meetgate.graph.errors",
    "ServiceError": "meetgate.graph.errors",
    "TokenServiceUnavailable": "meetgate.graph.errors",
    "TransportError": "meetgate.graph.errors",
    "MeetingRuleError": "meetgate.graph.errors",
    "graph_settings_from_profile": "meetgate.composition",
    "graph_client_from_profile": "meetgate.composition",
    "async_graph_client_from_profile": "meetgate.composition",
    "limiter_from_profile": "meetgate.composition",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'meetgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
