"""Every error the Graph client raises, in one tree.

::

    GraphError                       status, code, message, request_id, client_request_id, remedy
                                     (under meetgate.errors.MeetgateError, the root of all of meetgate)
     ├─ CredentialError              a key, certificate or PFX could not be loaded (also ValueError)
     ├─ AuthenticationError          the token endpoint refused us (.aadsts_code)
     ├─ InvalidTokenError            401 from Graph even after one token refresh
     │   └─ DelegatedTokenError      a delegated (user) token where app-only is required
     ├─ AuthorizationError           403
     │   ├─ AccessPolicyMissing      no Teams application access policy for app + organizer
     │   ├─ MailboxAccessDenied      Exchange: no calendar permission reaches the mailbox (RBAC scope)
     │   └─ MissingRolesError        the token lacks an application permission (.missing_roles)
     ├─ NotFoundError                404
     │   ├─ UserNotFound             a user id or UPN that the directory does not know
     │   │   └─ OrganizerNotFound    ... given as a meeting organizer
     │   ├─ MailboxNotEnabled        the organizer has no Exchange Online mailbox
     │   └─ MeetingNotFound          no such meeting (or event) for this organizer
     ├─ BadRequestError              400
     │   └─ OrganizerIdRequired      a UPN in a path where Graph needs the object id
     ├─ ConflictError                409 / 412
     ├─ ThrottledError               429 after every retry (.retry_after)
     ├─ ServiceError                 5xx after every retry
     │   └─ TokenServiceUnavailable  Entra's discovery or token endpoint kept failing (.retry_after)
     └─ TransportError               connection failures / timeouts after every retry
    MeetingRuleError                 a request broke one of Graph's meeting rules before it was sent
                                     (ValueError and GraphError)

Foreign exceptions (httpx, MSAL) are translated into these at one boundary (``graph/http.py`` and
``graph/auth.py``); nothing else of the client raises library exceptions at callers. No message, repr
or attribute here ever holds a token, key or secret.
"""

from __future__ import annotations

from typing import Any

from meetgate.errors import MeetgateError

POLICY_PROPAGATION_NOTE = (
    "Policy changes take up to 30 minutes (sometimes longer) to reach Graph: "
    "retry after that before changing anything else."
)


class GraphError(MeetgateError):
    """Base of everything the Graph client raises.

    ``status`` is the HTTP status (0 when no response was received), ``code`` Graph's (or Entra's) error
    code, ``request_id`` / ``client_request_id`` the ids to quote to Microsoft support, ``remedy`` what
    to do about it. ``maybe_applied`` is True when an attempt may have reached Graph and been carried out
    although no answer said so (a 500/502/504 or a connection lost after sending): the outcome is
    unknown, and only repeating the call (safe for createOrGet, PATCH, DELETE) settles it.
    """

    default_remedy = "See the message; quote request-id and client-request-id when asking for support."

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        remedy: str | None = None,
        method: str | None = None,
        path: str | None = None,
        maybe_applied: bool = False,
        inner_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied
        #: ``innerError.code`` of Graph's envelope, when it had one (e.g. GraphAccessToTranscriptsDisabled)
        self.inner_code = inner_code
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.remedy = remedy or self.default_remedy
        self.method = method
        self.path = path

    def __str__(self) -> str:
        parts = [self.message]
        detail = []
        if self.status:
            detail.append(f"HTTP {self.status}")
        if self.code:
            detail.append(f"code {self.code}")
        if self.request_id:
            detail.append(f"request-id {self.request_id}")
        if self.client_request_id:
            detail.append(f"client-request-id {self.client_request_id}")
        if detail:
            parts.append(f"({', '.join(detail)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r}, "
            f"request_id={self.request_id!r}, client_request_id={self.client_request_id!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for ``--json`` output and gateway responses)."""
        data: dict[str, Any] = {
            "error": type(self).__name__,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "remedy": self.remedy,
            "requestId": self.request_id,
            "clientRequestId": self.client_request_id,
        }
        for name in ("app_id", "organizer", "missing_roles", "retry_after", "aadsts_code"):
            if hasattr(self, name):
                data[_camel(name)] = getattr(self, name)
        return data


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class CredentialError(GraphError, ValueError):
    """A private key, certificate, PFX or secret could not be used."""

    default_remedy = (
        "Check the key/certificate paths and the passphrase environment variable; "
        "`meetgate cert status` shows what the profile points at."
    )


class AuthenticationError(GraphError):
    """The token endpoint refused to issue a token. ``aadsts_code`` is Entra's AADSTS number."""

    default_remedy = (
        "Check tenant_id, client_id, the certificate registered on the app and the authority_url; "
        "`meetgate validate` runs the whole chain."
    )

    def __init__(self, message: str, *, aadsts_code: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("remedy", AADSTS_REMEDIES.get(aadsts_code or 0))
        super().__init__(message, **kwargs)
        self.aadsts_code = aadsts_code


class InvalidTokenError(GraphError):
    """Graph answered 401 even to a freshly issued token."""

    default_remedy = (
        "Graph refused a freshly issued token: check the machine clock (tokens are rejected outside "
        "their validity window), that tenant_id is the tenant the organizers live in, and that "
        "graph_scope is https://graph.microsoft.com/.default."
    )


class DelegatedTokenError(InvalidTokenError):
    """A delegated (user) token was used where an app-only token is required."""

    default_remedy = (
        "Use app-only auth (client credentials with the app's certificate). Delegated tokens carry "
        "`scp` and no `roles`, can only act on /me and are not governed by the application access "
        "policy, so tests made with them prove nothing about the app-only set-up."
    )


class AuthorizationError(GraphError):
    """Graph answered 403."""

    default_remedy = (
        "The app is not allowed to do this: check its application permissions (admin consent) and the "
        "Teams application access policy of the organizer (`meetgate validate`)."
    )


class AccessPolicyMissing(AuthorizationError):
    """The organizer has no Teams application access policy that lists this app.

    ``app_id`` is the client id that must be in the policy's AppIds, ``organizer`` the user it must be
    granted to.
    """

    def __init__(
        self,
        message: str,
        *,
        app_id: str | None = None,
        organizer: str | None = None,
        policy_name: str = "Tag:TeamsMeetingsIntegration",
        **kwargs: Any,
    ) -> None:
        self.app_id = app_id
        self.organizer = organizer
        self.policy_name = policy_name
        kwargs.setdefault("remedy", access_policy_remedy(app_id, organizer, policy_name))
        super().__init__(message, **kwargs)


def policy_short_name(policy_name: str) -> str:
    """``Tag:X`` -> ``X`` (PowerShell's -PolicyName takes the name without the tag)."""
    return policy_name[4:] if policy_name.lower().startswith("tag:") else policy_name


def access_policy_remedy(app_id: str | None, organizer: str | None, policy_name: str) -> str:
    name = policy_short_name(policy_name)
    app = app_id or "<application (client) id>"
    user = organizer or "<organizer UPN or object id>"
    return (
        f"Grant organizer {user} an application access policy that lists app {app}. In Teams "
        f'PowerShell (once): New-CsApplicationAccessPolicy -Identity {name} -AppIds "{app}" '
        f'(or Set-CsApplicationAccessPolicy -Identity {name} -AppIds @{{Add="{app}"}} if it exists), '
        f'then: Grant-CsApplicationAccessPolicy -PolicyName {name} -Identity "{user}" '
        f"(or `meetgate policy apply`). {POLICY_PROPAGATION_NOTE}"
    )


class MissingRolesError(AuthorizationError):
    """The access token lacks an application permission (role) the operation needs."""

    def __init__(
        self,
        message: str,
        *,
        missing_roles: list[str] | None = None,
        present_roles: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.missing_roles = list(missing_roles or [])
        self.present_roles = list(present_roles or [])
        roles = " or ".join(self.missing_roles) or "the required permission"
        kwargs.setdefault(
            "remedy",
            f"Add the Microsoft Graph application permission {roles} to the app registration and grant "
            "admin consent (`meetgate setup app`, or API permissions > Grant admin consent); roles "
            "appear only in tokens issued after consent.",
        )
        super().__init__(message, **kwargs)


class MailboxAccessDenied(AuthorizationError):
    """Exchange refused the app a mailbox (``ErrorAccessDenied``): no calendar permission reaches it.

    Calendar permissions come from Exchange RBAC for Applications (scoped to approved organizers) or an
    Entra grant (every mailbox, which meetgate avoids); the token's roles do not show RBAC grants.
    """

    default_remedy = (
        "Give the app Calendars.ReadWrite on this organizer's mailbox through Exchange RBAC for "
        "Applications, scoped to the approved organizers: add the organizer to the policy file and run "
        '`meetgate mailbox-scope apply` (it makes the management scope and the "Application '
        'Calendars.ReadWrite" role assignment); new assignments take 30 minutes to 2 hours to reach Graph '
        "(`meetgate mailbox-scope verify` asks Test-ServicePrincipalAuthorization, which answers at once)."
    )


class NotFoundError(GraphError):
    """Graph answered 404."""

    default_remedy = "Check the id: it does not exist, or not for this organizer."


class UserNotFound(NotFoundError):
    """The directory has no user with this object id or UPN."""

    def __init__(self, message: str, *, user: str | None = None, **kwargs: Any) -> None:
        self.user = user
        kwargs.setdefault(
            "remedy",
            f"Check the spelling of {user or 'the user'} and that it belongs to this tenant "
            "(guests and users of other tenants cannot organize meetings here).",
        )
        super().__init__(message, **kwargs)


class OrganizerNotFound(UserNotFound):
    """The organizer given for a meeting is not a user of this tenant."""

    def __init__(self, message: str, *, organizer: str | None = None, **kwargs: Any) -> None:
        self.organizer = organizer
        kwargs.setdefault(
            "remedy",
            f"Organizer {organizer or ''} is not a user of this tenant: give an existing user's object id "
            "or UPN (check for typos and that the account is not deleted).",
        )
        super().__init__(message, user=organizer, **kwargs)


class MeetingNotFound(NotFoundError):
    """No meeting with this id for this organizer (deleted, or another organizer's)."""

    default_remedy = (
        "The meeting does not exist for this organizer: it may have been deleted, or it belongs to "
        "another organizer (meeting ids are only valid with their organizer)."
    )


class MailboxNotEnabled(NotFoundError):
    """The organizer has no Exchange Online mailbox (``MailboxNotEnabledForRESTAPI``): calendar meetings
    need one."""

    default_remedy = (
        "Give the organizer an Exchange Online licence (a mailbox that is not on-premises, inactive or "
        "soft-deleted), or create a standalone meeting (placement standalone) for them instead."
    )


class BadRequestError(GraphError):
    """Graph answered 400: the request itself is wrong."""

    default_remedy = "Graph rejected the request as malformed: see the message for the field at fault."


class OrganizerIdRequired(BadRequestError):
    """A UPN was put in a path where Graph needs the user's object id."""

    def __init__(self, message: str, *, organizer: str | None = None, **kwargs: Any) -> None:
        self.organizer = organizer
        kwargs.setdefault(
            "remedy",
            f"Graph's onlineMeetings paths need the organizer's object id, not a UPN ({organizer}). "
            "Use MeetingsService (it resolves UPNs through /users and caches the id) or resolve it "
            "yourself with GET /users/{upn}?$select=id.",
        )
        super().__init__(message, **kwargs)


class ConflictError(GraphError):
    """Graph answered 409 or 412."""


# --- meeting artifacts (attendance reports, transcripts, recordings) ------------------------------

#: the Teams PowerShell switch behind the tenant setting "Graph API access to transcripts"
TRANSCRIPT_ACCESS_SWITCH = "Set-CsTeamsMeetingConfiguration -EnableGraphTranscriptAccess $true"
#: the one behind speaker attribution
SPEAKER_ATTRIBUTION_SWITCH = "Set-CsTeamsMeetingConfiguration -EnableAttributedTranscripts $true"


class TranscriptAccessDisabled(AuthorizationError):
    """403 with ``innerError.code`` ``GraphAccessToTranscriptsDisabled``: the tenant's Teams meeting
    setting "Graph API access to transcripts" is off (every transcript route, in every format)."""

    default_remedy = (
        'A Teams administrator must turn on "Graph API access to transcripts" for the tenant: in Teams '
        f"PowerShell `{TRANSCRIPT_ACCESS_SWITCH}` (the tenant-wide meeting configuration, not a per-user "
        "policy). Nothing in the app registration changes it; recordings and attendance are not affected."
    )


class SpeakerAttributionDisabled(AuthorizationError):
    """403 (``SpeakerAttributionNotAllowed``): speaker attribution is off in the tenant and a
    transcript was asked for with speakers."""

    default_remedy = (
        "Ask for the transcript without speakers (`meetgate meetings transcripts --no-speakers`, library "
        "`speakers=False`: the unattributed form), or have a "
        f"Teams administrator turn speaker attribution on (`{SPEAKER_ATTRIBUTION_SWITCH}`)."
    )


class CalendarMeetingRequired(GraphError):
    """Transcripts and recordings exist only for calendar-backed meetings: Graph refuses them for a
    standalone onlineMeeting ("No iCalUid found for the meeting")."""

    default_remedy = (
        "Graph serves transcripts and recordings only for meetings on the organizer's calendar: create "
        "the meeting as a calendar meeting (`meetgate meetings create --calendar`, library "
        "placement='calendar'). A standalone meeting still has its attendance reports."
    )


class ChannelMeetingUnsupported(BadRequestError):
    """Graph refuses the artifacts of a meeting held in a Teams channel."""

    default_remedy = (
        "Graph does not serve artifacts of channel meetings through these APIs: schedule the meeting "
        "from the organizer's calendar (not in a channel), or read the recording from the channel's "
        "SharePoint files."
    )


class ArtifactNotReady(NotFoundError):
    """The meeting has no report, transcript or recording of this kind, or not yet (``kind``)."""

    def __init__(self, message: str, *, kind: str = "artifact", **kwargs: Any) -> None:
        self.kind = kind
        kwargs.setdefault(
            "remedy",
            f"Graph publishes the {kind} only after a session of the meeting has ended (no delay is "
            "documented; minutes are usual): retry later, with backoff. Transcripts and recordings exist "
            "only when someone started transcription or recording in the meeting.",
        )
        super().__init__(message, **kwargs)


class ThrottledError(GraphError):
    """Graph kept answering 429 until the retry budget was spent."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        wait = f"{retry_after:g} s" if retry_after is not None else "a while"
        kwargs.setdefault(
            "remedy",
            f"Graph is throttling this app: wait {wait} before retrying, spread calls out, and keep "
            "under the Teams limit (30 requests/s per app per tenant).",
        )
        super().__init__(message, **kwargs)


class ServiceError(GraphError):
    """Graph kept answering 5xx until the retry budget was spent."""

    default_remedy = (
        "Microsoft Graph is failing on its side: retry later; check the Microsoft 365 service health "
        "page and quote request-id to support if it persists."
    )


class TokenServiceUnavailable(ServiceError):
    """Entra's tenant discovery or token endpoint kept answering 429/5xx (or could not be reached)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        wait = f"after {retry_after:g} s" if retry_after is not None else "in a minute"
        kwargs.setdefault(
            "remedy",
            f"Microsoft Entra ID could not issue a token: retry {wait}. If it persists, check the Microsoft "
            "365 service health page (Entra ID) and that authority_url points at the right cloud.",
        )
        super().__init__(message, **kwargs)


class TransportError(GraphError):
    """No usable response: connection refused or dropped, TLS failure, or timeout (after retries)."""

    default_remedy = (
        "Check network access to the Graph and authority URLs, proxies and the CA bundle (ca_bundle)."
    )


class MeetingRuleError(GraphError, ValueError):
    """A meeting request broke one of the meeting rules (``graph/meeting_rules.py``) and was not sent.
    ``field`` names the part to fix (``subject``, ``start``, ``end`` …) when there is one."""

    default_remedy = "Fix the request as the message says."

    def __init__(self, message: str, *, field: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["field"] = self.field
        return data


#: What to do about the token endpoint's AADSTS errors (each one explained in docs/troubleshooting.md).
AADSTS_REMEDIES: dict[int, str] = {
    700027: (
        "Entra did not accept the client assertion: the certificate is not registered on the app, "
        "is expired, or the key does not match. Upload the current certificate (`meetgate cert upload`) "
        "and check `meetgate cert status`."
    ),
    700016: (
        "The client_id is not an application in this tenant: check client_id and tenant_id "
        "(an app registered in another tenant needs consent here)."
    ),
    7000215: "The client secret is wrong: create a new one, or better, switch to a certificate.",
    7000222: "The client secret has expired: create a new one, or better, switch to a certificate.",
    90002: "The tenant was not found: check tenant_id (a GUID or the tenant's verified domain).",
    700024: ("The client assertion is outside its validity window: check the machine clock (NTP) and retry."),
    50027: "The client assertion JWT is malformed: check the certificate and private key files.",
    70011: "The scope is invalid: graph_scope must be https://graph.microsoft.com/.default.",
    7000112: "The application is disabled in this tenant: an administrator must enable it.",
    50034: "The account does not exist in this tenant.",
    900023: "The tenant id is not a valid GUID or domain: check tenant_id.",
}
