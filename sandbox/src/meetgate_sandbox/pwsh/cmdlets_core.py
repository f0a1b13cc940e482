"""Built-in cmdlets of the pwsh stand-in: Write-Host/-Output/-Warning, Out-Null, Select-Object,
ConvertTo-Json, Start-/Stop-Transcript.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from meetgate_sandbox.pwsh.errors import PSError
from meetgate_sandbox.pwsh.interpreter import Interpreter
from meetgate_sandbox.pwsh.registry import _arg, cmdlet
from meetgate_sandbox.pwsh.values import PSObject, _enum, _jsonable, _to_str


@cmdlet("Write-Host", "Object NoNewline ForegroundColor")
def _write_host(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.host(" ".join(_to_str(v) for v in [*([named["object"]] if "object" in named else []), *pos]))
    return []


@cmdlet("Write-Output", "InputObject")
def _write_output(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    return [*_enum(named.get("inputobject")), *pos, *(inp or [])]


@cmdlet("Write-Warning", "Message")
def _write_warning(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    it.host("WARNING: " + _to_str(_arg(named, pos, "Message", 0)), it.err)
    return []


@cmdlet("Out-Null", "InputObject")
def _out_null(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    return []


@cmdlet("Select-Object", "Property First ExpandProperty")
def _select(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    items = list(inp or [])
    if "first" in named:
        items = items[: int(named["first"])]
    if "expandproperty" in named:
        return [it.member(x, _to_str(named["expandproperty"])) for x in items]
    props = [_to_str(p) for p in _enum(_arg(named, pos, "Property", 0))]
    if not props:
        return items
    return [PSObject((p, it.member(x, p)) for p in props) for x in items]


@cmdlet("ConvertTo-Json", "InputObject Depth Compress AsArray")
def _to_json(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    if "inputobject" in named:
        value = named["inputobject"]
    else:
        items = list(inp or [])
        value = items if len(items) != 1 or named.get("asarray") else items[0]
    depth = int(named.get("depth", 2))
    data = _jsonable(value, depth)
    if named.get("compress"):
        return [json.dumps(data, separators=(",", ":"), ensure_ascii=False)]
    return [json.dumps(data, indent=2, ensure_ascii=False)]


@cmdlet("Start-Transcript", "Path Append")
def _start_transcript(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    path = Path(_to_str(_arg(named, pos, "Path", 0)) or f"PowerShell_transcript.{uuid.uuid4().hex[:8]}.txt")
    if it.transcript is not None:
        it.transcript.close()
    it.transcript = path.open("a" if named.get("append") else "w", encoding="utf-8")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    it.transcript.write(
        f"**********************\nPowerShell transcript start\nStart time: {stamp}\n"
        "Host Application: meetgate sandbox pwsh stand-in\n**********************\n"
    )
    return [f"Transcript started, output file is {path}"]


@cmdlet("Stop-Transcript")
def _stop_transcript(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    if it.transcript is None:
        raise PSError(
            "An error occurred stopping transcription: The host is not currently transcribing.",
            "InvalidOperation",
            "InvalidOperation",
        )
    it.transcript.write("**********************\nPowerShell transcript end\n**********************\n")
    it.transcript.close()
    it.transcript = None
    return ["Transcript stopped."]
