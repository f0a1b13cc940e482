"""The calendar plane of a sandbox app for tests: Exchange RBAC for Applications scoped to the pilots."""

from __future__ import annotations

EXCHANGE = "/tenants/{tid}/exchange"


def scope_calendars(sandbox_app, users=None) -> None:
    """Calendars.ReadWrite on the pilot users' (or ``users``') mailboxes only, through Exchange RBAC for
    Applications (``SandboxApp.scope_calendars``)."""
    sandbox_app.scope_calendars(users)
