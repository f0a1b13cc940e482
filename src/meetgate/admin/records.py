"""What validation and go-live keep in the store, as the admin layer's models.

- :class:`StoreCleanupJournal`: the validation suite's cleanup journal, persisted, so test meetings
  of a run killed hard are deleted by the next run.
- :func:`save_run` / :func:`load_runs`: validation runs, for `meetgate golive` to cite.
- :func:`record_go_live` / :func:`current_hypercare`: the go-live time and the 7-day hypercare
  window that monitoring reads (tighter thresholds, daily digest while it is active).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from meetgate.admin.readiness import HYPERCARE_DAYS, HypercareWindow, ReadinessReport, hypercare_for
from meetgate.admin.validation import PendingMeeting, ValidationRun
from meetgate.store.runs import RunRepository


class StoreCleanupJournal:
    """:class:`~meetgate.admin.validation.CleanupJournal` over the store (one app's entries)."""

    def __init__(self, repo: RunRepository, client_id: str | None) -> None:
        self.repo = repo
        self.client_id = client_id

    def announce(self, meeting: PendingMeeting) -> None:
        self.repo.announce_pending(
            organizer_id=meeting.organizer_id,
            external_id=meeting.external_id,
            meeting_id=meeting.meeting_id,
            client_id=self.client_id,
        )

    def resolve(self, meeting: PendingMeeting) -> None:
        self.repo.resolve_pending(organizer_id=meeting.organizer_id, external_id=meeting.external_id)

    def pending(self) -> list[PendingMeeting]:
        return [
            PendingMeeting(p["organizer_id"], p["external_id"], p["meeting_id"])
            for p in self.repo.pending(client_id=self.client_id)
        ]


def save_run(repo: RunRepository, run: ValidationRun) -> None:
    repo.save_validation_run(run=run.to_dict(), covers_policy_tests=run.covers_policy_tests)


def load_runs(repo: RunRepository, client_id: str | None, *, limit: int = 20) -> list[ValidationRun]:
    """Newest first."""
    return [ValidationRun.from_dict(r) for r in repo.validation_runs(client_id=client_id, limit=limit)]


def record_go_live(
    repo: RunRepository,
    report: ReadinessReport,
    *,
    at: dt.datetime | None = None,
    days: int = HYPERCARE_DAYS,
) -> HypercareWindow:
    when = at or dt.datetime.now(dt.UTC)
    window = hypercare_for(when, days)
    repo.record_golive(
        tenant_id=report.tenant_id,
        client_id=report.client_id,
        verdict=report.verdict,
        hypercare_until=window.ends_at,
        report=report.to_dict(),
        at=when,
    )
    return window


def current_hypercare(
    repo: RunRepository, client_id: str | None = None, *, now: dt.datetime | None = None
) -> HypercareWindow | None:
    """The hypercare window of the latest go-live when it is still running, else None (for monitoring)."""
    event: dict[str, Any] | None = repo.latest_golive(client_id=client_id)
    if event is None:
        return None
    window = HypercareWindow(event["at"], event["hypercare_until"])
    return window if window.active(now or dt.datetime.now(dt.UTC)) else None


def last_go_live(repo: RunRepository, client_id: str | None = None) -> HypercareWindow | None:
    """The latest go-live's window, active or not."""
    event = repo.latest_golive(client_id=client_id)
    return HypercareWindow(event["at"], event["hypercare_until"]) if event else None
