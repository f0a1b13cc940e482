"""The sandbox's RBAC for Applications engine: administrative-unit scopes beside the others."""

from __future__ import annotations

import datetime as dt

import pytest

from meetgate_sandbox.exchange_rbac import ExchangeRbac, RbacError
from meetgate_sandbox.state import AdministrativeUnit, build_tenant

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
APP_ID = "11111111-1111-1111-1111-111111111111"
SP_ID = "22222222-2222-2222-2222-222222222222"


@pytest.fixture
def world():
    tenant = build_tenant(users=6, seed_value=1)
    users = [tenant.users[uid] for uid in tenant.seeded_user_ids]
    unit = AdministrativeUnit("0e1f2a3b-0000-4000-8000-000000000001", "Pilot organizers")
    unit.member_ids += [users[0].id, users[1].id]
    tenant.administrative_units[unit.id] = unit
    rbac = ExchangeRbac(tenant)
    rbac.new_service_principal(APP_ID, SP_ID, "meetgate")
    return tenant, rbac, users, unit


def _assign(rbac: ExchangeRbac, unit_scope: str, delay: float = 0.0, **scopes: str | None):
    return rbac.new_assignment(
        role="Application Calendars.ReadWrite",
        app=SP_ID,
        name=None,
        custom_scope=scopes.get("custom_scope"),
        group_scope=scopes.get("group_scope"),
        unit_scope=unit_scope,
        now=NOW,
        delay_seconds=delay,
    )


def test_an_administrative_unit_scope_holds_its_user_members(world):
    _, rbac, users, unit = world
    assignment = _assign(rbac, unit.id)
    assert (assignment.scope_type, assignment.scope) == ("AdministrativeUnit", unit.id)
    assert rbac.permits(APP_ID, "Calendars.ReadWrite", users[0], NOW)
    assert not rbac.permits(APP_ID, "Calendars.ReadWrite", users[2], NOW)
    # membership is read live: a member added later is in scope
    unit.member_ids.append(users[2].id)
    assert rbac.permits(APP_ID, "Calendars.ReadWrite", users[2], NOW)


def test_test_authorization_shows_the_unit_as_exchange_prints_it(world):
    _, rbac, users, unit = world
    _assign(rbac, "pilot organizers")  # the display name names the unit too
    [inside] = rbac.test_authorization(APP_ID, users[1])
    [outside] = rbac.test_authorization(SP_ID, users[3])
    [not_run] = rbac.test_authorization("meetgate", None)
    assert inside == {
        "RoleName": "Application Calendars.ReadWrite",
        "GrantedPermissions": "Calendars.ReadWrite",
        "AllowedResourceScope": unit.id,
        "ScopeType": "AdministrativeUnit",
        "InScope": True,
    }
    assert outside["InScope"] is False and not_run["InScope"] == "Not Run"


def test_a_group_in_the_unit_does_not_bring_its_members(world):
    tenant, rbac, users, unit = world
    group = next(g for g in tenant.groups.values() if any(u.id in g.member_ids for u in users[2:]))
    unit.member_ids.append(group.id)
    _assign(rbac, unit.id)
    outsiders = [u for u in users if u.id not in unit.member_ids and u.id in group.member_ids]
    assert outsiders and all(not rbac.permits(APP_ID, "Calendars.ReadWrite", u, NOW) for u in outsiders)


def test_refusals(world):
    _, rbac, _, unit = world
    with pytest.raises(RbacError, match="administrative unit 'nope' couldn't be found"):
        _assign(rbac, "nope")
    rbac.new_scope("s", "Department -eq 'Sales'")
    with pytest.raises(RbacError, match="Give one scope"):
        _assign(rbac, unit.id, custom_scope="s")


def test_the_cache_delay_and_persistence(world):
    tenant, rbac, users, unit = world
    _assign(rbac, unit.id, delay=600)
    assert not rbac.permits(APP_ID, "Calendars.ReadWrite", users[0], NOW)
    later = NOW + dt.timedelta(seconds=600)
    assert rbac.permits(APP_ID, "Calendars.ReadWrite", users[0], later)
    reloaded = ExchangeRbac.for_tenant(tenant, rbac.to_dict())
    assert reloaded.permits(APP_ID, "Calendars.ReadWrite", users[0], later)
    assert not reloaded.permits(APP_ID, "Calendars.ReadWrite", users[4], later)
