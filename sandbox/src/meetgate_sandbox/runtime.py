"""What every sandbox route and middleware reaches through ``request.app.state.sandbox``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from meetgate_sandbox.faults import FaultDice, Throttler
from meetgate_sandbox.http import Caller, GraphErrorResponse, caller_of
from meetgate_sandbox.notification_bus import NotificationBus
from meetgate_sandbox.realistic import RealisticRuntime
from meetgate_sandbox.state import SandboxState, Tenant
from meetgate_sandbox.tokens import TokenIssuer


@dataclass
class SandboxRuntime:
    """The state plus the server's own machinery (signing key, throttle buckets, fault dice)."""

    state: SandboxState
    issuer: TokenIssuer
    throttler: Throttler = field(default_factory=Throttler)
    dice: FaultDice | None = None
    #: free slots for route modules that need server-wide helpers of their own
    services: dict[str, Any] = field(default_factory=dict)
    #: Graph and token requests being served right now (``GET /_sandbox/health`` shows it)
    in_flight: int = 0
    #: the realistic profile's draws and throttle (built when the profile is first used)
    realistic_runtime: RealisticRuntime | None = None
    #: changes for change notifications (route modules publish, the subscriptions module listens)
    notifications: NotificationBus = field(default_factory=NotificationBus)

    def __post_init__(self) -> None:
        self.issuer.clock = self.now

    def now(self) -> float:
        """The sandbox's clock: real time plus the ``clockOffsetSeconds`` setting."""
        return time.time() + self.state.settings.clock_offset_seconds

    def realistic(self) -> RealisticRuntime | None:
        """The realistic profile's machinery when that profile is on, else None; rebuilt (fresh
        draws from the seed, empty buckets) when its seed, compression or scale changes."""
        settings = self.state.settings
        if not settings.realistic:
            return None
        key = (settings.profile_seed, settings.time_compression, settings.throttle_scale)
        if self.realistic_runtime is None or self.realistic_runtime.key != key:
            self.realistic_runtime = RealisticRuntime(*key)
        return self.realistic_runtime

    def access_token_lifetime(self) -> int:
        """Seconds the next access token lives: drawn by the realistic profile, else the setting."""
        realistic = self.realistic()
        if realistic is not None:
            return realistic.draws.access_token_lifetime_seconds()
        return self.state.settings.access_token_lifetime_seconds

    def policy_delay(self) -> float:
        """Seconds the next policy change takes to reach Graph (drawn by the realistic profile)."""
        realistic = self.realistic()
        if realistic is not None:
            return realistic.draws.policy_delay_seconds()
        return float(self.state.settings.policy_delay_seconds)

    def mailbox_scope_delay(self) -> float:
        """Seconds the next Exchange role assignment change takes to reach Graph (drawn under the
        realistic profile, else the ``mailboxScopeDelaySeconds`` switch)."""
        realistic = self.realistic()
        if realistic is not None:
            return realistic.draws.mailbox_scope_delay_seconds()
        return float(self.state.settings.meetings.mailbox_scope_delay_seconds)

    def fault_dice(self) -> FaultDice:
        if self.dice is None or self.dice.settings is not self.state.faults:
            self.dice = FaultDice(self.state.faults)
        return self.dice


def runtime_of(conn: HTTPConnection) -> SandboxRuntime:
    runtime = conn.app.state.sandbox
    assert isinstance(runtime, SandboxRuntime)
    return runtime


def caller_tenant(conn: HTTPConnection) -> tuple[Caller, Tenant]:
    """The verified caller of a Graph request and its tenant (route modules start here)."""
    from starlette.requests import Request

    caller = caller_of(conn if isinstance(conn, Request) else Request(conn.scope))
    tenant = runtime_of(conn).state.tenants.get(caller.tenant_id)
    if tenant is None:
        raise GraphErrorResponse(401, "InvalidAuthenticationToken", "Access token validation failure.")
    return caller, tenant


def control_tenant(conn: HTTPConnection) -> Tenant:
    """The tenant named by a control route's ``{tid}`` (its id or domain), or the control API's 404."""
    state = runtime_of(conn).state
    key = conn.path_params["tid"]
    tenant = state.tenants.get(key) or state.find_tenant(key)
    if tenant is None:
        raise GraphErrorResponse(
            404, "NotFound", f"No sandbox tenant {key}: create it with POST /_sandbox/tenants."
        )
    return tenant
