"""Run a bulk job: check the organizers, then create / update / cancel every good row, journaled.

The runner is async (one event loop, many rows in flight); how many are in flight and how fast they
start is decided by the :class:`~meetgate.graph.limiter.AdaptiveLimiter` of the client, so the job
runs as close to Graph's limit as Graph lets it. The runner only keeps enough workers busy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from meetgate.admin.bulk.journal import Journal, RowOutcome
from meetgate.admin.bulk.rows import BulkRow, RowProblem
from meetgate.graph.errors import GraphError, MeetingNotFound, MeetingRuleError, NotFoundError

if TYPE_CHECKING:
    from meetgate.graph.events import AsyncCalendarEventsService
    from meetgate.graph.limiter import AdaptiveLimiter
    from meetgate.graph.meetings import AsyncMeetingsService
    from meetgate.graph.models import User

#: rows in flight at most (the limiter decides how many of them really send)
DEFAULT_WORKERS = 64


class UserLookup(Protocol):
    async def get_user(self, id_or_upn: str) -> User: ...


@dataclass(frozen=True)
class OrganizerCheck:
    """What the directory (and the policy scope) say about the job's organizers."""

    #: reference as written in the file → object id
    ids: dict[str, str]
    problems: list[RowProblem]


async def check_organizers(
    rows: Sequence[BulkRow],
    directory: UserLookup,
    *,
    approved: Collection[str] | None = None,
    on_resolved: Callable[[str, str], None] | None = None,
    parallel: int = 8,
) -> OrganizerCheck:
    """Look every distinct organizer up once; rows of unknown organizers, and (with ``approved``, the
    ids and UPNs the access policy covers) of organizers outside the policy, get a problem each."""
    refs = sorted({row.organizer for row in rows}, key=str.lower)
    ids: dict[str, str] = {}
    unknown: dict[str, str] = {}
    outside: set[str] = set()
    approved_keys = {value.lower() for value in approved} if approved is not None else None
    semaphore = asyncio.Semaphore(parallel)

    async def look(ref: str) -> None:
        async with semaphore:
            try:
                user = await directory.get_user(ref)
            except NotFoundError as exc:
                unknown[ref] = str(exc).splitlines()[0]
                return
            except MeetingRuleError as exc:
                unknown[ref] = str(exc)
                return
        ids[ref] = user.id
        if on_resolved is not None and user.user_principal_name:
            on_resolved(user.user_principal_name, user.id)
        if approved_keys is not None:
            names = {user.id.lower(), (user.user_principal_name or "").lower(), ref.lower()}
            if not names & approved_keys:
                outside.add(ref)

    await asyncio.gather(*(look(ref) for ref in refs))
    problems: list[RowProblem] = []
    for row in rows:
        if row.organizer in unknown:
            problems.append(
                RowProblem(
                    row.row,
                    row.line,
                    row.key,
                    "organizer",
                    f"unknown organizer {row.organizer}: no such user in the tenant",
                    "Check the UPN or object id (a renamed user has a new UPN).",
                )
            )
        elif row.organizer in outside:
            problems.append(
                RowProblem(
                    row.row,
                    row.line,
                    row.key,
                    "organizer",
                    f"organizer {row.organizer} is outside the application access policy",
                    "Use an approved organizer, or add the user to the policy file and run "
                    "`meetgate policy apply` (a new grant takes up to 30 minutes to reach Graph).",
                )
            )
    return OrganizerCheck(ids, problems)


@dataclass
class BulkProgress:
    """Where the job stands (handed to ``on_progress`` after every row)."""

    total: int
    done: int = 0
    failed: int = 0
    #: rows whose call failed after it may have been carried out (see :data:`UNKNOWN_REMEDY`)
    unknown: int = 0
    #: rows the journal already had as done when the job started
    skipped: int = 0
    created: int = 0
    existing: int = 0
    started: float = 0.0
    elapsed: float = 0.0
    #: rows finished per second over the last few seconds
    rate: float = 0.0
    limiter: Any = None

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.unknown + self.skipped

    @property
    def eta_seconds(self) -> float | None:
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        return left / self.rate if self.rate > 0 else None


@dataclass
class BulkReport:
    operation: str
    total: int
    outcomes: dict[str, RowOutcome] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    progress: BulkProgress | None = None
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def done(self) -> int:
        return sum(1 for o in self.outcomes.values() if o.status == "done")

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes.values() if o.status == "failed")

    @property
    def unknown(self) -> int:
        return sum(1 for o in self.outcomes.values() if o.status == "unknown")

    @property
    def ok(self) -> bool:
        return not self.problems and self.failed == 0 and self.unknown == 0 and not self.interrupted


#: what an ``unknown`` row means, per operation: every operation is safe to repeat, so a rerun settles it
UNKNOWN_REMEDY = {
    "create": "The meeting may exist: a rerun resolves it (createOrGet with the row's key never duplicates).",
    "update": "The change may have been applied: a rerun resolves it (the update sets a fixed state).",
    "cancel": "The meeting may be cancelled already: a rerun resolves it (a meeting already gone counts "
    "as done).",
}


def _error_outcome(row: BulkRow, exc: GraphError | MeetingRuleError) -> RowOutcome:
    """A failed row; ``unknown`` when the call may have been carried out before it failed."""
    code = getattr(exc, "code", None) or type(exc).__name__
    if getattr(exc, "maybe_applied", False):
        return RowOutcome(
            key=row.key,
            row=row.row,
            status="unknown",
            error=str(exc).splitlines()[0],
            code=code,
            remedy=UNKNOWN_REMEDY[row.operation],
        )
    return RowOutcome(
        key=row.key,
        row=row.row,
        status="failed",
        error=str(exc).splitlines()[0],
        code=code,
        remedy=getattr(exc, "remedy", None),
    )


class BulkRunner:
    """Runs checked rows through an :class:`AsyncMeetingsService` (standalone rows) and an
    :class:`AsyncCalendarEventsService` (calendar rows), recording each outcome."""

    def __init__(
        self,
        meetings: AsyncMeetingsService,
        *,
        events: AsyncCalendarEventsService | None = None,
        journal: Journal | None = None,
        limiter: AdaptiveLimiter | None = None,
        workers: int = DEFAULT_WORKERS,
        on_progress: Callable[[BulkProgress], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.meetings = meetings
        self.events = events
        self.journal = journal
        self.limiter = limiter
        self.workers = workers
        self.on_progress = on_progress
        self.clock = clock
        self._finish_times: collections.deque[float] = collections.deque(maxlen=200)

    def _done_before(self, rows: Sequence[BulkRow]) -> set[str]:
        """Keys the journal has as done for the row as it now reads (an edited row runs again)."""
        if self.journal is None:
            return set()
        done = self.journal.done_keys()
        return {
            row.key
            for row in rows
            if row.key in done and self.journal.outcomes[row.key].fingerprint in (None, row.fingerprint())
        }

    async def run_row(self, row: BulkRow) -> RowOutcome:
        if row.placement == "calendar":
            return await self.run_calendar_row(row)
        try:
            if row.operation == "create":
                assert row.request is not None
                result = await self.meetings.create_or_get(
                    row.organizer, row.key, row.request, allow_past=row.allow_past
                )
                meeting = result.meeting
                return RowOutcome(
                    row.key, row.row, "done", meeting.id, meeting.join_web_url, created=result.created
                )
            meeting_id = row.meeting_id
            if meeting_id is None:
                assert row.join_url is not None
                found = await self.meetings.find_by_join_url(row.organizer, row.join_url)
                if found is None:
                    if row.operation == "cancel":
                        return RowOutcome(row.key, row.row, "done", None, row.join_url, error=None)
                    return RowOutcome(
                        row.key,
                        row.row,
                        "failed",
                        error=f"no meeting of {row.organizer} has this join URL",
                        code="MeetingNotFound",
                        remedy="Check the join URL and the organizer.",
                    )
                meeting_id = found.id
            if row.operation == "update":
                assert row.changes is not None
                updated = await self.meetings.update(
                    row.organizer, meeting_id, row.changes, allow_past=row.allow_past
                )
                return RowOutcome(row.key, row.row, "done", updated.id, updated.join_web_url)
            try:
                locked = await self.meetings.cancel(row.organizer, meeting_id, mode=row.mode)
            except MeetingNotFound:
                if row.mode == "delete":  # already gone (e.g. deleted before a crash): the goal holds
                    return RowOutcome(row.key, row.row, "done", meeting_id)
                raise
            return RowOutcome(row.key, row.row, "done", meeting_id, locked.join_web_url if locked else None)
        except (GraphError, MeetingRuleError) as exc:
            return _error_outcome(row, exc)

    async def run_calendar_row(self, row: BulkRow) -> RowOutcome:
        """A calendar row through ``graph.events``: create is createOrGet keyed by the row's key (an
        extended property on the event, searched before every POST), so a rerun never duplicates;
        cancel sends Exchange's cancellation and counts an event already gone as done."""
        if self.events is None:
            raise ValueError("calendar rows need BulkRunner(events=...)")
        try:
            if row.operation == "create":
                assert row.request is not None
                made = await self.events.create_or_get(
                    row.organizer, row.key, row.request, allow_past=row.allow_past
                )
                event = made.event
                return RowOutcome(
                    row.key, row.row, "done", event.id, event.join_web_url, created=made.created
                )
            assert row.meeting_id is not None  # calendar rows are refused without one
            if row.operation == "update":
                assert row.changes is not None
                changed = await self.events.update(
                    row.organizer, row.meeting_id, row.changes, allow_past=row.allow_past
                )
                return RowOutcome(row.key, row.row, "done", changed.id, changed.join_web_url)
            # cancelled or deleted before (e.g. just before a crash): the goal holds
            with contextlib.suppress(MeetingNotFound):
                await self.events.cancel(row.organizer, row.meeting_id)
            return RowOutcome(row.key, row.row, "done", row.meeting_id)
        except (GraphError, MeetingRuleError) as exc:
            return _error_outcome(row, exc)

    async def run(self, rows: Sequence[BulkRow], *, total: int | None = None) -> BulkReport:
        """Run ``rows`` (skipping rows the journal has as done, unless the row changed since);
        returns every row's last outcome."""
        started = self.clock()
        done_before = self._done_before(rows)
        todo = [row for row in rows if row.key not in done_before]
        progress = BulkProgress(total=total if total is not None else len(rows), started=started)
        progress.skipped = len(rows) - len(todo)
        report = BulkReport(rows[0].operation if rows else "create", progress.total, progress=progress)
        if self.journal:
            for row in rows:
                if row.key in done_before:
                    report.outcomes[row.key] = self.journal.outcomes[row.key]
        queue: asyncio.Queue[BulkRow] = asyncio.Queue()
        for row in todo:
            queue.put_nowait(row)

        def finish(outcome: RowOutcome) -> None:
            now = self.clock()
            report.outcomes[outcome.key] = outcome
            if self.journal is not None:
                self.journal.record(outcome)
            if outcome.status == "done":
                progress.done += 1
                if outcome.created is True:
                    progress.created += 1
                elif outcome.created is False:
                    progress.existing += 1
            elif outcome.status == "unknown":
                progress.unknown += 1
            else:
                progress.failed += 1
            self._finish_times.append(now)
            progress.elapsed = now - started
            window = [t for t in self._finish_times if t >= now - 5.0]
            span = now - window[0] if len(window) > 1 else 0.0
            progress.rate = (len(window) - 1) / span if span > 0 else 0.0
            if self.limiter is not None:
                progress.limiter = self.limiter.snapshot()
            if self.on_progress is not None:
                self.on_progress(progress)

        async def worker() -> None:
            while True:
                try:
                    row = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                outcome = await self.run_row(row)
                finish(dataclasses.replace(outcome, fingerprint=row.fingerprint()))

        if self.on_progress is not None:
            self.on_progress(progress)
        tasks = [asyncio.create_task(worker()) for _ in range(min(self.workers, max(1, len(todo))))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            report.interrupted = True
            raise
        finally:
            report.elapsed = self.clock() - started
            progress.elapsed = report.elapsed
        return report
