"""Entra's log APIs: service principal sign-ins (beta) and directory audits (v1.0).

Both are throttled at 5 requests per 10 seconds per app per tenant; :class:`RequestPacer` keeps
the client under that (sleeping before a request would exceed it) so paging never meets a 429 of
its own making. Records come newest first; callers pass ``since`` to read incrementally.

Activity names in real directory audits use an en dash (``Update application – Certificates and
secrets management``) where Microsoft's docs use a hyphen: :func:`normalize_activity` folds both.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

#: Graph's published limit of the audit and sign-in log APIs
LOG_REQUESTS = 5
LOG_WINDOW_SECONDS = 10.0
_DASHES = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2212": "-"})

#: directory audit activities that concern an app registration and its service principal
APP_ACTIVITIES: frozenset[str] = frozenset(
    {
        "add application",
        "update application",
        "delete application",
        "add service principal",
        "update service principal",
        "delete service principal",
        "add app role assignment to service principal",
        "remove app role assignment from service principal",
        "add delegated permission grant",
        "remove delegated permission grant",
        "consent to application",
        "add service principal credentials",
        "remove service principal credentials",
        "update application - certificates and secrets management",
        "add owner to application",
        "add owner to service principal",
    }
)


def normalize_activity(name: str) -> str:
    """Lower case, en/em dashes folded to a hyphen, spaces collapsed."""
    return " ".join(name.translate(_DASHES).lower().split())


def graph_time(value: dt.datetime) -> str:
    """The ISO form Graph's ``$filter`` takes (UTC, ``Z``)."""
    value = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_graph_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class RequestPacer:
    """At most ``limit`` requests in any ``window`` seconds; :meth:`wait` sleeps until one may go."""

    def __init__(
        self,
        limit: int = LOG_REQUESTS,
        window: float = LOG_WINDOW_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a pacer needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.clock = clock
        self.sleep = sleep
        self.sent: collections.deque[float] = collections.deque()
        self.waited = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until a request may be sent, record it, and return the seconds waited."""
        with self._lock:
            waited = 0.0
            while True:
                now = self.clock()
                while self.sent and now - self.sent[0] >= self.window:
                    self.sent.popleft()
                if len(self.sent) < self.limit:
                    self.sent.append(now)
                    self.waited += waited
                    return waited
                delay = self.window - (now - self.sent[0]) + 0.01
                self.sleep(delay)
                waited += delay


class _Http(Protocol):
    settings: Any

    def get(self, path: str, **kwargs: Any) -> Any: ...


class AuditLogService:
    """Reads sign-ins and directory audits through the client's :class:`~meetgate.graph.http.GraphHttp`.

    Needs the application permission AuditLog.Read.All (and Directory.Read.All for sign-ins in
    real tenants)."""

    def __init__(self, http: _Http, *, pacer: RequestPacer | None = None, page_size: int = 500) -> None:
        self.http = http
        self.pacer = pacer or RequestPacer()
        self.page_size = page_size
        self.requests = 0

    def _url(self, version: str, path: str) -> str:
        return f"{self.http.settings.graph_url.rstrip('/')}/{version}/{path}"

    def _pages(self, url: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        next_url: str | None = url
        query: dict[str, str] | None = params
        while next_url:
            self.pacer.wait()
            self.requests += 1
            page = self.http.get(next_url, params=query)
            if not isinstance(page, dict):
                return
            yield from (item for item in page.get("value", []) if isinstance(item, dict))
            link = page.get("@odata.nextLink")
            next_url = str(link) if link else None
            query = None

    def service_principal_sign_ins(
        self, app_id: str, *, since: dt.datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Sign-ins of the app's service principal (beta), newest first, from ``since`` on."""
        clauses = [
            f"appId eq '{app_id.replace(chr(39), chr(39) * 2)}'",
            "signInEventTypes/any(t: t eq 'servicePrincipal')",
        ]
        if since is not None:
            clauses.insert(0, f"createdDateTime ge {graph_time(since)}")
        params = {"$filter": " and ".join(clauses), "$top": str(self.page_size)}
        return self._pages(self._url("beta", "auditLogs/signIns"), params)

    def directory_audits(
        self, *, since: dt.datetime | None = None, category: str | None = "ApplicationManagement"
    ) -> Iterator[dict[str, Any]]:
        """Directory audits (v1.0), newest first, from ``since`` on."""
        clauses = []
        if since is not None:
            clauses.append(f"activityDateTime ge {graph_time(since)}")
        if category:
            clauses.append(f"category eq '{category}'")
        params = {"$top": str(self.page_size)}
        if clauses:
            params["$filter"] = " and ".join(clauses)
        return self._pages(self._url("v1.0", "auditLogs/directoryAudits"), params)


def concerns_app(audit: dict[str, Any], ids: set[str]) -> bool:
    """True when a directory audit targets one of ``ids`` (app id, application or SP object id)."""
    wanted = {i.lower() for i in ids if i}
    for target in audit.get("targetResources") or []:
        if isinstance(target, dict) and str(target.get("id", "")).lower() in wanted:
            return True
        if isinstance(target, dict):
            for prop in target.get("modifiedProperties") or []:
                if isinstance(prop, dict) and any(w in str(prop.get("newValue", "")).lower() for w in wanted):
                    return True
    initiated = (audit.get("initiatedBy") or {}).get("app") or {}
    return str(initiated.get("appId", "")).lower() in wanted
