"""One implementation of each service operation, run by a sync or an async driver.

An operation is a generator that yields :class:`Op` (an HTTP call it needs) and receives the result
(or has the :class:`~meetgate.graph.errors.GraphError` thrown into it); its return value is the
operation's result. :func:`run_sync` drives it over :class:`~meetgate.graph.http.GraphHttp`,
:func:`run_async` over :class:`~meetgate.graph.http.AsyncGraphHttp`. So a service's logic (UPN
resolution, PATCH rules, createOrGet, cancel) is written once and behaves the same in both flavours.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from meetgate.graph.errors import GraphError
from meetgate.graph.http import GraphCallContext

if TYPE_CHECKING:
    from meetgate.graph.http import AsyncGraphHttp, GraphHttp

T = TypeVar("T")


@dataclass(frozen=True)
class Op:
    """An HTTP call an operation needs."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] | None = None
    safe: bool | None = None
    context: GraphCallContext | None = None
    full: bool = False


Operation = Generator[Op, Any, T]


def run_sync(http: GraphHttp, operation: Operation[T]) -> T:
    try:
        op = next(operation)
        while True:
            try:
                result = http.request(
                    op.method,
                    op.path,
                    params=op.params,
                    json=op.json,
                    headers=op.headers,
                    safe=op.safe,
                    context=op.context,
                    full=op.full,
                )
            except GraphError as exc:
                op = operation.throw(exc)
            else:
                op = operation.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value


async def run_async(http: AsyncGraphHttp, operation: Operation[T]) -> T:
    try:
        op = next(operation)
        while True:
            try:
                result = await http.request(
                    op.method,
                    op.path,
                    params=op.params,
                    json=op.json,
                    headers=op.headers,
                    safe=op.safe,
                    context=op.context,
                    full=op.full,
                )
            except GraphError as exc:
                op = operation.throw(exc)
            else:
                op = operation.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
