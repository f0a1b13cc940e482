"""The slice of OData that directory queries use: ``$filter``, ``$search``, ``$orderby``, ``$select``,
``$top``, paging, and the advanced-query rules around them.

``$filter`` grammar (case-insensitive keywords)::

    expr   := term (("and" | "or") term)*          -- "and" binds tighter than "or"
    term   := "not" term | "(" expr ")" | prop op literal | prop "in" "(" literal ("," literal)* ")"
            | ("startswith" | "endswith") "(" prop "," literal ")"
            | collection "/any(" var ":" expr ")"  -- expr compares var: c eq 'x', startswith(c,'x')
    op     := "eq" | "ne"
    literal:= 'text' ('' escapes a quote) | true | false | null | number | guid

String comparison is case-insensitive, as in Entra. ``ne``, ``not`` and ``endsWith`` are *advanced*:
Graph takes them only with ``ConsistencyLevel: eventual`` and ``$count=true`` (:func:`is_advanced`).

``$search`` grammar: ``"prop:text"`` clauses joined by upper-case ``AND`` / ``OR`` (``AND`` binds
tighter) with parentheses; displayName and description match by tokens (every token of the text starts
a token of the value, in any order), other properties by prefix. It needs ``ConsistencyLevel: eventual``.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.datastructures import Headers, QueryParams

from meetgate_sandbox.http import GraphErrorResponse

MAX_TOP = 999
_SAFE = "$,()':@"
DEFAULT_TOP = 100
ADVANCED_QUERIES_URL = "https://aka.ms/graph-docs/advanced-queries"

Predicate = Callable[[dict[str, Any]], bool]
T = TypeVar("T")

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),:])|(?P<word>[A-Za-z_][A-Za-z0-9_./]*)|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}))"
)


def _invalid(clause: str) -> GraphErrorResponse:
    return GraphErrorResponse(400, "BadRequest", f"Invalid filter clause: {clause}")


def is_advanced(headers: Headers, params: QueryParams) -> bool:
    """Both advanced query parameters: ``ConsistencyLevel: eventual`` and ``$count=true``."""
    return is_eventual(headers) and params.get("$count", "").lower() == "true"


def is_eventual(headers: Headers) -> bool:
    return headers.get("consistencylevel", "").lower() == "eventual"


def needs_advanced_query(operator: str) -> GraphErrorResponse:
    """Graph's answer to an advanced-only operator sent without the advanced query parameters."""
    return GraphErrorResponse(
        400,
        "Request_UnsupportedQuery",
        f"Operator '{operator}' is not supported because the required parameters might be missing. "
        "Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
        f"Refer to {ADVANCED_QUERIES_URL} for more information",
    )


def unsupported_property(name: str, resource: str) -> GraphErrorResponse:
    return GraphErrorResponse(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{name}' of resource '{resource}'.",
    )


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


@dataclass(frozen=True)
class Schema:
    """What a resource's ``$filter`` / ``$search`` / ``$orderby`` take."""

    #: Graph's resource name in error messages (``User``, ``Group``)
    resource: str
    filterable: Sequence[str]
    #: multi-valued properties (``any`` ranges over them; ``eq`` on them is refused)
    collections: frozenset[str] = frozenset()
    #: the properties ``endsWith`` takes
    endswith: frozenset[str] = frozenset()
    #: property -> whether it sorts without the advanced query parameters
    orderby: Mapping[str, bool] | None = None


class FilterParser:
    """Compiles a ``$filter`` into a predicate over Graph-shaped dicts.

    :attr:`advanced` lists the advanced-only operators the filter uses (``ne``, ``not``, ``endsWith``),
    in the order met, for the caller to refuse without the advanced query parameters.
    """

    def __init__(self, text: str, schema: Schema) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.schema = schema
        #: property name (any case) -> Graph's spelling
        self.filterable = {k.lower(): k for k in schema.filterable}
        #: the range variable of the lambda being parsed -> the collection it ranges over
        self.variables: dict[str, str] = {}
        self.advanced: list[str] = []

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

    def _peek(self, kind: str) -> bool:
        return self.pos < len(self.tokens) and self.tokens[self.pos].kind == kind

    def _take(self, kind: str) -> _Tok:
        if not self._peek(kind):
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

    def _property(self, name: str) -> str:
        """Graph's spelling of a filterable property (or a lambda's range variable)."""
        if name.lower() in self.variables:
            return name.lower()
        prop = self.filterable.get(name.lower())
        if prop is None:
            raise unsupported_property(name, self.schema.resource)
        return prop

    def _single(self, name: str) -> str:
        """A property compared as one value: a collection needs a lambda."""
        prop = self._property(name)
        if prop in self.schema.collections:
            raise unsupported_property(name, self.schema.resource)
        return prop

    def _string_function(self, word: str) -> Predicate:
        self._take("(")
        name = str(self._take("word").value)
        prop = self._single(name)
        self._take(",")
        literal = self._take("lit").value
        self._take(")")
        if not isinstance(literal, str):
            raise _invalid(f"{word} needs a string literal")
        if word == "endswith":
            ranged = self.variables.get(prop, prop)
            if ranged not in self.schema.endswith:
                raise unsupported_property(name, self.schema.resource)
            self.advanced.append("endsWith")
        lowered = literal.lower()
        if word == "startswith":
            return lambda item: isinstance(item.get(prop), str) and item[prop].lower().startswith(lowered)
        return lambda item: isinstance(item.get(prop), str) and item[prop].lower().endswith(lowered)

    def _lambda(self, word: str) -> Predicate:
        collection_name = word.rpartition("/")[0]
        collection = self._property(collection_name)
        if collection not in self.schema.collections:
            raise unsupported_property(collection_name, self.schema.resource)
        self._take("(")
        variable = str(self._take("word").value).lower()
        self._take(":")
        self.variables[variable] = collection
        try:
            inner = self._or()
        finally:
            del self.variables[variable]
        self._take(")")
        return lambda item: any(inner({variable: value}) for value in item.get(collection) or [])

    def _term(self) -> Predicate:
        word = self._peek_word()
        if self._peek("("):
            self.pos += 1
            inner = self._or()
            self._take(")")
            return inner
        if word == "not":
            self.pos += 1
            self.advanced.append("not")
            negated = self._term()
            return lambda item: not negated(item)
        if word in ("startswith", "endswith"):
            self.pos += 1
            return self._string_function(word)
        if word is not None and word.endswith("/any"):
            self.pos += 1
            return self._lambda(str(self.tokens[self.pos - 1].value))
        name = str(self._take("word").value)
        prop = self._single(name)
        op = self._peek_word()
        if op in ("eq", "ne"):
            self.pos += 1
            literal = _norm(self._take("lit").value)
            if op == "eq":
                return lambda item: _norm(item.get(prop)) == literal
            self.advanced.append("ne")
            return lambda item: _norm(item.get(prop)) != literal
        if op == "in":
            self.pos += 1
            self._take("(")
            values = {_norm(self._take("lit").value)}
            while self._peek(","):
                self.pos += 1
                values.add(_norm(self._take("lit").value))
            self._take(")")
            return lambda item: _norm(item.get(prop)) in values
        raise _invalid(
            f"unsupported operator {op!r} in '{self.text}' "
            "(supported: eq, ne, in, startswith, endswith, any, and, or, not)"
        )


def parse_filter(
    text: str | None,
    schema: Schema | Mapping[str, str],
    resource: str | None = None,
    *,
    advanced: bool = True,
) -> Predicate | None:
    """The ``$filter`` as a predicate; advanced-only operators are refused unless ``advanced``.

    ``schema`` may also be a plain mapping of filterable properties (to Graph's spelling) with the
    ``resource`` name for error messages.
    """
    if text is None:
        return None
    if not isinstance(schema, Schema):
        schema = Schema(resource or "", tuple(schema.values()))
    parser = FilterParser(text, schema)
    predicate = parser.parse()
    if parser.advanced and not advanced:
        raise needs_advanced_query(parser.advanced[0])
    return predicate


# --- $search -------------------------------------------------------------------------------------

#: properties whose values $search matches by token (the others by prefix)
TOKENIZED = frozenset({"displayName", "description"})
_CHUNKS = re.compile(r"[^\W\d_]+|\d+")
_CASE_CHANGE = re.compile(r"(?<=[a-z])(?=[A-Z])")


def search_tokens(text: str) -> list[str]:
    """Graph's directory tokens: split at spaces, symbols, digits and lower-to-upper case changes
    (``HelloWorld`` -> hello, world; ``HELLOworld`` stays one token)."""
    return [part.lower() for chunk in _CHUNKS.findall(text) for part in _CASE_CHANGE.split(chunk) if part]


def _search_error(text: str) -> GraphErrorResponse:
    return GraphErrorResponse(400, "Request_UnsupportedQuery", f"Syntax error in $search query: {text}")


class SearchParser:
    """Compiles a directory ``$search`` into a predicate."""

    _CLAUSE = re.compile(r'\s*(?:(?P<clause>"(?:[^"\\]|\\.)*")|(?P<op>AND|OR)(?=[\s"(])|(?P<punct>[()]))')

    def __init__(self, text: str, schema: Schema) -> None:
        self.text = text
        self.schema = schema
        self.searchable = {k.lower(): k for k in schema.filterable if k not in schema.collections}
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        stripped = text.strip()
        while pos < len(stripped):
            match = self._CLAUSE.match(stripped, pos)
            if not match or match.end() == pos:
                raise _search_error(text)
            pos = match.end()
            kind = match.lastgroup or ""
            self.tokens.append((kind, str(match.group(kind))))
        self.pos = 0

    def parse(self) -> Predicate:
        if not self.tokens:
            raise _search_error(self.text)
        predicate = self._or()
        if self.pos != len(self.tokens):
            raise _search_error(self.text)
        return predicate

    def _peek(self, kind: str, value: str | None = None) -> bool:
        if self.pos >= len(self.tokens):
            return False
        token_kind, token_value = self.tokens[self.pos]
        return token_kind == kind and (value is None or token_value == value)

    def _or(self) -> Predicate:
        left = self._and()
        while self._peek("op", "OR"):
            self.pos += 1
            right = self._and()
            left = (lambda a, b: lambda item: a(item) or b(item))(left, right)
        return left

    def _and(self) -> Predicate:
        left = self._atom()
        while self._peek("op", "AND"):
            self.pos += 1
            right = self._atom()
            left = (lambda a, b: lambda item: a(item) and b(item))(left, right)
        return left

    def _atom(self) -> Predicate:
        if self._peek("punct", "("):
            self.pos += 1
            inner = self._or()
            if not self._peek("punct", ")"):
                raise _search_error(self.text)
            self.pos += 1
            return inner
        if not self._peek("clause"):
            raise _search_error(self.text)
        raw = self.tokens[self.pos][1][1:-1]
        self.pos += 1
        clause = re.sub(r"\\(.)", r"\1", raw)
        name, colon, value = clause.partition(":")
        if not colon:
            raise _search_error(self.text)
        prop = self.searchable.get(name.strip().lower())
        if prop is None:
            raise unsupported_property(name.strip(), self.schema.resource)
        if prop in TOKENIZED:
            wanted = search_tokens(value)

            def tokens_match(item: dict[str, Any]) -> bool:
                have = search_tokens(str(item.get(prop) or ""))
                return bool(wanted) and all(any(h.startswith(w) for h in have) for w in wanted)

            return tokens_match
        prefix = value.lower()
        return lambda item: isinstance(item.get(prop), str) and item[prop].lower().startswith(prefix)


def parse_search(text: str | None, schema: Schema, headers: Headers) -> Predicate | None:
    """The ``$search`` as a predicate (only with ``ConsistencyLevel: eventual``, as Graph)."""
    if text is None:
        return None
    if not is_eventual(headers):
        raise GraphErrorResponse(
            400,
            "Request_UnsupportedQuery",
            "Request with $search query parameter only works through MSGraph with a special request header: "
            "'ConsistencyLevel: eventual'",
        )
    return SearchParser(text, schema).parse()


# --- $orderby ------------------------------------------------------------------------------------


def _sorting_not_supported() -> GraphErrorResponse:
    return GraphErrorResponse(400, "Request_UnsupportedQuery", "Sorting not supported for current query.")


def order_items(
    items: Iterable[T],
    text: str | None,
    schema: Schema,
    *,
    advanced: bool,
    combined: bool,
    key: Callable[[T], Mapping[str, Any]],
) -> list[T]:
    """``items`` sorted by ``$orderby`` (``prop [asc|desc]``; ``key`` gives an item's properties).

    Properties the resource sorts only in advanced queries, and any sort combined with ``$filter`` or
    ``$search`` (``combined``), need the advanced query parameters: else Graph's "Sorting not supported".
    """
    listed = list(items)
    if text is None:
        return listed
    allowed = {k.lower(): (k, default) for k, default in (schema.orderby or {}).items()}
    parts = text.split()
    if not 1 <= len(parts) <= 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
        raise _sorting_not_supported()
    found = allowed.get(parts[0].lower())
    if found is None or ((combined or not found[1]) and not advanced):
        raise _sorting_not_supported()
    prop = found[0]

    def sort_key(item: T) -> tuple[bool, str]:
        value = key(item).get(prop)
        return (value is not None, str(value).lower() if value is not None else "")

    return sorted(listed, key=sort_key, reverse=len(parts) == 2 and parts[1].lower() == "desc")


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
