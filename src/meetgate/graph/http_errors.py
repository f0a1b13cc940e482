"""How a Graph refusal becomes a :class:`~meetgate.graph.errors.GraphError`: the status, Graph's error
envelope and the call's context (:class:`~meetgate.graph.http.GraphCallContext`) pick the subclass
and its message — the policy 403, missing roles, a UPN where an id belongs, Exchange's mailbox
refusals, the meeting-artifact refusals, throttling and service failures.

Pure: no I/O, one function of the finished response, so every mapping is testable on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx

from meetgate.graph.errors import (
    AccessPolicyMissing,
    AuthorizationError,
    BadRequestError,
    CalendarMeetingRequired,
    ChannelMeetingUnsupported,
    ConflictError,
    DelegatedTokenError,
    GraphError,
    InvalidTokenError,
    MailboxAccessDenied,
    MailboxNotEnabled,
    MeetingNotFound,
    MissingRolesError,
    NotFoundError,
    OrganizerIdRequired,
    OrganizerNotFound,
    ServiceError,
    SpeakerAttributionDisabled,
    ThrottledError,
    TranscriptAccessDisabled,
    UserNotFound,
)

if TYPE_CHECKING:
    from meetgate.graph.http import CallPlan

__all__ = ["error_envelope", "error_for"]

_POLICY_403 = re.compile(r"application access policy|not authorized to .* on behalf of user", re.IGNORECASE)
_ORGANIZER_IN_PATH = re.compile(r"/users/([^/?]+)/onlineMeetings", re.IGNORECASE)
_USER_PATH = re.compile(r"/users/([^/?]+)(?:\?|$)", re.IGNORECASE)


def error_for(plan: CallPlan, response: httpx.Response, retry_after: float | None = None) -> GraphError:
    """The :class:`GraphError` subclass for Graph's refusal ``response`` to ``plan``, with a message that
    names the call and a remedy (the policy 403, missing roles, Exchange's refusals, artifacts …)."""
    status = response.status_code
    code, graph_message, inner = error_envelope(response)
    request_id = response.headers.get("request-id") or inner.get("request-id")
    client_request_id = (
        response.headers.get("client-request-id") or inner.get("client-request-id") or plan.client_request_id
    )
    ctx = plan.context
    path = plan._path()
    what = f"{ctx.operation}" if ctx.operation else f"{plan.method} {path.split('?')[0]}"
    text = graph_message or response.reason_phrase or "no message"
    common: dict[str, Any] = {
        "status": status,
        "code": code,
        "request_id": request_id,
        "client_request_id": client_request_id,
        "method": plan.method,
        "path": path,
        "inner_code": str(inner["code"]) if inner.get("code") else None,
    }
    artifact_error = _artifact_error(status, code, inner, text, what, common)
    if artifact_error is not None:
        return artifact_error
    path_match = _ORGANIZER_IN_PATH.search(plan.url)
    organizer_segment = unquote(path_match.group(1)) if path_match else None
    organizer = ctx.organizer or organizer_segment
    claims = plan._claims()
    if status == 401:
        if claims is not None and not claims.is_app_only:
            return DelegatedTokenError(f"Graph refused a delegated token for {what}: {text}", **common)
        return InvalidTokenError(f"Graph refused the access token for {what}: {text}", **common)
    if status == 403 and code == "ErrorAccessDenied":
        return MailboxAccessDenied(f"Exchange refused to {what} for organizer {organizer}: {text}", **common)
    if status == 404 and code == "MailboxNotEnabledForRESTAPI":
        return MailboxNotEnabled(
            f"organizer {organizer} has no Exchange Online mailbox, needed to {what}: {text}", **common
        )
    if status == 403:
        if _POLICY_403.search(text):
            return AccessPolicyMissing(
                f"Graph refused to {what} for organizer {organizer}: {text}",
                app_id=plan.settings.client_id,
                organizer=organizer,
                policy_name=plan.settings.policy_name,
                **common,
            )
        if claims is not None and not claims.is_app_only:
            return DelegatedTokenError(
                f"Graph refused {what}: a delegated token was used where app-only access is needed: {text}",
                **common,
            )
        if claims is not None and ctx.required_roles and not claims.has_any_role(ctx.required_roles):
            return MissingRolesError(
                f"the access token of app {plan.settings.client_id} lacks "
                f"{' or '.join(ctx.required_roles)} needed to {what} "
                f"(it has: {', '.join(claims.roles) or 'no roles'}): {text}",
                missing_roles=list(ctx.required_roles),
                present_roles=list(claims.roles),
                **common,
            )
        if organizer_segment and "@" in organizer_segment:
            return OrganizerIdRequired(
                f"Graph refused {what}: a UPN ({organizer_segment}) is in the path where an object id "
                f"is needed: {text}",
                organizer=organizer_segment,
                **common,
            )
        return AuthorizationError(f"Graph refused to {what}: {text}", **common)
    if status in (400, 404) and organizer_segment and "@" in organizer_segment:
        return OrganizerIdRequired(
            f"Graph refused {what}: a UPN ({organizer_segment}) is in the path where an object id is "
            f"needed: {text}",
            organizer=organizer_segment,
            **common,
        )
    if status == 404:
        mentions_user = bool(re.search(r"\buser\b|organizer|principal", text, re.IGNORECASE))
        if ctx.organizer and (mentions_user or not ctx.meeting_id):
            return OrganizerNotFound(
                f"organizer {ctx.organizer} was not found: {text}", organizer=ctx.organizer, **common
            )
        if ctx.meeting_id:
            return MeetingNotFound(
                f"meeting {ctx.meeting_id} was not found for organizer {organizer}: {text}", **common
            )
        user_match = _USER_PATH.search(plan.url)
        user = ctx.user or (unquote(user_match.group(1)) if user_match else None)
        if user:
            return UserNotFound(f"user {user} was not found: {text}", user=user, **common)
        return NotFoundError(f"{what}: not found: {text}", **common)
    if status == 400:
        return BadRequestError(f"Graph rejected {what}: {text}", **common)
    if status in (409, 412):
        return ConflictError(f"Graph refused {what}: {text}", **common)
    if status == 429:
        return ThrottledError(
            f"Graph kept throttling {what} after {plan.attempt} attempt(s): {text}",
            retry_after=retry_after,
            **common,
        )
    if status >= 500:
        return ServiceError(f"Graph failed to {what} after {plan.attempt} attempt(s): {text}", **common)
    return GraphError(f"{what}: HTTP {status}: {text}", **common)


_NOT_CALENDAR_BACKED = re.compile(r"no icaluid found|only for calendar backed", re.IGNORECASE)
_CHANNEL_MEETING = re.compile(r"channel based meetings are (currently )?not supported", re.IGNORECASE)


def _artifact_error(
    status: int, code: str | None, inner: Mapping[str, Any], text: str, what: str, common: dict[str, Any]
) -> GraphError | None:
    """The meeting-artifact refusals, told by their inner code or message (any status they come with)."""
    inner_code = str(inner.get("code") or "")
    if status == 403 and "GraphAccessToTranscriptsDisabled" in (inner_code, code):
        return TranscriptAccessDisabled(
            f"the tenant has turned off Graph API access to transcripts ({what}): {text}", **common
        )
    if status == 403 and "SpeakerAttributionNotAllowed" in (inner_code, code):
        return SpeakerAttributionDisabled(
            f"speaker attribution is off in the tenant, so {what} with speakers is refused: {text}", **common
        )
    if 400 <= status < 500 and _NOT_CALENDAR_BACKED.search(text):
        return CalendarMeetingRequired(
            f"Graph refused to {what}: the meeting is not calendar-backed: {text}", **common
        )
    if status == 400 and _CHANNEL_MEETING.search(text):
        return ChannelMeetingUnsupported(f"Graph refused to {what}: {text}", **common)
    return None


def error_envelope(response: httpx.Response) -> tuple[str | None, str, dict[str, Any]]:
    """Graph's ``{"error": {"code", "message", "innerError": {...}}}``, tolerant of anything else."""
    try:
        body = response.json()
    except ValueError:
        return None, "", {}
    if not isinstance(body, dict):
        return None, "", {}
    error = body.get("error")
    if isinstance(error, dict):
        inner = error.get("innerError") or error.get("innererror") or {}
        return (
            str(error.get("code")) if error.get("code") else None,
            str(error.get("message") or ""),
            inner if isinstance(inner, dict) else {},
        )
    if isinstance(error, str):  # OAuth-style
        return error, str(body.get("error_description") or ""), {}
    return None, "", {}
