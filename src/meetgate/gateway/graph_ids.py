"""Graph's request ids for the gateway request being served, so its audit row and log line cite them.

The service opens a collection around each Graph call (:func:`collecting`); the gateway's Graph
transport adds the ``request-id`` header of every response it receives (:func:`record`). Both run in
the same task, so a context variable carries the collection between them with no shared state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_COLLECTED: ContextVar[list[str] | None] = ContextVar("meetgate_graph_request_ids", default=None)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """The request ids of Graph's answers inside the block, oldest first (retries add more)."""
    ids: list[str] = []
    token = _COLLECTED.set(ids)
    try:
        yield ids
    finally:
        _COLLECTED.reset(token)


def record(request_id: str | None) -> None:
    """Note one answer's request id, when a collection is open in this context."""
    ids = _COLLECTED.get()
    if ids is not None and request_id:
        ids.append(request_id)
