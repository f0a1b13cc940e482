"""setup app (runbook steps 1–2) on an in-memory directory: plan, ensure, idempotence, verification."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest

from meetgate.admin import registration as reg
from meetgate.graph.applications import (
    MICROSOFT_GRAPH_APP_ID,
    Application,
    AppRole,
    AppRoleAssignment,
    RequiredResourceAccess,
    ServicePrincipal,
)

ROLES = {
    "OnlineMeetings.ReadWrite.All": "b8bb2037-6e08-44ac-a4ea-4674e010e2a4",
    "OnlineMeetings.Read.All": "c1684f21-1984-47fa-9d61-2dc8c296bb70",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "User.ReadBasic.All": "97235f07-e226-4f63-ace3-39588e11d3a1",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
}


class InMemoryDirectory:
    """A fake of the RegistrationDirectory port; records every write."""

    def __init__(self) -> None:
        self.graph = ServicePrincipal(
            id=str(uuid.uuid4()),
            app_id=MICROSOFT_GRAPH_APP_ID,
            display_name="Microsoft Graph",
            app_roles=[
                AppRole(id=rid, value=name, allowed_member_types=["Application"])
                for name, rid in ROLES.items()
            ]
            + [AppRole(id=str(uuid.uuid4()), value="User.Read", allowed_member_types=["User"])],
        )
        self.apps: dict[str, Application] = {}
        self.sps: dict[str, ServicePrincipal] = {}
        self.assignments: list[AppRoleAssignment] = []
        self.writes: list[str] = []

    def find_applications(self, display_name: str) -> list[Application]:
        return [a for a in self.apps.values() if a.display_name == display_name]

    def find_application_by_app_id(self, app_id: str) -> Application | None:
        return next((a for a in self.apps.values() if a.app_id == app_id), None)

    def create_application(
        self,
        display_name: str,
        *,
        sign_in_audience: str = "AzureADMyOrg",
        required_resource_access: Sequence[RequiredResourceAccess] = (),
    ) -> Application:
        app = Application(
            id=str(uuid.uuid4()),
            app_id=str(uuid.uuid4()),
            display_name=display_name,
            sign_in_audience=sign_in_audience,
            required_resource_access=list(required_resource_access),
        )
        self.apps[app.id] = app
        self.writes.append("create_application")
        return app

    def set_required_resource_access(
        self, object_id: str, required_resource_access: Sequence[RequiredResourceAccess]
    ) -> None:
        self.apps[object_id] = self.apps[object_id].model_copy(
            update={"required_resource_access": list(required_resource_access)}
        )
        self.writes.append("set_required_resource_access")

    def find_service_principal(self, app_id: str) -> ServicePrincipal | None:
        if app_id == MICROSOFT_GRAPH_APP_ID:
            return self.graph
        return next((s for s in self.sps.values() if s.app_id == app_id), None)

    def create_service_principal(self, app_id: str) -> ServicePrincipal:
        sp = ServicePrincipal(id=str(uuid.uuid4()), app_id=app_id)
        self.sps[sp.id] = sp
        self.writes.append("create_service_principal")
        return sp

    def graph_service_principal(self) -> ServicePrincipal:
        return self.graph

    def app_role_assignments(self, service_principal_id: str) -> list[AppRoleAssignment]:
        return [a for a in self.assignments if a.principal_id == service_principal_id]

    def grant_app_role(self, *, resource_id: str, principal_id: str, app_role_id: str) -> AppRoleAssignment:
        assignment = AppRoleAssignment(
            id=str(uuid.uuid4()), app_role_id=app_role_id, principal_id=principal_id, resource_id=resource_id
        )
        self.assignments.append(assignment)
        self.writes.append(f"grant:{app_role_id}")
        return assignment


@pytest.fixture
def directory() -> InMemoryDirectory:
    return InMemoryDirectory()


def test_plan_on_empty_tenant_lists_every_step_and_changes_nothing(directory):
    result = reg.setup_app(directory, reg.RegistrationSpec(), apply=False)
    assert [c.action for c in result.changes] == [
        "create_application",
        "create_service_principal",
        "grant_admin_consent",
        "grant_admin_consent",
    ]
    assert {c.target for c in result.changes if c.action == "grant_admin_consent"} == {
        "OnlineMeetings.ReadWrite.All",
        "User.ReadBasic.All",
    }
    assert directory.writes == []
    assert result.applied is False and result.client_id is None


def test_setup_creates_everything_then_a_second_run_changes_nothing(directory):
    first = reg.setup_app(directory, reg.RegistrationSpec())
    assert [c.action for c in first.changes] == [
        "create_application",
        "create_service_principal",
        "grant_admin_consent",
        "grant_admin_consent",
    ]
    assert first.check is not None and first.check.ok
    assert set(first.check.granted) == {"OnlineMeetings.ReadWrite.All", "User.ReadBasic.All"}
    app = directory.apps[first.application_object_id]
    assert app.sign_in_audience == "AzureADMyOrg"
    assert app.requested_role_ids() == {ROLES["OnlineMeetings.ReadWrite.All"], ROLES["User.ReadBasic.All"]}
    writes = list(directory.writes)

    second = reg.setup_app(directory, reg.RegistrationSpec())
    assert second.changes == ()
    assert directory.writes == writes
    assert (second.client_id, second.service_principal_id) == (first.client_id, first.service_principal_id)
    assert reg.setup_app(directory, reg.RegistrationSpec(), apply=False).changes == ()


def test_plan_matches_what_apply_does_on_a_partial_registration(directory):
    app = directory.create_application("Teams Meetings Integration", required_resource_access=[])
    directory.writes.clear()
    spec = reg.RegistrationSpec(permissions=reg.required_permissions("all"))
    planned = [c.action for c in reg.setup_app(directory, spec, apply=False).changes]
    assert directory.writes == []
    applied = reg.setup_app(directory, spec)
    assert (
        [c.action for c in applied.changes]
        == planned
        == [
            "add_required_permissions",
            "create_service_principal",
            "grant_admin_consent",
            "grant_admin_consent",
        ]
    )
    assert applied.client_id == app.app_id
    assert set(applied.check.granted) == {"OnlineMeetings.ReadWrite.All", "User.Read.All"}


def test_role_ids_come_from_graphs_app_roles_not_a_fixed_list(directory):
    # a tenant whose Graph service principal carries another id for the role is followed
    other = str(uuid.uuid4())
    directory.graph.app_roles[0] = AppRole(
        id=other, value="OnlineMeetings.ReadWrite.All", allowed_member_types=["Application"]
    )
    result = reg.setup_app(directory, reg.RegistrationSpec())
    assert other in {a.app_role_id for a in directory.assignments}
    assert result.check.ok


def test_extra_permissions_are_findings_not_removed(directory):
    result = reg.setup_app(directory, reg.RegistrationSpec())
    sp_id = result.service_principal_id
    directory.grant_app_role(
        resource_id=directory.graph.id, principal_id=sp_id, app_role_id=ROLES["AuditLog.Read.All"]
    )
    again = reg.setup_app(directory, reg.RegistrationSpec())
    assert again.changes == ()
    assert again.check.extra == ("AuditLog.Read.All",)
    assert [f.code for f in again.findings] == ["permission.extra"]
    assert ROLES["AuditLog.Read.All"] in {a.app_role_id for a in directory.assignments}


def test_missing_consent_is_reported_by_check():
    d = InMemoryDirectory()
    check = reg.check_permissions_granted(d.graph, [], reg.required_permissions("basic"))
    assert not check.ok
    assert check.missing == ("OnlineMeetings.ReadWrite.All", "User.ReadBasic.All")
    assert {f.code for f in check.findings} == {"permission.not_granted"}


def test_multi_tenant_app_is_a_finding(directory):
    directory.create_application("Teams Meetings Integration", sign_in_audience="AzureADMultipleOrgs")
    result = reg.setup_app(directory, reg.RegistrationSpec())
    assert "application.multi_tenant" in {f.code for f in result.findings}


def test_two_apps_with_the_name_is_an_error_that_changes_nothing(directory):
    directory.create_application("Teams Meetings Integration")
    directory.create_application("Teams Meetings Integration")
    directory.writes.clear()
    with pytest.raises(reg.RegistrationError, match="2 applications are named") as info:
        reg.setup_app(directory, reg.RegistrationSpec())
    assert "client_id" in info.value.remedy
    assert directory.writes == []


def test_profile_client_id_not_in_tenant_is_an_error(directory):
    with pytest.raises(reg.RegistrationError, match="not an application in this tenant"):
        reg.setup_app(directory, reg.RegistrationSpec(client_id=str(uuid.uuid4())))
    assert directory.writes == []


def test_client_id_selects_the_app_among_namesakes(directory):
    directory.create_application("Teams Meetings Integration")
    chosen = directory.create_application("Teams Meetings Integration")
    result = reg.setup_app(directory, reg.RegistrationSpec(client_id=chosen.app_id))
    assert result.application_object_id == chosen.id


def test_unknown_permission_and_user_read_are_rejected(directory):
    with pytest.raises(reg.RegistrationError, match=r"no application permission named Meetings\.Everything"):
        reg.setup_app(directory, reg.RegistrationSpec(permissions=("Meetings.Everything",)))
    with pytest.raises(reg.RegistrationError, match="basic' or 'all"):
        reg.required_permissions("some")
    assert directory.writes == []


class LaggingDirectory(InMemoryDirectory):
    """Entra's replication lag: a new app / service principal is "not there" for a few requests."""

    def __init__(self, lag: int) -> None:
        super().__init__()
        self.lag = {"sp": lag, "grant": lag}

    def _maybe_lag(self, what: str, message: str) -> None:
        from meetgate.graph.errors import BadRequestError

        if self.lag[what] > 0:
            self.lag[what] -= 1
            raise BadRequestError(message, status=400, code="Request_BadRequest")

    def create_service_principal(self, app_id):
        self._maybe_lag(
            "sp",
            f"The appId '{app_id}' of the service principal does not reference a valid application object.",
        )
        return super().create_service_principal(app_id)

    def grant_app_role(self, *, resource_id, principal_id, app_role_id):
        self._maybe_lag(
            "grant",
            f"Resource '{principal_id}' does not exist or one of its queried reference-property objects are not present.",
        )
        return super().grant_app_role(
            resource_id=resource_id, principal_id=principal_id, app_role_id=app_role_id
        )


def test_replication_lag_is_retried_with_backoff():
    directory = LaggingDirectory(lag=2)
    sleeps: list[float] = []
    result = reg.setup_app(directory, reg.RegistrationSpec(), sleep=sleeps.append)
    assert result.check.ok and sleeps == [1.0, 2.0, 1.0, 2.0]


def test_other_bad_requests_are_not_retried():
    from meetgate.graph.errors import BadRequestError

    sleeps: list[float] = []

    def call():
        raise BadRequestError("Permission being assigned already exists on the object", status=400)

    with pytest.raises(BadRequestError):
        reg.with_replication_retry(call, sleep=sleeps.append)
    assert sleeps == []


def test_replication_retry_gives_up():
    directory = LaggingDirectory(lag=99)
    sleeps: list[float] = []
    from meetgate.graph.errors import BadRequestError

    with pytest.raises(BadRequestError, match="does not reference"):
        reg.setup_app(directory, reg.RegistrationSpec(), sleep=sleeps.append)
    assert len(sleeps) == reg.REPLICATION_ATTEMPTS - 1


def test_a_plan_reports_a_consent_it_would_grant_as_pending_not_as_an_error(directory):
    reg.setup_app(directory, reg.RegistrationSpec())
    spec = reg.RegistrationSpec(permissions=reg.required_permissions("all"))
    plan = reg.setup_app(directory, spec, apply=False)
    assert ("grant_admin_consent", "User.Read.All") in [(c.action, c.target) for c in plan.changes]
    assert plan.check is not None and plan.check.missing == ("User.Read.All",)
    pending = [f for f in plan.findings if f.subject == "User.Read.All"]
    assert [(f.severity, f.code) for f in pending] == [("info", "permission.consent_pending")]
    assert not any(f.severity == "error" for f in plan.findings)


def test_calendar_placement_gets_an_entra_calendar_permission_only_when_unscoped():
    assert "Calendars.ReadWrite" not in reg.required_permissions("basic", "scoped")
    assert "Calendars.ReadWrite" not in reg.required_permissions("basic")
    assert reg.required_permissions("basic", "tenant-wide")[-1] == "Calendars.ReadWrite"
    with pytest.raises(reg.RegistrationError, match="--calendar"):
        reg.required_permissions("basic", "everywhere")
