"""The sandbox's Teams application access policy engine (pure domain, injected clock)."""

import pytest

from meetgate_sandbox.policy import PolicyEngine, PolicyEngineError, policy_name

APP = "11111111-1111-1111-1111-111111111111"
OTHER_APP = "22222222-2222-2222-2222-222222222222"
ALICE = "aaaaaaaa-0000-0000-0000-000000000001"
BOB = "aaaaaaaa-0000-0000-0000-000000000002"
GROUP_A = "gggggggg-0000-0000-0000-00000000000a"
GROUP_B = "gggggggg-0000-0000-0000-00000000000b"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def memberships():
    return {ALICE: {GROUP_A, GROUP_B}, BOB: {GROUP_B}}


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def delay():
    return {"seconds": 0.0}


@pytest.fixture
def engine(memberships, clock, delay):
    return PolicyEngine(
        "tenant-1",
        member_of=lambda user: memberships.get(user, set()),
        delay_seconds=lambda: delay["seconds"],
        clock=clock,
    )


def test_policy_names_accept_tag_prefix_and_compare_case_insensitively(engine):
    created = engine.create_policy("Tag:TeamsMeetingsIntegration", [APP.upper()], "CRM")
    assert created.identity == "Tag:TeamsMeetingsIntegration"
    assert created.app_ids == [APP]  # normalised to lower case
    assert engine.policy("teamsmeetingsintegration").name == "TeamsMeetingsIntegration"
    with pytest.raises(PolicyEngineError) as error:
        engine.create_policy("TEAMSMEETINGSINTEGRATION", [APP])
    assert error.value.status == 409
    assert policy_name("tag:X") == "X"


def test_policy_id_is_opaque_and_stable(engine):
    policy = engine.create_policy("P", [APP])
    assert len(policy.policy_id) == 43
    assert engine.policy_by_id(policy.policy_id).name == "P"
    assert engine.policy_by_id("nope") is None


def test_invalid_names_and_app_ids_are_refused(engine):
    with pytest.raises(PolicyEngineError):
        engine.create_policy("Tag:", [APP])
    with pytest.raises(PolicyEngineError):
        engine.create_policy("a/b", [APP])
    with pytest.raises(PolicyEngineError):
        engine.create_policy("P", [42])


def test_direct_grant_allows_only_listed_apps(engine):
    engine.create_policy("P", [APP])
    assert not engine.allows(ALICE, APP)
    engine.grant_user(ALICE, "Tag:P")
    assert engine.allows(ALICE, APP)
    assert engine.allows(ALICE.upper(), APP.upper())
    assert not engine.allows(ALICE, OTHER_APP)
    assert not engine.allows(BOB, APP)


def test_granting_another_policy_replaces_the_old_one(engine):
    engine.create_policy("First", [APP])
    engine.create_policy("Second", [OTHER_APP])
    engine.grant_user(ALICE, "First")
    engine.grant_user(ALICE, "Second")
    assert not engine.allows(ALICE, APP)
    assert engine.allows(ALICE, OTHER_APP)
    assert engine.grants()["direct"] == [{"user": ALICE, "policyName": "Second"}]


def test_revoke_with_none(engine):
    engine.create_policy("P", [APP])
    engine.grant_user(ALICE, "P")
    engine.grant_user(ALICE, None)
    assert not engine.allows(ALICE, APP)
    assert engine.effective(ALICE) is None


def test_direct_beats_group_beats_global(engine):
    engine.create_policy("Direct", [APP])
    engine.create_policy("Group", [OTHER_APP])
    engine.create_policy("Everyone", [])
    engine.grant_global("Everyone")
    assert engine.effective(ALICE).source == "global"
    engine.grant_group(GROUP_B, "Group", rank=1)
    assert engine.effective(ALICE).source == "group"
    assert engine.allows(ALICE, OTHER_APP)
    engine.grant_user(ALICE, "Direct")
    effective = engine.effective(ALICE)
    assert (effective.source, effective.policy.name) == ("direct", "Direct")
    assert not engine.allows(ALICE, OTHER_APP)
    # Bob has no direct grant: his group's policy applies
    assert engine.effective(BOB).policy.name == "Group"


def test_lowest_group_rank_wins_and_ranks_shift_on_insert(engine):
    engine.create_policy("A", [APP])
    engine.create_policy("B", [OTHER_APP])
    engine.grant_group(GROUP_A, "A", rank=1)
    engine.grant_group(GROUP_B, "B", rank=2)
    assert engine.effective(ALICE).policy.name == "A"  # member of both: rank 1 wins
    assert engine.effective(BOB).policy.name == "B"
    engine.grant_group(GROUP_B, "B", rank=1)  # B takes rank 1, A moves to 2
    assert engine.grants()["group"] == [
        {"group": GROUP_B, "rank": 1, "policyName": "B"},
        {"group": GROUP_A, "rank": 2, "policyName": "A"},
    ]
    assert engine.effective(ALICE).policy.name == "B"
    engine.grant_group(GROUP_B, None)
    assert engine.grants()["group"] == [{"group": GROUP_A, "rank": 1, "policyName": "A"}]


def test_group_grant_needs_a_valid_rank(engine):
    engine.create_policy("A", [APP])
    with pytest.raises(PolicyEngineError):
        engine.grant_group(GROUP_A, "A")
    with pytest.raises(PolicyEngineError):
        engine.grant_group(GROUP_A, "A", rank=0)


def test_granting_an_unknown_policy_is_404(engine):
    with pytest.raises(PolicyEngineError) as error:
        engine.grant_user(ALICE, "Missing")
    assert error.value.status == 404


def test_global_grant_and_revoke(engine):
    engine.create_policy("Everyone", [APP])
    engine.grant_global("Everyone")
    assert engine.allows(BOB, APP)
    engine.grant_global(None)
    assert not engine.allows(BOB, APP)


def test_update_policy_adds_and_removes_app_ids(engine):
    engine.create_policy("P", [APP])
    engine.grant_user(ALICE, "P")
    engine.update_policy("P", add_app_ids=[OTHER_APP])
    assert engine.allows(ALICE, OTHER_APP)
    engine.update_policy("P", remove_app_ids=[APP], description="only the other")
    assert not engine.allows(ALICE, APP)
    assert engine.policy("P").description == "only the other"


def test_deleting_a_policy_drops_its_grants(engine):
    engine.create_policy("P", [APP])
    engine.create_policy("Fallback", [APP])
    engine.grant_user(ALICE, "P")
    engine.grant_global("Fallback")
    engine.delete_policy("tag:p")
    assert engine.grants()["direct"] == []
    assert engine.effective(ALICE).source == "global"


def test_changes_reach_enforcement_only_after_the_delay(engine, clock, delay):
    delay["seconds"] = 60
    engine.create_policy("P", [APP])
    engine.grant_user(ALICE, "P")
    # the admin sees it at once ...
    assert engine.effective(ALICE).policy.name == "P"
    # ... enforcement does not
    assert not engine.allows(ALICE, APP)
    assert engine.pending_changes() == 2
    clock.now += 59
    assert not engine.allows(ALICE, APP)
    clock.now += 1
    assert engine.allows(ALICE, APP)
    # a revoke is delayed too
    engine.grant_user(ALICE, None)
    assert engine.effective(ALICE) is None
    assert engine.allows(ALICE, APP)
    clock.now += 60
    assert not engine.allows(ALICE, APP)


def test_changes_keep_their_order_when_the_delay_shrinks(engine, clock, delay):
    delay["seconds"] = 100
    engine.create_policy("P", [APP])
    delay["seconds"] = 0
    engine.grant_user(ALICE, "P")  # must not overtake the policy's creation
    assert not engine.allows(ALICE, APP)
    clock.now += 100
    assert engine.allows(ALICE, APP)


def test_persistence_round_trip(engine, memberships, clock):
    engine.create_policy("P", [APP], "desc")
    engine.grant_user(ALICE, "P")
    engine.grant_group(GROUP_B, "P", rank=1)
    engine.grant_global("P")
    copy = PolicyEngine("tenant-1", member_of=lambda u: memberships.get(u, set()), clock=clock)
    copy.load_dict(engine.to_dict())
    assert copy.grants() == engine.grants()
    assert copy.allows(ALICE, APP)
    assert copy.policy("P").policy_id == engine.policy("P").policy_id
