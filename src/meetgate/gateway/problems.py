"""RFC 9457 problem details: one stable ``type`` per error class, with a remedy for the consumer.

Problems never carry secrets, stack traces or another consumer's data. Graph failures keep Graph's
request id (``graphRequestId``) so an administrator can follow them up with Microsoft.

Every error answer of the gateway is a :class:`Problem`: the gateway's own types (:data:`CATALOGUE`),
and plain HTTP errors with ``type`` ``about:blank`` (an unknown path or method:
:func:`http_problem`; the dashboard's admin key: :data:`ADMIN_KEY_REQUIRED`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TYPE_BASE = "urn:meetgate:problem:"
MEDIA_TYPE = "application/problem+json"
#: the ``type`` of a plain HTTP error (RFC 9457 section 4.2.1)
ABOUT_BLANK = "about:blank"
#: what a plain HTTP error of the router (unknown path or method) tells the caller to do
HTTP_ERROR_REMEDY = "check the method and path against /openapi.json"
#: Exchange's 400 to a cancel by someone else than the organizer
_NOT_ORGANIZER = re.compile(r"organizer to cancel", re.IGNORECASE)


@dataclass(frozen=True)
class ProblemKind:
    """One class of error: its slug, HTTP status, title and default remedy.

    ``plain``: a plain HTTP error rather than one of the gateway's problem types: its ``type`` is
    ``about:blank``, its body has no ``instance`` and always a ``requestId``, and the request's audit
    entry keeps the outcome ``error`` (no problem slug is noted)."""

    slug: str
    status: int
    title: str
    remedy: str
    plain: bool = False

    @property
    def type(self) -> str:
        """The problem's ``type`` URI."""
        return ABOUT_BLANK if self.plain else TYPE_BASE + self.slug


def _kinds(*kinds: ProblemKind) -> dict[str, ProblemKind]:
    return {k.slug: k for k in kinds}


CATALOGUE: dict[str, ProblemKind] = _kinds(
    ProblemKind("invalid-request", 422, "The request is not valid", "fix the fields listed in `errors`"),
    ProblemKind(
        "idempotency-key-required",
        400,
        "Idempotency-Key header missing",
        "send an Idempotency-Key header (1-255 printable characters, e.g. a UUID) and reuse it on retries",
    ),
    ProblemKind(
        "unauthenticated",
        401,
        "API key missing, unknown, revoked, rotated or expired",
        "send `Authorization: Bearer <api key>`; ask the gateway operator for a new key if it was revoked, "
        "rotated or has expired",
    ),
    ProblemKind(
        "organizer-not-allowed",
        403,
        "This consumer may not act for that organizer",
        "use one of the organizers registered for your consumer; the operator can add more",
    ),
    ProblemKind(
        "organizer-outside-policy",
        403,
        "The organizer is outside the application access policy",
        "ask the Teams administrator to grant the application access policy to this organizer "
        "(changes take up to 30 minutes)",
    ),
    ProblemKind(
        "graph-access-policy-missing",
        403,
        "Microsoft Graph refused: no application access policy for this organizer",
        "ask the Teams administrator to grant the application access policy to this organizer "
        "(changes take up to 30 minutes), then retry",
    ),
    ProblemKind(
        "mailbox-access-denied",
        403,
        "Exchange refused the app this organizer's mailbox",
        "ask the Exchange administrator to put this organizer in the app's mailbox scope (Exchange RBAC "
        "for Applications: `meetgate mailbox-scope apply`); new assignments take 30 minutes to 2 hours to "
        'reach Graph. Or create a standalone meeting ("placement": "standalone")',
    ),
    ProblemKind(
        "not-organizer",
        403,
        "Only the meeting's organizer can cancel it",
        "cancel the meeting (or occurrence) the organizer's calendar holds, through the gateway meeting "
        "that created it",
    ),
    ProblemKind(
        "mailbox-not-enabled",
        422,
        "The organizer has no Exchange Online mailbox",
        "ask the administrator for an Exchange Online licence for the organizer (a mailbox that is not "
        "on-premises, inactive or soft-deleted), or create a standalone meeting "
        '("placement": "standalone") for them instead',
    ),
    ProblemKind(
        "not-for-placement",
        409,
        "The meeting's placement has no such operation",
        "see `detail`: calendar meetings are cancelled with a message and invited by Exchange; standalone "
        "meetings have no occurrences, time zone, body or location",
    ),
    ProblemKind("not-found", 404, "No such meeting for this consumer", "check the meeting id or join URL"),
    ProblemKind(
        "idempotency-conflict",
        409,
        "Idempotency-Key reused with a different request",
        "send a new Idempotency-Key for a new meeting; reuse a key only to retry the same request",
    ),
    ProblemKind(
        "meeting-gone",
        409,
        "The meeting was cancelled",
        "create a new meeting with a new Idempotency-Key",
    ),
    ProblemKind(
        "webhook-not-found",
        404,
        "No such webhook endpoint or delivery for this consumer",
        "list your endpoints (GET /v1/webhooks) and their deliveries (GET /v1/webhooks/{id}/deliveries)",
    ),
    ProblemKind(
        "webhook-url-refused",
        422,
        "The webhook URL is not allowed",
        "give a public https URL; see `detail` for why this one is refused",
    ),
    ProblemKind(
        "webhook-invalid",
        422,
        "The webhook request is not valid",
        "see `detail`; event types are meeting.started, meeting.ended, attendance.ready, "
        "transcript.ready, recording.ready, meeting.updated, meeting.cancelled",
    ),
    ProblemKind(
        "artifact-kind-disabled",
        403,
        "This gateway does not read that kind of meeting artifact",
        "ask the gateway operator to add the kind to the profile's `artifacts` (e.g. artifacts = "
        '["attendance", "transcripts", "recordings"]), grant its permission (`meetgate setup app`) and '
        "restart the gateway",
    ),
    ProblemKind(
        "artifact-permission-missing",
        403,
        "The app lacks the Graph permission for that kind of artifact",
        "ask the gateway operator to grant the permission named in `missingRoles` (`meetgate setup app` "
        "with the kind in the profile's `artifacts`, then admin consent) and check it with `meetgate validate`",
    ),
    ProblemKind(
        "calendar-meeting-required",
        409,
        "Transcripts and recordings need a calendar meeting",
        "Graph serves transcripts and recordings only for meetings on the organizer's calendar: create "
        'the meeting with "placement": "calendar"; a standalone meeting still has its attendance',
    ),
    ProblemKind(
        "channel-meeting-unsupported",
        409,
        "Graph serves no artifacts of channel meetings",
        "schedule the meeting from the organizer's calendar (not in a Teams channel), or read the "
        "recording from the channel's SharePoint files",
    ),
    ProblemKind(
        "transcripts-disabled",
        403,
        "The tenant has turned Graph access to transcripts off",
        'a Teams administrator must turn on "Graph API access to transcripts" for the tenant '
        "(Teams PowerShell: `Set-CsTeamsMeetingConfiguration -EnableGraphTranscriptAccess $true`); "
        "recordings and attendance are not affected",
    ),
    ProblemKind(
        "speaker-attribution-disabled",
        403,
        "The tenant does not attribute transcripts to speakers",
        "ask for the transcript without speakers (`?speakers=false`), or have a Teams administrator turn "
        "speaker attribution on (`Set-CsTeamsMeetingConfiguration -EnableAttributedTranscripts $true`)",
    ),
    ProblemKind(
        "artifact-not-ready",
        404,
        "The artifact is not available (yet)",
        "Graph publishes it some minutes after the session ends: retry after the Retry-After seconds, "
        "with backoff; transcripts and recordings exist only if someone started them in the meeting",
    ),
    ProblemKind(
        "range-not-satisfiable",
        416,
        "The Range lies beyond the recording's end",
        "`Content-Range: bytes */<size>` gives the size: ask for a range within it, or none",
    ),
    ProblemKind("rate-limited", 429, "Too many requests", "wait for the Retry-After seconds, then retry"),
    ProblemKind(
        "quota-exceeded",
        429,
        "Daily quota used up",
        "retry after the quota resets (UTC midnight) or ask the operator for a larger quota",
    ),
    ProblemKind(
        "graph-bad-request",
        422,
        "Microsoft Graph rejected the meeting",
        "fix the request as `detail` says (e.g. times, attendees, options)",
    ),
    ProblemKind(
        "graph-throttled",
        503,
        "Microsoft Graph is throttling",
        "retry with the same Idempotency-Key after Retry-After seconds",
    ),
    ProblemKind(
        "graph-unavailable",
        502,
        "Microsoft Graph failed or could not be reached",
        "retry with the same Idempotency-Key; if it persists, tell the gateway operator the graphRequestId",
    ),
    ProblemKind(
        "identity-unavailable",
        503,
        "Microsoft Entra's token service failed or could not be reached",
        "retry with the same Idempotency-Key after Retry-After seconds; if it persists, tell the gateway "
        "operator (Entra's status page, or the gateway's network path to login.microsoftonline.com)",
    ),
    ProblemKind(
        "graph-auth-failed",
        502,
        "The gateway could not authenticate to Microsoft Graph",
        "tell the gateway operator (the app's certificate, roles or registration need attention)",
    ),
    ProblemKind(
        "store-unavailable",
        503,
        "The gateway's store is unavailable",
        "retry with the same Idempotency-Key shortly",
    ),
    ProblemKind(
        "internal", 500, "Unexpected gateway error", "retry; if it persists, give the operator the requestId"
    ),
)


@dataclass
class Problem(Exception):
    """Raise anywhere in a request to answer with problem+json."""

    slug: str
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    remedy: str | None = None
    graph_status: int | None = None
    graph_request_id: str | None = None
    #: a kind that is not in :data:`CATALOGUE` (plain HTTP errors); ``slug`` names it
    custom_kind: ProblemKind | None = None

    def __post_init__(self) -> None:
        super().__init__(self.detail or self.kind.title)

    @property
    def kind(self) -> ProblemKind:
        """The problem's class: ``custom_kind``, else the catalogue's entry for ``slug``."""
        return self.custom_kind or CATALOGUE[self.slug]

    @property
    def status(self) -> int:
        """The HTTP status of the answer."""
        return self.kind.status

    def body(self, *, instance: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        """The problem+json document (``instance``: the request's path; left out for plain errors)."""
        kind = self.kind
        body: dict[str, Any] = {
            "type": kind.type,
            "title": kind.title,
            "status": kind.status,
            "detail": self.detail or kind.title,
            "remedy": self.remedy or kind.remedy,
        }
        if instance and not kind.plain:
            body["instance"] = instance
        if request_id or kind.plain:
            body["requestId"] = request_id
        if self.graph_request_id:
            body["graphRequestId"] = self.graph_request_id
        body.update(self.extra)
        return body


#: the dashboard refused: no admin key, or the wrong one (``/admin/...``)
ADMIN_KEY_REQUIRED = ProblemKind(
    "admin-key-required",
    401,
    "Admin key required",
    "send X-Admin-Key (or HTTP Basic with the key as password); set MEETGATE_ADMIN_KEY "
    "when starting `meetgate serve`",
    plain=True,
)


def admin_key_problem() -> Problem:
    """The answer when ``/admin/...`` comes without the gateway's admin key (a browser then prompts)."""
    return Problem(
        ADMIN_KEY_REQUIRED.slug,
        "the dashboard needs the gateway's admin key",
        headers={"WWW-Authenticate": 'Basic realm="meetgate dashboard"'},
        custom_kind=ADMIN_KEY_REQUIRED,
    )


def http_problem(status: int, title: str, headers: dict[str, str] | None = None) -> Problem:
    """A plain HTTP error of the router (404 unknown path, 405 method, ...): ``about:blank``, with
    ``title`` (Starlette's reason phrase or detail) as its title and detail."""
    kind = ProblemKind(f"http-{status}", status, title, HTTP_ERROR_REMEDY, plain=True)
    return Problem(kind.slug, title, headers=dict(headers or {}), custom_kind=kind)


def is_graph_error(exc: BaseException) -> bool:
    from meetgate.graph.errors import GraphError

    return isinstance(exc, GraphError)


def from_graph_error(exc: BaseException) -> Problem:
    """Translate an error of the Graph client's tree into a Problem for the consumer."""
    from meetgate.graph import errors as ge

    status = getattr(exc, "status", None)
    request_id = getattr(exc, "request_id", None)
    message = str(getattr(exc, "message", None) or exc)[:500]
    common: dict[str, Any] = {
        "graph_status": status if isinstance(status, int) and status else None,
        "graph_request_id": request_id if isinstance(request_id, str) else None,
    }
    if isinstance(exc, ge.MailboxAccessDenied):
        return Problem("mailbox-access-denied", "Exchange: " + message, **common)
    if isinstance(exc, ge.MailboxNotEnabled):
        return Problem("mailbox-not-enabled", "Exchange: " + message, **common)
    if isinstance(exc, ge.BadRequestError) and _NOT_ORGANIZER.search(message):
        return Problem("not-organizer", "Exchange: " + message, **common)
    artifact = _artifact_problem(exc, message, common)
    if artifact is not None:
        return artifact
    if isinstance(exc, ge.AccessPolicyMissing):
        return Problem(
            "graph-access-policy-missing", "Graph: no application access policy for this organizer", **common
        )
    if isinstance(exc, ge.MeetingRuleError):
        extra = {"field": exc.field} if getattr(exc, "field", None) else {}
        return Problem("graph-bad-request", message, remedy=exc.remedy, extra=extra, **common)
    if isinstance(exc, ge.BadRequestError | ge.ConflictError):
        return Problem("graph-bad-request", "Graph: " + message, **common)
    if isinstance(exc, ge.UserNotFound):
        return Problem("not-found", "Graph: the organizer was not found in the directory", **common)
    if isinstance(exc, ge.NotFoundError):
        return Problem("not-found", "Graph: the meeting was not found", **common)
    if isinstance(exc, ge.TokenServiceUnavailable):
        return Problem(
            "identity-unavailable",
            "Entra's token service kept failing after retries",
            headers={"Retry-After": str(_retry_after_seconds(exc.retry_after, default=30))},
            **common,
        )
    if isinstance(exc, ge.ThrottledError):
        return Problem(
            "graph-throttled",
            "Graph kept throttling after retries",
            headers={"Retry-After": str(_retry_after_seconds(exc.retry_after, default=5))},
            **common,
        )
    if isinstance(
        exc, ge.AuthenticationError | ge.InvalidTokenError | ge.AuthorizationError | ge.CredentialError
    ):
        # the detail would describe the gateway's own credentials: it goes to the operator's log only
        return Problem("graph-auth-failed", **common)
    return Problem("graph-unavailable", "Graph did not answer successfully after retries", **common)


#: seconds an artifact that is not ready is asked again after (Graph documents no delay)
ARTIFACT_RETRY_SECONDS = 60


def _artifact_problem(exc: BaseException, message: str, common: dict[str, Any]) -> Problem | None:
    """The problem of a meeting artifact's refusal (None: ``exc`` is no such refusal)."""
    from meetgate.graph import errors as ge
    from meetgate.graph.artifact_models import ARTIFACT_PERMISSIONS

    remedy = getattr(exc, "remedy", None)
    if isinstance(exc, ge.TranscriptAccessDisabled):
        return Problem("transcripts-disabled", "Graph: " + message, remedy=remedy, **common)
    if isinstance(exc, ge.SpeakerAttributionDisabled):
        return Problem("speaker-attribution-disabled", "Graph: " + message, **common)
    if isinstance(exc, ge.CalendarMeetingRequired):
        return Problem("calendar-meeting-required", "Graph: " + message, **common)
    if isinstance(exc, ge.ChannelMeetingUnsupported):
        return Problem("channel-meeting-unsupported", "Graph: " + message, **common)
    if isinstance(exc, ge.ArtifactNotReady):
        return Problem(
            "artifact-not-ready",
            f"Graph: the {exc.kind} is not available (yet)",
            headers={"Retry-After": str(ARTIFACT_RETRY_SECONDS)},
            **common,
        )
    if isinstance(exc, ge.MissingRolesError):
        artifact_roles = set(ARTIFACT_PERMISSIONS.values())
        if exc.missing_roles and set(exc.missing_roles) <= artifact_roles:
            return Problem(
                "artifact-permission-missing",
                "the app's access token lacks " + ", ".join(exc.missing_roles),
                extra={"missingRoles": list(exc.missing_roles)},
                **common,
            )
    return None


def _retry_after_seconds(retry_after: float | None, *, default: int) -> int:
    """Whole seconds for a ``Retry-After`` header: rounded up, at least 1, ``default`` when unknown."""
    return max(1, int(float(retry_after) + 0.999)) if retry_after is not None else default
