"""The journal of a bulk job: one JSON line per finished row, so a rerun continues where it stopped.

The first line names the job (operation, input file); every later line is a row outcome, appended and
flushed as soon as the row finishes. A crash or Ctrl-C can lose at most the rows in flight, and those
are safe to run again: creates are createOrGet keyed by the row's key (externalId), updates set a fixed
state, and a cancel that already happened finds the meeting gone. A torn last line (the process died
while writing it) is ignored. Later lines win, so a row that failed and then succeeded is done. Each
outcome carries the row's fingerprint: a row edited in the file since it was done runs again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from meetgate.errors import MeetgateError

JOURNAL_VERSION = 1
#: ``unknown``: the call failed after it may have reached Graph (a 500/502/504 or a connection lost
#: after sending), so the meeting may exist or the change may be in place; a rerun settles it.
Status = Literal["done", "failed", "unknown"]


class JournalError(MeetgateError, ValueError):
    """A bulk run's journal cannot be read or written; ``remedy`` says what to do."""


@dataclass(frozen=True)
class RowOutcome:
    """How one row ended."""

    key: str
    row: int
    status: Status
    meeting_id: str | None = None
    join_url: str | None = None
    #: create: True when this run created the meeting, False when it existed (createOrGet 200)
    created: bool | None = None
    error: str | None = None
    code: str | None = None
    remedy: str | None = None
    at: str = ""
    #: :meth:`BulkRow.fingerprint` of the row as it was run (None in journals of older versions)
    fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RowOutcome:
        return cls(
            key=str(data["key"]),
            row=int(data.get("row", 0)),
            status=_status(data.get("status")),
            meeting_id=data.get("meeting_id"),
            join_url=data.get("join_url"),
            created=data.get("created"),
            error=data.get("error"),
            code=data.get("code"),
            remedy=data.get("remedy"),
            at=str(data.get("at", "")),
            fingerprint=data.get("fingerprint"),
        )


def _status(value: object) -> Status:
    if value == "done":
        return "done"
    if value == "unknown":
        return "unknown"
    return "failed"


def default_journal_path(input_path: Path, operation: str) -> Path:
    return input_path.with_name(f"{input_path.name}.{operation}.journal.jsonl")


class Journal:
    """Append-only journal file. ``outcomes`` holds the last outcome of each key read or written."""

    def __init__(self, path: Path, operation: str, source: str = "") -> None:
        self.path = Path(path)
        self.operation = operation
        self.source = source
        self.outcomes: dict[str, RowOutcome] = {}
        self.resumed = False
        self._file: Any = None
        self._load()

    def _load(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0])
        except (ValueError, IndexError):
            raise JournalError(
                f"{self.path} is not a meetgate bulk journal",
                "Give another --journal path, or delete the file to start over.",
            ) from None
        if not isinstance(header, dict) or header.get("journal") != JOURNAL_VERSION:
            raise JournalError(f"{self.path} is not a meetgate bulk journal (version {JOURNAL_VERSION})")
        if header.get("operation") != self.operation:
            raise JournalError(
                f"{self.path} is the journal of a '{header.get('operation')}' job, not '{self.operation}'",
                "Use a separate journal per operation (the default names include the operation).",
            )
        for raw in lines[1:]:
            try:
                data = json.loads(raw)
            except ValueError:
                continue  # a line torn by a crash: that row is simply run again
            if isinstance(data, dict) and "key" in data:
                outcome = RowOutcome.from_dict(data)
                self.outcomes[outcome.key] = outcome
        self.resumed = True

    def done_keys(self) -> set[str]:
        return {key for key, outcome in self.outcomes.items() if outcome.status == "done"}

    def open(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            # a torn last line must not glue itself to the next record
            with self.path.open("rb") as existing:
                existing.seek(-1, os.SEEK_END)
                needs_newline = existing.read(1) != b"\n"
        self._file = self.path.open("a", encoding="utf-8")
        if fresh:
            header = {
                "journal": JOURNAL_VERSION,
                "operation": self.operation,
                "source": self.source,
                "started": _now(),
            }
            self._file.write(json.dumps(header) + "\n")
            self._file.flush()
        elif needs_newline:
            self._file.write("\n")
        return self

    def record(self, outcome: RowOutcome) -> None:
        if not outcome.at:
            outcome = RowOutcome(**{**asdict(outcome), "at": _now()})
        self.outcomes[outcome.key] = outcome
        if self._file is not None:
            self._file.write(json.dumps(outcome.to_dict(), ensure_ascii=False) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
