"""``meetgate meetings attendance | transcripts | recordings``: what a meeting produced, read back.

Each takes a calendar meeting's event id (a meeting, a series or one occurrence: a series' sessions
share one Teams meeting, so all of them are read) or a standalone meeting's id, told apart by the id's
shape (``--calendar`` / ``--standalone`` override). Graph serves transcripts and recordings only for
calendar meetings; attendance for both.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meetgate.cli._common import EXIT_USAGE, console, err_console, fail, print_json
from meetgate.cli.meetings_args import JsonOut, MeetingId, Organizer, run
from meetgate.cli.meetings_calendar import Placement, placement_of

if TYPE_CHECKING:
    from meetgate.graph.artifact_models import MeetingAttendance, TranscriptContent
    from meetgate.graph.client import GraphClient


def _not_enabled_remedy(ctx: typer.Context, exc: Any, kind: str) -> Any:
    """A missing permission: say how the profile enables the kind (least privilege) when it does not."""
    from meetgate.cli._common import load_active_profile
    from meetgate.graph.errors import MissingRolesError

    if not isinstance(exc, MissingRolesError):
        return exc
    if kind not in load_active_profile(ctx).artifacts:
        exc.remedy = (
            f"The profile does not enable {kind}: add it to `artifacts` in meetgate.toml "
            f'(e.g. artifacts = ["attendance", "{kind}"]) and run `meetgate setup app`, which requests '
            f"{', '.join(exc.missing_roles)} with admin consent. {exc.remedy}"
        )
    return exc


def _guarded(ctx: typer.Context, kind: str, action: Any) -> Any:
    def wrapped(client: GraphClient) -> Any:
        from meetgate.graph.errors import GraphError

        try:
            return action(client)
        except GraphError as exc:
            raise _not_enabled_remedy(ctx, exc, kind) from None

    return wrapped


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else ""


def attendance(
    ctx: typer.Context,
    meeting_id: MeetingId,
    organizer: Organizer,
    placement: Placement = None,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="One CSV row per attendance interval (to stdout).")
    ] = False,
    json_out: JsonOut = False,
) -> None:
    """Attendance of every session of a meeting (a series: all its occurrences held), with each
    participant's role, total time and join/leave intervals."""
    if as_csv and json_out:
        fail("--csv and --json exclude each other", "Choose one output format.", code=EXIT_USAGE)

    def action(client: GraphClient) -> None:
        result = client.artifacts.attendance(
            organizer, meeting_id, placement=placement_of(meeting_id, placement)
        )
        if result.warning:
            err_console().print(f"[yellow]warning[/] {result.warning}")
        if json_out:
            print_json(result.to_dict())
            return
        if as_csv:
            from meetgate.graph.artifact_models import attendance_csv  # pydantic: not for --help

            typer.echo(attendance_csv(result), nl=False)
            return
        _show_attendance(result)

    run(ctx, json_out, _guarded(ctx, "attendance", action))


def _show_attendance(result: MeetingAttendance) -> None:
    from rich.markup import escape

    out = console()
    if not result.reports:
        out.print("no attendance reports yet (one appears after each session of the meeting has ended)")
    for report in result.reports:
        start, end = _iso(report.meeting_start_date_time), _iso(report.meeting_end_date_time)
        out.print(
            f"[bold]report {escape(report.id)}[/] {start} – {end}: "
            f"{report.total_participant_count or 0} participant(s)"
        )
        for record in report.attendance_records:
            name = (record.identity.display_name if record.identity else None) or ""
            spans = ", ".join(
                f"{_iso(i.join_date_time)[11:19]}–{_iso(i.leave_date_time)[11:19]}"
                for i in record.attendance_intervals
            )
            out.print(
                f"  {escape(record.email_address or '?')}  {escape(name)}  {record.role or ''}  "
                f"{record.total_attendance_in_seconds or 0} s  [dim]{spans}[/]"
            )


TranscriptFormat = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        help="vtt (WebVTT as Graph sends it), text (one 'Speaker: text' line per turn), json (metadata, "
        "speakers and cues).",
    ),
]


def transcripts(
    ctx: typer.Context,
    meeting_id: MeetingId,
    organizer: Organizer,
    placement: Placement = None,
    output: TranscriptFormat = "text",
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
    transcript_id: Annotated[
        str | None, typer.Option("--id", help="Only this transcript (default: every session's).")
    ] = None,
    no_speakers: Annotated[
        bool,
        typer.Option(
            "--no-speakers", help="Ask for the unattributed form (what a tenant without attribution serves)."
        ),
    ] = False,
) -> None:
    """A calendar meeting's transcripts (one per transcribed session), as WebVTT, plain text with
    speakers, or JSON."""
    if output not in ("vtt", "text", "json"):
        fail(
            f"--format must be vtt, text or json, not {output!r}",
            "Use --format vtt|text|json.",
            code=EXIT_USAGE,
        )
    json_out = output == "json"

    def action(client: GraphClient) -> str:
        from meetgate.graph.errors import ArtifactNotReady

        where = placement_of(meeting_id, placement)
        if transcript_id is not None:
            contents = [
                client.artifacts.transcript_content(
                    organizer, meeting_id, transcript_id, placement=where, speakers=not no_speakers
                )
            ]
        else:
            contents = client.artifacts.transcript_contents(
                organizer, meeting_id, placement=where, speakers=not no_speakers
            )
        if not contents:
            raise ArtifactNotReady(f"meeting {meeting_id} has no transcript yet", kind="transcript")
        return _render_transcripts(contents, output)

    text = run(ctx, json_out, _guarded(ctx, "transcripts", action))
    if out is not None:
        out.write_text(text, encoding="utf-8")
        err_console().print(f"wrote {out}")
    else:
        typer.echo(text, nl=False)


def _render_transcripts(contents: list[TranscriptContent], output: str) -> str:
    import json

    if output == "json":
        return json.dumps([c.to_dict() for c in contents], indent=2, ensure_ascii=False) + "\n"
    if output == "vtt":
        return "\n".join(c.vtt if c.vtt.endswith("\n") else c.vtt + "\n" for c in contents)
    parts = []
    for content in contents:
        header = f"# transcript {content.transcript.id}"
        if content.transcript.created_date_time is not None:
            header += f" ({_iso(content.transcript.created_date_time)})"
        parts.append(f"{header}\n{content.text}")
    return "\n".join(parts)


def recordings(
    ctx: typer.Context,
    meeting_id: MeetingId,
    organizer: Organizer,
    placement: Placement = None,
    download: Annotated[
        Path | None,
        typer.Option(
            "--download",
            help="Download every recording into this directory (resumes an interrupted download; "
            "writes FILE.sha256 beside each).",
        ),
    ] = None,
    recording_id: Annotated[
        str | None, typer.Option("--id", help="Only this recording (default: every session's).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """A calendar meeting's recordings (one per recorded session); with --download, streamed to disk
    with a progress bar and a SHA-256 checksum."""

    def action(client: GraphClient) -> None:
        from meetgate.graph.errors import ArtifactNotReady

        where = placement_of(meeting_id, placement)
        listed = client.artifacts.recordings(organizer, meeting_id, placement=where)
        chosen = [r for r in listed if recording_id is None or r.id == recording_id]
        if recording_id is not None and not chosen:
            chosen = [client.artifacts.recording(organizer, meeting_id, recording_id, placement=where)]
        if not chosen:
            raise ArtifactNotReady(f"meeting {meeting_id} has no recording yet", kind="recording")
        if download is None:
            _show_recordings(chosen, json_out)
            return
        results = [_download(client, organizer, meeting_id, where, r, download, json_out) for r in chosen]
        if json_out:
            print_json([r.to_dict() for r in results])

    run(ctx, json_out, _guarded(ctx, "recordings", action))


def _show_recordings(items: list[Any], json_out: bool) -> None:
    if json_out:
        print_json([r.to_graph() for r in items])
        return
    from rich.markup import escape

    out = console()
    for item in items:
        when = _iso(item.created_date_time)
        out.print(
            f"[bold]{escape(item.id)}[/]  {when} – {_iso(item.end_date_time)}  call {item.call_id or '?'}"
        )


def _download(
    client: GraphClient,
    organizer: str,
    meeting_id: str,
    placement: str,
    recording: Any,
    directory: Path,
    json_out: bool,
) -> Any:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console(),
        transient=json_out,
    ) as bar:
        task = bar.add_task("recording", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        result = client.artifacts.download_recording(
            organizer, meeting_id, recording.id, directory, placement=placement, progress=progress
        )
    if not json_out:
        note = (
            " (already complete)"
            if result.already_complete
            else f" (resumed from byte {result.resumed_from})"
            if result.resumed_from
            else ""
        )
        console().print(f"{result.path}  {result.size} bytes{note}")
        console().print(f"sha256 {result.sha256}  (written to {result.checksum_path})")
    return result


def register(app: typer.Typer) -> None:
    """Add the three commands to ``meetgate meetings``."""
    app.command("attendance")(attendance)
    app.command("transcripts")(transcripts)
    app.command("recordings")(recordings)
