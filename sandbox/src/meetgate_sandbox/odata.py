"""The slice of OData that directory queries use: ``$filter``, ``$select``, ``$top``, paging.

``$filter`` grammar (case-insensitive keywords)::

    expr   := term (("and" | "or") term)*          -- "and" binds tighter than "or"
    term   := "not" term | "(" expr ")" | prop op literal | prop "in" "(" literal ("," literal)* ")"
            | "startswith" "(" prop "," literal ")"
    op     := "eq" | "ne"
    literal:= 'text' ('' escapes a quote) | true | false | null | number | guid

String comparison is case-insensitive, as in Entra.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from meetgate_sandbox.http import GraphErrorResponse

MAX_TOP = 999
_SAFE = "$,()':@"
DEFAULT_TOP = 100

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_./]*)|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}))"
)


def _invalid(clause: str) -> GraphErrorResponse:
    return GraphErrorResponse(400, "BadRequest", f"Invalid filter clause: {clause}")


@dataclass(frozen=True)
class _Tok:
    kind: str
    value: Any


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise _invalid(f"syntax error at position {pos} in '{text}'")
        pos = match.end()
        if match.group("str") is not None:
            tokens.append(_Tok("lit", match.group("str")[1:-1].replace("''", "'")))
        elif match.group("punct"):
            tokens.append(_Tok(match.group("punct"), match.group("punct")))
        elif match.group("guid"):
            tokens.append(_Tok("lit", match.group("guid")))
        elif match.group("word"):
            word = match.group("word")
            lowered = word.lower()
            if lowered in ("true", "false"):
                tokens.append(_Tok("lit", lowered == "true"))
            elif lowered == "null":
                tokens.append(_Tok("lit", None))
            else:
                tokens.append(_Tok("word", word))
        else:
            num = match.group("num")
            tokens.append(_Tok("lit", float(num) if "." in num else int(num)))
    return tokens


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class FilterParser:
    """Compiles a ``$filter`` into a predicate over Graph-shaped dicts."""

    def __init__(self, text: str, filterable: dict[str, str], resource: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        #: property name (any case) -> Graph's spelling
        self.filterable = {k.lower(): v for k, v in filterable.items()}
        self.resource = resource

    def parse(self) -> Predicate:
        if not self.tokens:
            raise _invalid("the filter is empty")
        predicate = self._or()
        if self.pos != len(self.tokens):
            raise _invalid(f"unexpected '{self.tokens[self.pos].value}' in '{self.text}'")
        return predicate

    def _peek_word(self) -> str | None:
        if self.pos < len(self.tokens) and self.tokens[self.pos].kind == "word":
            return str(self.tokens[self.pos].value).lower()
        return None

    def _take(self, kind: str) -> _Tok:
        if self.pos >= len(self.tokens) or self.tokens[self.pos].kind != kind:
            raise _invalid(f"expected {kind!r} in '{self.text}'")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _or(self) -> Predicate:
        left = self._and()
        while self._peek_word() == "or":
            self.pos += 1
            right = self._and()
            left = (lambda a, b: lambda item: a(item) or b(item))(left, right)
        return left

    def _and(self) -> Predicate:
        left = self._term()
        while self._peek_word() == "and":
            self.pos += 1
            right = self._term()
            left = (lambda a, b: lambda item: a(item) and b(item))(left, right)
        return left

    def _property(self) -> str:
        name = str(self._take("word").value)
        prop = self.filterable.get(name.lower())
        if prop is None:
            raise GraphErrorResponse(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified for property '{name}' of resource "
                f"'{self.resource}'.",
            )
        return prop

    def _term(self) -> Predicate:
        word = self._peek_word()
        if self.pos < len(self.tokens) and self.tokens[self.pos].kind == "(":
            self.pos += 1
            inner = self._or()
            self._take(")")
            return inner
        if word == "not":
            self.pos += 1
            inner = self._term()
            return lambda item: not inner(item)
        if word == "startswith":
            self.pos += 1
            self._take("(")
            prop = self._property()
            self._take(",")
            prefix = self._take("lit").value
            self._take(")")
            if not isinstance(prefix, str):
                raise _invalid("startswith needs a string literal")
            lowered = prefix.lower()
            return lambda item: isinstance(item.get(prop), str) and item[prop].lower().startswith(lowered)
        prop = self._property()
        op = self._peek_word()
        if op in ("eq", "ne"):
            self.pos += 1
            literal = _norm(self._take("lit").value)
            if op == "eq":
                return lambda item: _norm(item.get(prop)) == literal
            return lambda item: _norm(item.get(prop)) != literal
        if op == "in":
            self.pos += 1
            self._take("(")
            values = {_norm(self._take("lit").value)}
            while self.pos < len(self.tokens) and self.tokens[self.pos].kind == ",":
                self.pos += 1
                values.add(_norm(self._take("lit").value))
            self._take(")")
            return lambda item: _norm(item.get(prop)) in values
        raise _invalid(
            f"unsupported operator {op!r} in '{self.text}' (supported: eq, ne, in, startswith, and, or, not)"
        )


def parse_filter(text: str | None, filterable: dict[str, str], resource: str) -> Predicate | None:
    if text is None:
        return None
    return FilterParser(text, filterable, resource).parse()


def parse_select(text: str | None, known: Sequence[str], type_name: str) -> list[str] | None:
    """Graph's spellings of the selected properties, or None when there is no ``$select``."""
    if text is None:
        return None
    by_lower = {k.lower(): k for k in known}
    selected: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        prop = by_lower.get(name.lower())
        if prop is None:
            raise GraphErrorResponse(
                400, "BadRequest", f"Could not find a property named '{name}' on type '{type_name}'."
            )
        if prop not in selected:
            selected.append(prop)
    return selected or None


def parse_top(text: str | None) -> int:
    if text is None:
        return DEFAULT_TOP
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOP:
        raise GraphErrorResponse(
            400,
            "Request_UnsupportedQuery",
            f"Invalid page size specified: '{text}'. Must be between 1 and {MAX_TOP} inclusive.",
        )
    return int(text)


def encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"RFNwdAIAAQ:{offset}".encode()).decode().rstrip("=")


def decode_skiptoken(token: str | None) -> int:
    if token is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, offset = raw.partition(":")
        if prefix != "RFNwdAIAAQ" or not offset.isdigit():
            raise ValueError(token)
        return int(offset)
    except ValueError:
        raise GraphErrorResponse(400, "Request_BadRequest", "Invalid skip token.") from None


def next_link(base_url: str, path: str, query: dict[str, str], offset: int) -> str:
    params = {k: v for k, v in query.items() if k.lower() != "$skiptoken"}
    params["$skiptoken"] = encode_skiptoken(offset)
    return f"{base_url}{path}?{urllib.parse.urlencode(params, safe=_SAFE)}"
