"""The state one run shares between its checks (:class:`_Run`): the target, the users, the token
requested once, the resolved user ids and the results so far; and the helpers every check uses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meetgate.admin.validation.model import CheckResult
from meetgate.admin.validation.ports import ValidationTarget
from meetgate.graph.auth import AccessToken
from meetgate.graph.errors import GraphError


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _Run:
    target: ValidationTarget
    pilot: tuple[str, ...]
    negative: tuple[str, ...]
    run_id: str
    now: Callable[[], dt.datetime]
    reachability_samples: int
    token: AccessToken | None = None
    token_error: GraphError | None = None
    token_tried: bool = False
    #: reference → resolved user id (organizer_lookup)
    user_ids: dict[str, str] = field(default_factory=dict)
    results: dict[str, CheckResult] = field(default_factory=dict)

    # a token is requested once and shared by the certificate and token checks
    def acquire(self) -> AccessToken | None:
        if not self.token_tried:
            self.token_tried = True
            if self.target.tokens is None:
                self.token_error = GraphError(self.target.client_error or "no Graph client could be built")
            else:
                try:
                    self.token = self.target.tokens.get_token()
                except GraphError as exc:
                    self.token_error = exc
        return self.token


def _error_evidence(exc: GraphError) -> dict[str, Any]:
    return {
        "status": exc.status,
        "code": exc.code,
        "request_id": exc.request_id,
        "client_request_id": exc.client_request_id,
    }
