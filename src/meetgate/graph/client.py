"""The Graph client: tokens + HTTP + services, sync (:class:`GraphClient`) and async
(:class:`AsyncGraphClient`).

::

    from meetgate import GraphClient, GraphSettings, CertificateCredential, MeetingRequest

    settings = GraphSettings(tenant_id=..., client_id=...,
                             credential=CertificateCredential.from_pem_files("app.key.pem", "app.pem"))
    with GraphClient(settings) as graph:
        meeting = graph.meetings.create("alice@contoso.com", MeetingRequest(subject="Interview",
                                        start=start, end=end, attendees=["bob@fabrikam.com"]))
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    import httpx

    from meetgate.graph.auth import TokenClaims, TokenSource
    from meetgate.graph.limiter import AdaptiveLimiter
    from meetgate.graph.retry import RetryPolicy
    from meetgate.graph.settings import GraphSettings

# The modules behind a client (httpx, pydantic models, MSAL) load when the first client is built,
# not when this module is imported: `import meetgate` and `meetgate --help` stay fast.


class _ClientBase:
    settings: GraphSettings
    tokens: TokenSource

    @property
    def credential_warning(self) -> str | None:
        """Set when the app authenticates with a client secret (weaker than a certificate)."""
        credential = self.settings.credential
        return getattr(credential, "warning", None) if credential.is_weak else None

    def token_claims(self) -> TokenClaims:
        """Claims of the current access token (decoded, not verified): app-only? which roles?"""
        return self.tokens.get_token().claims

    def missing_roles(self, required: tuple[str, ...] | None = None) -> list[str]:
        """Roles of ``required`` (default: what meetings need) the current token lacks."""
        from meetgate.graph.auth import MEETINGS_ROLES

        return self.token_claims().missing_roles(MEETINGS_ROLES if required is None else required)


class GraphClient(_ClientBase):
    """Synchronous client: ``.meetings``, ``.events``, ``.artifacts``, ``.directory``, ``.tokens``, ``.http``. Thread-safe."""

    def __init__(
        self,
        settings: GraphSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        token_transport: httpx.BaseTransport | None = None,
        tokens: TokenSource | None = None,
        limiter: AdaptiveLimiter | None = None,
        token_retry: RetryPolicy | None = None,
    ) -> None:
        from meetgate.graph.artifacts import ArtifactsService
        from meetgate.graph.auth import TokenProvider
        from meetgate.graph.directory import DirectoryService, UserIdCache
        from meetgate.graph.events import CalendarEventsService
        from meetgate.graph.http import GraphHttp
        from meetgate.graph.meetings import MeetingsService
        from meetgate.graph.retry import RetryPolicy

        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.tokens = tokens or TokenProvider(
            settings, transport=token_transport or transport, retry=token_retry or self.retry, sleep=sleep
        )
        self.http = GraphHttp(
            settings, self.tokens, transport=transport, retry=self.retry, sleep=sleep, limiter=limiter
        )
        self.user_ids = UserIdCache()
        self.directory = DirectoryService(self.http, self.user_ids)
        self.meetings = MeetingsService(self.http, self.user_ids)
        #: calendar-backed meetings (Exchange events with a Teams meeting)
        self.events = CalendarEventsService(self.http, self.user_ids)
        #: what meetings produced: attendance reports, transcripts, recordings
        self.artifacts = ArtifactsService(self.http, self.user_ids)

    def close(self) -> None:
        self.http.close()
        close = getattr(self.tokens, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GraphClient(tenant_id={self.settings.tenant_id!r}, client_id={self.settings.client_id!r})"


class AsyncGraphClient(_ClientBase):
    """Asynchronous client: the same services, awaited. Token fetches run in a worker thread (MSAL
    is synchronous); a still-valid token is used without leaving the event loop."""

    def __init__(
        self,
        settings: GraphSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        token_transport: httpx.BaseTransport | None = None,
        tokens: TokenSource | None = None,
        limiter: AdaptiveLimiter | None = None,
        token_retry: RetryPolicy | None = None,
    ) -> None:
        from meetgate.graph.artifacts import AsyncArtifactsService
        from meetgate.graph.auth import TokenProvider
        from meetgate.graph.directory import AsyncDirectoryService, UserIdCache
        from meetgate.graph.events import AsyncCalendarEventsService
        from meetgate.graph.http import AsyncGraphHttp
        from meetgate.graph.meetings import AsyncMeetingsService
        from meetgate.graph.retry import RetryPolicy

        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.tokens = tokens or TokenProvider(
            settings, transport=token_transport, retry=token_retry or self.retry
        )
        self.http = AsyncGraphHttp(
            settings, self.tokens, transport=transport, retry=self.retry, sleep=sleep, limiter=limiter
        )
        self.user_ids = UserIdCache()
        self.directory = AsyncDirectoryService(self.http, self.user_ids)
        self.meetings = AsyncMeetingsService(self.http, self.user_ids)
        self.events = AsyncCalendarEventsService(self.http, self.user_ids)
        self.artifacts = AsyncArtifactsService(self.http, self.user_ids)

    async def aclose(self) -> None:
        await self.http.aclose()
        close = getattr(self.tokens, "close", None)
        if callable(close):
            close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"AsyncGraphClient(tenant_id={self.settings.tenant_id!r}, client_id={self.settings.client_id!r})"
        )


#: The name integrators look for: a GraphClient is the meetings client (``client.meetings``).
MeetingsClient = GraphClient
