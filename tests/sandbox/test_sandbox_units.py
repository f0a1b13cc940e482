"""Pure parts of the sandbox: OData filters, token buckets, settings validation, seeding, TLS reuse."""

from __future__ import annotations

import pytest

from meetgate_sandbox import odata
from meetgate_sandbox.faults import FaultDice, FaultSettings, SettingsError, Throttler, format_retry_after
from meetgate_sandbox.http import GraphErrorResponse
from meetgate_sandbox.state import SandboxState, build_tenant
from meetgate_sandbox.tls import ensure_tls

PROPS = {p: p for p in ("id", "displayName", "accountEnabled", "mail")}
ITEMS = [
    {"id": "1", "displayName": "Adele Vance", "accountEnabled": True, "mail": "adele@x"},
    {"id": "2", "displayName": "Alex O'Neil", "accountEnabled": False, "mail": None},
    {"id": "3", "displayName": "Diego", "accountEnabled": True, "mail": "diego@x"},
]


def _ids(text: str) -> list[str]:
    predicate = odata.parse_filter(text, PROPS, "User")
    assert predicate is not None
    return [item["id"] for item in ITEMS if predicate(item)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("displayName eq 'adele vance'", ["1"]),
        ("displayName eq 'Alex O''Neil'", ["2"]),
        ("accountEnabled eq false", ["2"]),
        ("accountEnabled ne false", ["1", "3"]),
        ("mail eq null", ["2"]),
        ("startswith(displayName,'a')", ["1", "2"]),
        ("id in ('1', '3')", ["1", "3"]),
        ("startswith(displayName,'A') and accountEnabled eq true", ["1"]),
        ("id eq '3' or id eq '1' and accountEnabled eq false", ["3"]),
        ("(id eq '3' or id eq '1') and accountEnabled eq true", ["1", "3"]),
        ("not startswith(displayName,'A')", ["3"]),
        ("ID EQ '2'", ["2"]),
    ],
)
def test_filter_semantics(text, expected):
    assert _ids(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("displayName eq", "BadRequest"),
        ("displayName gt 'a'", "BadRequest"),
        ("city eq 'x'", "Request_UnsupportedQuery"),
        ("id eq '1' extra", "BadRequest"),
        ("", "BadRequest"),
    ],
)
def test_filter_errors(text, code):
    with pytest.raises(GraphErrorResponse) as raised:
        odata.parse_filter(text, PROPS, "User")
    assert raised.value.code == code
    assert raised.value.status == 400


def test_select_top_and_skiptoken():
    assert odata.parse_select("ID, displayname", ["id", "displayName"], "t") == ["id", "displayName"]
    assert odata.parse_select(None, ["id"], "t") is None
    assert odata.parse_top("999") == 999
    for bad in ("0", "1000", "x"):
        with pytest.raises(GraphErrorResponse):
            odata.parse_top(bad)
    assert odata.decode_skiptoken(odata.encode_skiptoken(250)) == 250
    with pytest.raises(GraphErrorResponse):
        odata.decode_skiptoken("garbage")


def test_token_bucket_refills_at_the_configured_rate():
    now = [0.0]
    throttler = Throttler(clock=lambda: now[0])
    assert [throttler.check(2, "t", "a") for _ in range(2)] == [0.0, 0.0]
    assert throttler.check(2, "t", "a") == pytest.approx(0.5)
    assert throttler.check(2, "t", "other-app") == 0.0  # per app
    now[0] = 0.5
    assert throttler.check(2, "t", "a") == 0.0
    assert throttler.check(None, "t", "a") == 0.0


def test_retry_after_format():
    assert format_retry_after(2.0) == "2"
    assert format_retry_after(0.25) == "0.25"
    assert format_retry_after(0.0001) == "0.001"
    assert format_retry_after(1.23456) == "1.235"


def test_fault_settings_validation_and_dice():
    with pytest.raises(SettingsError, match="unknown fault setting"):
        FaultSettings.from_dict({"errorrate": 1})
    with pytest.raises(SettingsError, match="dropRate must be a number"):
        FaultSettings.from_dict({"dropRate": "x"})
    assert FaultSettings.from_dict({}) == FaultSettings()
    dice = FaultDice(FaultSettings.from_dict({"errorRate": 0.5, "seed": 3}))
    rolls = [dice.roll() for _ in range(400)]
    errors = [r for r in rolls if r is not None]
    assert 150 < len(errors) < 250
    assert {e.status for e in errors} == {500, 503, 504}
    again = FaultDice(FaultSettings.from_dict({"errorRate": 0.5, "seed": 3}))
    assert [again.roll() for _ in range(400)] == rolls
    lost = FaultDice(FaultSettings.from_dict({"lostAnswerRate": 1.0}))
    assert lost.roll("GET") is None  # a read has no answer worth losing
    assert {lost.roll(m).kind for m in ("POST", "PATCH", "DELETE")} == {"lost"}  # type: ignore[union-attr]


def test_seeding_is_deterministic_and_realistic():
    one = build_tenant(users=50, seed_value=9, domain="contoso-sbx.onmicrosoft.com")
    two = build_tenant(users=50, seed_value=9, domain="fabrikam-sbx.onmicrosoft.com")
    assert [u.id for u in one.users.values()] == [u.id for u in two.users.values()]
    upns = [one.users[i].user_principal_name for i in one.seeded_user_ids]
    assert upns[0] == "adele.vance@contoso-sbx.onmicrosoft.com"
    assert len(set(upns)) == 50
    disabled = [u for u in one.users.values() if not u.account_enabled]
    assert 1 <= len(disabled) <= 6
    assert all(one.users[i].account_enabled for i in one.seeded_user_ids[:10])
    organizers = next(g for g in one.groups.values() if g.display_name == "Regional Managers")
    nested = [m for m in one.transitive_members(organizers) if hasattr(m, "member_ids")]
    assert [g.display_name for g in nested] == ["Meeting Organizers", "Sales and Marketing"]
    alex = one.find_user("ALEX.WILBER@contoso-sbx.onmicrosoft.com")
    assert alex is not None
    assert {g.display_name for g in one.groups_of(alex.id)} >= {"Sales and Marketing", "Regional Managers"}


def test_state_round_trips_through_a_dict():
    state = SandboxState()
    tenant = state.ensure_default_tenant(users=5)
    app = tenant.apps.create_application("x", roles=["User.Read.All"])
    sp = tenant.apps.create_service_principal(app)
    tenant.apps.assign_role(sp, "User.Read.All")
    restored = SandboxState()
    restored.load_dict(state.to_dict())
    again = restored.default_tenant
    assert again is not None
    assert again.summary() == tenant.summary()
    assert again.apps.granted_roles(sp.id) == ["User.Read.All"]
    assert again.apps.graph_service_principal.id == tenant.apps.graph_service_principal.id


def test_tls_material_is_reused_and_reissued_for_new_hosts(tmp_path):
    first = ensure_tls(tmp_path)
    ca = first.ca_certificate.read_bytes()
    server = first.server_certificate.read_bytes()
    again = ensure_tls(tmp_path)
    assert again.server_certificate.read_bytes() == server
    widened = ensure_tls(tmp_path, ["sandbox.internal"])
    assert widened.ca_certificate.read_bytes() == ca
    assert widened.server_certificate.read_bytes() != server
    assert oct((tmp_path / "ca.key.pem").stat().st_mode & 0o777) == "0o600"


def test_unexpected_route_errors_become_graph_500s_with_request_ids():
    import asyncio

    import httpx
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from meetgate.certificates import generate_private_key
    from meetgate_sandbox.app import create_app
    from meetgate_sandbox.http import caller_of
    from meetgate_sandbox.runtime import SandboxRuntime
    from meetgate_sandbox.tokens import TokenIssuer

    async def boom(request):
        caller_of(request)
        raise RuntimeError("a bug")

    async def fine(request):
        return JSONResponse({"caller": caller_of(request).app_id})

    state = SandboxState()
    tenant = state.ensure_default_tenant(users=1)
    issuer = TokenIssuer(generate_private_key())
    app = create_app(
        SandboxRuntime(state=state, issuer=issuer),
        extra_routes=[Route("/v1.0/boom", boom), Route("/v1.0/fine", fine)],
    )
    token = issuer.issue_app_token(
        tenant_id=tenant.id, app_id="app-1", app_display_name="x", service_principal_id="sp-1", roles=[],
        certificate=True, lifetime=60,
    ).access_token  # fmt: skip

    async def run():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://sandbox") as client:
            headers = {"Authorization": f"Bearer {token}"}
            return await client.get("/v1.0/boom", headers=headers), await client.get(
                "/v1.0/fine", headers=headers
            )

    broken, ok = asyncio.run(run())
    assert broken.status_code == 500
    assert broken.json()["error"]["code"] == "InternalServerError"
    assert broken.json()["error"]["innerError"]["request-id"] == broken.headers["request-id"]
    assert "a bug" not in broken.text
    assert ok.json() == {"caller": "app-1"}
    assert [r.status for r in tenant.log.requests] == [500, 200]
