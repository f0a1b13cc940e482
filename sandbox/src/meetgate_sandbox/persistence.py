"""Saving the state as JSON in the state folder: debounced after changes, and on shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

from meetgate_sandbox.state import SandboxState, StateError

logger = logging.getLogger("meetgate_sandbox")
STATE_FILE = "state.json"


class StateFile:
    """``DIR/state.json``, written atomically with mode 0600."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE

    def load_into(self, state: SandboxState) -> bool:
        """True when a saved state was found and loaded."""
        if not self.path.exists():
            return False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StateError(
                f"cannot read the sandbox state {self.path}: {exc}; move it away to start with a fresh tenant"
            ) from exc
        state.load_dict(data)
        return True

    def save(self, state: SandboxState) -> None:
        data = json.dumps(state.to_dict(), separators=(",", ":")).encode()
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        tmp.replace(self.path)


class DebouncedSaver:
    """Saves at most once per ``delay`` seconds after a change; :meth:`flush` saves now if dirty.

    A save blocks the event loop, so a big state (100,000 meetings take seconds to write) is saved
    less often: the next save waits at least :data:`SAVE_BACKOFF` times as long as the last one took.
    """

    #: the event loop spends at most about 1/(1+SAVE_BACKOFF) of its time saving under steady change
    SAVE_BACKOFF = 4.0

    def __init__(self, file: StateFile, state: SandboxState, delay: float = 0.5) -> None:
        self.file = file
        self.state = state
        self.delay = delay
        self.last_save_seconds = 0.0
        self.dirty = False
        self._handle: asyncio.TimerHandle | None = None

    def schedule(self) -> None:
        self.dirty = True
        if self._handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the loop (start-up): flush() will save
            return
        self._handle = loop.call_later(
            max(self.delay, self.SAVE_BACKOFF * self.last_save_seconds), self.flush
        )

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not self.dirty:
            return
        self.dirty = False
        started = time.perf_counter()
        try:
            self.file.save(self.state)
            self.last_save_seconds = time.perf_counter() - started
        except OSError:
            logger.exception("could not save the sandbox state to %s", self.file.path)
