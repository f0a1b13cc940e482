"""The realistic profile: Microsoft's documented figures in place of the fast defaults for tests.

``PUT /_sandbox/settings {"profile": "realistic"}`` (or ``meetgate sandbox serve --realistic``) makes
the sandbox behave as the documentation says a real tenant does (docs/sandbox.md, "The realistic
profile", cites each figure):

- **policy propagation**: each application access policy change takes a delay drawn at random
  from 0 to 30 minutes ("Changes to application access policies can take up to 30 minutes to take
  effect in Microsoft Graph REST API calls"), divided by ``timeCompression`` (300: at most 6 s);
- **access tokens** live 60 to 90 minutes, drawn per token ("a random value ranging between 60-90
  minutes"), so ``expires_in`` varies;
- **throttling** at the published limits (:data:`LIMITS`): the identity and access limits in
  resource units per app and tenant (by tenant size, with the documented request costs) and
  writes, Teams' per-app-per-tenant limit for online meetings and policy assignment, and the global
  limit per app; a 429 carries ``Retry-After`` and the documented body, identity 429s the
  documented ``x-ms-throttle-scope`` and ``x-ms-throttle-information`` headers, and identity answers
  ``x-ms-resource-unit`` (plus ``x-ms-throttle-limit-percentage`` past 0.8 of the budget).

Draws come from generators seeded by ``profileSeed`` (one per kind of draw, so a run with the same
seed and the same sequence of changes and token requests sees the same delays and lifetimes).
``throttleScale`` multiplies every limit, for tests that must meet a limit with a few requests.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from meetgate_sandbox.faults import TokenBucket

#: "Changes to application access policies can take up to 30 minutes to take effect in Microsoft
#: Graph REST API calls." (Configure application access to online meetings)
POLICY_PROPAGATION_SECONDS = (0.0, 30 * 60.0)
#: "assigns a random value ranging between 60-90 minutes (75 minutes on average) as the default
#: lifetime of an access token" (Microsoft identity platform access tokens, Token lifetime)
ACCESS_TOKEN_LIFETIME_SECONDS = (60 * 60, 90 * 60)
#: Exchange RBAC for Applications: "cache maintenance that varies between 30 minutes and 2 hours"
MAILBOX_SCOPE_CACHE_SECONDS = (30 * 60.0, 120 * 60.0)
#: documented durations are divided by this unless the settings say otherwise (30 min -> 6 s)
DEFAULT_TIME_COMPRESSION = 300.0

#: the documented 429 (Microsoft Graph throttling guidance, "Sample response")
THROTTLED_CODE = "TooManyRequests"
THROTTLED_MESSAGE = "Please retry again later."
THROTTLED_INNER = {"code": "429", "message": "Please retry after", "status": "429"}

#: identity and access tenant sizes: S under 50 users, M 50 to 500, L above 500
TENANT_SIZES = (("S", 50, 3_500.0), ("M", 501, 5_000.0), ("L", None, 8_000.0))


@dataclass(frozen=True)
class Limit:
    """``amount`` requests (or resource units) per ``window`` seconds, per ``scope``."""

    name: str
    amount: float
    window: float
    #: ``Tenant_Application`` (per app per tenant), ``Application`` (per app across tenants) or
    #: ``Tenant`` (per tenant for all apps)
    scope: str
    #: ``x-ms-throttle-scope``'s limit part: ``Read``, ``Write`` or ``ReadWrite``
    kind: str = "ReadWrite"
    #: ``x-ms-throttle-information`` (identity and access only)
    information: str | None = None


#: Microsoft Graph service-specific throttling limits (throttling-limits page), as applied here
LIMITS: Mapping[str, Limit] = {
    # "Any | 130,000 requests per 10 seconds" per app across all tenants
    "global": Limit("global", 130_000.0, 10.0, "Application"),
    # identity and access: "application+tenant pair | S: 3,500 ResourceUnits per 10 seconds, M: 5,000,
    # L: 8,000" (the amount is chosen by tenant size) and "3,000 requests per 2 minutes and 30 seconds"
    "identity": Limit(
        "identity", 5_000.0, 10.0, "Tenant_Application", information="ResourceUnitLimitExceeded"
    ),
    "identityWrites": Limit(
        "identityWrites", 3_000.0, 150.0, "Tenant_Application", "Write", "WriteLimitExceeded"
    ),
    # "application | 150,000 ResourceUnits per 20 seconds | 35,000 requests per 5 minutes" and
    # "tenant | Not Applicable | 18,000 requests per 5 minutes"
    "identityApp": Limit(
        "identityApp", 150_000.0, 20.0, "Application", information="ResourceUnitLimitExceeded"
    ),
    "identityAppWrites": Limit(
        "identityAppWrites", 35_000.0, 300.0, "Application", "Write", "WriteLimitExceeded"
    ),
    "identityTenantWrites": Limit(
        "identityTenantWrites", 18_000.0, 300.0, "Tenant", "Write", "WriteLimitExceeded"
    ),
    # no per-second limit is published for onlineMeetings ("Meeting information | 2,000 meetings/user
    # each month" is the only cloud communications figure): Teams' "Other API calls for Microsoft
    # Teams | 30 rps" per app per tenant is applied, as to Teams policy assignment
    "onlineMeetings": Limit("onlineMeetings", 30.0, 1.0, "Tenant_Application"),
    "teamsAdmin": Limit("teamsAdmin", 30.0, 1.0, "Tenant_Application"),
}

#: first path segments of the identity and access service (Microsoft Entra directory objects)
IDENTITY_SEGMENTS = frozenset(
    {
        "users",
        "groups",
        "me",
        "applications",
        "servicePrincipals",
        "directoryObjects",
        "directoryRoles",
        "directoryRoleTemplates",
        "organization",
        "domains",
        "devices",
        "contracts",
        "oauth2PermissionGrants",
        "subscribedSkus",
        "getObjectsById",
        "isMemberOf",
    }
)
#: segments after which the next segment is an object id
_COLLECTIONS = frozenset(
    {"users", "groups", "applications", "servicePrincipals", "oauth2PermissionGrants", "domains"}
)
#: "base request costs. Any requests not listed have a base cost of 1" (identity and access)
IDENTITY_COSTS: Mapping[tuple[str, str], int] = {
    ("GET", "applications"): 2,
    ("GET", "applications/{id}/extensionProperties"): 2,
    ("GET", "contracts"): 3,
    ("POST", "directoryObjects/getByIds"): 3,
    ("GET", "domains/{id}/domainNameReferences"): 4,
    ("POST", "getObjectsById"): 3,
    ("GET", "groups/{id}/members"): 3,
    ("GET", "groups/{id}/transitiveMembers"): 5,
    ("POST", "isMemberOf"): 4,
    ("POST", "me/checkMemberGroups"): 4,
    ("POST", "me/checkMemberObjects"): 4,
    ("POST", "me/getMemberGroups"): 2,
    ("POST", "me/getMemberObjects"): 2,
    ("GET", "me/licenseDetails"): 2,
    ("GET", "me/memberOf"): 2,
    ("GET", "me/ownedObjects"): 2,
    ("GET", "me/transitiveMemberOf"): 2,
    ("GET", "oauth2PermissionGrants"): 2,
    ("GET", "oauth2PermissionGrants/{id}"): 2,
    ("GET", "servicePrincipals/{id}/appRoleAssignments"): 2,
    ("GET", "subscribedSkus"): 3,
    ("GET", "users"): 2,
}
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class RealisticDraws:
    """The profile's random draws: one generator per kind of draw, seeded from ``seed``."""

    def __init__(self, seed: int | None = None, time_compression: float = DEFAULT_TIME_COMPRESSION) -> None:
        if time_compression < 1:
            raise ValueError("time_compression must be at least 1")
        self.seed = seed
        self.time_compression = time_compression
        # string seeds are hashed the same way on every run and platform (random.seed version 2)
        self._policy = random.Random(None if seed is None else f"{seed}/policy-propagation")  # noqa: S311
        self._token = random.Random(None if seed is None else f"{seed}/token-lifetime")  # noqa: S311
        self._mailbox = random.Random(None if seed is None else f"{seed}/mailbox-scope-cache")  # noqa: S311
        self._lock = threading.Lock()

    def policy_delay_seconds(self) -> float:
        """A propagation delay from the documented range, compressed (real seconds to wait)."""
        low, high = POLICY_PROPAGATION_SECONDS
        with self._lock:
            return self._policy.uniform(low, high) / self.time_compression

    def mailbox_scope_delay_seconds(self) -> float:
        """How long an Exchange role assignment takes to reach Graph, from the documented 30 minutes to
        2 hours, compressed like the policy propagation."""
        low, high = MAILBOX_SCOPE_CACHE_SECONDS
        with self._lock:
            return self._mailbox.uniform(low, high) / self.time_compression

    def access_token_lifetime_seconds(self) -> int:
        """An access token lifetime from the documented 60-90 minutes (not compressed: it is a
        number in the token, and tests expire tokens with ``clockOffsetSeconds`` instead)."""
        low, high = ACCESS_TOKEN_LIFETIME_SECONDS
        with self._lock:
            return self._token.randint(low, high)


@dataclass(frozen=True)
class Metered:
    """What one Graph request counts against: the limit names and their costs."""

    costs: Mapping[str, float]

    @property
    def identity(self) -> bool:
        return "identity" in self.costs


@dataclass(frozen=True)
class Throttled:
    """A refused request: how long to wait and the limit it hit."""

    retry_after: float
    limit: Limit


def _segments(path: str) -> list[str]:
    """The path after ``/v1.0`` or ``/beta``, as segments (function arguments cut off)."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] in ("v1.0", "beta"):
        parts = parts[1:]
    return parts


def _identity_template(parts: list[str]) -> str:
    """``users/abc/memberOf`` -> ``me/memberOf`` (the docs price ``users/{id}/`` as ``me/``),
    ``groups/abc/members`` -> ``groups/{id}/members``; type casts and ``$count`` are left out."""
    out: list[str] = []
    expect_id = False  # the previous segment was a collection addressed by a following id
    for part in parts:
        if part.startswith(("microsoft.graph.", "$")):
            continue
        name = part.split("(", 1)[0]
        out.append("{id}" if expect_id else name)
        expect_id = not expect_id and name == part and name in _COLLECTIONS
    if len(out) > 2 and out[0] == "users" and out[1] == "{id}":
        out = ["me", *out[2:]]
    return "/".join(out)


def identity_cost(method: str, parts: list[str], query: str) -> int:
    """The documented resource-unit cost of an identity and access request."""
    template = _identity_template(parts)
    cost = IDENTITY_COSTS.get((method, template), 1)
    params = {k.lower(): v for k, v in parse_qsl(query, keep_blank_values=True)}
    if "$select" in params:
        cost -= 1  # "Using $select decreases cost by 1"
    if "$expand" in params:
        cost += 1  # "Using $expand increases cost by 1"
    top = params.get("$top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1  # "Using $top with a value of less than 20 decreases cost by 1"
    return max(cost, 1)  # "A request cost can never be lower than 1"


def meter(method: str, path: str, query: str = "") -> Metered:
    """The limits a Graph request (``path`` under ``/v1.0`` or ``/beta``) counts against."""
    method = method.upper()
    parts = _segments(path)
    costs: dict[str, float] = {"global": 1.0}
    names = [p.split("(", 1)[0] for p in parts]
    if "onlineMeetings" in names:
        costs["onlineMeetings"] = 1.0
    elif names[:2] == ["admin", "teams"]:
        costs["teamsAdmin"] = 1.0
    elif names and names[0] in IDENTITY_SEGMENTS:
        costs["identity"] = costs["identityApp"] = float(identity_cost(method, parts, query))
        if method in WRITES:
            costs["identityWrites"] = costs["identityAppWrites"] = costs["identityTenantWrites"] = 1.0
    return Metered(costs)


def identity_amount(user_count: int) -> float:
    """Resource units per 10 seconds for a tenant of ``user_count`` users (sizes S, M, L)."""
    for _size, below, amount in TENANT_SIZES:
        if below is None or user_count < below:
            return amount
    raise AssertionError("unreachable")


class RealisticThrottle:
    """Token buckets for :data:`LIMITS`, keyed by limit and (tenant, app) or app.

    A bucket holds ``amount`` × ``scale`` and refills over ``window``; a request passes only when every
    limit it counts against has room for its cost (then each is charged), else the longest wait is its
    ``Retry-After`` and nothing is charged.
    """

    def __init__(self, scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.scale = scale
        self.clock = clock
        self._buckets: dict[tuple[str, str, str, float], TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, limit: Limit, amount: float, tenant_id: str, app_id: str) -> TokenBucket:
        owner = "" if limit.scope == "Application" else tenant_id
        caller = "" if limit.scope == "Tenant" else app_id.lower()
        key = (limit.name, owner, caller, amount)
        bucket = self._buckets.get(key)
        if bucket is None:
            capacity = amount * self.scale
            bucket = self._buckets[key] = TokenBucket(capacity / limit.window, self.clock, capacity)
        return bucket

    def check(
        self, metered: Metered, tenant_id: str, app_id: str, *, user_count: int = 0
    ) -> Throttled | None:
        """None when the request may proceed (and it is charged), else what it hit."""
        with self._lock:
            buckets: list[tuple[Limit, TokenBucket, float]] = []
            for name, cost in metered.costs.items():
                limit = LIMITS[name]
                amount = identity_amount(user_count) if name == "identity" else limit.amount
                buckets.append((limit, self._bucket(limit, amount, tenant_id, app_id), cost))
            worst: Throttled | None = None
            for limit, bucket, cost in buckets:
                wait = bucket.wait(cost)
                if wait > 0 and (worst is None or wait > worst.retry_after):
                    worst = Throttled(wait, limit)
            if worst is not None:
                return worst
            for _limit, bucket, cost in buckets:
                bucket.take(cost)
            return None

    def used(self, name: str, tenant_id: str, app_id: str, *, user_count: int = 0) -> float:
        """The share of a limit's budget in use (0 to 1) for the tenant and app."""
        limit = LIMITS[name]
        amount = identity_amount(user_count) if name == "identity" else limit.amount
        with self._lock:
            bucket = self._bucket(limit, amount, tenant_id, app_id)
            bucket.wait(0.0)  # refill up to now
            return bucket.used


def throttle_headers(throttled: Throttled, tenant_id: str, app_id: str) -> dict[str, str]:
    """The identity and access service's diagnostic headers of a 429 (others send none)."""
    limit = throttled.limit
    if limit.information is None:
        return {}
    return {
        "x-ms-throttle-scope": f"{limit.scope}/{limit.kind}/{app_id}/{tenant_id}",
        "x-ms-throttle-information": limit.information,
    }


class RealisticRuntime:
    """The realistic profile's machinery for one server: the draws and the throttle."""

    def __init__(
        self,
        seed: int | None,
        time_compression: float,
        throttle_scale: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = (seed, time_compression, throttle_scale)
        self.draws = RealisticDraws(seed, time_compression)
        self.throttle = RealisticThrottle(throttle_scale, clock)
