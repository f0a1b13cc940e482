"""The organizer CSV files of a policy file, read strictly: encoding, delimiter and every reference.

A members file is read or refused, never guessed at:

- **encoding**: UTF-8 with or without a byte-order mark, or UTF-16 (LE/BE) with one (Excel's
  "Unicode text"). Anything else (e.g. Excel's legacy "CSV (Comma delimited)" in cp1252, or UTF-16
  without a byte-order mark) is refused with the line of the first byte that is not UTF-8.
- **delimiter**: ``,``, ``;`` or tab, taken from the first non-blank line (the header). When that
  line holds more than one of them, the one that splits every line into the same number of fields
  wins; when none or several do, the file is refused naming the line. A file whose first line has
  no delimiter is one column, and any later line holding one is refused.
- **references**: each must be a UPN (``name@domain``) or an object id (a GUID); control and
  invisible formatting characters, a second ``@`` or a GUID with the wrong shape are refused with
  the file and line.

A mis-read members file turns every approved organizer into an "unknown user" and makes the plan
revoke every current holder: refusing is the safe answer.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from meetgate.admin.policy.model import PolicyError

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: header names (lower-case, without spaces, ``_`` and ``-``) of the column holding the references,
#: in order of preference
CSV_COLUMNS = ("userprincipalname", "upn", "id", "objectid", "user", "email", "mail")
DELIMITERS = {",": "comma (,)", ";": "semicolon (;)", "\t": "tab"}
SAVE_AS = "save it from Excel as 'CSV UTF-8 (Comma delimited)' (or as 'Unicode Text'), then plan again"
_HEADER_NOISE = re.compile(r"[\s_\-]+")
_LOOKS_LIKE_GUID = re.compile(r"^[{(]?[0-9A-Za-z]+(-[0-9A-Za-z]+){2,}[})]?$")
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
#: characters that cannot be in a UPN's name part (RFC 5322 specials and whitespace)
_NOT_IN_NAME = set(' "(),:;<>[\\]')
_MAX_ERRORS = 5


def is_guid(value: str) -> bool:
    """True for an object id: 8-4-4-4-12 hexadecimal digits."""
    return bool(GUID.match(value))


def _invisible(value: str) -> tuple[int, str] | None:
    """(position, character) of the first control or invisible formatting character, if any."""
    for i, ch in enumerate(value):
        if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"}:
            return i, ch
    return None


def reference_problem(value: str) -> str | None:
    """Why ``value`` is neither a UPN nor an object id, or None when it is one of them."""
    bad = _invisible(value)
    if bad is not None:
        pos, ch = bad
        return f"has the control/invisible character U+{ord(ch):04X} at position {pos + 1}"
    if "@" not in value:
        if is_guid(value):
            return None
        if _LOOKS_LIKE_GUID.match(value) and sum(c in "0123456789abcdefABCDEF" for c in value) >= 16:
            return "looks like an object id but is not a GUID (8-4-4-4-12 hexadecimal digits, no braces)"
        return "is neither a UPN (name@domain) nor an object id (GUID)"
    if value.count("@") > 1:
        return "has more than one '@': a UPN is name@domain"
    name, domain = value.split("@")
    if not name:
        return "has nothing before the '@'"
    if any(c in _NOT_IN_NAME or c.isspace() for c in name) or name.startswith(".") or name.endswith("."):
        return "has a character a UPN cannot hold before the '@' (space, quote, comma, ';', brackets …)"
    if ".." in name:
        return "has '..' before the '@'"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        return f"has {domain!r} after the '@', which is not a domain name (e.g. contoso.com)"
    return None


def check_reference(value: str, where: str) -> None:
    """Raise :class:`PolicyError` naming ``where`` when ``value`` is neither a UPN nor an object id."""
    problem = reference_problem(value)
    if problem is not None:
        raise PolicyError(f"{where}: {_show(value)} {problem}", _REFERENCE_REMEDY)


_REFERENCE_REMEDY = (
    "write a user principal name (alice@contoso.com) or an Entra object id "
    "(7c3e5a7d-0000-4000-8000-000000000001), one per line, then plan again"
)


_HEADER_REMEDY = (
    "if this line is a header, name the column of references userPrincipalName, upn, id or objectId; "
    "otherwise " + _REFERENCE_REMEDY
)


def strip_blanks(value: str) -> str:
    """``value`` without surrounding spaces (also no-break spaces); control characters are kept, to be
    refused rather than dropped unseen."""
    start, end = 0, len(value)
    while start < end and value[start].isspace() and unicodedata.category(value[start]) != "Cc":
        start += 1
    while end > start and value[end - 1].isspace() and unicodedata.category(value[end - 1]) != "Cc":
        end -= 1
    return value[start:end]


def _show(value: str, limit: int = 80) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…'"


# --- decoding -------------------------------------------------------------------------------------


def decode_members_file(path: Path, data: bytes) -> str:
    """The text of a members file: UTF-8 (BOM optional) or UTF-16 with a BOM; refused otherwise."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, body = "utf-16", data  # the codec reads and drops the byte-order mark
    else:
        encoding = "utf-8"
        body = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
        if b"\x00" in body:
            line = body[: body.index(b"\x00")].count(b"\n") + 1
            raise PolicyError(
                f"{path}, line {line}: the file holds NUL bytes: it is not UTF-8 text "
                "(UTF-16 without a byte-order mark?)",
                SAVE_AS,
            )
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        before = body[: exc.start].decode(encoding, errors="replace")
        line = before.count("\n") + 1
        what = "UTF-16" if encoding == "utf-16" else "UTF-8"
        raise PolicyError(
            f"{path}, line {line}: the file is not {what} text "
            f"(byte 0x{body[exc.start]:02x} at offset {exc.start}: {exc.reason})",
            SAVE_AS,
        ) from None


# --- records and the delimiter --------------------------------------------------------------------


class _CsvSyntaxError(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, fields) of every non-blank record; a quote left open is an error."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CsvSyntaxError(start, str(exc)) from None
        if any(cell.strip() for cell in row):
            yield start, row
        start = reader.line_num + 1


def _first_record(text: str, delimiter: str) -> tuple[int, list[str]] | None:
    try:
        return next(_records(text, delimiter), None)
    except _CsvSyntaxError:
        return None


def _splits_evenly(text: str, delimiter: str, width: int) -> bool:
    try:
        return all(len(row) == width for _, row in _records(text, delimiter))
    except _CsvSyntaxError:
        return False


def detect_delimiter(path: Path, text: str) -> str:
    """``,``, ``;`` or tab, from the header line; :class:`PolicyError` naming the line when unsure."""
    firsts = {d: _first_record(text, d) for d in DELIMITERS}
    splitting = {d: rec for d, rec in firsts.items() if rec is not None and len(rec[1]) > 1}
    if len(splitting) == 1:
        return next(iter(splitting))
    if len(splitting) > 1:
        even = [d for d, (_, row) in splitting.items() if _splits_evenly(text, d, len(row))]
        if len(even) == 1:
            return even[0]
        line = min(rec[0] for rec in splitting.values())
        names = " and ".join(DELIMITERS[d] for d in splitting)
        raise PolicyError(
            f"{path}, line {line}: cannot tell which delimiter separates the columns: the line holds "
            f"{names}, and {'none' if not even else 'more than one'} of them splits every line alike",
            "use one delimiter throughout and put double quotes around a field holding another "
            "(Excel's 'CSV UTF-8' does), then plan again",
        )
    # the header is a single column: so must every line be
    for delimiter, name in DELIMITERS.items():
        try:
            for line, row in _records(text, delimiter):
                if len(row) > 1:
                    header = firsts[delimiter]
                    raise PolicyError(
                        f"{path}, line {line}: the line holds a {name} delimiter but the first line "
                        f"(line {header[0] if header else 1}) has no delimiter: cannot tell the columns apart",
                        "give every line the same columns, separated by , or ; or tab "
                        "(or one reference per line and nothing else), then plan again",
                    )
        except _CsvSyntaxError:
            continue  # a quote this delimiter cannot read: reported when the file is read
    return ","


# --- the file -------------------------------------------------------------------------------------


def read_organizer_csv(path: Path) -> list[str]:
    """UPNs or ids from a members CSV: a known header column, else the first column of every row.

    Raises :class:`PolicyError` naming the file and line for an encoding, delimiter, quoting or
    reference it cannot read with certainty (see the module docstring)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            f"cannot read the CSV file {path}: {exc.strerror or exc}", "check the path and its permissions"
        ) from None
    text = decode_members_file(path, data)
    delimiter = detect_delimiter(path, text)
    try:
        rows = list(_records(text, delimiter))
    except _CsvSyntaxError as exc:
        raise PolicyError(
            f"{path}, line {exc.line}: the record starting here cannot be read ({exc.reason}); "
            "a double quote is probably left open",
            'close the quote, or double a quote inside a quoted field (""), then plan again',
        ) from None
    if not rows:
        return []
    header = [_HEADER_NOISE.sub("", cell.strip().lower()) for cell in rows[0][1]]
    column = next((header.index(c) for c in CSV_COLUMNS if c in header), None)
    body = rows[1:] if column is not None else rows
    index = column or 0
    refs: list[str] = []
    errors: list[PolicyError] = []
    for line, row in body:
        if len(row) <= index:
            errors.append(
                PolicyError(
                    f"{path}, line {line}: {len(row)} field(s) with the {DELIMITERS[delimiter]} delimiter "
                    f"of the header, so no column {rows[0][1][index].strip()!r} (field {index + 1})",
                    "give every line the header's columns, with the same delimiter, then plan again",
                )
            )
        else:
            value = strip_blanks(row[index])
            if not value:
                continue
            problem = reference_problem(value)
            if problem is None:
                refs.append(value)
            else:
                headerless_first = column is None and line == rows[0][0]
                remedy = _HEADER_REMEDY if headerless_first else _REFERENCE_REMEDY
                errors.append(PolicyError(f"{path}, line {line}: {_show(value)} {problem}", remedy))
        if len(errors) > _MAX_ERRORS:
            break
    if errors:
        raise _combined(errors)
    return refs


def _combined(errors: list[PolicyError]) -> PolicyError:
    if len(errors) == 1:
        return errors[0]
    shown = errors[:_MAX_ERRORS]
    more = " (and more)" if len(errors) > _MAX_ERRORS else ""
    message = f"{len(shown)} unreadable line(s){more}:\n" + "\n".join(f"  {e}" for e in shown)
    return PolicyError(message, shown[0].remedy)
