"""The audit trail writer: requests hand their entry over and go on; a background task appends
them to the store in batches (one transaction per batch, every ``interval`` seconds).

On shutdown every pending entry is written. A process killed outright loses at most the last
``interval`` of entries (the trade for not paying a write on every request's path).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from anyio import to_thread

from meetgate.gateway.logs import LOGGER_NAME
from meetgate.store import AuditEntry, Store

log = logging.getLogger(LOGGER_NAME)


class AuditWriter:
    def __init__(self, store: Store, interval: float = 0.05, max_batch: int = 500) -> None:
        self.store = store
        self.interval = interval
        self.max_batch = max_batch
        self._pending: list[AuditEntry] = []
        self._lock = threading.Lock()
        #: held while a batch is taken and written: a drain returns only once what was taken before it
        #: (by the background task, on another thread) is in the store too
        self._writing = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def submit(self, entry: AuditEntry) -> None:
        with self._lock:
            self._pending.append(entry)

    def _take(self) -> list[AuditEntry]:
        with self._lock:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        return batch

    def drain(self) -> int:
        """Write everything pending now, on this thread; returns how many entries were written."""
        written = 0
        with self._writing:
            while batch := self._take():
                self._write(batch)
                written += len(batch)
        return written

    def _write(self, batch: list[AuditEntry]) -> None:
        try:
            self.store.append_audit(*batch)
        except Exception:
            log.exception(
                "audit write failed; entries kept for the next attempt", extra={"entries": len(batch)}
            )
            with self._lock:
                self._pending[:0] = batch
            raise

    async def run(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.interval)
            try:
                if self.store.inline:
                    self.drain()
                else:
                    await to_thread.run_sync(self.drain)
            except Exception:
                await asyncio.sleep(1.0)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await to_thread.run_sync(self.drain)
