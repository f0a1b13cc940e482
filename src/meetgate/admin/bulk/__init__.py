"""Bulk meetings: create, update or cancel thousands of meetings from a CSV / JSON Lines file.

``rows`` (file → checked rows, every problem with its row number; ``placement`` the calendar
columns), ``journal`` (resumable outcomes), ``runner`` (async engine over
:class:`~meetgate.graph.meetings.AsyncMeetingsService` for standalone rows and
:class:`~meetgate.graph.events.AsyncCalendarEventsService` for calendar rows), and here the one call
integrators use::

    import asyncio
    from meetgate import AsyncGraphClient, AdaptiveLimiter
    from meetgate.admin.bulk import run_bulk_job

    async def main(settings):
        limiter = AdaptiveLimiter()
        async with AsyncGraphClient(settings, limiter=limiter, retry=BULK_RETRY) as graph:
            report = await run_bulk_job(graph, "term-start.csv", "create", limiter=limiter)
            print(report.done, report.failed, [str(p) for p in report.problems])

    asyncio.run(main(settings))
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meetgate.admin.bulk.journal import Journal, JournalError, RowOutcome, default_journal_path
from meetgate.admin.bulk.rows import (
    COLUMNS,
    BulkFileError,
    BulkRow,
    LoadedRows,
    Operation,
    RowProblem,
    load_rows,
)
from meetgate.admin.bulk.runner import (
    DEFAULT_WORKERS,
    UNKNOWN_REMEDY,
    BulkProgress,
    BulkReport,
    BulkRunner,
    check_organizers,
)
from meetgate.graph.retry import RetryPolicy

if TYPE_CHECKING:
    from meetgate.graph.client import AsyncGraphClient
    from meetgate.graph.limiter import AdaptiveLimiter

#: Retries for bulk jobs: patient with throttling (the limiter keeps 429s rare, so a row that meets
#: one should wait its turn rather than fail).
BULK_RETRY = RetryPolicy(max_attempts=10, max_total_seconds=300.0)

__all__ = [
    "BULK_RETRY",
    "COLUMNS",
    "DEFAULT_WORKERS",
    "UNKNOWN_REMEDY",
    "BulkFileError",
    "BulkProgress",
    "BulkReport",
    "BulkRow",
    "BulkRunner",
    "Journal",
    "JournalError",
    "LoadedRows",
    "Operation",
    "RowOutcome",
    "RowProblem",
    "approved_organizers",
    "check_organizers",
    "default_journal_path",
    "load_rows",
    "run_bulk_job",
    "write_results",
]


def approved_organizers(policy_file: Path, directory: Any) -> set[str]:
    """Ids and UPNs (lower-case) of the organizers a policy file approves, resolved through
    ``directory`` (a sync ``DirectoryService``): the policy scope rows are checked against."""
    from meetgate.admin.policy.graph import GraphDirectory
    from meetgate.admin.policy.loader import load_desired_state
    from meetgate.admin.policy.planner import resolve_organizers

    desired = load_desired_state(policy_file)
    resolved = resolve_organizers(desired, GraphDirectory(directory))
    names: set[str] = set()
    for user in resolved.users.values():
        names.add(user.id.lower())
        if user.upn:
            names.add(user.upn.lower())
    return names


async def run_bulk_job(
    client: AsyncGraphClient,
    path: Path | str,
    operation: Operation,
    *,
    journal_path: Path | None = None,
    approved: Collection[str] | None = None,
    dry_run: bool = False,
    check_directory: bool = True,
    limiter: AdaptiveLimiter | None = None,
    workers: int = DEFAULT_WORKERS,
    default_mode: str = "delete",
    on_progress: Callable[[BulkProgress], None] | None = None,
) -> BulkReport:
    """Check every row of ``path`` (offline, then each organizer once against the directory and,
    with ``approved``, the policy scope), then — unless ``dry_run`` — run the good rows, journaled
    to ``journal_path`` (default: next to the file) so a rerun continues where this one stopped.

    Bad rows are never run; they come back in :attr:`BulkReport.problems` with their row numbers.
    """
    path = Path(path)
    loaded = load_rows(path, operation, default_mode=default_mode)
    problems = list(loaded.problems)
    good = loaded.good_rows()
    if check_directory and good:
        checked = await check_organizers(
            good, client.directory, approved=approved, on_resolved=client.user_ids.put
        )
        problems += checked.problems
        bad = {p.row for p in checked.problems}
        good = [row for row in good if row.row not in bad]
    problems.sort(key=lambda p: (p.row, p.field))
    if dry_run:
        return BulkReport(operation, loaded.total, problems=problems)
    journal = Journal(journal_path or default_journal_path(path, operation), operation, source=str(path))
    runner = BulkRunner(
        client.meetings,
        events=client.events,
        journal=journal,
        limiter=limiter,
        workers=workers,
        on_progress=on_progress,
    )
    with journal:
        report = await runner.run(good, total=loaded.total - len({p.row for p in problems}))
    report.problems = problems
    report.total = loaded.total
    return report


RESULT_FIELDS = ("row", "key", "status", "meeting_id", "join_url", "created", "error", "code", "remedy")


def write_results(path: Path, report: BulkReport) -> None:
    """Row key → meeting id and join URL, or the error and what to do: ``.csv`` or ``.jsonl``."""
    records: list[dict[str, Any]] = []
    for outcome in report.outcomes.values():
        records.append(
            {
                "row": outcome.row,
                "key": outcome.key,
                "status": outcome.status,
                "meeting_id": outcome.meeting_id,
                "join_url": outcome.join_url,
                "created": outcome.created,
                "error": outcome.error,
                "code": outcome.code,
                "remedy": outcome.remedy,
            }
        )
    invalid: dict[int, dict[str, Any]] = {}
    for problem in report.problems:  # one line per row: a row's several problems share it
        record = invalid.get(problem.row)
        if record is None:
            invalid[problem.row] = {
                "row": problem.row,
                "key": problem.key,
                "status": "invalid",
                "error": f"{problem.field}: {problem.message}",
                "code": "InvalidRow",
                "remedy": problem.remedy,
            }
            continue
        record["error"] += f"; {problem.field}: {problem.message}"
        if problem.remedy and problem.remedy not in (record["remedy"] or ""):
            record["remedy"] = f"{record['remedy']} {problem.remedy}" if record["remedy"] else problem.remedy
    records.extend(invalid.values())
    records.sort(key=lambda r: (r["row"], r["status"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        with tmp.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps({k: v for k, v in record.items() if v is not None}) + "\n")
    else:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=RESULT_FIELDS)
            writer.writeheader()
            for record in records:
                writer.writerow({k: "" if v is None else v for k, v in record.items()})
    tmp.replace(path)
