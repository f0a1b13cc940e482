"""The pwsh stand-in's lexer: PowerShell source → :class:`Tok` tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from meetgate_sandbox.pwsh.errors import ParseError


@dataclass(frozen=True)
class Tok:
    kind: str
    value: Any
    line: int


_PUNCT = {
    "{": "LBRACE",
    "}": "RBRACE",
    "(": "LPAREN",
    ")": "RPAREN",
    "[": "LBRACKET",
    "]": "RBRACKET",
    ",": "COMMA",
    "|": "PIPE",
    ";": "SEMI",
    "+": "PLUS",
    "!": "BANG",
}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-\.\\:/]*")
_MEMBER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR = re.compile(r"\$(?:env:)?[A-Za-z_][A-Za-z0-9_]*|\$_|\$\?")
_NUM = re.compile(r"\d+(?:\.\d+)?")


def tokenize(src: str) -> list[Tok]:
    toks: list[Tok] = []
    i, line, n = 0, 1, len(src)
    while i < n:
        c = src[i]
        if c == "\n":
            toks.append(Tok("NL", None, line))
            line += 1
            i += 1
        elif c in " \t\r\ufeff":
            i += 1
        elif c == "`" and i + 1 < n and src[i + 1] in "\r\n":
            i += 2 if src[i + 1] == "\n" else 3
            line += 1
        elif src.startswith("<#", i):
            end = src.find("#>", i + 2)
            if end < 0:
                raise ParseError(
                    f"line {line}: missing the terminator '#>' of a block comment", "ParserError"
                )
            line += src.count("\n", i, end)
            i = end + 2
        elif c == "#":
            while i < n and src[i] != "\n":
                i += 1
        elif c == "'" or c in "\u2018\u2019":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise ParseError(
                        f"line {line}: the string is missing the terminator: '.",
                        "TerminatorExpectedAtEndOfString",
                    )
                if src[j] in "'\u2018\u2019":
                    if j + 1 < n and src[j + 1] in "'\u2018\u2019":
                        buf.append(src[j])
                        j += 2
                        continue
                    break
                buf.append(src[j])
                j += 1
            text = "".join(buf)
            line += text.count("\n")
            toks.append(Tok("STR", text, line))
            i = j + 1
        elif c == '"':
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise ParseError(
                        f'line {line}: the string is missing the terminator: ".',
                        "TerminatorExpectedAtEndOfString",
                    )
                if src[j] == "`" and j + 1 < n:
                    buf.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(src[j + 1], src[j + 1]))
                    j += 2
                    continue
                if src[j] == '"':
                    if j + 1 < n and src[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    break
                buf.append(src[j])
                j += 1
            text = "".join(buf)
            line += text.count("\n")
            toks.append(Tok("XSTR", text, line))
            i = j + 1
        elif c == "$":
            if src.startswith("$(", i):
                toks.append(Tok("SUBEXPR", None, line))
                i += 2
                continue
            m = _VAR.match(src, i)
            if not m:
                raise ParseError(f"line {line}: unexpected '$'", "ParserError")
            toks.append(Tok("VAR", m.group()[1:], line))
            i = m.end()
        elif c == "@" and i + 1 < n and src[i + 1] in "({":
            toks.append(Tok("ATPAREN" if src[i + 1] == "(" else "ATBRACE", None, line))
            i += 2
        elif c == "=" and not src.startswith("==", i):
            toks.append(Tok("ASSIGN", None, line))
            i += 1
        elif c == ":" and src.startswith("::", i):
            toks.append(Tok("COLONS", None, line))
            i += 2
        elif c == "." and i + 1 < n and (src[i + 1].isalpha() or src[i + 1] == "_"):
            m = _MEMBER.match(src, i + 1)
            assert m is not None
            toks.append(Tok("MEMBER", m.group(), line))
            i = m.end()
        elif c == "-" and i + 1 < n and src[i + 1].isalpha():
            m = _MEMBER.match(src, i + 1)
            assert m is not None
            if m.end() < n and src[m.end()] == ":":  # -Confirm:$false binds the value to the switch
                toks.append(Tok("DASHARG", m.group(), line))
                i = m.end() + 1
            else:
                toks.append(Tok("DASH", m.group(), line))
                i = m.end()
        elif c in _PUNCT:
            toks.append(Tok(_PUNCT[c], c, line))
            i += 1
        elif c.isdigit():
            m = _NUM.match(src, i)
            assert m is not None
            toks.append(Tok("NUM", float(m.group()) if "." in m.group() else int(m.group()), line))
            i = m.end()
        elif c.isalpha() or c == "_":
            m = _WORD.match(src, i)
            assert m is not None
            word = m.group()
            # a trailing '.Member' after a bareword is member access only for type names; keep words whole
            toks.append(Tok("WORD", word, line))
            i = m.end()
        else:
            raise ParseError(
                f"line {line}: unexpected token '{c}' in expression or statement.", "UnexpectedToken"
            )
    toks.append(Tok("EOF", None, line))
    return toks
