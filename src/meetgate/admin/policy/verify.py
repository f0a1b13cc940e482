"""``verify``: prove enforcement through Graph with app-only auth, polling until propagation completes.

For approved organizers an online-meeting create must succeed; for others it must be refused with
the policy 403. Changes take up to 30 minutes (longer in the field) to reach Graph, so users who do
not yet behave as expected are probed again every ``interval`` seconds until ``timeout``. Every
meeting a probe creates is deleted right away, and again in a ``finally`` so an interruption
(Ctrl-C) leaves none behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Outcome = Literal["allowed", "refused", "error"]


@dataclass(frozen=True)
class ProbeResult:
    outcome: Outcome
    meeting_id: str | None = None
    detail: str = ""


class MeetingProbe(Protocol):
    """Try to create a meeting for an organizer (app-only) and delete what was created."""

    def probe(self, organizer_id: str) -> ProbeResult: ...

    def delete(self, organizer_id: str, meeting_id: str) -> None: ...


@dataclass(frozen=True)
class Subject:
    user_id: str
    upn: str
    expect: Literal["allowed", "refused"]


@dataclass
class SubjectResult:
    subject: Subject
    last: ProbeResult | None = None
    attempts: int = 0
    settled_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.last is not None and self.last.outcome == self.subject.expect


@dataclass
class VerifyReport:
    results: list[SubjectResult]
    elapsed: float
    timed_out: bool
    meetings_created: int = 0
    meetings_deleted: int = 0
    cleanup_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results) and not self.cleanup_failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "elapsedSeconds": round(self.elapsed, 1),
            "timedOut": self.timed_out,
            "meetingsCreated": self.meetings_created,
            "meetingsDeleted": self.meetings_deleted,
            "cleanupFailures": self.cleanup_failures,
            "results": [
                {
                    "id": r.subject.user_id,
                    "upn": r.subject.upn,
                    "expect": r.subject.expect,
                    "observed": r.last.outcome if r.last else None,
                    "detail": r.last.detail if r.last else "",
                    "attempts": r.attempts,
                    "ok": r.ok,
                    "settledAfterSeconds": None if r.settled_after is None else round(r.settled_after, 1),
                }
                for r in self.results
            ],
        }


def verify_enforcement(
    probe: MeetingProbe,
    subjects: Sequence[Subject],
    *,
    timeout: float = 45 * 60,
    interval: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int, int, float], None] | None = None,
) -> VerifyReport:
    """Probe every subject until all behave as expected or ``timeout`` seconds pass."""
    started = clock()
    results = {s.user_id: SubjectResult(s) for s in subjects}
    pending = [s for s in subjects]
    undeleted: list[tuple[str, str]] = []
    report = VerifyReport(list(results.values()), 0.0, False)
    try:
        while True:
            still: list[Subject] = []
            for subject in pending:
                result = probe.probe(subject.user_id)
                entry = results[subject.user_id]
                entry.attempts += 1
                entry.last = result
                if result.meeting_id:
                    report.meetings_created += 1
                    undeleted.append((subject.user_id, result.meeting_id))
                    _delete(probe, undeleted, report)
                if result.outcome == subject.expect:
                    entry.settled_after = clock() - started
                else:
                    still.append(subject)
            pending = still
            elapsed = clock() - started
            if progress:
                progress(len(subjects) - len(pending), len(subjects), elapsed)
            if not pending:
                break
            if elapsed + interval > timeout:
                report.timed_out = True
                break
            sleep(interval)
    finally:
        _delete(probe, undeleted, report)
        report.elapsed = clock() - started
    return report


def _delete(probe: MeetingProbe, undeleted: list[tuple[str, str]], report: VerifyReport) -> None:
    while undeleted:
        organizer, meeting_id = undeleted[0]
        try:
            probe.delete(organizer, meeting_id)
            report.meetings_deleted += 1
        except Exception as exc:  # cleanup reports, never masks the verification
            report.cleanup_failures.append(f"{organizer}/{meeting_id}: {exc}")
        undeleted.pop(0)
