"""The pwsh stand-in's cmdlet registry: ``@cmdlet(name, params)`` fills :data:`CMDLETS` and :data:`PARAMS`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meetgate_sandbox.pwsh.interpreter import Interpreter


CmdletFn = Callable[["Interpreter", dict[str, Any], list[Any], list[Any] | None], list[Any]]

CMDLETS: dict[str, CmdletFn] = {}
PARAMS: dict[str, set[str]] = {}


def cmdlet(name: str, params: str = "") -> Callable[[CmdletFn], CmdletFn]:
    def register(fn: CmdletFn) -> CmdletFn:
        CMDLETS[name.lower()] = fn
        PARAMS[name.lower()] = {p.lower() for p in params.split()}
        return fn

    return register


def _arg(named: dict[str, Any], positional: list[Any], name: str, index: int | None = None) -> Any:
    if name.lower() in named:
        return named[name.lower()]
    if index is not None and index < len(positional):
        return positional[index]
    return None
