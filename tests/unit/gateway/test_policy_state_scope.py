"""The gateway's policy scope read from a policy backend (the in-memory tenant of admin/policy)."""

from __future__ import annotations

from meetgate.admin.policy.model import PolicyDefinition
from meetgate.composition.gateway import PolicyStateScope
from meetgate_sandbox.fakes.policy_tenant import FakePolicyTenant

APP = "11111111-2222-3333-4444-555555555555"


def test_scope_is_who_holds_the_apps_policy_now():
    tenant = FakePolicyTenant.with_users(6)
    users = list(tenant.users.values())
    tenant.policies["teamsmeetingsintegration"] = PolicyDefinition("Tag:TeamsMeetingsIntegration", (APP,))
    tenant.policies["other"] = PolicyDefinition("Tag:Other", ("99999999-2222-3333-4444-555555555555",))
    tenant.direct[users[0].id] = "TeamsMeetingsIntegration"
    tenant.direct[users[1].id] = "Other"  # a direct grant of another policy wins over the group grant
    tenant.groups["g1"] = [users[1].id, users[2].id]
    tenant.group_grants["g1"] = ("TeamsMeetingsIntegration", 1)
    scope = PolicyStateScope(tenant, "Tag:TeamsMeetingsIntegration", APP, ttl_seconds=0)
    assert scope.contains(users[0].upn.upper()) and scope.contains(users[0].id)
    assert scope.contains(users[2].upn)
    assert not scope.contains(users[1].upn) and not scope.contains(users[3].upn)
    tenant.direct.pop(users[0].id)
    assert not scope.contains(users[0].upn)


def test_a_policy_that_does_not_list_the_app_gives_an_empty_scope():
    tenant = FakePolicyTenant.with_users(2)
    user = next(iter(tenant.users.values()))
    tenant.policies["teamsmeetingsintegration"] = PolicyDefinition(
        "Tag:TeamsMeetingsIntegration", ("someone-else",)
    )
    tenant.direct[user.id] = "TeamsMeetingsIntegration"
    assert PolicyStateScope(tenant, "Tag:TeamsMeetingsIntegration", APP).organizers() == frozenset()
