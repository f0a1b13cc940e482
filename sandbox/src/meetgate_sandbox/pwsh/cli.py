"""The pwsh stand-in's command line, as pwsh's: ``-Command <text>``, ``-Command -``, ``-File x.ps1``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from meetgate_sandbox.pwsh.interpreter import Interpreter
from meetgate_sandbox.pwsh.tenant import TenantControlClient


def main(
    argv: list[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    tenant_factory: Callable[[], TenantControlClient] | None = None,
) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    out, err = stdout or sys.stdout, stderr or sys.stderr
    source: str | None = None
    script_args: list[str] = []
    i = 0
    while i < len(args):
        flag = args[i].lower()
        if flag in {"-nologo", "-noprofile", "-noninteractive", "-nol", "-nop", "-noni"}:
            i += 1
        elif flag in {"-executionpolicy", "-ep", "-outputformat", "-of"}:
            i += 2
        elif flag in {"-command", "-c"}:
            text = " ".join(args[i + 1 :])
            source = (stdin or sys.stdin).read() if text == "-" else text
            break
        elif flag in {"-file", "-f"}:
            if i + 1 >= len(args):
                err.write("The argument '-File' requires a script file path.\n")
                return 64
            path = Path(args[i + 1])
            if not path.is_file():
                err.write(
                    f"The argument '{path}' is not recognized as the name of a script file. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.\n"
                )
                return 64
            source = path.read_text(encoding="utf-8-sig")
            script_args = args[i + 2 :]
            break
        else:
            err.write(
                f"The argument '{args[i]}' is not recognized by the sandbox pwsh stand-in (use -Command or -File).\n"
            )
            return 64
    if source is None:
        source = (stdin or sys.stdin).read()
    return Interpreter(out, err, tenant_factory or TenantControlClient.locate).run(source, script_args)


def run() -> None:  # console script
    raise SystemExit(main())
