"""Bulk job files: CSV or JSON Lines rows → checked :class:`BulkRow` objects, every problem at once.

Columns (CSV header names; the same keys in JSON Lines objects):

| column | create | update | cancel | meaning |
|---|---|---|---|---|
| ``key`` | required | optional | optional | the row's own id; on create it becomes the meeting's ``externalId`` (createOrGet), so a rerun never duplicates; the journal and the results file are keyed by it |
| ``organizer`` | required | required | required | UPN or object id of an approved organizer |
| ``start``, ``end`` | optional | optional (both or neither) | – | ISO 8601 with a timezone, e.g. ``2030-09-01T09:00:00+02:00``; a start in the past is refused |
| ``subject`` | optional | optional | – | meeting subject (at most 255 characters, no control characters) |
| ``attendees`` | optional | optional (replaces the list) | – | UPNs separated by ``;`` (CSV) or a list (JSON); ``upn:presenter`` gives a role |
| ``options`` | optional | optional | – | ``lobby=organization;presenters=organizer;chat=disabled;dialInBypass=false`` (CSV) or an object (JSON) |
| ``meeting_id`` | – | one of | one of | the meeting to change |
| ``join_url`` | – | these | these | ... or its join URL (looked up) |
| ``mode`` | – | – | optional | ``delete`` (default) or ``lock`` |
| ``allow_past`` | optional | optional | – | ``true``: a start in the past is accepted (imports of past meetings) |
| ``placement`` | optional | optional | optional | ``standalone`` (default) or ``calendar``: an Exchange calendar meeting (``graph.events``) |
| ``recurrence`` | optional (calendar) | – | – | an RFC 5545 RRULE (``FREQ=WEEKLY;COUNT=10``), checked against what Graph can express |
| ``time_zone`` | optional (calendar) | optional (calendar) | – | IANA zone the meeting is kept in (default UTC) |

Attendees of calendar rows may be optional: ``upn:optional`` (CSV) or ``{"upn": …, "optional": true}``.

The rules of a meeting (subject, times, past starts) are ``meetgate.graph.meeting_rules``, the ones
the library, the CLI and the gateway check too.

Row numbers in messages are 1-based data rows (the CSV header is not counted); ``line`` is the line
of the file, for editors.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from meetgate.admin.bulk.cells import bool_cell, parse_attendees, parse_options
from meetgate.admin.bulk.placement import check_placement
from meetgate.errors import MeetgateError
from meetgate.graph.errors import MeetingRuleError
from meetgate.graph.meeting_rules import PAST_REMEDY, check_subject, check_times, parse_time
from meetgate.graph.meetings import check_external_id, check_join_url
from meetgate.graph.models import (
    Attendee,
    MeetingRequest,
    MeetingUpdate,
)

Operation = Literal["create", "update", "cancel"]
OPERATIONS: tuple[Operation, ...] = ("create", "update", "cancel")
COLUMNS = (
    "key",
    "organizer",
    "start",
    "end",
    "subject",
    "attendees",
    "options",
    "meeting_id",
    "join_url",
    "mode",
    "allow_past",
    "placement",
    "recurrence",
    "time_zone",
)
_ALIASES = {
    "allowpast": "allow_past",
    "externalid": "key",
    "external_id": "key",
    "id": "key",
    "meetingid": "meeting_id",
    "joinurl": "join_url",
    "joinweburl": "join_url",
    "organizer_upn": "organizer",
    "rrule": "recurrence",
    "timezone": "time_zone",
    "tz": "time_zone",
}

#: bulk-facing remedies where the library's wording names library calls or options bulk does not have
_KEY_REMEDY = (
    "Use 1–256 printable ASCII characters without spaces, e.g. your booking's own id (booking-4711)."
)
_START_ONLY_REMEDY = "Fill in both the start and end columns: an update changes the time only as a pair."
_PAST_REMEDY = (
    "Give a start in the future (check the year, the date and the timezone), or set the row's "
    "allow_past column to true to schedule it in the past anyway."
)
_ATTENDEE_REMEDY = (
    "Separate UPNs with ';', e.g. ana@contoso.com;bo@fabrikam.com:presenter (calendar rows: "
    "parent@example.org:optional)."
)
MAX_ROWS = 100_000


class BulkFileError(MeetgateError, ValueError):
    """The file as a whole cannot be read (not a row problem)."""


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one row, and what to do about it."""

    row: int
    line: int
    key: str | None
    field: str
    message: str
    remedy: str = ""

    def __str__(self) -> str:
        where = f"row {self.row} (line {self.line})"
        key = f" [{self.key}]" if self.key else ""
        return f"{where}{key} {self.field}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "line": self.line,
            "key": self.key,
            "field": self.field,
            "message": self.message,
            "remedy": self.remedy,
        }


@dataclass(frozen=True)
class BulkRow:
    """One checked row."""

    row: int
    line: int
    key: str
    organizer: str
    operation: Operation
    request: MeetingRequest | None = None
    changes: MeetingUpdate | None = None
    meeting_id: str | None = None
    join_url: str | None = None
    mode: Literal["delete", "lock"] = "delete"
    #: the row's allow_past column: a start in the past is sent (not part of the fingerprint)
    allow_past: bool = False
    #: ``standalone`` (graph.meetings) or ``calendar`` (graph.events)
    placement: str = "standalone"

    def fingerprint(self) -> str:
        """A digest of what the row asks for: a rerun skips a journaled row only while it is unchanged."""
        content = {
            "organizer": self.organizer.lower(),
            "request": self.request.model_dump(mode="json") if self.request else None,
            "changes": self.changes.model_dump(mode="json") if self.changes else None,
            "meeting_id": self.meeting_id,
            "join_url": self.join_url,
            "mode": self.mode if self.operation == "cancel" else None,
        }
        if self.placement != "standalone":  # rows journaled before placements existed keep their digest
            content["placement"] = self.placement
        text = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class LoadedRows:
    operation: Operation
    rows: list[BulkRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    #: data rows in the file, good and bad
    total: int = 0

    @property
    def bad_rows(self) -> set[int]:
        return {p.row for p in self.problems}

    def good_rows(self) -> list[BulkRow]:
        bad = self.bad_rows
        return [row for row in self.rows if row.row not in bad]


@dataclass(frozen=True)
class _Unreadable:
    """A record that could not be read as a row: which column (or ``row``), why, and what to do."""

    field: str
    message: str
    remedy: str


_JSON_REMEDY = "Fix the line so it is one JSON object."
_QUOTE_REMEDY = (
    'Close the quote, or remove it; a quote inside a value is written twice (""). No column may span lines.'
)


def _read_records(path: Path) -> Iterable[tuple[int, Mapping[str | None, Any] | _Unreadable]]:
    """(line, record) pairs; a record that cannot be read is given as an :class:`_Unreadable`."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BulkFileError(f"{path} does not exist", "Give the path of a .csv or .jsonl file.") from None
    except UnicodeDecodeError:
        raise BulkFileError(
            f"{path} is not UTF-8 text", "Save the file as UTF-8 (CSV or JSON Lines)."
        ) from None
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        out: list[tuple[int, Mapping[str | None, Any] | _Unreadable]] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                message = f"not valid JSON ({exc.msg} at column {exc.colno})"
                out.append((number, _Unreadable("row", message, _JSON_REMEDY)))
                continue
            if isinstance(data, dict):
                out.append((number, data))
            else:
                out.append((number, _Unreadable("row", "a row must be a JSON object", _JSON_REMEDY)))
        return out
    if suffix not in (".csv", ".txt"):
        raise BulkFileError(
            f"{path.name}: unknown file type {suffix or '(none)'}",
            "Use a .csv file with a header row, or a .jsonl file with one JSON object per line.",
        )
    return _csv_records(path, text)


class _Lines:
    """The file's lines for ``csv.reader``, remembering how far it has read (to resume after a
    broken record without reading the file again)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.pos = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _open_column(line: str, header: list[str] | None) -> str:
    """The column whose quote is left open on ``line``: the last one the line starts."""
    cells = next(csv.reader([line]), [])
    index = len(cells) - 1
    if header is None or index < 0:
        return "row"
    if index >= len(header):
        return f"cell {index + 1}"
    key = header[index].strip()
    return _ALIASES.get(key.lower().replace("-", "_").replace(" ", "_"), key.lower()) or "row"


def _csv_records(path: Path, text: str) -> list[tuple[int, Mapping[str | None, Any] | _Unreadable]]:
    """CSV records, strictly: no value may span lines, and every quote must close where its value
    ends. A record that breaks this is reported at the line it starts on, and reading resumes on the
    next line, so an open quote cannot swallow the rows after it."""
    source = _Lines(list(io.StringIO(text, newline="")))  # split as csv does: \n, \r\n or \r
    reader = csv.reader(source, strict=True)
    header: list[str] | None = None
    out: list[tuple[int, Mapping[str | None, Any] | _Unreadable]] = []
    while True:
        start = source.pos + 1  # 1-based line the record starts on
        problem: _Unreadable | None = None
        cells: list[str] = []
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "end of data" in str(exc):
                message = f"a quote opened on line {start} is never closed (the file ends inside it)"
            elif source.pos > start:
                message = f"a quoted value runs from line {start} to line {source.pos}: a quote is left open"
            else:
                message = f"a quote closes in the middle of a value ({exc})"
            column = _open_column(source.lines[start - 1], header) if source.pos > start else "row"
            problem = _Unreadable(column, message, _QUOTE_REMEDY)
        end = source.pos
        if problem is None and end > start:
            problem = _Unreadable(
                _open_column(source.lines[start - 1], header),
                f"a quoted value runs from line {start} to line {end}: a quote is left open",
                _QUOTE_REMEDY,
            )
        if problem is not None:
            if header is None:
                raise BulkFileError(f"{path.name} line {start}: {problem.message}", problem.remedy)
            out.append((start, problem))
            # resume on the line after the record's first: the rows an open quote swallowed are read
            source.pos = start
            reader = csv.reader(source, strict=True)
            continue
        if header is None:
            if cells:
                header = cells
            continue
        if not any(value.strip() for value in cells):
            continue  # a blank line, or one of empty cells only
        record: dict[str | None, Any] = dict.fromkeys(header)
        record.update(zip(header, cells, strict=False))
        if len(cells) > len(header):
            record[None] = cells[len(header) :]
        out.append((start, record))
    if header is None:
        raise BulkFileError(f"{path} is empty", "Add a header row: key,organizer,start,end,subject,attendees")
    return out


def _normalise(record: Mapping[str | None, Any]) -> tuple[dict[str, Any], list[str]]:
    data: dict[str, Any] = {}
    unknown: list[str] = []
    for raw_key, value in record.items():
        if raw_key is None:  # more CSV cells than headers
            unknown.append("(extra cells)")
            continue
        key = str(raw_key).strip()
        name = _ALIASES.get(key.lower().replace("-", "_").replace(" ", "_"), key.lower())
        if name not in COLUMNS:
            unknown.append(key)
            continue
        if isinstance(value, str):
            value = value.strip()
            if value == "":
                continue
        if value is None:
            continue
        data[name] = value
    return data, unknown


class _RowChecker:
    def __init__(self, operation: Operation, default_mode: str, now: dt.datetime | None = None) -> None:
        self.operation = operation
        self.default_mode = default_mode
        self.now = now
        self.problems: list[RowProblem] = []

    def problem(
        self, row: int, line: int, key: str | None, name: str, message: str, remedy: str = ""
    ) -> None:
        self.problems.append(RowProblem(row, line, key, name, message, remedy))

    def check(self, row: int, line: int, data: dict[str, Any]) -> BulkRow | None:
        op = self.operation
        before = len(self.problems)
        raw_key = data.get("key")
        key: str | None = str(raw_key) if raw_key is not None else None
        organizer = data.get("organizer")
        if not organizer or not isinstance(organizer, str):
            self.problem(row, line, key, "organizer", "is missing", "Give the organizer's UPN or object id.")
            organizer = ""
        organizer = str(organizer)
        if op == "create" and key is None:
            self.problem(
                row,
                line,
                None,
                "key",
                "is missing",
                "Give every row a unique key (e.g. the booking id): it becomes the meeting's externalId.",
            )
        if key is not None:
            try:
                check_external_id(key)
            except MeetingRuleError as exc:
                self.problem(row, line, key, "key", str(exc), _KEY_REMEDY)
        allow_past = False
        if "allow_past" in data:
            try:
                allow_past = bool_cell(data["allow_past"], "allow_past")
            except ValueError:
                self.problem(
                    row,
                    line,
                    key,
                    "allow_past",
                    f"must be true or false, got {data['allow_past']!r}",
                    "Write true to allow a start in the past, false (or nothing) to refuse one.",
                )
            if op == "cancel":
                self.problem(
                    row,
                    line,
                    key,
                    "allow_past",
                    "only create and update jobs take allow_past",
                    "Remove the allow_past column.",
                )
        if "subject" in data:
            try:
                check_subject(str(data["subject"]))
            except MeetingRuleError as exc:
                self.problem(row, line, key, "subject", str(exc), exc.remedy or "")
        start = end = None
        before_times = len(self.problems)
        for name in ("start", "end"):
            if name in data:
                try:
                    value = parse_time(data[name], name)
                except MeetingRuleError as exc:
                    self.problem(row, line, key, name, str(exc), exc.remedy or "")
                    continue
                if name == "start":
                    start = value
                else:
                    end = value
        times_parsed = len(self.problems) == before_times
        if times_parsed and (start is not None or end is not None):
            try:
                check_times(start, end, update=op == "update", allow_past=allow_past, now=self.now)
            except MeetingRuleError as exc:
                remedy = exc.remedy or ""
                if op == "update" and (start is None) != (end is None):
                    remedy = _START_ONLY_REMEDY  # the library's remedy names reschedule(), not a column
                elif exc.remedy == PAST_REMEDY:
                    remedy = _PAST_REMEDY  # the library's names every surface; this one the column
                self.problem(row, line, key, exc.field or "start", str(exc), remedy)
        attendees: list[Attendee] | None = None
        if "attendees" in data:
            try:
                attendees = parse_attendees(data["attendees"])
            except ValueError as exc:
                self.problem(
                    row,
                    line,
                    key,
                    "attendees",
                    _first_line(exc),
                    _ATTENDEE_REMEDY,
                )
        options: dict[str, Any] = {}
        if "options" in data:
            try:
                options = parse_options(data["options"])
            except ValueError as exc:
                self.problem(
                    row,
                    line,
                    key,
                    "options",
                    str(exc),
                    "Write options as lobby=organization;presenters=organizer;chat=disabled.",
                )
        placed = check_placement(op, data, start, attendees)
        for name, message, remedy in placed.problems:
            self.problem(row, line, key, name, message, remedy)
        placement, calendar_fields = placed.placement, placed.fields
        meeting_id = data.get("meeting_id")
        join_url = data.get("join_url")
        mode = str(data.get("mode") or self.default_mode)
        if placement == "calendar" and op in ("update", "cancel") and join_url and not meeting_id:
            self.problem(
                row,
                line,
                key,
                "join_url",
                "a calendar meeting is found by its meeting_id, not its join URL",
                "Give the event's id in meeting_id (the create job's results file has it).",
            )
        if placement == "calendar" and op == "cancel" and mode == "lock":
            self.problem(
                row,
                line,
                key,
                "mode",
                "a calendar meeting cannot be locked: it is cancelled, and Exchange tells the attendees",
                "Use mode delete (or leave it empty) for calendar rows.",
            )
        if op in ("update", "cancel"):
            if not meeting_id and not join_url:
                self.problem(
                    row,
                    line,
                    key,
                    "meeting_id",
                    "neither meeting_id nor join_url is given",
                    "Give the meeting's id (the results file of the create job has it) or its join URL.",
                )
            if join_url and not meeting_id:
                try:
                    check_join_url(str(join_url))
                except MeetingRuleError as exc:
                    self.problem(row, line, key, "join_url", str(exc), exc.remedy or "")
            if key is None:
                key = str(meeting_id or join_url or f"row-{row}")
        if op == "cancel" and mode not in ("delete", "lock"):
            self.problem(
                row, line, key, "mode", f"must be delete or lock, got {mode!r}", "Use delete or lock."
            )
        if op != "cancel" and "mode" in data:
            self.problem(row, line, key, "mode", "only cancel jobs take a mode", "Remove the mode column.")
        subject = data.get("subject")
        if len(self.problems) > before:
            return None
        assert key is not None
        fields: dict[str, Any] = {
            "subject": str(subject) if subject is not None else None,
            **options,
            **calendar_fields,
        }
        if start is not None:
            fields["start"] = start
        if end is not None:
            fields["end"] = end
        if op == "create":
            request = MeetingRequest(**fields, attendees=attendees or [])
            return BulkRow(
                row, line, key, organizer, op, request=request, allow_past=allow_past, placement=placement
            )
        if op == "update":
            changes = MeetingUpdate(**fields, attendees=attendees)
            without_zone = {name: value for name, value in fields.items() if name != "time_zone"}
            if MeetingUpdate(**without_zone, attendees=attendees).is_empty():  # a zone alone changes nothing
                self.problem(row, line, key, "row", "nothing to change", "Give at least one field to update.")
                return None
            return BulkRow(
                row,
                line,
                key,
                organizer,
                op,
                changes=changes,
                meeting_id=str(meeting_id) if meeting_id else None,
                join_url=str(join_url) if join_url else None,
                allow_past=allow_past,
                placement=placement,
            )
        return BulkRow(
            row,
            line,
            key,
            organizer,
            op,
            meeting_id=str(meeting_id) if meeting_id else None,
            join_url=str(join_url) if join_url else None,
            mode="lock" if mode == "lock" else "delete",
            placement=placement,
        )


def _first_line(exc: Exception) -> str:
    """The human message of ``exc``: for a pydantic error its ``msg`` alone, without the
    ``[type=value_error, input_value=…]`` suffix meant for developers."""
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if errors:
            return str(errors[0].get("msg", "")).removeprefix("Value error, ").splitlines()[0]
    return str(exc).splitlines()[0]


def load_rows(
    path: Path | str,
    operation: Operation,
    *,
    default_mode: str = "delete",
    now: dt.datetime | None = None,
) -> LoadedRows:
    """Read and check every row of ``path`` (offline checks: shapes, the meeting rules, duplicates);
    ``now`` (default: the clock) is what a start in the past is measured against.

    Raises :class:`BulkFileError` only when the file as a whole is unusable; row problems are
    collected in :attr:`LoadedRows.problems`, all of them.
    """
    if operation not in OPERATIONS:
        raise BulkFileError(f"unknown operation {operation!r}", "Use create, update or cancel.")
    path = Path(path)
    checker = _RowChecker(operation, default_mode, now)
    result = LoadedRows(operation)
    rows_by_key: dict[str, list[tuple[int, int]]] = {}
    for index, (line, record) in enumerate(_read_records(path), start=1):
        result.total = index
        if index > MAX_ROWS:
            raise BulkFileError(
                f"{path.name} has more than {MAX_ROWS} rows",
                "Split the job into files of at most 100,000 rows.",
            )
        if isinstance(record, _Unreadable):
            checker.problem(index, line, None, record.field, record.message, record.remedy)
            continue
        data, unknown = _normalise(record)
        if unknown:
            checker.problem(
                index,
                line,
                None,
                "row",
                f"unknown column(s): {', '.join(unknown)}",
                f"Known columns: {', '.join(COLUMNS)}.",
            )
        row = checker.check(index, line, data)
        key = str(data["key"]) if "key" in data else (row.key if row else None)
        if key is not None:
            rows_by_key.setdefault(key, []).append((index, line))
        if row is not None:
            result.rows.append(row)
    for key, places in rows_by_key.items():
        if len(places) < 2:
            continue
        numbers = ", ".join(str(number) for number, _ in places)
        for number, line in places:
            checker.problem(
                number,
                line,
                key,
                "key",
                f"duplicate key: rows {numbers} share it (none of them is run)",
                "Give every row its own key; a key is the meeting's identity across reruns.",
            )
    result.problems = sorted(checker.problems, key=lambda p: (p.row, p.field))
    if result.total == 0:
        raise BulkFileError(f"{path.name} has no data rows", "Add at least one row below the header.")
    return result
