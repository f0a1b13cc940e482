"""The OData queries of ``/applications`` and ``/servicePrincipals``, as Graph answers them.

- ``$filter`` (:mod:`meetgate_sandbox.odata`'s grammar) on ``displayName``, ``appId``, ``id`` and, for
  service principals, ``accountEnabled``, ``servicePrincipalType``, ``appOwnerOrganizationId``;
- ``$search="displayName:term"`` (several joined by ``AND`` / ``OR``): Graph's tokenised prefix match —
  the text is split on spaces, symbols and case changes (``DotNetWeb-App`` → Dot, Net, Web, App) and
  every token of the term must start one of them; an advanced query (``ConsistencyLevel: eventual``);
- ``$orderby=displayName [asc|desc]``;
- ``$count=true`` (``@odata.count``) and the ``/$count`` segment (a bare number as ``text/plain``), both
  advanced queries;
- ``$top`` (1–999, 100 by default) with ``@odata.nextLink`` paging.

Without ``ConsistencyLevel: eventual`` the advanced ones answer 400, as Graph does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from starlette.requests import Request

from meetgate_sandbox import odata
from meetgate_sandbox.directory import _require_advanced_query
from meetgate_sandbox.http import GraphErrorResponse

Predicate = Callable[[dict[str, Any]], bool]

APPLICATION_FILTERABLE = {p: p for p in ("id", "appId", "displayName", "publisherDomain", "signInAudience")}
SERVICE_PRINCIPAL_FILTERABLE = {
    p: p
    for p in (
        "id",
        "appId",
        "displayName",
        "accountEnabled",
        "servicePrincipalType",
        "appOwnerOrganizationId",
        "signInAudience",
    )
}
SEARCHABLE = ("displayName", "appId")
SORTABLE = ("displayName",)

_SEARCH_CLAUSE = re.compile(r'\s*"(?P<prop>[A-Za-z]+):(?P<term>[^"]*)"\s*')
_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _unsupported(message: str) -> GraphErrorResponse:
    return GraphErrorResponse(400, "Request_UnsupportedQuery", message)


def tokens(text: str) -> list[str]:
    """Graph's search tokens of a value: split on spaces, symbols, digits and case changes."""
    return [t.lower() for t in _TOKEN.findall(text)]


def _term_matches(value: Any, term: str) -> bool:
    if not isinstance(value, str):
        return False
    wanted = tokens(term)
    have = tokens(value)
    if not wanted:
        return False
    return all(any(h.startswith(w) for h in have) for w in wanted)


def parse_search(text: str | None, searchable: Sequence[str] = SEARCHABLE) -> Predicate | None:
    """A predicate for ``$search`` (``"prop:term"`` clauses joined by ``AND`` / ``OR``)."""
    if text is None:
        return None
    by_lower = {p.lower(): p for p in searchable}
    rest = text.strip()
    if not rest:
        raise _unsupported("The $search query is empty.")
    alternatives: list[list[tuple[str, str]]] = [[]]
    while True:
        match = _SEARCH_CLAUSE.match(rest)
        if match is None:
            raise _unsupported(
                f"Invalid $search query '{text}': write \"property:term\" clauses in double quotes."
            )
        prop = by_lower.get(match.group("prop").lower())
        if prop is None:
            raise _unsupported(f"Search on property '{match.group('prop')}' is not supported.")
        alternatives[-1].append((prop, match.group("term")))
        rest = rest[match.end() :]
        if not rest:
            break
        joiner, _, rest = rest.partition(" ")
        if joiner == "OR":
            alternatives.append([])
        elif joiner != "AND":
            raise _unsupported(f"Invalid $search query '{text}': join clauses with AND or OR.")
    return lambda item: any(
        all(_term_matches(item.get(prop), term) for prop, term in clauses) for clauses in alternatives
    )


def _order(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    raw = request.query_params.get("$orderby")
    if raw is None:
        return items
    parts = raw.split()
    if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
        raise _unsupported(f"Invalid $orderby expression '{raw}'.")
    prop = next((p for p in SORTABLE if p.lower() == parts[0].lower()), None)
    if prop is None:
        raise _unsupported(f"Sorting not supported for '{parts[0]}'.")
    descending = len(parts) == 2 and parts[1].lower() == "desc"
    return sorted(items, key=lambda i: str(i.get(prop) or "").lower(), reverse=descending)


def matching(
    request: Request, items: Iterable[dict[str, Any]], resource: str, filterable: dict[str, str]
) -> list[dict[str, Any]]:
    """The items that pass the request's ``$filter`` and ``$search``, in its ``$orderby`` order."""
    params = request.query_params
    predicate = odata.parse_filter(params.get("$filter"), filterable, resource)
    advanced = request.headers.get("consistencylevel", "").lower() == "eventual"
    if params.get("$search") is not None and not advanced:
        raise _unsupported(
            "Request with $search query parameter only works through MSGraph with a special request "
            "header: 'ConsistencyLevel: eventual'"
        )
    search = parse_search(params.get("$search"))
    kept = [
        item for item in items if (predicate is None or predicate(item)) and (search is None or search(item))
    ]
    return _order(request, kept)


def count(request: Request, items: Sequence[dict[str, Any]]) -> str:
    """The ``/$count`` segment's answer (after :func:`matching`): an advanced query."""
    _require_advanced_query(request)
    return str(len(items))


def page(request: Request, items: Sequence[dict[str, Any]], context: str) -> dict[str, Any]:
    """One page of ``items`` under Graph's envelope: ``@odata.count`` when asked, next link, value."""
    params = request.query_params
    top = odata.parse_top(params.get("$top"))
    offset = odata.decode_skiptoken(params.get("$skiptoken"))
    body: dict[str, Any] = {"@odata.context": context}
    if params.get("$count", "").lower() == "true":
        _require_advanced_query(request)
        body["@odata.count"] = len(items)
    elif params.get("$count") is not None and params["$count"].lower() != "false":
        raise GraphErrorResponse(
            400, "BadRequest", f"Invalid value '{params['$count']}' for $count: use true or false."
        )
    if offset + top < len(items):
        base = f"{request.url.scheme}://{request.url.netloc}"
        body["@odata.nextLink"] = odata.next_link(base, request.url.path, dict(params), offset + top)
    body["value"] = list(items[offset : offset + top])
    return body
