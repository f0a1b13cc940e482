"""The sandbox server's side of the meeting and policy routes: tenant extensions and the backend.

Each tenant carries two extensions (persisted with it): ``policy`` — its :class:`PolicyEngine` — and
``meetings`` — its :class:`MeetingStore`. :class:`RuntimeMeetingsBackend` implements the routes'
:class:`~meetgate_sandbox.meetings_api.MeetingsBackend` port over the server's
:class:`~meetgate_sandbox.runtime.SandboxRuntime` (directory lookups, settings, persistence).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute

from meetgate_sandbox.meeting_settings import MeetingSandboxSettings
from meetgate_sandbox.meetings import MeetingStore
from meetgate_sandbox.meetings_api import (
    DirectoryUser,
    MeetingsBackend,
    meeting_routes,
    teams_policy_routes,
)
from meetgate_sandbox.policy import PolicyEngine
from meetgate_sandbox.policy_control import policy_control_routes
from meetgate_sandbox.runtime import SandboxRuntime, runtime_of
from meetgate_sandbox.state import Tenant

POLICY_EXTENSION = "policy"
MEETINGS_EXTENSION = "meetings"


def policy_extension(tenant: Tenant, saved: dict[str, Any] | None) -> PolicyEngine:
    """The tenant's policy engine; group membership comes from the tenant's (nested) groups."""

    def member_of(user_id: str) -> list[str]:
        return [group.id.lower() for group in tenant.groups_of(user_id)]

    engine = PolicyEngine(tenant.id, member_of=member_of)
    if saved:
        engine.load_dict(saved)
    return engine


def meetings_extension(tenant: Tenant, saved: dict[str, Any] | None) -> MeetingStore:
    store = MeetingStore(tenant.id)
    if saved:
        store.load_dict(saved)
    return store


class RuntimeMeetingsBackend:
    """:class:`MeetingsBackend` over a running sandbox's state."""

    def __init__(self, runtime: SandboxRuntime) -> None:
        self.runtime = runtime

    def _tenant(self, key: str) -> Tenant | None:
        tenants = self.runtime.state.tenants
        return tenants.get(key) or self.runtime.state.find_tenant(key)

    def _require(self, key: str) -> Tenant:
        tenant = self._tenant(key)
        if tenant is None:
            raise LookupError(f"no sandbox tenant {key}")
        return tenant

    def _delay(self) -> float:
        return self.runtime.policy_delay()

    def user(self, tenant_id: str, id_or_upn: str) -> DirectoryUser | None:
        tenant = self._tenant(tenant_id)
        user = tenant.find_user(id_or_upn) if tenant else None
        if user is None:
            return None
        return DirectoryUser(user.id, user.user_principal_name, user.display_name)

    def group(self, tenant_id: str, group_id: str) -> str | None:
        tenant = self._tenant(tenant_id)
        if tenant is None:
            return None
        group = tenant.groups.get(group_id) or tenant.groups.get(group_id.lower())
        return group.id if group else None

    def tenant_exists(self, tenant_id: str) -> bool:
        return self._tenant(tenant_id) is not None

    def meetings(self, tenant_id: str) -> MeetingStore:
        store = self._require(tenant_id).extensions[MEETINGS_EXTENSION]
        assert isinstance(store, MeetingStore)
        return store

    def policy_engine(self, tenant_id: str) -> PolicyEngine:
        engine = self._require(tenant_id).extensions[POLICY_EXTENSION]
        assert isinstance(engine, PolicyEngine)
        engine.delay_seconds = self._delay
        return engine

    def meeting_settings(self) -> MeetingSandboxSettings:
        return self.runtime.state.settings.meetings

    def changed(self, tenant_id: str) -> None:
        self.runtime.state.changed()


def backend_of(request: Request) -> MeetingsBackend:
    """The request's backend (one per runtime, kept in ``runtime.services``)."""
    runtime = runtime_of(request)
    backend = runtime.services.get(MEETINGS_EXTENSION)
    if backend is None:
        backend = runtime.services[MEETINGS_EXTENSION] = RuntimeMeetingsBackend(runtime)
    assert isinstance(backend, RuntimeMeetingsBackend)
    return backend


def routes() -> list[BaseRoute]:
    """Graph online meetings, Graph Teams policy assignment, and the policy control API."""
    return [*meeting_routes(backend_of), *teams_policy_routes(backend_of), *policy_control_routes(backend_of)]


def extensions() -> Mapping[str, Any]:
    return {POLICY_EXTENSION: policy_extension, MEETINGS_EXTENSION: meetings_extension}
