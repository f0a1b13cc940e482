"""Entra's log APIs, generated from what really happened in the sandbox.

- ``GET /v1.0|beta/auditLogs/signIns``: one ``signIn`` per call to the token endpoint of the tenant
  (:mod:`meetgate_sandbox.sign_ins`): successes and AADSTS failures, client IP and location, the
  user of a user sign-in, the credential key id and thumbprint of a service principal's. As in Graph,
  v1.0 lists interactive user sign-ins only; beta lists other kinds when the filter asks for them
  (``signInEventTypes/any(t: t eq 'servicePrincipal')`` or ``'nonInteractiveUser'``).
- ``GET /v1.0/auditLogs/directoryAudits`` (and beta): the directory audit records the app
  registration routes write (:mod:`meetgate_sandbox.directory_audit`).

Both need the application permission AuditLog.Read.All (403 ``Authorization_RequestDenied``
otherwise), list newest first, page with ``$top`` and ``@odata.nextLink`` (the skip token names the
last record returned, so records that arrive while a client pages neither repeat nor shift pages)
and are throttled at 5 requests per 10 seconds per app per tenant (429 with ``Retry-After``).

``$filter`` takes clauses joined by ``and``: ``createdDateTime``/``activityDateTime`` with ``ge``,
``gt``, ``le``, ``lt`` and an ISO timestamp; ``eq``/``ne`` (strings, numbers, booleans) on the
properties of :data:`SIGN_IN_PROPERTIES` / :data:`AUDIT_PROPERTIES`; ``startsWith(prop, '...')`` on
those Graph documents it for (:data:`STARTSWITH_PROPERTIES`: appDisplayName, userPrincipalName,
ipAddress, location/city...); ``signInEventTypes/any(t: t eq '...')`` and
``targetResources/any(t: t/id eq '...')``. ``$orderby`` takes the timestamp (``desc`` by default).
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from meetgate_sandbox.directory_audit import EXTENSION as PROVISIONING
from meetgate_sandbox.directory_audit import ProvisioningExtension
from meetgate_sandbox.http import GraphErrorResponse
from meetgate_sandbox.runtime import caller_tenant, runtime_of
from meetgate_sandbox.sign_ins import sign_ins_of
from meetgate_sandbox.state import Tenant

READ_ROLES = frozenset({"AuditLog.Read.All"})
#: Graph's published limit of the log APIs, per app per tenant
LIMIT_REQUESTS = 5
LIMIT_WINDOW_SECONDS = 10.0
MAX_TOP = 1000
ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)

_CLAUSE_DATE = re.compile(
    r"^(?P<prop>createdDateTime|activityDateTime)\s+(?P<op>ge|gt|le|lt)\s+(?P<value>\S+)$", re.I
)
_CLAUSE_EQ = re.compile(
    r"^(?P<prop>[A-Za-z/]+)\s+(?P<op>eq|ne)\s+(?P<value>'(?:[^']|'')*'|-?\d+|true|false)$", re.I
)
_CLAUSE_STARTS = re.compile(
    r"^startswith\(\s*(?P<prop>[A-Za-z/]+)\s*,\s*'(?P<value>(?:[^']|'')*)'\s*\)$", re.I
)
_CLAUSE_EVENT = re.compile(
    r"^signInEventTypes/any\(\s*(?P<v>\w+)\s*:\s*(?P=v)\s+eq\s+'(?P<value>[^']*)'\s*\)$", re.I
)
_CLAUSE_TARGET = re.compile(
    r"^targetResources/any\(\s*(?P<v>\w+)\s*:\s*(?P=v)/id\s+eq\s+'(?P<value>[^']*)'\s*\)$", re.I
)

Predicate = Callable[[dict[str, Any]], bool]
_SAFE = "$,()':@"


def _parse_time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GraphErrorResponse(
            400, "BadRequest", f"Invalid filter clause: '{text}' is not a date."
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _split_and(text: str) -> list[str]:
    """Top-level ``and`` clauses (outside quotes and parentheses)."""
    clauses: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    lowered = text.lower()
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and lowered.startswith(" and ", i):
            clauses.append(text[start:i].strip())
            i += 5
            start = i
            continue
        i += 1
    clauses.append(text[start:].strip())
    return [c for c in clauses if c]


def _get(item: dict[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _date_predicate(prop: str, op: str, bound: dt.datetime) -> Predicate:
    def test(item: dict[str, Any]) -> bool:
        value = _parse_time(str(item.get(prop)))
        if op == "ge":
            return value >= bound
        if op == "gt":
            return value > bound
        if op == "le":
            return value <= bound
        return value < bound

    return test


def _event_predicate(wanted: str) -> Predicate:
    return lambda item: wanted in {str(t).lower() for t in item.get("signInEventTypes") or []}


def _target_predicate(wanted: str) -> Predicate:
    return lambda item: any(str(t.get("id", "")).lower() == wanted for t in item.get("targetResources") or [])


def _starts_predicate(prop: str, prefix: str) -> Predicate:
    def test(item: dict[str, Any]) -> bool:
        value = _get(item, prop)
        return isinstance(value, str) and value.lower().startswith(prefix)

    return test


def _eq_predicate(prop: str, literal: Any, equal: bool) -> Predicate:
    return lambda item: (_norm(_get(item, prop)) == literal) == equal


def compile_filter(text: str | None, properties: dict[str, str]) -> tuple[Predicate, set[str]]:
    """A predicate for ``text`` and the event types it asks for (``signInEventTypes/any``)."""
    predicates: list[Predicate] = []
    event_types: set[str] = set()
    for clause in _split_and(text or ""):
        if m := _CLAUSE_DATE.match(clause):
            prop = m.group("prop")
            if prop.lower() not in properties:
                raise _unsupported(prop)
            predicates.append(
                _date_predicate(
                    properties[prop.lower()], m.group("op").lower(), _parse_time(m.group("value"))
                )
            )
        elif m := _CLAUSE_EVENT.match(clause):
            if "signineventtypes" not in properties:
                raise _unsupported("signInEventTypes")
            wanted = m.group("value").lower()
            event_types.add(wanted)
            predicates.append(_event_predicate(wanted))
        elif m := _CLAUSE_TARGET.match(clause):
            if "targetresources" not in properties:
                raise _unsupported("targetResources")
            predicates.append(_target_predicate(m.group("value").lower()))
        elif m := _CLAUSE_STARTS.match(clause):
            found = properties.get(m.group("prop").lower())
            if found is None or found not in STARTSWITH_PROPERTIES:
                raise _unsupported(m.group("prop"))
            predicates.append(_starts_predicate(found, m.group("value").replace("''", "'").lower()))
        elif m := _CLAUSE_EQ.match(clause):
            found = properties.get(m.group("prop").lower())
            if found is None:
                raise _unsupported(m.group("prop"))
            raw = m.group("value")
            literal: Any
            if raw.startswith("'"):
                literal = raw[1:-1].replace("''", "'")
            elif raw.lower() in ("true", "false"):
                literal = raw.lower() == "true"
            else:
                literal = int(raw)
            predicates.append(_eq_predicate(found, _norm(literal), m.group("op").lower() == "eq"))
        else:
            raise GraphErrorResponse(400, "BadRequest", f"Invalid filter clause: {clause}")
    return (lambda item: all(p(item) for p in predicates)), event_types


def _unsupported(prop: str) -> GraphErrorResponse:
    return GraphErrorResponse(
        400, "BadRequest", f"Invalid filter clause: property '{prop}' is not supported in this query."
    )


SIGN_IN_PROPERTIES = {
    p.lower(): p
    for p in (
        "createdDateTime",
        "appId",
        "appDisplayName",
        "userId",
        "userPrincipalName",
        "userDisplayName",
        "servicePrincipalId",
        "servicePrincipalName",
        "ipAddress",
        "status/errorCode",
        "signInEventTypes",
        "clientCredentialType",
        "clientAppUsed",
        "conditionalAccessStatus",
        "isInteractive",
        "resourceId",
        "resourceDisplayName",
        "riskState",
        "riskLevelDuringSignIn",
        "riskLevelAggregated",
        "location/city",
        "location/state",
        "location/countryOrRegion",
        "deviceDetail/operatingSystem",
        "deviceDetail/browser",
        "correlationId",
        "id",
    )
}
#: the properties Graph's signIn docs say support ``startsWith``
STARTSWITH_PROPERTIES = frozenset(
    {
        "appDisplayName",
        "userPrincipalName",
        "userDisplayName",
        "ipAddress",
        "location/city",
        "location/state",
        "location/countryOrRegion",
        "deviceDetail/operatingSystem",
        "deviceDetail/browser",
        "servicePrincipalName",
        "activityDisplayName",
        "initiatedBy/user/userPrincipalName",
    }
)
AUDIT_PROPERTIES = {
    p.lower(): p
    for p in (
        "activityDateTime",
        "activityDisplayName",
        "category",
        "result",
        "loggedByService",
        "operationType",
        "initiatedBy/app/appId",
        "initiatedBy/app/displayName",
        "initiatedBy/user/id",
        "initiatedBy/user/userPrincipalName",
        "initiatedBy/user/displayName",
        "targetResources",
        "correlationId",
        "id",
    )
}


class LogThrottle:
    """Sliding window: ``limit`` requests per ``window`` seconds per (tenant, app)."""

    def __init__(
        self,
        limit: int = LIMIT_REQUESTS,
        window: float = LIMIT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._seen: dict[tuple[str, str], collections.deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, tenant_id: str, app_id: str) -> float:
        """0 when the request may proceed, else the seconds until it may."""
        now = self.clock()
        with self._lock:
            times = self._seen.setdefault((tenant_id, app_id.lower()), collections.deque())
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) >= self.limit:
                return self.window - (now - times[0])
            times.append(now)
            return 0.0


def _throttle(request: Request) -> LogThrottle:
    services = runtime_of(request).services
    throttle = services.get("audit_logs.throttle")
    if not isinstance(throttle, LogThrottle):
        throttle = services["audit_logs.throttle"] = LogThrottle()
    return throttle


def _encode_token(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}|{key[1]}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        stamp, sep, ident = raw.partition("|")
        if not sep:
            raise ValueError(raw)
        return stamp, ident
    except ValueError:
        raise GraphErrorResponse(400, "Request_BadRequest", "Invalid skip token.") from None


def _top(text: str | None) -> int:
    if text is None:
        return MAX_TOP
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOP:
        raise GraphErrorResponse(
            400, "BadRequest", f"Invalid page size specified: '{text}'. Must be between 1 and {MAX_TOP}."
        )
    return int(text)


def _newest_first(orderby: str | None, time_prop: str) -> bool:
    """``$orderby`` of a log: only its timestamp sorts (``desc``, the default order, or ``asc``)."""
    if orderby is None:
        return True
    parts = orderby.split()
    if not parts or parts[0].lower() != time_prop.lower() or len(parts) > 2:
        raise GraphErrorResponse(
            400, "BadRequest", f"Invalid $orderby '{orderby}': logs sort only by {time_prop} (asc or desc)."
        )
    if len(parts) == 2 and parts[1].lower() not in ("asc", "desc"):
        raise GraphErrorResponse(400, "BadRequest", f"Invalid $orderby direction '{parts[1]}'.")
    return len(parts) == 2 and parts[1].lower() == "desc"  # OData's default direction is asc


def _page(request: Request, items: Sequence[dict[str, Any]], time_prop: str, entity_set: str) -> Response:
    """Newest first; the skip token holds the sort key of the last item sent."""
    params = request.query_params
    top = _top(params.get("$top"))
    newest_first = _newest_first(params.get("$orderby"), time_prop)
    ordered = sorted(items, key=lambda i: (str(i.get(time_prop)), str(i.get("id"))), reverse=newest_first)
    token = params.get("$skiptoken")
    if token is not None:
        after = _decode_token(token)
        ordered = [
            i
            for i in ordered
            if ((str(i.get(time_prop)), str(i.get("id"))) < after) == newest_first
            and (str(i.get(time_prop)), str(i.get("id"))) != after
        ]
    page = ordered[:top]
    base = f"{request.url.scheme}://{request.url.netloc}"
    version = request.url.path.split("/", 2)[1]
    body: dict[str, Any] = {"@odata.context": f"{base}/{version}/$metadata#{entity_set}"}
    if len(ordered) > top:
        last = page[-1]
        query = {k: v for k, v in params.items() if k.lower() != "$skiptoken"}
        query["$skiptoken"] = _encode_token((str(last.get(time_prop)), str(last.get("id"))))
        body["@odata.nextLink"] = f"{base}{request.url.path}?{urllib.parse.urlencode(query, safe=_SAFE)}"
    body["value"] = page
    return JSONResponse(body, media_type=ODATA_JSON)


def _authorize(request: Request) -> Tenant:
    caller, tenant = caller_tenant(request)
    granted = caller.roles if caller.is_app_only else caller.scopes
    if not granted & READ_ROLES:
        raise GraphErrorResponse(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation. The app needs AuditLog.Read.All.",
        )
    wait = _throttle(request).check(tenant.id, caller.app_id)
    if wait > 0:
        raise GraphErrorResponse(
            429,
            "TooManyRequests",
            "Too many requests. The audit log APIs allow 5 requests per 10 seconds per app per tenant.",
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
        )
    return tenant


async def sign_ins(request: Request) -> Response:
    tenant = _authorize(request)
    predicate, event_types = compile_filter(request.query_params.get("$filter"), SIGN_IN_PROPERTIES)
    beta = request.url.path.startswith("/beta/")
    if not beta or not event_types:
        event_types = {"interactiveuser"}
    items = [
        item
        for item in sign_ins_of(tenant)
        if item["signInEventTypes"][0].lower() in event_types and predicate(item)
    ]
    return _page(request, items, "createdDateTime", "auditLogs/signIns")


async def directory_audits(request: Request) -> Response:
    tenant = _authorize(request)
    predicate, _ = compile_filter(request.query_params.get("$filter"), AUDIT_PROPERTIES)
    ext = tenant.extensions.get(PROVISIONING)
    audits = list(ext.audits) if isinstance(ext, ProvisioningExtension) else []
    return _page(
        request, [a for a in audits if predicate(a)], "activityDateTime", "auditLogs/directoryAudits"
    )


def routes() -> list[BaseRoute]:
    result: list[BaseRoute] = []
    for version in ("v1.0", "beta"):
        result += [
            Route(f"/{version}/auditLogs/signIns", sign_ins, methods=["GET"]),
            Route(f"/{version}/auditLogs/directoryAudits", directory_audits, methods=["GET"]),
        ]
    return result
