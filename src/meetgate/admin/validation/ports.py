"""What the checks look at: the profile's facts (:class:`ValidationConfig`) and the small ports the
suite talks through (token, meetings, directory, registration, reachability, Teams PowerShell, the
cleanup journal), gathered in a :class:`ValidationTarget`. Graph implements them in production,
fakes in unit tests, the sandbox in integration tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from meetgate.graph.applications import Application
from meetgate.graph.auth import AccessToken
from meetgate.graph.event_models import CalendarMeeting, CreateOrGetEventResult
from meetgate.graph.models import CreateOrGetResult, MeetingRequest, OnlineMeeting, User


@dataclass(frozen=True)
class ValidationConfig:
    """The profile's facts the checks need (built by the CLI from a ``Profile``); no secret values."""

    profile: str = "default"
    tenant_id: str | None = None
    client_id: str | None = None
    authority_url: str | None = None
    graph_url: str | None = None
    private_key_path: Path | None = None
    certificate_path: Path | None = None
    pfx_path: Path | None = None
    passphrase: bytes | None = field(default=None, repr=False)
    #: the environment variable a client secret would be read from, and whether it is set
    client_secret_env: str = "MEETGATE_CLIENT_SECRET"
    client_secret_configured: bool = False
    #: a token handed over instead of the certificate (e.g. what a third-party app was given)
    external_token: bool = False
    policy_name: str = "Tag:TeamsMeetingsIntegration"
    #: the policy file scopes calendar placement ([mailbox_scope]): no Entra calendar grant may exist
    mailbox_scoped: bool = False
    #: mailboxes that must stay outside the scope (``[mailbox_scope] outside``); when empty, the
    #: calendar negative test uses the Teams negative users
    calendar_outside: tuple[str, ...] = ()
    #: the meeting-artifact kinds the profile enables (``artifacts``): each is checked
    artifacts: tuple[str, ...] = ()

    @property
    def has_certificate(self) -> bool:
        return self.pfx_path is not None or (
            self.private_key_path is not None and self.certificate_path is not None
        )


class TokenPort(Protocol):
    def get_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> AccessToken: ...


class SyncMeetingsPort(Protocol):
    """What the policy tests need (``meetgate.graph.meetings.MeetingsService`` implements it)."""

    def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest
    ) -> CreateOrGetResult: ...

    def get(self, organizer: str, meeting_id: str) -> OnlineMeeting: ...

    def delete(self, organizer: str, meeting_id: str) -> None: ...


class SyncEventsPort(Protocol):
    """What the calendar tests need (``meetgate.graph.events.CalendarEventsService`` implements it)."""

    def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest
    ) -> CreateOrGetEventResult: ...

    def find_by_external_id(self, organizer: str, external_id: str) -> CalendarMeeting | None: ...

    def online_meeting(self, organizer: str, event: CalendarMeeting) -> OnlineMeeting | None: ...

    def delete(self, organizer: str, event_id: str) -> None: ...


class ArtifactsPort(Protocol):
    """One read of an artifact kind for an organizer (``meetgate.graph.artifacts.ArtifactsService``)."""

    def probe(self, organizer: str, kind: str) -> int: ...


class DirectoryPort(Protocol):
    """``meetgate.graph.directory.DirectoryService`` implements it."""

    def get_user(self, id_or_upn: str) -> User: ...


class RegistrationReader(Protocol):
    """The app's registration (key and password credentials); ``ApplicationsService`` implements it."""

    def find_application_by_app_id(self, app_id: str) -> Application | None: ...


@dataclass(frozen=True)
class ProbeSample:
    """One cheap Graph call: how long it took and what it said about throttling."""

    status: int
    latency_ms: float
    request_id: str | None = None
    retry_after: float | None = None
    #: throttling-related response headers (RateLimit-*, x-ms-throttle-*), when Graph sent any
    headers: Mapping[str, str] = field(default_factory=dict)


class ReachabilityProbe(Protocol):
    def sample(self) -> ProbeSample: ...


@dataclass(frozen=True)
class TeamsConnection:
    """What ``Connect-MicrosoftTeams`` reported (or why it failed)."""

    ok: bool
    account: str | None = None
    tenant_id: str | None = None
    detail: str = ""


class TeamsConnectionProbe(Protocol):
    def connect(self) -> TeamsConnection: ...


#: the kinds of a calendar test's external id (``meetgate-validate-<run>-<kind><n>``): the journal
#: keeps no placement, so the id says that a leftover is a calendar event, not a standalone meeting
CALENDAR_TEST_KINDS = ("calpilot", "caloutside")


@dataclass(frozen=True)
class PendingMeeting:
    """A test meeting announced to the journal (``meeting_id``: the meeting's or the event's id)."""

    organizer_id: str
    external_id: str
    meeting_id: str | None = None

    @property
    def is_calendar(self) -> bool:
        """A calendar test's event (deleted through the events port), not a standalone meeting."""
        kind = self.external_id.rsplit("-", 1)[-1].rstrip("0123456789")
        return kind in CALENDAR_TEST_KINDS


class CleanupJournal(Protocol):
    """Test meetings announced before they are created, removed once deleted (the store in production)."""

    def announce(self, meeting: PendingMeeting) -> None: ...

    def resolve(self, meeting: PendingMeeting) -> None: ...

    def pending(self) -> list[PendingMeeting]: ...


class InMemoryCleanupJournal:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], PendingMeeting] = {}

    def announce(self, meeting: PendingMeeting) -> None:
        self.items[(meeting.organizer_id, meeting.external_id)] = meeting

    def resolve(self, meeting: PendingMeeting) -> None:
        self.items.pop((meeting.organizer_id, meeting.external_id), None)

    def pending(self) -> list[PendingMeeting]:
        return list(self.items.values())


@dataclass
class ValidationTarget:
    """Everything the suite talks to. ``tokens`` and ``meetings``/``directory`` may be None when the
    configuration is too broken to build a client (the checks then report why)."""

    config: ValidationConfig
    tokens: TokenPort | None = None
    meetings: SyncMeetingsPort | None = None
    #: calendar meetings (the calendar tests; only used when calendar placement is scoped)
    events: SyncEventsPort | None = None
    directory: DirectoryPort | None = None
    #: meeting artifacts (the artifacts check; only used when the profile enables a kind)
    artifacts: ArtifactsPort | None = None
    registration: RegistrationReader | None = None
    reachability: ReachabilityProbe | None = None
    teams: TeamsConnectionProbe | None = None
    #: why the Teams PowerShell check cannot run (shown when ``teams`` is None)
    teams_skip_reason: str = "pwsh is not configured"
    journal: CleanupJournal = field(default_factory=InMemoryCleanupJournal)
    #: why no client could be built (a configuration error's message), when that happened
    client_error: str | None = None
