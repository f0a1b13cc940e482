"""Checks that prove the calendar plane (run only when the policy file scopes calendar placement with
``[mailbox_scope]``): for each pilot organizer a calendar meeting is created, its Teams join URL and the
onlineMeeting behind it are checked (both planes hold), and it is deleted; for a mailbox outside the
scope the create must be refused by Exchange (``MailboxAccessDenied``). Every test event goes through
the cleanup journal and is deleted in a ``finally``, also when a step fails or on Ctrl-C."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meetgate.admin.validation.checks_policy import _resolved, _test_request, validation_external_id
from meetgate.admin.validation.context import _error_evidence, _Run
from meetgate.admin.validation.model import CheckResult
from meetgate.admin.validation.ports import PendingMeeting
from meetgate.graph.errors import (
    AccessPolicyMissing,
    GraphError,
    MailboxAccessDenied,
    MailboxNotEnabled,
    NotFoundError,
)
from meetgate.graph.event_models import CalendarMeeting
from meetgate.graph.models import MeetingRequest, OnlineMeeting

SCOPE_REMEDY = (
    "the app has no calendar access to this organizer's mailbox: add the organizer to the policy file's "
    "approved organizers (or [mailbox_scope]) and run `meetgate mailbox-scope apply`; a new or changed "
    "assignment takes Exchange 30 minutes to 2 hours to reach Graph — `meetgate mailbox-scope verify` "
    "(Test-ServicePrincipalAuthorization) answers at once; run `meetgate validate` again once it passes"
)
NOT_ENFORCED_REMEDY = (
    "the app can write calendars it must not reach. Look for a tenant-wide Entra grant first (the union "
    "rule: Calendars.ReadWrite / Calendars.ReadWrite.All as an application permission with admin consent "
    "reaches EVERY mailbox — remove it and revoke the consent; the permissions check names it), then "
    "`meetgate mailbox-scope status` and `drift`: the management scope's recipient filter must match the "
    "approved organizers only (tags or direct group membership), and no other role assignment may give "
    "this app a calendar role; `meetgate mailbox-scope apply` restores the desired state and "
    "`meetgate mailbox-scope verify` proves it"
)


def _request(run: _Run) -> MeetingRequest:
    """The standalone tests' meeting (tomorrow, 30 minutes, a recognisable subject) in placement calendar."""
    base = _test_request(run.now())
    return MeetingRequest(placement="calendar", subject=base.subject, start=base.start, end=base.end)


@dataclass
class _EventAttempt:
    """One calendar create attempt for one mailbox, with its cleanup."""

    ref: str
    organizer: str
    external_id: str
    event: CalendarMeeting | None = None
    created: bool | None = None
    meeting: OnlineMeeting | None = None
    meeting_checked: bool = False
    deleted: bool = False
    error: GraphError | None = None
    #: the step that failed: create, online_meeting
    failed_step: str | None = None
    cleanup_error: str | None = None

    def evidence(self) -> dict[str, Any]:
        data: dict[str, Any] = {"organizer": self.organizer, "external_id": self.external_id}
        if self.event is not None:
            data.update(
                {
                    "event_id": self.event.id,
                    "created": self.created,
                    "ical_uid": self.event.ical_uid,
                    "join_url": bool(self.event.join_web_url),
                    "deleted": self.deleted,
                }
            )
            if self.meeting_checked:
                data["online_meeting_id"] = self.meeting.id if self.meeting is not None else None
        if self.error is not None:
            data["error"] = type(self.error).__name__
            data["failed_step"] = self.failed_step
            data.update({k: v for k, v in _error_evidence(self.error).items() if v is not None})
        if self.cleanup_error:
            data["cleanup_error"] = self.cleanup_error
        return data


def _attempt_event(
    run: _Run, ref: str, organizer: str, index: int, kind: str, *, check_meeting: bool
) -> _EventAttempt:
    """createOrGet (placement calendar) → (the onlineMeeting behind it) → delete. The event is announced
    to the journal first and deleted in a ``finally`` whatever happened in between."""
    events = run.target.events
    journal = run.target.journal
    assert events is not None
    attempt = _EventAttempt(ref, organizer, validation_external_id(run.run_id, index, kind))
    pending = PendingMeeting(organizer, attempt.external_id)
    journal.announce(pending)
    try:
        try:
            result = events.create_or_get(organizer, attempt.external_id, _request(run))
        except GraphError as exc:
            attempt.error, attempt.failed_step = exc, "create"
            if isinstance(exc, (MailboxAccessDenied, MailboxNotEnabled)):
                journal.resolve(pending)  # refused: nothing was created
            return attempt
        attempt.event, attempt.created = result.event, result.created
        pending = PendingMeeting(organizer, attempt.external_id, result.event.id)
        journal.announce(pending)
        if check_meeting and result.event.join_web_url:
            attempt.meeting_checked = True
            try:
                attempt.meeting = events.online_meeting(organizer, result.event)
            except GraphError as exc:
                attempt.error, attempt.failed_step = exc, "online_meeting"
        return attempt
    finally:
        if attempt.event is not None and not attempt.deleted:
            try:
                events.delete(organizer, attempt.event.id)
                attempt.deleted = True
                journal.resolve(pending)
            except NotFoundError:
                attempt.deleted = True
                journal.resolve(pending)
            except GraphError as exc:
                attempt.cleanup_error = f"{type(exc).__name__}: {exc.message}"


def _organizer(run: _Run, ref: str) -> str:
    return run.user_ids.get(ref, ref)


def _leftover(left: Sequence[_EventAttempt], name: str, evidence: dict[str, Any]) -> CheckResult | None:
    if not left:
        return None
    return CheckResult(
        name,
        "warn",
        f"a test event could not be deleted for {left[0].ref}: {left[0].cleanup_error}",
        evidence,
        "it is kept in the cleanup journal: the next `meetgate validate` deletes it",
    )


def check_calendar_positive(run: _Run) -> CheckResult:
    """Per pilot organizer: a calendar meeting with a Teams join URL whose onlineMeeting is reachable."""
    name = "calendar_positive"
    if not run.pilot:
        return CheckResult(
            name,
            "skip",
            "no pilot organizers given",
            remedy="pass --pilot UPN (an approved organizer), or list organizers in the policy file",
        )
    if run.target.events is None:
        return CheckResult(
            name, "skip", "no calendar client could be built", remedy="see the configuration check"
        )
    refs = _resolved(run, run.pilot)
    if not refs:
        return CheckResult(name, "skip", "no pilot organizer could be resolved (organizer_lookup)")
    attempts = [
        _attempt_event(run, ref, _organizer(run, ref), i, "calpilot", check_meeting=True)
        for i, ref in enumerate(refs, 1)
    ]
    evidence: dict[str, Any] = {"organizers": {a.ref: a.evidence() for a in attempts}}
    for attempt in attempts:
        exc = attempt.error
        if isinstance(exc, MailboxAccessDenied):
            return CheckResult(
                name,
                "fail",
                f"Exchange refused the app {attempt.ref}'s calendar (MailboxAccessDenied): the pilot organizer "
                "is outside the mailbox scope, or the assignment has not reached Graph yet",
                evidence,
                SCOPE_REMEDY,
            )
        if isinstance(exc, MailboxNotEnabled):
            return CheckResult(
                name,
                "fail",
                f"{attempt.ref} has no Exchange Online mailbox (MailboxNotEnabledForRESTAPI): calendar meetings "
                "need one",
                evidence,
                exc.remedy,
            )
        if isinstance(exc, AccessPolicyMissing):
            return CheckResult(
                name,
                "fail",
                f"the calendar meeting for {attempt.ref} was made, but its Teams meeting is out of reach: no "
                "application access policy lists this app for them (both planes must hold)",
                evidence,
                exc.remedy,
            )
        if exc is not None:
            return CheckResult(
                name,
                "fail",
                f"the calendar test for {attempt.ref} failed at {attempt.failed_step}: {exc.message}",
                evidence,
                exc.remedy,
            )
    for attempt in attempts:
        if attempt.event is not None and not attempt.event.join_web_url:
            return CheckResult(
                name,
                "fail",
                f"the calendar meeting for {attempt.ref} has no Teams join URL: Exchange made a plain event",
                evidence,
                "the organizer needs a Teams licence and Teams as an allowed online meeting provider "
                "(Set-CalendarProcessing / the OWA mailbox policy); check the mailbox in the Exchange admin center",
            )
        if attempt.meeting_checked and attempt.meeting is None:
            return CheckResult(
                name,
                "fail",
                f"the Teams meeting behind {attempt.ref}'s calendar meeting was not found by its join URL",
                evidence,
                "retry in a minute (Exchange may still be creating it); if it persists, quote the event id "
                "and the request ids to Microsoft support",
            )
    left = _leftover([a for a in attempts if a.cleanup_error], name, evidence)
    if left is not None:
        return left
    return CheckResult(
        name,
        "pass",
        f"created a calendar meeting with a reachable Teams meeting and deleted it for {len(attempts)} pilot "
        "organizer(s)",
        evidence,
    )


def calendar_outside(run: _Run) -> tuple[str, ...]:
    """The mailboxes the negative test tries: ``[mailbox_scope] outside``, else the Teams negative users."""
    return run.target.config.calendar_outside or run.negative


def check_calendar_negative(run: _Run) -> CheckResult:
    """For each mailbox outside the scope the create must be refused with ``MailboxAccessDenied``."""
    name = "calendar_negative"
    outside = calendar_outside(run)
    if not outside:
        return CheckResult(
            name,
            "skip",
            "no mailbox outside the scope given",
            remedy="name one with [mailbox_scope] outside in the policy file, or pass --negative UPN",
        )
    if run.target.events is None:
        return CheckResult(
            name, "skip", "no calendar client could be built", remedy="see the configuration check"
        )
    attempts = [
        _attempt_event(run, ref, _organizer(run, ref), i, "caloutside", check_meeting=False)
        for i, ref in enumerate(outside, 1)
    ]
    evidence: dict[str, Any] = {
        "outside": {a.ref: a.evidence() for a in attempts},
        "from": "[mailbox_scope] outside" if run.target.config.calendar_outside else "the negative users",
    }
    allowed = [a for a in attempts if a.event is not None]
    if allowed:
        names = ", ".join(a.ref for a in allowed)
        deleted = all(a.deleted for a in allowed)
        return CheckResult(
            name,
            "fail",
            f"MAILBOX SCOPE NOT ENFORCED: a calendar meeting was created in the mailbox of {names}, which must "
            f"be outside the scope ({'deleted again' if deleted else 'NOT deleted: see cleanup_error'})",
            evidence,
            NOT_ENFORCED_REMEDY,
        )
    odd = [a for a in attempts if not isinstance(a.error, MailboxAccessDenied)]
    if odd:
        first = odd[0].error
        assert first is not None
        remedy = first.remedy
        if isinstance(first, (MailboxNotEnabled, NotFoundError)):
            remedy = (
                "the outside sample must be a user with an Exchange Online mailbox: name one with "
                "[mailbox_scope] outside (or --negative)"
            )
        return CheckResult(
            name,
            "fail",
            f"inconclusive for {odd[0].ref}: expected Exchange's refusal (MailboxAccessDenied), got "
            f"{type(first).__name__}: {first.message}",
            evidence,
            remedy,
        )
    return CheckResult(
        name,
        "pass",
        f"refused by Exchange (MailboxAccessDenied) for {len(attempts)} mailbox(es) outside the scope",
        evidence,
    )
