"""Helpers: a gateway over the in-memory Graph fake, an SQLite store in tmp_path, two consumers."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from meetgate.gateway.app import create_app
from meetgate.gateway.consumers import ConsumerAdmin
from meetgate.gateway.limits import InMemoryLimiter
from meetgate.gateway.scope import StaticPolicyScope
from meetgate.gateway.settings import GatewaySettings
from meetgate.store import Store
from meetgate_sandbox.fakes.meetings import InMemoryMeetings

IN_SCOPE = ["alice@contoso.test", "bob@contoso.test", "carol@contoso.test", "dave@contoso.test"]


@dataclass
class Gateway:
    client: TestClient
    store: Store
    graph: InMemoryMeetings
    admin: ConsumerAdmin
    scope: StaticPolicyScope
    booking_key: str
    crm_key: str

    def headers(self, key: str, idem: str | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {key}"}
        if idem is not None:
            h["Idempotency-Key"] = idem
        return h


def make_gateway(tmp_path, settings: GatewaySettings | None = None, scope_users=IN_SCOPE) -> Gateway:
    settings = settings or GatewaySettings(store_url=f"sqlite:///{tmp_path}/gw.db", policy_cache_seconds=0)
    store = Store.open(settings.store_url)
    scope = StaticPolicyScope(scope_users)
    graph = InMemoryMeetings(scope=scope)
    admin = ConsumerAdmin(store, scope)
    booking = admin.add("booking", organizers=["alice@contoso.test", "bob@contoso.test"])
    crm = admin.add("crm", organizers=["carol@contoso.test"], rate_per_minute=8, daily_quota=3)
    # webhook hosts are checked by form and literal address only: no DNS lookups from the tests
    app = create_app(
        settings, meetings=graph, scope=scope, store=store, limiter=InMemoryLimiter(), webhook_resolve=None
    )
    return Gateway(TestClient(app), store, graph, admin, scope, booking.api_key, crm.api_key)


MEETING = {
    "organizer": "alice@contoso.test",
    "subject": "Interview",
    "start": "2030-12-01T09:00:00Z",
    "end": "2030-12-01T09:30:00Z",
    "attendees": [{"upn": "candidate@example.org"}],
    "lobby_bypass_scope": "organization",
}
