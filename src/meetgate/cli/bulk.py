"""``meetgate meetings bulk create|update|cancel FILE``: thousands of meetings at Graph's own pace.

Every row is checked first (all problems at once, with row numbers); good rows then run through the
adaptive limiter, journaled so that running the same command again after a crash or Ctrl-C continues
where it stopped; a results file maps each row key to its meeting (or its error and what to do).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meetgate.cli._common import EXIT_FAILED, EXIT_OK, console, err_console, fail, print_json

if TYPE_CHECKING:
    from meetgate.admin.bulk import BulkProgress, BulkReport
    from meetgate.config import Profile

app = typer.Typer(
    help=(
        "Create, update or cancel meetings in bulk from a CSV or JSON Lines file, as fast as Graph allows, "
        "resumable after a crash (docs/bulk.md)."
    ),
    no_args_is_help=True,
)

File = Annotated[
    Path, typer.Argument(help="CSV (with a header row) or JSON Lines file; columns in docs/bulk.md.")
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Check every row (and every organizer) and report all problems; change nothing."
    ),
]
Results = Annotated[
    Path | None,
    typer.Option("--results", help="Results file, .csv or .jsonl (default: FILE.OPERATION.results.csv)."),
]
JournalOpt = Annotated[
    Path | None,
    typer.Option(
        "--journal", help="Journal that makes a rerun continue (default: FILE.OPERATION.journal.jsonl)."
    ),
]
PolicyFile = Annotated[
    Path | None,
    typer.Option(
        "--policy-file",
        help="Policy file whose organizers rows must use (default: the profile's policy_file; none: no check).",
    ),
]
Concurrency = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        min=1,
        max=256,
        help="Fixed number of requests in flight instead of the adaptive limiter (for comparisons).",
    ),
]
MaxConcurrency = Annotated[
    int, typer.Option("--max-concurrency", min=1, max=256, help="Upper bound for the adaptive window.")
]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="No live progress bar (for logs and CI).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the summary (and all row problems) as JSON.")]
RetryBudget = Annotated[
    float,
    typer.Option(
        "--retry-budget",
        min=0.0,
        max=3600.0,
        metavar="SECONDS",
        help="How long one row may keep retrying 429/5xx/lost connections before it is reported "
        "failed or unknown.",
    ),
]


@app.command("create")
def create(
    ctx: typer.Context,
    file: File,
    dry_run: DryRun = False,
    results: Results = None,
    journal: JournalOpt = None,
    policy_file: PolicyFile = None,
    concurrency: Concurrency = None,
    max_concurrency: MaxConcurrency = 64,
    no_progress: NoProgress = False,
    json_out: JsonOut = False,
    retry_budget: RetryBudget = 300.0,
) -> None:
    """Create a meeting per row (createOrGet keyed by the row's key: a rerun never duplicates)."""
    _bulk(
        ctx,
        "create",
        file,
        dry_run,
        results,
        journal,
        policy_file,
        concurrency,
        max_concurrency,
        no_progress,
        json_out,
        retry_budget=retry_budget,
    )


@app.command("update")
def update(
    ctx: typer.Context,
    file: File,
    dry_run: DryRun = False,
    results: Results = None,
    journal: JournalOpt = None,
    policy_file: PolicyFile = None,
    concurrency: Concurrency = None,
    max_concurrency: MaxConcurrency = 64,
    no_progress: NoProgress = False,
    json_out: JsonOut = False,
    retry_budget: RetryBudget = 300.0,
) -> None:
    """Change (e.g. reschedule) the meeting of each row (meeting_id or join_url column)."""
    _bulk(
        ctx,
        "update",
        file,
        dry_run,
        results,
        journal,
        policy_file,
        concurrency,
        max_concurrency,
        no_progress,
        json_out,
        retry_budget=retry_budget,
    )


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    file: File,
    mode: Annotated[
        str, typer.Option("--mode", help="Default for rows without a mode column: delete or lock.")
    ] = "delete",
    dry_run: DryRun = False,
    results: Results = None,
    journal: JournalOpt = None,
    policy_file: PolicyFile = None,
    concurrency: Concurrency = None,
    max_concurrency: MaxConcurrency = 64,
    no_progress: NoProgress = False,
    json_out: JsonOut = False,
    retry_budget: RetryBudget = 300.0,
) -> None:
    """Cancel the meeting of each row: delete it, or lock it (mode column or --mode)."""
    if mode not in ("delete", "lock"):
        fail(f"--mode must be delete or lock, not {mode!r}")
    _bulk(
        ctx,
        "cancel",
        file,
        dry_run,
        results,
        journal,
        policy_file,
        concurrency,
        max_concurrency,
        no_progress,
        json_out,
        mode=mode,
        retry_budget=retry_budget,
    )


def _approved(profile: Profile, policy_file: Path | None) -> tuple[set[str] | None, Path | None]:
    path = policy_file or profile.policy_file
    if path is None:
        return None, None
    from meetgate.admin.bulk import approved_organizers
    from meetgate.composition import graph_client_from_profile

    with graph_client_from_profile(profile) as client:
        return approved_organizers(path, client.directory), path


def _bulk(
    ctx: typer.Context,
    operation: str,
    file: Path,
    dry_run: bool,
    results: Path | None,
    journal: Path | None,
    policy_file: Path | None,
    concurrency: int | None,
    max_concurrency: int,
    no_progress: bool,
    json_out: bool,
    *,
    mode: str = "delete",
    retry_budget: float = 300.0,
) -> None:
    import asyncio
    import dataclasses

    from meetgate.admin.bulk import (
        BULK_RETRY,
        BulkFileError,
        JournalError,
        load_rows,
        run_bulk_job,
        write_results,
    )
    from meetgate.admin.policy.model import PolicyError
    from meetgate.cli._common import load_active_profile
    from meetgate.composition import async_graph_client_from_profile, limiter_from_profile
    from meetgate.config import ConfigError
    from meetgate.graph.errors import GraphError
    from meetgate.graph.limiter import fixed_concurrency
    from meetgate.graph.retry import RetryPolicy

    op: Any = operation
    if not file.exists():
        fail(f"{file} does not exist", "Give the path of a .csv or .jsonl file.")
    try:
        load_rows(file, op, default_mode=mode)  # file-level problems before any network call
    except BulkFileError as exc:
        fail(str(exc), exc.remedy)
    try:
        profile = load_active_profile(ctx)
        if concurrency is not None:
            limiter = fixed_concurrency(concurrency)
        else:
            limiter = limiter_from_profile(profile, max_concurrency=max_concurrency)
        client = async_graph_client_from_profile(
            profile,
            limiter=limiter,
            retry=dataclasses.replace(BULK_RETRY, max_total_seconds=retry_budget),
            token_retry=RetryPolicy(),
        )
    except ConfigError as exc:
        fail(str(exc), "Check meetgate.toml / MEETGATE_* (docs/configuration.md).")
    except GraphError as exc:
        fail(str(exc), exc.remedy)
    try:
        approved, scope = _approved(profile, policy_file)
    except (PolicyError, GraphError) as exc:
        fail(f"cannot read the policy scope: {exc}", getattr(exc, "remedy", None))
    if scope is None and not json_out:
        err_console().print(
            "[yellow]note:[/] no policy file: rows are not checked against the policy scope "
            "(set policy_file or pass --policy-file)"
        )

    results_path = results or file.with_name(f"{file.name}.{operation}.results.csv")
    show_progress = not (no_progress or dry_run or json_out)
    progress_ui = _ProgressUI(operation) if show_progress else None

    async def job() -> BulkReport:
        async with client:
            return await run_bulk_job(
                client,
                file,
                op,
                journal_path=journal,
                approved=approved,
                dry_run=dry_run,
                limiter=limiter,
                default_mode=mode,
                on_progress=progress_ui.update if progress_ui else None,
            )

    try:
        if progress_ui is not None:
            with progress_ui:
                report = asyncio.run(job())
        else:
            report = asyncio.run(job())
    except KeyboardInterrupt:
        err_console().print(
            "[yellow]interrupted:[/] finished rows are in the journal; run the same command again to continue"
        )
        raise typer.Exit(130) from None
    except JournalError as exc:
        fail(str(exc), exc.remedy)
    except GraphError as exc:
        fail(str(exc), exc.remedy, code=EXIT_FAILED)
    if not dry_run:
        write_results(results_path, report)
    _summary(report, operation, file, dry_run, results_path, json_out, limiter)
    if report.problems or report.failed or report.unknown:
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_OK)


def _summary(
    report: BulkReport,
    operation: str,
    file: Path,
    dry_run: bool,
    results_path: Path,
    json_out: bool,
    limiter: Any,
) -> None:
    stats = limiter.snapshot().stats
    if json_out:
        progress = report.progress
        print_json(
            {
                "operation": operation,
                "dryRun": dry_run,
                "file": str(file),
                "rows": report.total,
                "invalid": len({p.row for p in report.problems}),
                "done": report.done,
                "failed": report.failed,
                "unknown": report.unknown,
                "created": progress.created if progress else 0,
                "existing": progress.existing if progress else 0,
                "skippedFromJournal": progress.skipped if progress else 0,
                "elapsedSeconds": round(report.elapsed, 3),
                "requests": stats.attempts,
                "throttled": stats.throttled,
                "results": None if dry_run else str(results_path),
                "problems": [p.to_dict() for p in report.problems],
            }
        )
        return
    from rich.markup import escape

    from meetgate.admin.bulk import UNKNOWN_REMEDY

    out = console()
    for problem in report.problems:
        out.print(f"[red]{escape(str(problem))}[/]")
        if problem.remedy:
            out.print(f"    [dim]{escape(problem.remedy)}[/]")
    bad = len({p.row for p in report.problems})
    if dry_run:
        verdict = (
            "[green]all rows are valid[/]" if not bad else f"[red]{bad} of {report.total} row(s) invalid[/]"
        )
        # the count says at once when rows went missing (e.g. swallowed by a quote left open)
        out.print(
            f"dry run: read {report.total} row(s) from {escape(str(file))}: {verdict}; nothing was changed"
        )
        return
    progress = report.progress
    extra = ""
    if progress is not None and operation == "create":
        extra = f" ({progress.created} created, {progress.existing} already existed)"
    if progress is not None and progress.skipped:
        extra += f", {progress.skipped} done in an earlier run"
    # the rate counts only rows run by this process: rows done in an earlier run took no time now
    ran = (
        progress.done + progress.failed + progress.unknown
        if progress is not None
        else report.done + report.failed + report.unknown
    )
    if ran == 0:
        pace = "nothing to do"
    else:
        rate = ran / report.elapsed if report.elapsed > 0 else 0.0
        pace = f"{rate:.1f} rows/s; {stats.attempts} requests, {stats.throttled} throttled"
    unknown = f", {report.unknown} unknown" if report.unknown else ""
    out.print(
        f"[bold]{operation}[/]: {report.done} done{extra}, {report.failed} failed{unknown}, {bad} invalid "
        f"of {report.total} row(s) in {report.elapsed:.1f} s ({pace})"
    )
    out.print(f"results: {escape(str(results_path))}")
    if report.unknown:
        out.print(
            f"[yellow]{report.unknown} row(s) failed after Graph may have carried them out: "
            f"{UNKNOWN_REMEDY[operation].split(':')[0].lower()}; a rerun resolves it without duplicates[/]"
        )
    if report.failed or report.unknown:
        out.print(
            "[yellow]rerun the same command to retry the failed and unknown rows (done rows are skipped)[/]"
        )


class _ProgressUI:
    """A rich progress bar: done / failed / rate / ETA."""

    def __init__(self, operation: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn(f"[bold]{operation}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed[/]"),
            TextColumn("[yellow]{task.fields[unknown]} unknown[/]"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=err_console(),
            transient=False,
        )
        self.task = self.progress.add_task(operation, total=None, failed=0, unknown=0, rate="", eta="?")

    def __enter__(self) -> _ProgressUI:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, p: BulkProgress) -> None:
        eta = p.eta_seconds
        limiter = p.limiter
        rate = f"{p.rate:.1f}/s"
        if limiter is not None and limiter.rate is not None:
            rate += f" (pace {limiter.rate:.1f}/s, {int(limiter.concurrency)} in flight max)"
        self.progress.update(
            self.task,
            total=p.total,
            completed=p.finished,
            failed=p.failed,
            unknown=p.unknown,
            rate=rate,
            eta="?" if eta is None else f"{int(eta) // 60}:{int(eta) % 60:02d}",
        )
