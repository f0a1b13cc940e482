"""The calendar plane of a sandbox app for tests: Exchange RBAC for Applications scoped to the pilots."""

from __future__ import annotations

EXCHANGE = "/tenants/{tid}/exchange"


def scope_calendars(sandbox_app) -> None:
    """Calendars.ReadWrite on the pilot users' mailboxes only, through Exchange RBAC for Applications."""
    control, base = sandbox_app.control, EXCHANGE.format(tid=sandbox_app.tenant_id)
    for user in sandbox_app.pilot_users:
        control.request(
            "PATCH",
            f"{base}/mailboxes/{user.id}",
            json={"customAttributes": {"CustomAttribute7": "meetgate"}},
        )
    control.request(
        "POST",
        f"{base}/service-principals",
        json={"appId": sandbox_app.client_id, "objectId": sandbox_app.service_principal_id},
    )
    control.request(
        "POST",
        f"{base}/management-scopes",
        json={"name": "meetgate organizers", "recipientRestrictionFilter": "CustomAttribute7 -eq 'meetgate'"},
    )
    control.request(
        "POST",
        f"{base}/role-assignments",
        json={
            "role": "Application Calendars.ReadWrite",
            "app": sandbox_app.client_id,
            "customResourceScope": "meetgate organizers",
        },
    )
