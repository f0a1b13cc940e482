"""The calendar plane's use cases over fakes: the [mailbox_scope] section, the planner, the script,
and verify's polling through Exchange's cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from meetgate.admin.mailbox_scope.loader import load_mailbox_scope
from meetgate.admin.mailbox_scope.model import Assignment, ExchangeState, MailboxScopeError, Pointer, Scope
from meetgate.admin.mailbox_scope.planner import ScopeOrganizers, build_plan
from meetgate.admin.mailbox_scope.script import render_script
from meetgate.admin.mailbox_scope.verify import check_events, verify
from meetgate.admin.policy.loader import load_desired_state
from meetgate.admin.policy.model import DirectoryUser

APP = "11111111-2222-3333-4444-555555555555"
SP = "99999999-0000-4000-8000-000000000001"
ALICE = DirectoryUser("aaaaaaaa-0000-4000-8000-000000000001", "alice@contoso.test")
BOB = DirectoryUser("bbbbbbbb-0000-4000-8000-000000000002", "bob@contoso.test")
FILTER = "CustomAttribute10 -eq 'meetgate-organizer'"
NAME = "meetgate approved organizers"
OURS = "meetgate Calendars.ReadWrite meetgate approved organizers"


def _file(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        f'[policy]\nidentity = "Tag:T"\napp_ids = ["{APP}"]\n\n[organizers]\nusers = ["alice@contoso.test"]\n\n'
        + section
    )
    return path


def _load(path: Path):
    return load_mailbox_scope(path, load_desired_state(path))


def test_an_empty_section_scopes_the_teams_policy_organizers(tmp_path):
    desired = _load(_file(tmp_path, "[mailbox_scope]\n"))
    assert desired is not None and desired.organizers_from == "policy" and desired.mode == "attribute"
    assert desired.organizers.users == ("alice@contoso.test",) and desired.app_id == APP
    assert desired.recipient_filter(None) == FILTER
    assert _load(_file(tmp_path, "")) is None


@pytest.mark.parametrize(
    ("section", "words"),
    [
        (
            "[mailbox_scope]\ncustom_atribute = 'CustomAttribute3'\n",
            ["line 9", "unknown key", "custom_atribute"],
        ),
        (
            "[mailbox_scope]\ncustom_attribute = 'CustomAttribute99'\n",
            ["line 9", "custom_attribute", "CustomAttribute99"],
        ),
        (
            "[mailbox_scope]\nrole = 'Application Mail.Read'\n",
            ["line 9", "role", "calendar application role"],
        ),
        ("[mailbox_scope]\nusers = ['not a user']\n", ["line 9", "users entry 1"]),
        ("[mailbox_scope]\ngroup = 'sales'\n", ["line 9", "group", "GUID"]),
        (
            f"[mailbox_scope]\ngroup = '{ALICE.id}'\nusers = ['bob@contoso.test']\n",
            ["group", "not both"],
        ),
    ],
)
def test_a_bad_field_is_refused_naming_file_field_and_line(tmp_path, section, words):
    with pytest.raises(MailboxScopeError) as info:
        _load(_file(tmp_path, section))
    message = str(info.value)
    assert "policy.toml" in message and all(word in message for word in words), message


def test_the_teams_policy_loader_accepts_the_section(tmp_path):
    assert load_desired_state(_file(tmp_path, "[mailbox_scope]\ntag = 'x'\n")).app_ids == (APP,)


def _desired(tmp_path):
    desired = _load(_file(tmp_path, "[mailbox_scope]\n"))
    assert desired is not None
    return desired


ORGANIZERS = ScopeOrganizers({ALICE.id: ALICE}, {ALICE.id: ALICE})


def _in_sync(**over) -> ExchangeState:
    state = ExchangeState(
        pointers=[Pointer(APP, SP, "meetgate")],
        scopes={NAME: Scope(NAME, FILTER)},
        assignments=[Assignment(OURS, "Application Calendars.ReadWrite", SP, "CustomRecipientScope", NAME)],
        tagged={ALICE.id: ALICE.upn},
    )
    for key, value in over.items():
        setattr(state, key, value)
    return state


def test_from_nothing_to_the_scope_and_then_nothing_to_do(tmp_path):
    desired = _desired(tmp_path)
    plan = build_plan(desired, ORGANIZERS, ExchangeState(), service_principal_id=SP)
    assert [s.action for s in plan.steps] == ["new-service-principal", "tag", "new-scope", "new-assignment"]
    assert not build_plan(desired, ORGANIZERS, _in_sync(), service_principal_id=SP).has_changes


def test_an_organization_wide_assignment_is_removed_with_a_warning(tmp_path):
    wide = Assignment("Calendars everywhere", "Application Calendars.ReadWrite", SP, "Organization")
    state = _in_sync(assignments=[*_in_sync().assignments, wide])
    plan = build_plan(_desired(tmp_path), ORGANIZERS, state, service_principal_id=SP)
    assert [(s.action, s.target) for s in plan.steps] == [("remove-assignment", "Calendars everywhere")]
    assert [w.code for w in plan.warnings] == ["extra-assignment"]


def test_a_changed_filter_recreates_scope_and_assignment_and_untags_who_left(tmp_path):
    state = _in_sync(scopes={NAME: Scope(NAME, "Department -eq 'Sales'")}, tagged={BOB.id: BOB.upn})
    plan = build_plan(_desired(tmp_path), ORGANIZERS, state, service_principal_id=SP)
    assert [s.action for s in plan.steps] == [
        "tag",
        "untag",
        "remove-assignment",
        "remove-scope",
        "new-scope",
        "new-assignment",
    ]


def test_the_script_guards_every_step_and_tests_in_and_out_of_scope(tmp_path):
    plan = build_plan(_desired(tmp_path), ORGANIZERS, ExchangeState(), service_principal_id=SP)
    text = render_script(plan, organization="contoso.onmicrosoft.com", outside=["eve@contoso.test"])
    assert "Start-Transcript" in text and "[string]$Organization = 'contoso.onmicrosoft.com'" in text
    assert f"if ($null -eq (Get-ServicePrincipal -Identity '{APP}' -ErrorAction SilentlyContinue))" in text
    assert (
        f"New-ManagementScope -Name '{NAME}' -RecipientRestrictionFilter 'CustomAttribute10 -eq ''meetgate-organizer'''"
        in text
    )
    assert f"Set-Mailbox -Identity '{ALICE.id}' -CustomAttribute10 'meetgate-organizer'" in text
    assert "resource = 'alice@contoso.test'; expected = $true" in text
    assert "resource = 'eve@contoso.test'; expected = $false" in text
    assert text.rstrip().endswith("(30 minutes to 2 hours)'")


class FakeBackend:
    name = "fake"

    def __init__(self, in_scope: set[str]) -> None:
        self.in_scope = in_scope

    def read_state(self, desired):
        return ExchangeState()

    def apply(self, steps, attribute):
        return []

    def test_authorization(self, app_id, role, resources):
        return {r: r in self.in_scope for r in resources}


class FakeProbe:
    """Exchange's cache: the organizer is refused until ``ready_after`` attempts."""

    def __init__(self, ready_after: int) -> None:
        self.calls = 0
        self.ready_after = ready_after

    def try_create(self, organizer):
        self.calls += 1
        if organizer.startswith("eve"):
            return "denied", "ErrorAccessDenied"
        return ("created", "ok") if self.calls > self.ready_after * 2 else ("denied", "ErrorAccessDenied")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_event_test_polls_through_the_cache_until_the_deadline():
    clock = FakeClock()
    passed = check_events(
        FakeProbe(ready_after=2),
        "alice@contoso.test",
        "eve@contoso.test",
        wait_seconds=7200,
        poll_seconds=1800,
        clock=clock,
        sleep=clock.sleep,
    )
    assert passed.status == "pass" and passed.evidence["attempts"] == 3 and clock.now == 3600
    clock = FakeClock()
    pending = check_events(
        FakeProbe(ready_after=99),
        "alice@contoso.test",
        "eve@contoso.test",
        wait_seconds=3600,
        poll_seconds=1800,
        clock=clock,
        sleep=clock.sleep,
    )
    assert pending.status == "pending" and "30 minutes to 2 hours" in pending.finding


def test_verify_fails_when_an_outsider_is_in_scope_and_skips_the_events(tmp_path):
    plan = build_plan(_desired(tmp_path), ORGANIZERS, ExchangeState(), service_principal_id=SP)
    backend = FakeBackend({ALICE.upn, "eve@contoso.test"})
    report = verify(plan, backend, outside=["eve@contoso.test"], roles=[], probe=FakeProbe(0))
    statuses = {c.name: c.status for c in report.checks}
    assert statuses == {"authorization": "fail", "entra_grant": "pass", "events": "skip"} and not report.ok
    good = verify(
        plan, FakeBackend({ALICE.upn}), outside=["eve@contoso.test"], roles=["Calendars.Read"], probe=None
    )
    assert {c.name: c.status for c in good.checks}["entra_grant"] == "fail"


UNIT = "0a0b0c0d-0000-4000-8000-00000000a0a0"
CAROL = DirectoryUser("cccccccc-0000-4000-8000-000000000003", "carol@contoso.test")


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ("[mailbox_scope]\nadministrative_unit = 'pilot'\n", ["line 9", "administrative_unit", "GUID"]),
        (
            f"[mailbox_scope]\ngroup = '{ALICE.id}'\nadministrative_unit = '{UNIT}'\n",
            ["line 10", "administrative_unit", "not both"],
        ),
    ],
)
def test_a_bad_administrative_unit_is_refused_naming_file_field_and_line(tmp_path, section, words):
    with pytest.raises(MailboxScopeError) as info:
        _load(_file(tmp_path, section))
    message = str(info.value)
    assert "policy.toml" in message and all(word in message for word in words), message


def _unit_desired(tmp_path):
    desired = _load(_file(tmp_path, f"[mailbox_scope]\nadministrative_unit = '{UNIT.upper()}'\n"))
    assert desired is not None and desired.mode == "administrative_unit"
    assert desired.administrative_unit == UNIT and desired.organizers_from == "policy"
    return desired


class FakeScopeDirectory:
    def __init__(self, unit: list[DirectoryUser] | None) -> None:
        self.unit = unit

    def find_users(self, refs):
        known = {u.upn: u for u in (ALICE, BOB, CAROL)}
        return {ref: known[ref] for ref in refs if ref in known}

    def group_members(self, group_id):
        return None

    def direct_members(self, group_id):
        return None

    def sample_users(self, limit):
        return [ALICE, BOB, CAROL][:limit]

    def unit_members(self, unit_id):
        assert unit_id == UNIT
        return self.unit


def test_an_administrative_unit_scope_plans_an_assignment_and_no_management_scope(tmp_path):
    from meetgate.admin.mailbox_scope.planner import resolve_scope_organizers

    desired = _unit_desired(tmp_path)
    organizers = resolve_scope_organizers(desired, FakeScopeDirectory([ALICE, CAROL]))
    assert list(organizers.in_scope) == [ALICE.id] and organizers.unapproved_members == [CAROL]
    assert set(organizers.covered()) >= {ALICE.id, CAROL.upn}
    plan = build_plan(desired, organizers, ExchangeState(), service_principal_id=SP)
    assert [s.action for s in plan.steps] == ["new-service-principal", "new-assignment"]
    assert plan.steps[-1].param("RecipientAdministrativeUnitScope") == UNIT
    assert plan.to_dict()["administrativeUnit"] == UNIT and plan.recipient_filter == ""
    assert [w.code for w in plan.warnings] == ["unit-members-not-approved"]
    text = render_script(plan, outside=["bob@contoso.test"])
    assert f"-RecipientAdministrativeUnitScope '{UNIT}' | Out-Null" in text
    assert "New-ManagementScope" not in text
    held = ExchangeState(
        pointers=[Pointer(APP, SP, "meetgate")],
        assignments=[Assignment(OURS, "Application Calendars.ReadWrite", SP, "AdministrativeUnit", UNIT)],
    )
    assert not build_plan(desired, organizers, held, service_principal_id=SP).has_changes
    # a management-scope assignment from the attribute mode is replaced
    old = ExchangeState(
        pointers=[Pointer(APP, SP, "meetgate")],
        scopes={NAME: Scope(NAME, FILTER)},
        assignments=[Assignment(OURS, "Application Calendars.ReadWrite", SP, "CustomRecipientScope", NAME)],
    )
    replaced = build_plan(desired, organizers, old, service_principal_id=SP)
    assert [s.action for s in replaced.steps] == ["remove-assignment", "new-assignment"]


def test_approved_organizers_outside_the_unit_are_a_warning_in_plan_and_verify(tmp_path):
    from meetgate.admin.mailbox_scope.planner import resolve_scope_organizers

    path = _file(
        tmp_path,
        f"[mailbox_scope]\nusers = ['alice@contoso.test', 'bob@contoso.test']\nadministrative_unit = '{UNIT}'\n",
    )
    desired = _load(path)
    assert desired is not None and desired.organizers_from == "own"
    organizers = resolve_scope_organizers(desired, FakeScopeDirectory([ALICE]))
    plan = build_plan(desired, organizers, ExchangeState(), service_principal_id=SP)
    [warning] = [w for w in plan.warnings if w.code == "organizers-outside-unit"]
    assert warning.sample == (BOB.upn,)
    report = verify(plan, FakeBackend({ALICE.upn}), outside=["eve@contoso.test"], roles=[], probe=None)
    [auth] = [c for c in report.checks if c.name == "authorization"]
    assert auth.status == "pass" and "not members of administrative unit" in auth.finding
    assert auth.evidence["approved_outside_unit"] == [BOB.upn]
    missing = resolve_scope_organizers(desired, FakeScopeDirectory(None))
    plan = build_plan(desired, missing, ExchangeState(), service_principal_id=SP)
    assert "unknown-administrative-unit" in [w.code for w in plan.warnings]
    report = verify(plan, FakeBackend(set()), outside=["eve@contoso.test"], roles=[], probe=None)
    assert [c.status for c in report.checks if c.name == "authorization"] == ["fail"]
