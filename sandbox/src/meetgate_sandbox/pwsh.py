"""A stand-in for ``pwsh`` + the MicrosoftTeams module, acting on a sandbox tenant.

PowerShell 7 and the MicrosoftTeams module cannot be installed on our machines, so this small
program runs exactly the PowerShell meetgate emits (the ``powershell`` backend's batches and the
``script`` backend's ``.ps1``) and applies it to a sandbox tenant through the control API. It
understands a small language subset — ``param``, variables, ``'..'``/``".."`` strings, ``@()``,
``@{}``, ``[pscustomobject]``, member access, ``+``, ``-eq -ne -gt -lt -replace -not -and -or``,
``if/elseif/else``, ``foreach``, ``try/catch/finally``, ``exit``, pipelines — and these commands:

    Connect-MicrosoftTeams  (-TenantId, with -ApplicationId -Certificate <X509Certificate2> or
                             -CertificateThumbprint (see the certificate store below),
                             -AccessTokens @(graph, teams), or interactively as the tenant admin)
    New-/Set-/Get-/Remove-CsApplicationAccessPolicy
    Grant-CsApplicationAccessPolicy  -Identity u | -Group g -Rank n | -Global,  -PolicyName n|$null
    Get-CsOnlineUser [-Identity u] [-ResultSize Unlimited]
    Get-CsUserPolicyAssignment -Identity u -PolicyType ApplicationAccessPolicy
    Get-CsGroupPolicyAssignment -PolicyType ApplicationAccessPolicy
    ConvertTo-Json, Select-Object, Out-Null, Write-Host, Write-Output, Write-Warning,
    Start-Transcript, Stop-Transcript,
    [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile(cert, key)
    Microsoft Graph PowerShell (module :mod:`meetgate_sandbox.pwsh_graph`): Connect-MgGraph,
    Get-MgContext, Disconnect-MgGraph, New-/Get-/Remove-MgUserOnlineMeeting

``-CertificateThumbprint`` reads ``Cert:\\CurrentUser\\My`` on Windows; here the store is the folder
``MEETGATE_PWSH_CERT_STORE`` names: PEM certificates and their unencrypted PEM keys, matched by
thumbprint and public key.

Anything else is refused with PowerShell's own error text. Invocation mirrors pwsh:
``-Command <text>``, ``-Command -`` or no argument (script on stdin), ``-File x.ps1 [-Param value]``;
``-NoLogo -NoProfile -NonInteractive`` are accepted. Exit code 1 after an uncaught error, or ``exit n``.

The sandbox is found from ``MEETGATE_SANDBOX_CONTROL_URL`` (+ ``MEETGATE_SANDBOX_CA_BUNDLE``,
``MEETGATE_SANDBOX_AUTHORITY_URL``), else the ``sandbox.json`` named by ``MEETGATE_SANDBOX_JSON``,
else ``./sandbox.json`` or ``./.meetgate/sandbox/sandbox.json``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import ssl
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

# ----------------------------------------------------------------------------- errors


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


# ----------------------------------------------------------------------------- lexer


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


# ----------------------------------------------------------------------------- parser (AST as tuples)

_BINOPS = {"eq", "ne", "gt", "lt", "ge", "le", "like", "notlike", "in", "notin", "replace", "contains"}
_END_OF_COMMAND = {"NL", "SEMI", "PIPE", "RBRACE", "RPAREN", "EOF"}


class Parser:
    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self, k: int = 0) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, what: str) -> Tok:
        tok = self.next()
        if tok.kind != kind:
            raise ParseError(f"line {tok.line}: missing {what}.", "ParserError")
        return tok

    def skip_nl(self) -> None:
        while self.peek().kind in {"NL", "SEMI"}:
            self.i += 1

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "WORD" and str(tok.value).lower() in words

    # statements
    def script(self) -> tuple[Any, ...]:
        params: list[Any] = []
        self.skip_nl()
        if (
            self.peek().kind == "LBRACKET"
            and self.peek(1).kind == "WORD"
            and str(self.peek(1).value).lower() == "cmdletbinding"
        ):
            self.type_literal()
            self.skip_nl()
        if self.is_word("param"):
            params = self.param_block()
        body = self.statements(until="EOF")
        return ("script", params, body)

    def param_block(self) -> list[Any]:
        self.next()
        self.expect("LPAREN", "'(' after param")
        params = []
        while True:
            self.skip_nl()
            if self.peek().kind == "RPAREN":
                self.next()
                break
            typ = None
            while self.peek().kind == "LBRACKET":
                typ = self.type_literal()
                self.skip_nl()
            name = self.expect("VAR", "a parameter variable").value
            default = None
            if self.peek().kind == "ASSIGN":
                self.next()
                default = self.logical()
            params.append((name, (typ or "object").lower(), default))
            self.skip_nl()
            if self.peek().kind == "COMMA":
                self.next()
        return params

    def type_literal(self) -> str:
        self.expect("LBRACKET", "'['")
        name = str(self.expect("WORD", "a type name").value)
        if self.peek().kind == "LPAREN":  # attribute like [CmdletBinding()] / [Parameter()]
            depth = 0
            while True:
                tok = self.next()
                depth += tok.kind == "LPAREN"
                depth -= tok.kind == "RPAREN"
                if depth == 0:
                    break
        if self.peek().kind == "LBRACKET" and self.peek(1).kind == "RBRACKET":
            self.i += 2
            name += "[]"
        self.expect("RBRACKET", "']'")
        return name

    def statements(self, until: str) -> list[Any]:
        out: list[Any] = []
        while True:
            self.skip_nl()
            if self.peek().kind == until:
                self.next()
                return out
            if self.peek().kind == "EOF":
                raise ParseError(
                    f"line {self.peek().line}: missing closing '}}' in statement block.",
                    "MissingEndCurlyBrace",
                )
            out.append(self.statement())

    def block(self) -> list[Any]:
        self.skip_nl()
        self.expect("LBRACE", "'{' opening a statement block")
        return self.statements(until="RBRACE")

    def statement(self) -> Any:
        tok = self.peek()
        word = str(tok.value).lower() if tok.kind == "WORD" else ""
        if word == "if":
            self.next()
            branches = []
            self.expect("LPAREN", "'(' after if")
            cond = self.pipeline()
            self.expect("RPAREN", "')' after the if condition")
            branches.append((cond, self.block()))
            otherwise = None
            while True:
                save = self.i
                self.skip_nl()
                if self.is_word("elseif"):
                    self.next()
                    self.expect("LPAREN", "'(' after elseif")
                    cond = self.pipeline()
                    self.expect("RPAREN", "')'")
                    branches.append((cond, self.block()))
                elif self.is_word("else"):
                    self.next()
                    otherwise = self.block()
                    break
                else:
                    self.i = save
                    break
            return ("if", branches, otherwise)
        if word == "foreach":
            self.next()
            self.expect("LPAREN", "'(' after foreach")
            var = self.expect("VAR", "a loop variable").value
            if not self.is_word("in"):
                raise ParseError(f"line {tok.line}: missing 'in' in foreach.", "MissingInInForeach")
            self.next()
            source = self.pipeline()
            self.expect("RPAREN", "')' after foreach")
            return ("foreach", var, source, self.block())
        if word == "try":
            self.next()
            body = self.block()
            self.skip_nl()
            handler = final = None
            if self.is_word("catch"):
                self.next()
                while self.peek().kind == "LBRACKET":
                    self.type_literal()
                handler = self.block()
                self.skip_nl()
            if self.is_word("finally"):
                self.next()
                final = self.block()
            if handler is None and final is None:
                raise ParseError(
                    f"line {tok.line}: the try statement is missing its catch or finally block.",
                    "MissingCatchOrFinally",
                )
            return ("try", body, handler, final)
        if word in {"exit", "return"}:
            self.next()
            value = None if self.peek().kind in _END_OF_COMMAND else self.expression()
            return (word, value)
        if word in {"while", "do", "for", "function", "switch", "class", "trap", "break", "continue"}:
            raise ParseError(
                f"line {tok.line}: '{tok.value}' is not supported by the sandbox pwsh stand-in.",
                "ParserError",
            )
        if tok.kind == "VAR" and self.peek(1).kind == "ASSIGN":
            self.i += 2
            self.skip_nl()
            return ("assign", tok.value, self.pipeline())
        return self.pipeline()

    def pipeline(self) -> Any:
        elements = [self.command() if self.peek().kind == "WORD" else self.expression()]
        while self.peek().kind == "PIPE":
            self.next()
            self.skip_nl()
            if self.peek().kind != "WORD":
                raise ParseError(
                    f"line {self.peek().line}: expressions are only allowed as the first element of a pipeline.",
                    "ExpressionsMustBeFirstInPipeline",
                )
            elements.append(self.command())
        return elements[0] if len(elements) == 1 else ("pipeline", elements)

    def command(self) -> Any:
        name = str(self.next().value)
        args: list[Any] = []
        while self.peek().kind not in _END_OF_COMMAND:
            tok = self.peek()
            if tok.kind == "DASH":
                self.next()
                if self.peek().kind in _END_OF_COMMAND or self.peek().kind == "DASH":
                    args.append(("named", tok.value, ("const", True)))
                else:
                    args.append(("named", tok.value, self.argument()))
            else:
                args.append(("positional", self.argument()))
        return ("command", name, args)

    def argument(self) -> Any:
        items = [self.arg_value()]
        while self.peek().kind == "COMMA":
            self.next()
            items.append(self.arg_value())
        return items[0] if len(items) == 1 else ("array", items)

    def arg_value(self) -> Any:
        if self.peek().kind == "WORD":
            return ("const", str(self.next().value))
        return self.postfix()

    # expressions
    def expression(self) -> Any:
        first = self.logical()
        if self.peek().kind != "COMMA":
            return first
        items = [first]
        while self.peek().kind == "COMMA":
            self.next()
            self.skip_nl()
            items.append(self.logical())
        return ("array", items)

    def logical(self) -> Any:
        left = self.comparison()
        while self.peek().kind == "DASH" and str(self.peek().value).lower() in {"and", "or"}:
            op = str(self.next().value).lower()
            left = (op, left, self.comparison())
        return left

    def comparison(self) -> Any:
        left = self.additive()
        while self.peek().kind == "DASH" and str(self.peek().value).lower() in _BINOPS:
            op = str(self.next().value).lower()
            right = self.additive()
            if op == "replace" and self.peek().kind == "COMMA":
                self.next()
                right = ("array", [right, self.additive()])
            left = ("binop", op, left, right)
        return left

    def additive(self) -> Any:
        left = self.unary()
        while self.peek().kind == "PLUS":
            self.next()
            self.skip_nl()
            left = ("binop", "+", left, self.unary())
        return left

    def unary(self) -> Any:
        tok = self.peek()
        if (tok.kind == "DASH" and str(tok.value).lower() == "not") or tok.kind == "BANG":
            self.next()
            return ("not", self.unary())
        return self.postfix()

    def postfix(self) -> Any:
        node = self.primary()
        while True:
            tok = self.peek()
            if tok.kind == "MEMBER":
                self.next()
                if self.peek().kind == "LPAREN":
                    self.next()
                    args = [] if self.peek().kind == "RPAREN" else self.call_args()
                    self.expect("RPAREN", "')' closing a method call")
                    node = ("call", node, tok.value, args)
                else:
                    node = ("member", node, tok.value)
            elif tok.kind == "LBRACKET" and node[0] in {"var", "paren", "member", "subexpr"}:
                self.next()
                index = self.expression()
                self.expect("RBRACKET", "']'")
                node = ("index", node, index)
            else:
                return node

    def call_args(self) -> list[Any]:
        args = [self.logical()]
        while self.peek().kind == "COMMA":
            self.next()
            args.append(self.logical())
        return args

    def primary(self) -> Any:
        tok = self.next()
        kind = tok.kind
        if kind == "VAR":
            return ("var", tok.value)
        if kind == "STR":
            return ("const", tok.value)
        if kind == "XSTR":
            return ("xstr", tok.value)
        if kind == "NUM":
            return ("const", tok.value)
        if kind == "LPAREN":
            self.skip_nl()
            inner = self.statement()
            self.skip_nl()
            self.expect("RPAREN", "')'")
            return ("paren", inner)
        if kind in {"ATPAREN", "SUBEXPR"}:
            body = self.statements(until="RPAREN")
            return ("arrayexpr" if kind == "ATPAREN" else "subexpr", body)
        if kind == "ATBRACE":
            return self.hashtable()
        if kind == "LBRACKET":
            self.i -= 1
            typ = self.type_literal()
            if self.peek().kind == "COLONS":
                self.next()
                method = self.expect("WORD", "a static member name").value
                self.expect("LPAREN", "'('")
                args = [] if self.peek().kind == "RPAREN" else self.call_args()
                self.expect("RPAREN", "')'")
                return ("static", typ, method, args)
            return ("cast", typ, self.unary())
        raise ParseError(
            f"line {tok.line}: unexpected token '{tok.value if tok.value is not None else kind}' in expression or statement.",
            "UnexpectedToken",
        )

    def hashtable(self) -> Any:
        entries: list[Any] = []
        while True:
            self.skip_nl()
            tok = self.next()
            if tok.kind == "RBRACE":
                return ("hash", entries)
            if tok.kind not in {"WORD", "STR", "XSTR"}:
                raise ParseError(
                    f"line {tok.line}: missing key before '=' in hash literal.", "MissingEqualsInHashLiteral"
                )
            self.expect("ASSIGN", "'=' in hash literal")
            self.skip_nl()
            entries.append((str(tok.value), self.statement()))


# ----------------------------------------------------------------------------- values


class PSObject(dict[str, Any]):
    """An ordered property bag with case-insensitive member access ([pscustomobject] / hashtable)."""

    def get_member(self, name: str) -> Any:
        for key, value in self.items():
            if key.lower() == name.lower():
                return value
        return None


def _enum(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _truthy(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) > 1 or (len(value) == 1 and _truthy(value[0]))
    return bool(value)


def _to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return " ".join(_to_str(v) for v in value)
    return str(value)


def _eq(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return _to_str(a).lower() == _to_str(b).lower()
    return bool(a == b)


def _collapse(items: list[Any]) -> Any:
    if not items:
        return None
    return items[0] if len(items) == 1 else items


def _jsonable(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if depth < 0:
        return _to_str(value)
    if isinstance(value, list):
        return [_jsonable(v, depth - 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth - 1) for k, v in value.items()}
    return str(value)


# ----------------------------------------------------------------------------- the sandbox tenant


class _Response:
    def __init__(self, status_code: int, text: str) -> None:
        self.status_code = status_code
        self.text = text

    def json(self) -> Any:
        return json.loads(self.text)


class _Http:
    """A few HTTPS requests with the standard library (pwsh sessions start fast: no httpx import)."""

    def __init__(self, context: ssl.SSLContext, timeout: float = 30.0) -> None:
        self.context = context
        self.timeout = timeout
        self._connections: dict[str, Any] = {}

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        bearer: str | None = None,
    ) -> _Response:
        import http.client
        import urllib.parse

        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https":
            raise PSError(
                f"The sandbox must be reached over https, not {url!r}.", "InvalidUri", "InvalidArgument"
            )
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        payload: bytes | None = None
        if json_body is not None:
            payload = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            payload = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):  # a kept-alive connection the server closed is retried once
            conn = self._connections.get(parts.netloc)
            if conn is None:
                conn = http.client.HTTPSConnection(parts.netloc, timeout=self.timeout, context=self.context)
                self._connections[parts.netloc] = conn
            try:
                conn.request(method, target, body=payload, headers=headers)
                response = conn.getresponse()
                return _Response(response.status, response.read().decode("utf-8", "replace"))
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._connections.pop(parts.netloc, None)
                if attempt == 2:
                    raise PSError(
                        f"The remote server could not be reached: {exc}", "ConnectionError", "ConnectionError"
                    ) from None
        raise AssertionError("unreachable")

    def post(self, url: str, data: dict[str, str]) -> _Response:
        return self.request("POST", url, form=data)


class SandboxTenant:
    """The control API of a sandbox server, as the Teams cmdlets need it."""

    def __init__(
        self,
        control_url: str,
        ca_bundle: str | None,
        authority_url: str | None,
        graph_url: str | None = None,
    ) -> None:
        ctx = ssl.create_default_context()
        if ca_bundle:
            ctx.load_verify_locations(ca_bundle)
        base = control_url.rstrip("/")
        self.control_url = base.removesuffix("/_sandbox")  # sandbox.json names the control API root
        self.authority_url = (authority_url or self.control_url).rstrip("/")
        self.graph_url = (graph_url or self.control_url).rstrip("/")
        self.ca_bundle = ca_bundle
        self.http = _Http(ctx)

    @classmethod
    def locate(cls, environ: dict[str, str] | None = None, cwd: Path | None = None) -> SandboxTenant:
        env = dict(os.environ if environ is None else environ)
        url = env.get("MEETGATE_SANDBOX_CONTROL_URL")
        if url:
            return cls(
                url,
                env.get("MEETGATE_SANDBOX_CA_BUNDLE"),
                env.get("MEETGATE_SANDBOX_AUTHORITY_URL"),
                env.get("MEETGATE_SANDBOX_GRAPH_URL"),
            )
        candidates = [Path(env["MEETGATE_SANDBOX_JSON"])] if env.get("MEETGATE_SANDBOX_JSON") else []
        here = cwd or Path.cwd()
        candidates += [here / "sandbox.json", here / ".meetgate/sandbox/sandbox.json"]
        for path in candidates:
            if path.is_file():
                info = json.loads(path.read_text(encoding="utf-8"))
                control = info.get("control_url") or info.get("controlUrl") or info.get("graph_url")
                ca = info.get("ca_bundle") or info.get("caBundle")
                if ca and not Path(ca).is_absolute():
                    ca = str(path.parent / ca)
                return cls(
                    control,
                    ca,
                    info.get("authority_url") or info.get("authorityUrl"),
                    info.get("graph_url") or info.get("graphUrl"),
                )
        raise PSError(
            "No sandbox tenant to connect to: set MEETGATE_SANDBOX_CONTROL_URL (and MEETGATE_SANDBOX_CA_BUNDLE) "
            "or MEETGATE_SANDBOX_JSON, or run where sandbox.json is.",
            "SandboxNotFound",
            "ConnectionError",
        )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.control_url}/_sandbox{path}", json_body=body)
        if response.status_code >= 400:
            try:
                data = response.json()
                err = data.get("error", data)
                message = err.get("message") if isinstance(err, dict) else str(err)
            except ValueError:
                message = response.text
            raise PSError(
                str(message or f"HTTP {response.status_code}"),
                f"HTTP{response.status_code}",
                "InvalidOperation",
            )
        if response.status_code == 204 or not response.text:
            return None
        return response.json()


def _values(data: Any, *keys: str) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in (*keys, "value"):
            if isinstance(data.get(key), list):
                return list(data[key])
    return []


def _b64json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded))
    return value if isinstance(value, dict) else {}


@dataclass
class Connection:
    tenant_id: str
    account: str
    users: list[dict[str, Any]] = field(default_factory=list)


# ----------------------------------------------------------------------------- interpreter


CmdletFn = Callable[["Interpreter", dict[str, Any], list[Any], list[Any] | None], list[Any]]
_COMMON = {
    "erroraction",
    "verbose",
    "debug",
    "warningaction",
    "informationaction",
    "passthru",
    "confirm",
    "whatif",
}


class Interpreter:
    def __init__(
        self, out: TextIO, err: TextIO, tenant_factory: Callable[[], SandboxTenant] = SandboxTenant.locate
    ) -> None:
        self.vars: dict[str, Any] = {
            "erroractionpreference": "Continue",
            "null": None,
            "true": True,
            "false": False,
        }
        self.out, self.err = out, err
        self.transcript: TextIO | None = None
        self.tenant_factory = tenant_factory
        self._tenant: SandboxTenant | None = None
        self.conn: Connection | None = None
        #: the Microsoft Graph PowerShell connection (Connect-MgGraph), see pwsh_graph
        self.graph: Any = None
        self.had_error = False

    # host output
    def host(self, text: str, stream: TextIO | None = None) -> None:
        (stream or self.out).write(text + "\n")
        if self.transcript is not None:
            self.transcript.write(text + "\n")
            self.transcript.flush()

    def emit(self, value: Any) -> None:
        for item in _enum(value) if isinstance(value, list) else [value]:
            if item is None:
                continue
            if isinstance(item, dict):
                width = max((len(k) for k in item), default=0)
                for key, val in item.items():
                    self.host(f"{key.ljust(width)} : {_to_str(val)}")
                self.host("")
            else:
                self.host(_to_str(item))

    # variables
    def get_var(self, name: str) -> Any:
        lower = name.lower()
        if lower.startswith("env:"):
            return os.environ.get(name[4:])
        if lower == "?":
            return not self.had_error
        return self.vars.get(lower)

    def set_var(self, name: str, value: Any) -> None:
        lower = name.lower()
        if lower in {"null", "true", "false"}:
            raise PSError(
                f"Cannot overwrite variable {name} because it is read-only or constant.",
                "VariableNotWritable",
            )
        self.vars[lower] = value

    # running
    def run(self, source: str, args: list[str] | None = None) -> int:
        try:
            tree = Parser(tokenize(source)).script()
        except ParseError as exc:
            self.err.write(f"ParserError: {exc.message}\n")
            return 1
        _, params, body = tree
        try:
            self.bind_params(params, args or [])
            for stmt in body:
                self.emit(self.statement(stmt))
        except ExitScript as done:
            return done.code
        except PSError as exc:
            self.err.write(f"{exc.message}\n")
            return 1
        finally:
            if self.transcript is not None:
                self.transcript.close()
        return 0

    def bind_params(self, params: list[Any], args: list[str]) -> None:
        given: dict[str, Any] = {}
        i = 0
        names = {p[0].lower(): p for p in params}
        while i < len(args):
            arg = args[i]
            if not arg.startswith("-") or arg[1:].lower() not in names:
                raise PSError(
                    f"A parameter cannot be found that matches parameter name '{arg.lstrip('-')}'.",
                    "NamedParameterNotFound",
                    "InvalidArgument",
                )
            _, typ, _ = names[arg[1:].lower()]
            if typ == "switch":
                given[arg[1:].lower()] = True
                i += 1
            else:
                if i + 1 >= len(args):
                    raise PSError(
                        f"Missing an argument for parameter '{arg[1:]}'.",
                        "MissingArgument",
                        "InvalidArgument",
                    )
                given[arg[1:].lower()] = args[i + 1]
                i += 2
        for name, typ, default in params:
            if name.lower() in given:
                value = given[name.lower()]
            elif default is not None:
                value = self.expr(default)
            else:
                value = False if typ == "switch" else None
            self.set_var(name, self.cast(typ, value))

    def cast(self, typ: str, value: Any) -> Any:
        t = typ.lower()
        if t == "string":
            return _to_str(value)
        if t in {"switch", "bool"}:
            return _truthy(value)
        if t == "int":
            return int(value or 0)
        if t in {"string[]", "array"}:
            return [_to_str(v) for v in _enum(value)] if t == "string[]" else _enum(value)
        if t == "pscustomobject":
            return PSObject(value) if isinstance(value, dict) else value
        return value

    def block(self, stmts: list[Any]) -> list[Any]:
        out: list[Any] = []
        for stmt in stmts:
            value = self.statement(stmt)
            out.extend(_enum(value) if isinstance(value, list) else ([] if value is None else [value]))
        return out

    def statement(self, node: Any) -> Any:
        kind = node[0]
        if kind == "assign":
            self.set_var(node[1], self.capture(node[2]))
            return None
        if kind == "if":
            for cond, body in node[1]:
                if _truthy(self.capture(cond)):
                    return self.block(body)
            return self.block(node[2]) if node[2] is not None else None
        if kind == "foreach":
            out = []
            for item in _enum(self.capture(node[2])):
                self.set_var(node[1], item)
                out.extend(self.block(node[3]))
            return out
        if kind == "try":
            _, body, handler, final = node
            out = []
            try:
                out.extend(self.block(body))
            except PSError as exc:
                if handler is None:
                    raise
                previous = self.vars.get("_")
                self.vars["_"] = PSObject(
                    Exception=PSObject(Message=exc.message),
                    FullyQualifiedErrorId=exc.error_id,
                    CategoryInfo=PSObject(Category=exc.category),
                )
                try:
                    out.extend(self.block(handler))
                finally:
                    self.vars["_"] = previous
            finally:
                if final is not None:
                    for item in self.block(final):
                        self.emit(item)
            return out
        if kind == "exit":
            raise ExitScript(int(self.expr(node[1]) or 0) if node[1] is not None else 0)
        if kind == "return":
            raise ExitScript(0)
        if kind == "pipeline":
            return self.pipeline(node[1])
        if kind == "command":
            return self.pipeline([node])
        return self.expr(node)

    def capture(self, node: Any) -> Any:
        value = self.statement(node)
        if node[0] in {"pipeline", "command"} and isinstance(value, list):
            return _collapse(value)
        return value

    def pipeline(self, elements: list[Any]) -> list[Any]:
        data: list[Any] | None = None
        for element in elements:
            data = self.invoke(element, data) if element[0] == "command" else _enum(self.expr(element))
        return data or []

    def invoke(self, node: Any, input_: list[Any] | None) -> list[Any]:
        _, name, raw_args = node
        fn = CMDLETS.get(name.lower())
        if fn is None:
            raise _not_recognized(name)
        named: dict[str, Any] = {}
        positional: list[Any] = []
        for arg in raw_args:
            if arg[0] == "named":
                named[arg[1].lower()] = self.expr(arg[2])
            else:
                positional.append(self.expr(arg[1]))
        allowed = PARAMS.get(name.lower(), set()) | _COMMON
        for key in named:
            if key not in allowed:
                raise PSError(
                    f"A parameter cannot be found that matches parameter name '{key}'.",
                    "NamedParameterNotFound",
                    "InvalidArgument",
                )
        action = (
            _to_str(named.pop("erroraction", "")).lower()
            or _to_str(self.get_var("ErrorActionPreference")).lower()
        )
        try:
            result = fn(self, named, positional, input_)
            self.had_error = False
            return result
        except PSError as exc:
            self.had_error = True
            if action in {"silentlycontinue", "ignore"}:
                return []
            if action == "stop":
                raise
            self.host(f"{name}: {exc.message}", self.err)
            return []

    def expr(self, node: Any) -> Any:
        kind = node[0]
        if kind == "const":
            return node[1]
        if kind == "var":
            return self.get_var(node[1])
        if kind == "xstr":
            return re.sub(
                r"\$(env:)?([A-Za-z_][A-Za-z0-9_]*)",
                lambda m: _to_str(self.get_var((m.group(1) or "") + m.group(2))),
                node[1],
            )
        if kind == "array":
            return [self.expr(n) for n in node[1]]
        if kind == "paren":
            return self.capture(node[1])
        if kind == "arrayexpr":
            return self.block(node[1])
        if kind == "subexpr":
            return _collapse(self.block(node[1]))
        if kind == "hash":
            return PSObject((k, self.capture(v)) for k, v in node[1])
        if kind == "cast":
            return self.cast(node[1], self.expr(node[2]))
        if kind == "member":
            target = self.expr(node[1])
            return self.member(target, node[2])
        if kind == "index":
            target, index = self.expr(node[1]), self.expr(node[2])
            if isinstance(target, list) and isinstance(index, int):
                return target[index] if -len(target) <= index < len(target) else None
            if isinstance(target, PSObject):
                return target.get_member(_to_str(index))
            return None
        if kind == "call":
            target = self.expr(node[1])
            args = [self.expr(a) for a in node[3]]
            return self.method(target, node[2], args)
        if kind == "static":
            return self.static(node[1], node[2], [self.expr(a) for a in node[3]])
        if kind == "not":
            return not _truthy(self.expr(node[1]))
        if kind in {"and", "or"}:
            left = _truthy(self.expr(node[1]))
            if kind == "and":
                return left and _truthy(self.expr(node[2]))
            return left or _truthy(self.expr(node[2]))
        if kind == "binop":
            return self.binop(node[1], self.expr(node[2]), self.expr(node[3]))
        return self.statement(node)

    def member(self, target: Any, name: str) -> Any:
        if isinstance(target, list):
            if name.lower() in {"count", "length"}:
                return len(target)
            return _collapse([v for v in (self.member(t, name) for t in target) if v is not None])
        if isinstance(target, PSObject):
            return target.get_member(name)
        if isinstance(target, str) and name.lower() == "length":
            return len(target)
        if target is None:
            return None
        if name.lower() == "count":
            return 1
        return None

    def method(self, target: Any, name: str, args: list[Any]) -> Any:
        lower = name.lower()
        if isinstance(target, str):
            if lower == "tolower":
                return target.lower()
            if lower == "toupper":
                return target.upper()
            if lower == "trim":
                return target.strip()
        if lower == "tostring":
            return _to_str(target)
        raise PSError(
            f"Method invocation failed because [{type(target).__name__}] does not contain a method named '{name}'.",
            "MethodNotFound",
            "InvalidOperation",
        )

    def static(self, typ: str, method: str, args: list[Any]) -> Any:
        if (
            typ.lower().endswith("x509certificate2")
            and method.lower() == "createfrompemfile"
            and len(args) == 2
        ):
            return _load_pem_certificate(_to_str(args[0]), _to_str(args[1]))
        raise PSError(
            f"Unable to find type [{typ}] or method '{method}' in the sandbox pwsh stand-in.",
            "TypeNotFound",
            "InvalidOperation",
        )

    def binop(self, op: str, a: Any, b: Any) -> Any:
        if op == "+":
            if isinstance(a, str):
                return a + _to_str(b)
            if isinstance(a, list):
                return a + _enum(b)
            if a is None:
                return b
            if isinstance(a, int | float) and isinstance(b, int | float):
                return a + b
            return _to_str(a) + _to_str(b)
        if op == "replace":
            pattern, repl = ([*b, ""])[:2] if isinstance(b, list) else (b, "")
            regex = re.compile(_to_str(pattern), re.IGNORECASE)
            if isinstance(a, list):
                return [regex.sub(_to_str(repl), _to_str(x)) for x in a]
            return regex.sub(_to_str(repl).replace("$", "\\"), _to_str(a))
        if op in {"in", "notin"}:
            found = any(_eq(a, x) for x in _enum(b))
            return found if op == "in" else not found
        if op == "contains":
            return any(_eq(x, b) for x in _enum(a))
        if isinstance(a, list):
            return [x for x in a if self.binop(op, x, b)]
        if op == "eq":
            return _eq(a, b)
        if op == "ne":
            return not _eq(a, b)
        if op in {"like", "notlike"}:
            pattern = "^" + re.escape(_to_str(b)).replace(r"\*", ".*").replace(r"\?", ".") + "$"
            hit = bool(re.match(pattern, _to_str(a), re.IGNORECASE | re.DOTALL))
            return hit if op == "like" else not hit
        left, right = (a, b) if not isinstance(a, str) else (a.lower(), _to_str(b).lower())
        try:
            return {"gt": left > right, "lt": left < right, "ge": left >= right, "le": left <= right}[op]
        except TypeError:
            return {
                "gt": _to_str(a) > _to_str(b),
                "lt": _to_str(a) < _to_str(b),
                "ge": _to_str(a) >= _to_str(b),
                "le": _to_str(a) <= _to_str(b),
            }[op]

    # tenant access
    def tenant(self) -> SandboxTenant:
        if self._tenant is None:
            self._tenant = self.tenant_factory()
        return self._tenant

    def connected(self) -> Connection:
        if self.conn is None:
            raise PSError(
                "You must call the Connect-MicrosoftTeams cmdlet before calling any other cmdlets.",
                "NotConnected",
                "AuthenticationError",
            )
        return self.conn

    def tpath(self, suffix: str = "") -> str:
        return f"/tenants/{self.connected().tenant_id}{suffix}"


def _load_pem_certificate(cert_path: str, key_path: str) -> PSObject:
    from meetgate.certificates import (
        CertificateError,
        key_matches_certificate,
        load_certificate,
        load_private_key,
        thumbprint_sha1,
    )

    try:
        cert = load_certificate(Path(cert_path))
        key = load_private_key(Path(key_path), None)
    except (CertificateError, OSError) as exc:
        raise PSError(
            f'Exception calling "CreateFromPemFile" with "2" argument(s): "{exc}"',
            "CryptographicException",
            "InvalidData",
        ) from None
    if not key_matches_certificate(key, cert):
        raise PSError(
            'Exception calling "CreateFromPemFile" with "2" argument(s): "The key does not match the certificate."',
            "CryptographicException",
            "InvalidData",
        )
    return PSObject(
        Thumbprint=thumbprint_sha1(cert).upper(),
        Subject=cert.subject.rfc4514_string(),
        _cert_path=cert_path,
        _key_path=key_path,
    )


# ----------------------------------------------------------------------------- cmdlets

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


@cmdlet("Connect-MicrosoftTeams", "TenantId ApplicationId Certificate CertificateThumbprint AccessTokens")
def _connect(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    tenant = it.tenant()
    tenant_id = _to_str(named.get("tenantid")) or None
    app_id = _to_str(named.get("applicationid")) or None
    account: str
    if "accesstokens" in named:
        tokens = [_to_str(t) for t in _enum(named["accesstokens"])]
        if not tokens or not all(t.count(".") == 2 for t in tokens):
            raise PSError(
                "Connect-MicrosoftTeams: the access tokens are not JWTs.",
                "InvalidAccessTokens",
                "AuthenticationError",
            )
        claims = [_b64json(t.split(".")[1]) for t in tokens]
        now = time.time()
        for claim in claims:
            if float(claim.get("exp", 0)) < now:
                raise PSError(
                    "Connect-MicrosoftTeams: an access token has expired; acquire new tokens.",
                    "TokenExpired",
                    "AuthenticationError",
                )
            if tenant_id and claim.get("tid") and claim["tid"] != tenant_id:
                raise PSError(
                    "Connect-MicrosoftTeams: the access tokens belong to another tenant.",
                    "TenantMismatch",
                    "AuthenticationError",
                )
        tenant_id = tenant_id or str(claims[0].get("tid", ""))
        account = str(claims[0].get("appid") or claims[0].get("azp") or "app")
    elif "certificate" in named or "certificatethumbprint" in named:
        if "certificatethumbprint" in named:
            from meetgate_sandbox.pwsh_graph import certificate_from_store

            cert = certificate_from_store(_to_str(named["certificatethumbprint"]))
        else:
            cert = named["certificate"]
        if not isinstance(cert, PSObject) or not cert.get("_key_path") or not tenant_id or not app_id:
            raise PSError(
                "Connect-MicrosoftTeams: -Certificate needs an X509Certificate2, -TenantId and -ApplicationId.",
                "InvalidArgument",
                "InvalidArgument",
            )
        _certificate_sign_in(tenant, tenant_id, app_id, cert)
        account = app_id
    else:
        if not tenant_id:
            raise PSError(
                "Connect-MicrosoftTeams: no interactive sign-in is possible here; pass -TenantId.",
                "InteractiveUnavailable",
                "AuthenticationError",
            )
        account = "admin"
    info = tenant.call("GET", f"/tenants/{tenant_id}")
    if account == "admin":
        account = str(info.get("adminUpn") or "admin")
    it.conn = Connection(str(info.get("tenantId", tenant_id)), account, list(info.get("users", [])))
    return [
        PSObject(
            Account=account, Environment="AzureCloud", Tenant=it.conn.tenant_id, TenantId=it.conn.tenant_id
        )
    ]


def _certificate_sign_in(
    tenant: SandboxTenant,
    tenant_id: str,
    app_id: str,
    cert: PSObject,
    command: str = "Connect-MicrosoftTeams",
) -> dict[str, Any]:
    """Acquire an app-only token with a client assertion, as the modules do; fail as Entra fails."""
    import jwt

    from meetgate.certificates import load_certificate, load_private_key, x5t_s256

    certificate = load_certificate(Path(cert["_cert_path"]))
    key = load_private_key(Path(cert["_key_path"]), None)
    token_url = f"{tenant.authority_url}/{tenant_id}/oauth2/v2.0/token"
    now = int(time.time())
    assertion = jwt.encode(
        {
            "aud": token_url,
            "iss": app_id,
            "sub": app_id,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        },
        key,
        algorithm="PS256",
        headers={"x5t#S256": x5t_s256(certificate)},
    )
    response = tenant.http.post(
        token_url,
        data={
            "client_id": app_id,
            "scope": "https://graph.microsoft.com/.default",  # the module signs in to Graph first
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    if response.status_code != 200:
        try:
            detail = response.json().get("error_description", response.text)
        except ValueError:
            detail = response.text
        raise PSError(
            f"{command}: {str(detail).splitlines()[0]}" if command else str(detail).splitlines()[0],
            "AuthenticationFailed",
            "AuthenticationError",
        )
    token: dict[str, Any] = response.json()
    return token


def _policy_obj(p: dict[str, Any]) -> PSObject:
    identity = str(p.get("identity") or "")
    if identity and not identity.lower().startswith("tag:") and identity.lower() != "global":
        identity = "Tag:" + identity
    return PSObject(Identity=identity, AppIds=list(p.get("appIds", [])), Description=p.get("description", ""))


def _policies(it: Interpreter) -> list[PSObject]:
    return [_policy_obj(p) for p in _values(it.tenant().call("GET", it.tpath("/policies")), "policies")]


def _grants(it: Interpreter) -> dict[str, Any]:
    data = it.tenant().call("GET", it.tpath("/policy-grants"))
    return data if isinstance(data, dict) else {}


def _bare(name: Any) -> str:
    text = _to_str(name)
    return text[4:] if text.lower().startswith("tag:") else text


@cmdlet("Get-CsApplicationAccessPolicy", "Identity Filter")
def _get_policy(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.connected()
    policies = _policies(it)
    global_name = _grants(it).get("global")
    by_name = {_bare(p["Identity"]).lower(): p for p in policies}
    glob = by_name.get(_bare(global_name).lower()) if global_name else None
    # the Global instance: what users without a direct or group grant get (empty when none is granted)
    global_obj = PSObject(
        Identity="Global",
        AppIds=list(glob["AppIds"]) if glob else [],
        Description=f"Global grant: {_to_str(global_name)}" if glob else "",
    )
    identity = _arg(named, pos, "Identity", 0)
    if identity is None:
        return [*policies, global_obj]
    if _bare(identity).lower() == "global":
        return [global_obj]
    found = by_name.get(_bare(identity).lower())
    if found is None:
        raise PSError(
            f'Cannot get policy "{_to_str(identity)}" because it does not exist.',
            "PolicyNotFound",
            "ObjectNotFound",
        )
    return [found]


def _policy_body(named: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if "appids" in named:
        body["appIds"] = [_to_str(a) for a in _enum(named["appids"])]
    if "description" in named:
        body["description"] = _to_str(named["description"])
    return body


@cmdlet("New-CsApplicationAccessPolicy", "Identity AppIds Description")
def _new_policy(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.connected()
    identity = _to_str(_arg(named, pos, "Identity", 0))
    if not identity:
        raise PSError(
            "Cannot bind argument to parameter 'Identity' because it is an empty string.",
            "ParameterArgumentValidationErrorEmptyStringNotAllowed",
            "InvalidData",
        )
    body = {"identity": "Tag:" + _bare(identity), "appIds": [], "description": "", **_policy_body(named)}
    try:
        created = it.tenant().call("POST", it.tpath("/policies"), body)
    except PSError as exc:
        if exc.error_id == "HTTP409":
            raise PSError(
                f'The policy "Tag:{_bare(identity)}" already exists. Use Set-CsApplicationAccessPolicy to change it.',
                "PolicyAlreadyExists",
                "ResourceExists",
            ) from None
        raise
    return [_policy_obj(created if isinstance(created, dict) else body)]


@cmdlet("Set-CsApplicationAccessPolicy", "Identity AppIds Description")
def _set_policy(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.connected()
    identity = _bare(_arg(named, pos, "Identity", 0))
    try:
        it.tenant().call("PATCH", it.tpath(f"/policies/Tag:{identity}"), _policy_body(named))
    except PSError as exc:
        if exc.error_id == "HTTP404":
            raise PSError(
                f'Cannot get policy "Tag:{identity}" because it does not exist.',
                "PolicyNotFound",
                "ObjectNotFound",
            ) from None
        raise
    return []


@cmdlet("Remove-CsApplicationAccessPolicy", "Identity Force")
def _remove_policy(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    it.connected()
    identity = _bare(_arg(named, pos, "Identity", 0))
    try:
        it.tenant().call("DELETE", it.tpath(f"/policies/Tag:{identity}"))
    except PSError as exc:
        if exc.error_id == "HTTP404":
            raise PSError(
                f'Cannot remove policy "Tag:{identity}" because it does not exist.',
                "PolicyNotFound",
                "ObjectNotFound",
            ) from None
        raise
    return []


@cmdlet("Grant-CsApplicationAccessPolicy", "Identity PolicyName Group Rank Global")
def _grant(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.connected()
    if "policyname" not in named and len(pos) < 2:
        raise PSError(
            "Grant-CsApplicationAccessPolicy: -PolicyName is required (use $null to revoke).",
            "MissingArgument",
            "InvalidArgument",
        )
    raw = named["policyname"] if "policyname" in named else pos[1]
    policy = None if raw in (None, "") else _bare(raw)
    targets = [k for k in ("identity", "group", "global") if k in named] or (["identity"] if pos else [])
    if len(targets) != 1:
        raise PSError(
            "Parameter set cannot be resolved using the specified named parameters: give one of -Identity, -Group or -Global.",
            "AmbiguousParameterSet",
            "InvalidArgument",
        )
    body: dict[str, Any] = {"policyName": policy}
    if targets == ["identity"]:
        body["user"] = _to_str(_arg(named, pos, "Identity", 0))
    elif targets == ["group"]:
        body["group"] = _to_str(named["group"])
        if policy is not None and "rank" not in named:
            raise PSError(
                "Grant-CsApplicationAccessPolicy: -Rank is required with -Group.",
                "MissingArgument",
                "InvalidArgument",
            )
        if "rank" in named:
            body["rank"] = int(named["rank"])
    else:
        body["global"] = True
    try:
        it.tenant().call("POST", it.tpath("/policy-grants"), body)
    except PSError as exc:
        if exc.error_id == "HTTP404":
            raise PSError(f"{exc.message}", "ObjectNotFound", "ObjectNotFound") from None
        raise
    return []


def _user_obj(user: dict[str, Any], direct: str | None) -> PSObject:
    return PSObject(
        Identity=user.get("id"),
        UserPrincipalName=user.get("userPrincipalName"),
        DisplayName=user.get("displayName"),
        AccountEnabled=user.get("accountEnabled", True),
        ApplicationAccessPolicy=direct,
    )


def _find_user(it: Interpreter, ref: str) -> dict[str, Any]:
    low = ref.lower()
    for user in it.connected().users:
        if str(user.get("id", "")).lower() == low or str(user.get("userPrincipalName", "")).lower() == low:
            return user
    # the tenant may have changed since Connect: refresh once
    info = it.tenant().call("GET", it.tpath())
    it.connected().users = list(info.get("users", []))
    for user in it.connected().users:
        if str(user.get("id", "")).lower() == low or str(user.get("userPrincipalName", "")).lower() == low:
            return user
    raise PSError(
        f"Management object not found for identity '{ref}'.", "ManagementObjectNotFound", "ObjectNotFound"
    )


def _direct_map(it: Interpreter) -> dict[str, str]:
    out: dict[str, str] = {}
    for grant in _values(_grants(it).get("direct", [])):
        user = grant.get("user") or grant.get("userId")
        if user and grant.get("policyName"):
            out[str(user).lower()] = _bare(grant["policyName"])
    return out


@cmdlet("Get-CsOnlineUser", "Identity ResultSize Filter")
def _get_user(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.connected()
    if "filter" in named:
        raise PSError(
            "Get-CsOnlineUser: -Filter is not supported by the sandbox pwsh stand-in.",
            "NotSupported",
            "NotImplemented",
        )
    identity = _arg(named, pos, "Identity", 0)
    direct = _direct_map(it)
    if identity is not None:
        user = _find_user(it, _to_str(identity))
        return [_user_obj(user, direct.get(str(user.get("id")).lower()))]
    info = it.tenant().call("GET", it.tpath())
    it.connected().users = list(info.get("users", []))
    return [_user_obj(u, direct.get(str(u.get("id")).lower())) for u in it.connected().users]


@cmdlet("Get-CsUserPolicyAssignment", "Identity PolicyType")
def _get_assignment(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    it.connected()
    policy_type = _to_str(named.get("policytype", "ApplicationAccessPolicy"))
    if policy_type.lower() != "applicationaccesspolicy":
        raise PSError(
            f"Get-CsUserPolicyAssignment: policy type '{policy_type}' is not modelled by the sandbox.",
            "NotSupported",
            "NotImplemented",
        )
    user = _find_user(it, _to_str(_arg(named, pos, "Identity", 0)))
    data = it.tenant().call("GET", it.tpath(f"/users/{user['id']}/policy")) or {}
    out = []
    for source in ("direct", "group"):
        value = data.get(source)
        if not value:
            continue
        name = (
            value.get("policyName") or value.get("name") or value.get("identity")
            if isinstance(value, dict)
            else value
        )
        ref = (value.get("groupId") if isinstance(value, dict) else None) or (
            data.get("groupId") if source == "group" else None
        )
        out.append(
            PSObject(
                PolicyType="ApplicationAccessPolicy",
                PolicyName=_bare(name),
                PolicySource=PSObject(
                    AssignmentType="Direct" if source == "direct" else "Group",
                    PolicyName=_bare(name),
                    Reference=ref,
                ),
            )
        )
    return out


@cmdlet("Get-CsGroupPolicyAssignment", "PolicyType GroupId")
def _get_group_assignment(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    it.connected()
    out = []
    for grant in _values(_grants(it).get("group", [])):
        group = grant.get("group") or grant.get("groupId")
        if "groupid" in named and _to_str(named["groupid"]).lower() != str(group).lower():
            continue
        out.append(
            PSObject(
                GroupId=group,
                PolicyType="ApplicationAccessPolicy",
                PolicyName=_bare(grant.get("policyName")),
                Priority=grant.get("rank"),
            )
        )
    return out


# ----------------------------------------------------------------------------- entry point


def main(
    argv: list[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    tenant_factory: Callable[[], SandboxTenant] | None = None,
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
    return Interpreter(out, err, tenant_factory or SandboxTenant.locate).run(source, script_args)


def run() -> None:  # console script
    raise SystemExit(main())


# The Microsoft Graph PowerShell cmdlets (Connect-MgGraph, New-MgUserOnlineMeeting, ...) register themselves.
from meetgate_sandbox import pwsh_graph as _pwsh_graph  # noqa: E402,F401

if __name__ == "__main__":  # `python -m`: run the imported module, where the Graph cmdlets registered
    from meetgate_sandbox.pwsh import run as _run_imported

    _run_imported()
