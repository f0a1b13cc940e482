"""Checks that prove the application access policy: the pilot and negative users resolve, a test
meeting is created, read back and deleted for each pilot organizer, and refused with the policy 403
for each user outside the policy. Every test meeting goes through the cleanup journal;
:func:`cleanup_leftovers` deletes what a hard-killed run left behind, and :func:`default_test_users`
picks the users when none are given."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from meetgate.admin.validation.context import _error_evidence, _now, _Run
from meetgate.admin.validation.model import CheckResult
from meetgate.admin.validation.ports import CleanupJournal, PendingMeeting, SyncEventsPort, SyncMeetingsPort
from meetgate.graph.errors import AccessPolicyMissing, GraphError, MissingRolesError, UserNotFound
from meetgate.graph.models import MeetingRequest, OnlineMeeting, User

TEST_EXTERNAL_ID_PREFIX = "meetgate-validate-"
TEST_SUBJECT = "meetgate validation test meeting (deleted automatically)"


# --- 5 organizer lookup ---------------------------------------------------------------------------


def check_organizer_lookup(run: _Run) -> CheckResult:
    directory = run.target.directory
    refs = [*run.pilot, *(n for n in run.negative if n not in run.pilot)]
    if not refs:
        return CheckResult(
            "organizer_lookup",
            "skip",
            "no pilot or negative users given",
            remedy="pass --pilot UPN and --negative UPN, or list organizers in the policy file",
        )
    overlap = sorted(set(run.pilot) & set(run.negative))
    if overlap:
        return CheckResult(
            "organizer_lookup",
            "fail",
            f"{', '.join(overlap)} is given both as pilot and as negative user",
            {"overlap": overlap},
            "a negative user must be one the policy must NOT cover: choose another --negative",
            blocking=True,
        )
    assert directory is not None
    found: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for ref in refs:
        try:
            user = directory.get_user(ref)
        except UserNotFound as exc:
            missing.append(ref)
            found[ref] = {"error": "not found", "request_id": exc.request_id}
            continue
        except MissingRolesError as exc:
            return CheckResult(
                "organizer_lookup",
                "fail",
                f"the app cannot read users: {exc.message}",
                {"request_id": exc.request_id},
                exc.remedy,
                blocking=True,
            )
        except GraphError as exc:
            return CheckResult(
                "organizer_lookup",
                "fail",
                f"looking up {ref} failed: {exc.message}",
                {"request_id": exc.request_id, "status": exc.status},
                exc.remedy,
                blocking=True,
            )
        run.user_ids[ref] = user.id
        found[ref] = {"id": user.id, "upn": user.user_principal_name, "enabled": user.account_enabled}
    evidence = {"users": found}
    if missing:
        return CheckResult(
            "organizer_lookup",
            "fail",
            f"not found in the directory: {', '.join(missing)}",
            evidence,
            "check the UPNs given with --pilot / --negative (or in the policy file)",
        )
    disabled = [r for r, u in found.items() if u.get("enabled") is False]
    if disabled:
        return CheckResult(
            "organizer_lookup",
            "warn",
            f"disabled account(s): {', '.join(disabled)}",
            evidence,
            "use enabled accounts for the tests",
        )
    return CheckResult("organizer_lookup", "pass", f"{len(found)} user(s) resolved to object ids", evidence)


# --- 6/7 policy tests -----------------------------------------------------------------------------


def validation_external_id(run_id: str, index: int, kind: str) -> str:
    """A recognisable externalId: ``meetgate-validate-<run>-<kind><n>``."""
    return f"{TEST_EXTERNAL_ID_PREFIX}{run_id.replace('-', '')[:12]}-{kind}{index}"


def _test_request(now: dt.datetime) -> MeetingRequest:
    start = (now + dt.timedelta(days=1)).replace(microsecond=0)
    return MeetingRequest(subject=TEST_SUBJECT, start=start, end=start + dt.timedelta(minutes=30))


@dataclass
class _Attempt:
    """One create attempt for one organizer, with its cleanup."""

    ref: str
    organizer_id: str
    external_id: str
    meeting: OnlineMeeting | None = None
    created: bool | None = None
    read_back: bool = False
    deleted: bool = False
    error: GraphError | None = None
    cleanup_error: str | None = None

    def evidence(self) -> dict[str, Any]:
        data: dict[str, Any] = {"organizer_id": self.organizer_id, "external_id": self.external_id}
        if self.meeting is not None:
            data.update(
                {
                    "meeting_id": self.meeting.id,
                    "created": self.created,
                    "read_back": self.read_back,
                    "deleted": self.deleted,
                }
            )
            if self.meeting.join_meeting_id:
                data["join_meeting_id"] = self.meeting.join_meeting_id
        if self.error is not None:
            data["error"] = type(self.error).__name__
            data.update({k: v for k, v in _error_evidence(self.error).items() if v is not None})
        if self.cleanup_error:
            data["cleanup_error"] = self.cleanup_error
        return data


def _attempt_meeting(run: _Run, ref: str, index: int, kind: str, *, read_back: bool) -> _Attempt:
    """createOrGet → (get) → delete, announcing the meeting to the journal first; the delete runs in
    a ``finally`` so an interruption (KeyboardInterrupt included) leaves nothing behind."""
    meetings = run.target.meetings
    journal = run.target.journal
    assert meetings is not None
    attempt = _Attempt(ref, run.user_ids[ref], validation_external_id(run.run_id, index, kind))
    pending = PendingMeeting(attempt.organizer_id, attempt.external_id)
    journal.announce(pending)
    try:
        try:
            result = meetings.create_or_get(
                attempt.organizer_id, attempt.external_id, _test_request(run.now())
            )
        except GraphError as exc:
            attempt.error = exc
            if isinstance(exc, AccessPolicyMissing):
                journal.resolve(pending)  # refused: nothing was created
            return attempt
        attempt.meeting, attempt.created = result.meeting, result.created
        pending = PendingMeeting(attempt.organizer_id, attempt.external_id, result.meeting.id)
        journal.announce(pending)
        if read_back:
            try:
                back = meetings.get(attempt.organizer_id, result.meeting.id)
                attempt.read_back = back.id == result.meeting.id
            except GraphError as exc:
                attempt.error = exc
        return attempt
    finally:
        if attempt.meeting is not None and not attempt.deleted:
            try:
                meetings.delete(attempt.organizer_id, attempt.meeting.id)
                attempt.deleted = True
                journal.resolve(pending)
            except GraphError as exc:
                attempt.cleanup_error = f"{type(exc).__name__}: {exc.message}"


def _resolved(run: _Run, refs: Sequence[str]) -> list[str]:
    return [r for r in refs if r in run.user_ids]


def check_policy_positive(run: _Run) -> CheckResult:
    if not run.pilot:
        return CheckResult(
            "policy_positive",
            "skip",
            "no pilot organizers given",
            remedy="pass --pilot UPN (an approved organizer), or list organizers in the policy file",
        )
    refs = _resolved(run, run.pilot)
    if not refs:
        return CheckResult(
            "policy_positive", "skip", "no pilot organizer could be resolved (organizer_lookup)"
        )
    attempts = [_attempt_meeting(run, ref, i, "pilot", read_back=True) for i, ref in enumerate(refs, 1)]
    evidence: dict[str, Any] = {"organizers": {a.ref: a.evidence() for a in attempts}}
    refused = [a for a in attempts if isinstance(a.error, AccessPolicyMissing)]
    failed = [a for a in attempts if a.error is not None and a not in refused]
    unread = [a for a in attempts if a.error is None and not a.read_back]
    left = [a for a in attempts if a.cleanup_error]
    if refused:
        first = refused[0].error
        assert first is not None
        return CheckResult(
            "policy_positive",
            "fail",
            "the policy 403 for pilot organizer(s) "
            + ", ".join(refused_ref.ref for refused_ref in refused)
            + ": no application access policy lists this app for them",
            evidence,
            first.remedy,
        )
    if failed:
        first = failed[0].error
        assert first is not None
        return CheckResult(
            "policy_positive",
            "fail",
            f"creating a test meeting for {failed[0].ref} failed: {first.message}",
            evidence,
            first.remedy,
        )
    if unread:
        return CheckResult(
            "policy_positive",
            "fail",
            f"the meeting created for {unread[0].ref} could not be read back",
            evidence,
            "retry; if it persists, quote the request ids to Microsoft support",
        )
    if left:
        return CheckResult(
            "policy_positive",
            "warn",
            f"a test meeting could not be deleted for {left[0].ref}: {left[0].cleanup_error}",
            evidence,
            "it is kept in the cleanup journal: the next `meetgate validate` deletes it",
        )
    return CheckResult(
        "policy_positive",
        "pass",
        f"created, read back and deleted a test meeting for {len(attempts)} pilot organizer(s)",
        evidence,
    )


def check_policy_negative(run: _Run) -> CheckResult:
    if not run.negative:
        return CheckResult(
            "policy_negative",
            "skip",
            "no negative user given",
            remedy="pass --negative UPN: a user the policy must NOT cover",
        )
    refs = _resolved(run, run.negative)
    if not refs:
        return CheckResult("policy_negative", "skip", "no negative user could be resolved (organizer_lookup)")
    attempts = [_attempt_meeting(run, ref, i, "negative", read_back=False) for i, ref in enumerate(refs, 1)]
    evidence: dict[str, Any] = {"users": {a.ref: a.evidence() for a in attempts}}
    allowed = [a for a in attempts if a.meeting is not None]
    if allowed:
        names = ", ".join(a.ref for a in allowed)
        return CheckResult(
            "policy_negative",
            "fail",
            f"POLICY NOT ENFORCED: a meeting was created for {names}, who must not be covered "
            "(a Global grant, a group grant or a direct grant covers them)",
            evidence,
            "see who holds the policy: `meetgate policy status`; revoke a Global grant with "
            "Grant-CsApplicationAccessPolicy -PolicyName $null -Global and any grant to these users with "
            "Grant-CsApplicationAccessPolicy -PolicyName $null -Identity <user> (or `meetgate policy apply` "
            "from the approved list); changes take up to 30 minutes to reach Graph",
        )
    odd = [a for a in attempts if not isinstance(a.error, AccessPolicyMissing)]
    if odd:
        first = odd[0].error
        assert first is not None
        return CheckResult(
            "policy_negative",
            "fail",
            f"inconclusive for {odd[0].ref}: expected the policy 403, got {type(first).__name__}: {first.message}",
            evidence,
            first.remedy,
        )
    return CheckResult(
        "policy_negative",
        "pass",
        f"refused with the policy 403 for {len(attempts)} user(s) outside the policy",
        evidence,
    )


def cleanup_leftovers(
    meetings: SyncMeetingsPort,
    journal: CleanupJournal,
    *,
    now: dt.datetime | None = None,
    events: SyncEventsPort | None = None,
) -> list[dict[str, Any]]:
    """Delete test meetings (and calendar test events) an earlier, hard-killed run announced but never
    deleted. A calendar leftover is kept while no ``events`` port is given."""
    from meetgate.graph.errors import MailboxAccessDenied, NotFoundError

    done: list[dict[str, Any]] = []
    for item in journal.pending():
        outcome = "deleted"
        try:
            if item.is_calendar:
                if events is None:
                    done.append(
                        {
                            "organizer_id": item.organizer_id,
                            "external_id": item.external_id,
                            "outcome": "kept: a calendar test event (calendar placement is not scoped here)",
                        }
                    )
                    continue
                event_id = item.meeting_id
                if event_id is None:  # interrupted inside the create: find it by its external id
                    found_event = events.find_by_external_id(item.organizer_id, item.external_id)
                    event_id = found_event.id if found_event is not None else None
                if event_id is None:
                    outcome = "nothing to delete"
                else:
                    events.delete(item.organizer_id, event_id)
            else:
                meeting_id = item.meeting_id
                if meeting_id is None:  # interrupted inside the create: find it by its externalId
                    found = meetings.create_or_get(
                        item.organizer_id, item.external_id, _test_request(now or _now())
                    )
                    meeting_id = found.meeting.id
                meetings.delete(item.organizer_id, meeting_id)
        except (AccessPolicyMissing, MailboxAccessDenied, NotFoundError):
            outcome = "nothing to delete"
        except GraphError as exc:
            done.append(
                {
                    "organizer_id": item.organizer_id,
                    "external_id": item.external_id,
                    "outcome": f"kept: {exc.message}",
                }
            )
            continue
        journal.resolve(item)
        done.append({"organizer_id": item.organizer_id, "external_id": item.external_id, "outcome": outcome})
    return done


# --- defaults for --pilot / --negative ------------------------------------------------------------


def default_test_users(
    approved: Sequence[str],
    directory_users: Iterator[User] | Sequence[User],
    *,
    pilots: int = 2,
    exclude: Sequence[str] = (),
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Pilot = the first ``pilots`` approved organizers; negative = the first enabled directory user
    who is not approved (the policy must not cover them) and not in ``exclude`` (the pilots given
    by hand: a pilot is never also the negative user)."""
    pilot = tuple(approved[:pilots])
    approved_keys = {a.lower() for a in (*approved, *exclude)}
    for user in directory_users:
        keys = {user.id.lower(), (user.user_principal_name or "").lower()}
        if user.account_enabled is False or keys & approved_keys:
            continue
        return pilot, (user.user_principal_name or user.id,)
    return pilot, ()
