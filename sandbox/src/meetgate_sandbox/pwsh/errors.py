"""PowerShell's error records in the pwsh stand-in: :class:`PSError` (catchable), parse errors, ``exit``."""

from __future__ import annotations


class PSError(Exception):
    """A PowerShell error record (catchable by ``try``/``catch`` when terminating)."""

    def __init__(self, message: str, error_id: str = "", category: str = "NotSpecified") -> None:
        super().__init__(message)
        self.message = message
        self.error_id = error_id
        self.category = category


class ParseError(PSError):
    pass


class ExitScript(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _not_recognized(name: str) -> PSError:
    return PSError(
        f"The term '{name}' is not recognized as a name of a cmdlet, function, script file, or executable "
        "program.\nCheck the spelling of the name, or if a path was included, verify that the path is "
        "correct and try again.",
        "CommandNotFoundException",
        "ObjectNotFound",
    )
