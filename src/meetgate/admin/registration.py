"""Runbook steps 1 and 2: the app registration, its service principal, its application permissions
and admin consent — ensured idempotently, planned before they are changed, verified after.

The directory is reached through :class:`RegistrationDirectory`, a small port that
:class:`meetgate.graph.applications.ApplicationsService` implements (tests use an in-memory fake).

Flow of :func:`setup_app`::

    read_registration_state ──► plan_registration (pure: desired vs current → changes)
            │                        │ --plan stops here
            ▼                        ▼
    ensure_application → ensure_permissions → ensure_service_principal → ensure_admin_consent
            ▼
    check_permissions_granted (re-read: every required role granted? anything extra?)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from meetgate.admin.findings import Finding, sort_findings
from meetgate.errors import MeetgateError
from meetgate.graph.applications import (
    MICROSOFT_GRAPH_APP_ID,
    SINGLE_TENANT,
    Application,
    AppRoleAssignment,
    RequiredResourceAccess,
    ResourceAccess,
    ServicePrincipal,
)

if TYPE_CHECKING:
    from meetgate.graph.applications import ApplicationsService

DEFAULT_DISPLAY_NAME = "Teams Meetings Integration"
ONLINE_MEETINGS_READWRITE = "OnlineMeetings.ReadWrite.All"
USER_READ_PERMISSIONS = {"basic": "User.ReadBasic.All", "all": "User.Read.All"}

ChangeAction = Literal[
    "create_application",
    "add_required_permissions",
    "create_service_principal",
    "grant_admin_consent",
]


class RegistrationError(MeetgateError, ValueError):
    """The registration cannot be ensured as asked; nothing further was changed."""


#: calendar placement: "none" (standalone meetings only), "scoped" (Exchange RBAC for Applications:
#: no Entra calendar permission at all) or "tenant-wide" (Entra Calendars.ReadWrite, every mailbox)
CALENDAR_CHOICES = ("none", "scoped", "tenant-wide")
CALENDARS_READWRITE = "Calendars.ReadWrite"


def required_permissions(
    user_read: str = "basic", calendar: str = "none", artifacts: Sequence[str] = ()
) -> tuple[str, ...]:
    """The runbook's application permissions: meetings, plus the least user-read that will do, plus
    Entra ``Calendars.ReadWrite`` only for unscoped (tenant-wide) calendar placement — a scoped one gets
    its access from an Exchange role assignment (`meetgate mailbox-scope`), and an Entra grant beside it
    would void the scope (the two add up) — plus one read permission per meeting-artifact kind the
    profile enables (``artifacts``: attendance, transcripts, recordings), and none for the others."""
    from meetgate.graph.artifact_models import artifact_permissions

    try:
        extra = artifact_permissions(artifacts)
    except ValueError as exc:
        raise RegistrationError(str(exc), "fix `artifacts` in the profile (docs/configuration.md)") from None
    if calendar not in CALENDAR_CHOICES:
        raise RegistrationError(
            f"--calendar must be one of {', '.join(CALENDAR_CHOICES)}, not {calendar!r}",
            "use 'scoped' with `meetgate mailbox-scope` (least privilege), 'none' for standalone meetings only",
        )
    try:
        base = (ONLINE_MEETINGS_READWRITE, USER_READ_PERMISSIONS[user_read])
    except KeyError:
        raise RegistrationError(
            f"--user-read must be 'basic' or 'all', not {user_read!r}",
            "use 'basic' (User.ReadBasic.All, least privilege) unless the app needs full user profiles",
        ) from None
    calendars = (CALENDARS_READWRITE,) if calendar == "tenant-wide" else ()
    return (*base, *calendars, *extra)


@dataclass(frozen=True)
class RegistrationSpec:
    """What the registration should look like."""

    display_name: str = DEFAULT_DISPLAY_NAME
    permissions: tuple[str, ...] = required_permissions("basic")
    #: the profile's client id when it has one: the app is then looked up by id, not by name
    client_id: str | None = None


class RegistrationDirectory(Protocol):
    """The directory operations step 1–2 need (implemented by ``ApplicationsService``)."""

    def find_applications(self, display_name: str) -> list[Application]: ...

    def find_application_by_app_id(self, app_id: str) -> Application | None: ...

    def create_application(
        self,
        display_name: str,
        *,
        sign_in_audience: str = ...,
        required_resource_access: Sequence[RequiredResourceAccess] = ...,
    ) -> Application: ...

    def set_required_resource_access(
        self, object_id: str, required_resource_access: Sequence[RequiredResourceAccess]
    ) -> None: ...

    def find_service_principal(self, app_id: str) -> ServicePrincipal | None: ...

    def create_service_principal(self, app_id: str) -> ServicePrincipal: ...

    def graph_service_principal(self) -> ServicePrincipal: ...

    def app_role_assignments(self, service_principal_id: str) -> list[AppRoleAssignment]: ...

    def grant_app_role(
        self, *, resource_id: str, principal_id: str, app_role_id: str
    ) -> AppRoleAssignment: ...


@dataclass(frozen=True)
class Change:
    action: ChangeAction
    #: what is changed (a display name, an app id, a permission)
    target: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"action": self.action, "target": self.target, "detail": self.detail}


@dataclass(frozen=True)
class RegistrationState:
    """What the directory holds now."""

    graph: ServicePrincipal
    application: Application | None
    service_principal: ServicePrincipal | None
    assignments: tuple[AppRoleAssignment, ...] = ()


@dataclass(frozen=True)
class PermissionCheck:
    """The runbook's "Granted for <tenant>" check, from the service principal's role assignments."""

    required: tuple[str, ...]
    granted: tuple[str, ...]
    missing: tuple[str, ...]
    #: application permissions held beyond the required ones (names, or resource:roleId)
    extra: tuple[str, ...]
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class SetupResult:
    applied: bool
    changes: tuple[Change, ...]
    client_id: str | None
    application_object_id: str | None
    service_principal_id: str | None
    check: PermissionCheck | None
    findings: tuple[Finding, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "changed": bool(self.changes) and self.applied,
            "changes": [c.to_dict() for c in self.changes],
            "client_id": self.client_id,
            "application_object_id": self.application_object_id,
            "service_principal_id": self.service_principal_id,
            "permissions": None
            if self.check is None
            else {
                "required": list(self.check.required),
                "granted": list(self.check.granted),
                "missing": list(self.check.missing),
                "extra": list(self.check.extra),
            },
            "findings": [f.to_dict() for f in self.findings],
        }


# --- reading and planning (pure past the reads) ------------------------------------------------


def resolve_role_ids(graph: ServicePrincipal, permissions: Sequence[str]) -> dict[str, str]:
    """Permission name → app role id, from Microsoft Graph's ``appRoles`` (never a hard-coded list)."""
    roles = graph.application_roles()
    by_lower = {name.lower(): (name, role_id) for name, role_id in roles.items()}
    resolved: dict[str, str] = {}
    unknown: list[str] = []
    for permission in permissions:
        hit = by_lower.get(permission.lower())
        if hit is None:
            unknown.append(permission)
        else:
            resolved[hit[0]] = hit[1].lower()
    if unknown:
        raise RegistrationError(
            f"Microsoft Graph has no application permission named {', '.join(unknown)}",
            "check the spelling (e.g. OnlineMeetings.ReadWrite.All, User.ReadBasic.All)",
        )
    return resolved


def read_registration_state(directory: RegistrationDirectory, spec: RegistrationSpec) -> RegistrationState:
    graph = directory.graph_service_principal()
    application: Application | None
    if spec.client_id:
        application = directory.find_application_by_app_id(spec.client_id)
        if application is None:
            raise RegistrationError(
                f"the profile's client_id {spec.client_id} is not an application in this tenant",
                "check tenant_id, or remove client_id from the profile to create a new registration",
            )
    else:
        matches = directory.find_applications(spec.display_name)
        if len(matches) > 1:
            ids = ", ".join(app.app_id for app in matches)
            raise RegistrationError(
                f"{len(matches)} applications are named {spec.display_name!r} ({ids})",
                "set client_id in the profile to the one to use, or pass another --name",
            )
        application = matches[0] if matches else None
    service_principal = None
    assignments: tuple[AppRoleAssignment, ...] = ()
    if application is not None:
        service_principal = directory.find_service_principal(application.app_id)
        if service_principal is not None:
            assignments = tuple(directory.app_role_assignments(service_principal.id))
    return RegistrationState(graph, application, service_principal, assignments)


def _granted_role_ids(state: RegistrationState) -> set[str]:
    return {a.app_role_id.lower() for a in state.assignments if a.resource_id == state.graph.id}


def plan_registration(spec: RegistrationSpec, state: RegistrationState) -> list[Change]:
    """The changes that would bring ``state`` to ``spec``, in the order they would be made."""
    role_ids = resolve_role_ids(state.graph, spec.permissions)
    changes: list[Change] = []
    app = state.application
    name = app.display_name if app and app.display_name else spec.display_name
    if app is None:
        changes.append(
            Change(
                "create_application",
                spec.display_name,
                f"single-tenant app registration requesting {', '.join(role_ids)}",
            )
        )
    else:
        requested = app.requested_role_ids()
        missing_requests = [p for p, rid in role_ids.items() if rid not in requested]
        if missing_requests:
            changes.append(
                Change(
                    "add_required_permissions",
                    name,
                    f"request Microsoft Graph application permissions {', '.join(missing_requests)}",
                )
            )
    if state.service_principal is None:
        changes.append(
            Change(
                "create_service_principal",
                app.app_id if app else spec.display_name,
                "enterprise application (service principal) in this tenant",
            )
        )
    granted = _granted_role_ids(state) if state.service_principal else set()
    for permission, role_id in role_ids.items():
        if role_id not in granted:
            changes.append(
                Change("grant_admin_consent", permission, f"app role assignment of {role_id} to {name}")
            )
    return changes


def check_permissions_granted(
    graph: ServicePrincipal,
    assignments: Sequence[AppRoleAssignment],
    required: Sequence[str],
    application: Application | None = None,
) -> PermissionCheck:
    """Every required permission granted? Any permission held beyond them is a finding."""
    names_by_id = {role_id.lower(): name for name, role_id in graph.application_roles().items()}
    role_ids = resolve_role_ids(graph, required)
    held: dict[str, str] = {}
    for a in assignments:
        if a.resource_id == graph.id:
            held[a.app_role_id.lower()] = names_by_id.get(a.app_role_id.lower(), a.app_role_id)
        else:
            resource = a.resource_display_name or a.resource_id
            held[f"{a.resource_id}:{a.app_role_id}".lower()] = f"{resource}:{a.app_role_id}"
    required_ids = set(role_ids.values())
    granted = tuple(p for p, rid in role_ids.items() if rid in held)
    missing = tuple(p for p, rid in role_ids.items() if rid not in held)
    extra = tuple(sorted(name for key, name in held.items() if key not in required_ids))
    findings: list[Finding] = [
        Finding(
            "error",
            "permission.not_granted",
            f"{p} is not granted (no admin consent)",
            "run `meetgate setup app` as a Global or Application Administrator",
            subject=p,
        )
        for p in missing
    ]
    findings += [
        Finding(
            "warning",
            "permission.extra",
            f"the app holds {name}, which the integration does not need",
            "remove the permission and revoke its admin consent unless another use needs it "
            "(least privilege keeps the blast radius small)",
            subject=name,
        )
        for name in extra
    ]
    if application is not None:
        needless = sorted(
            names_by_id.get(rid, rid)
            for rid in application.requested_role_ids() - required_ids
            if rid not in held
        )
        findings += [
            Finding(
                "info",
                "permission.requested_not_needed",
                f"the registration requests {name} (not granted, not needed)",
                "remove it from API permissions to keep the registration minimal",
                subject=name,
            )
            for name in needless
        ]
        if application.sign_in_audience and application.sign_in_audience != SINGLE_TENANT:
            findings.append(
                Finding(
                    "warning",
                    "application.multi_tenant",
                    f"the app's sign-in audience is {application.sign_in_audience}",
                    "the runbook recommends single tenant (AzureADMyOrg); change it under "
                    "Authentication > Supported account types",
                    subject=application.app_id,
                )
            )
    return PermissionCheck(tuple(required), granted, missing, extra, findings=tuple(sort_findings(findings)))


# --- the ensure steps (each idempotent, each returns what it changed) -------------------------

T = TypeVar("T")
#: Entra replicates new objects across its directory replicas; a service principal made a moment ago
#: can be "not found" by the next request. These messages are retried with back-off.
_REPLICATION = re.compile(
    r"does not exist or one of its queried reference-property objects|does not reference a valid application",
    re.IGNORECASE,
)
REPLICATION_ATTEMPTS = 6


def with_replication_retry(
    call: Callable[[], T],
    *,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = REPLICATION_ATTEMPTS,
) -> T:
    """Run ``call``; retry 400/404 answers that say a just-created object is not there yet."""
    from meetgate.graph.errors import BadRequestError, NotFoundError

    for attempt in range(attempts):
        try:
            return call()
        except (BadRequestError, NotFoundError) as exc:
            if attempt + 1 >= attempts or not _REPLICATION.search(exc.message):
                raise
            sleep(min(2.0**attempt, 16.0))
    raise AssertionError("unreachable")  # pragma: no cover


def _graph_access(role_ids: Sequence[str]) -> RequiredResourceAccess:
    return RequiredResourceAccess(
        resource_app_id=MICROSOFT_GRAPH_APP_ID,
        resource_access=[ResourceAccess(id=rid, type="Role") for rid in role_ids],
    )


def ensure_application(
    directory: RegistrationDirectory, spec: RegistrationSpec, state: RegistrationState
) -> tuple[Application, list[Change]]:
    if state.application is not None:
        return state.application, []
    role_ids = resolve_role_ids(state.graph, spec.permissions)
    app = directory.create_application(
        spec.display_name,
        sign_in_audience=SINGLE_TENANT,
        required_resource_access=[_graph_access(list(role_ids.values()))],
    )
    return app, [
        Change("create_application", spec.display_name, f"created app {app.app_id} (object {app.id})")
    ]


def ensure_permissions(
    directory: RegistrationDirectory, application: Application, role_ids: dict[str, str]
) -> list[Change]:
    """Add the missing required roles to ``requiredResourceAccess``, keeping everything else."""
    requested = application.requested_role_ids()
    missing = {p: rid for p, rid in role_ids.items() if rid not in requested}
    if not missing:
        return []
    merged: list[RequiredResourceAccess] = []
    found_graph = False
    for rra in application.required_resource_access:
        if rra.resource_app_id.lower() == MICROSOFT_GRAPH_APP_ID:
            found_graph = True
            rra = RequiredResourceAccess(
                resource_app_id=rra.resource_app_id,
                resource_access=[
                    *rra.resource_access,
                    *(ResourceAccess(id=rid, type="Role") for rid in missing.values()),
                ],
            )
        merged.append(rra)
    if not found_graph:
        merged.append(_graph_access(list(missing.values())))
    directory.set_required_resource_access(application.id, merged)
    return [
        Change(
            "add_required_permissions",
            application.display_name or application.app_id,
            f"requested {', '.join(missing)}",
        )
    ]


def ensure_service_principal(
    directory: RegistrationDirectory,
    application: Application,
    state: RegistrationState,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[ServicePrincipal, list[Change]]:
    if state.service_principal is not None:
        return state.service_principal, []
    sp = directory.find_service_principal(application.app_id)
    if sp is not None:
        return sp, []
    sp = with_replication_retry(lambda: directory.create_service_principal(application.app_id), sleep=sleep)
    return sp, [Change("create_service_principal", application.app_id, f"created service principal {sp.id}")]


def _grant(
    directory: RegistrationDirectory, resource_id: str, principal_id: str, role_id: str
) -> Callable[[], AppRoleAssignment]:
    def call() -> AppRoleAssignment:
        return directory.grant_app_role(
            resource_id=resource_id, principal_id=principal_id, app_role_id=role_id
        )

    return call


def ensure_admin_consent(
    directory: RegistrationDirectory,
    graph: ServicePrincipal,
    service_principal: ServicePrincipal,
    role_ids: dict[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Change]:
    """Grant each required application permission by app role assignment, unless already granted."""
    granted = {
        a.app_role_id.lower()
        for a in directory.app_role_assignments(service_principal.id)
        if a.resource_id == graph.id
    }
    changes: list[Change] = []
    for permission, role_id in role_ids.items():
        if role_id in granted:
            continue
        assignment = with_replication_retry(
            _grant(directory, graph.id, service_principal.id, role_id), sleep=sleep
        )
        changes.append(
            Change(
                "grant_admin_consent",
                permission,
                f"app role assignment {assignment.id or role_id} on Microsoft Graph",
            )
        )
    return changes


def _pending_consent_findings(findings: Sequence[Finding], plan: Sequence[Change]) -> tuple[Finding, ...]:
    """In a plan, a permission not granted yet that the plan grants is a pending change, not an error."""
    planned = {c.target for c in plan if c.action == "grant_admin_consent"}
    out = [
        Finding(
            "info",
            "permission.consent_pending",
            f"{f.subject} is not granted yet: the plan grants admin consent",
            "run `meetgate setup app` without --plan (as a Global Administrator) to grant it",
            subject=f.subject,
        )
        if f.code == "permission.not_granted" and f.subject in planned
        else f
        for f in findings
    ]
    return tuple(sort_findings(out))


def setup_app(
    directory: RegistrationDirectory,
    spec: RegistrationSpec,
    *,
    apply: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> SetupResult:
    """Runbook steps 1–2. With ``apply=False`` only the plan is returned and nothing changes."""
    state = read_registration_state(directory, spec)
    role_ids = resolve_role_ids(state.graph, spec.permissions)
    if not apply:
        plan = plan_registration(spec, state)
        check = None
        if state.service_principal is not None:
            check = check_permissions_granted(
                state.graph, state.assignments, spec.permissions, state.application
            )
        app, sp = state.application, state.service_principal
        return SetupResult(
            applied=False,
            changes=tuple(plan),
            client_id=app.app_id if app else None,
            application_object_id=app.id if app else None,
            service_principal_id=sp.id if sp else None,
            check=check,
            findings=_pending_consent_findings(check.findings, plan) if check else (),
        )
    changes: list[Change] = []
    application, done = ensure_application(directory, spec, state)
    changes += done
    changes += ensure_permissions(directory, application, role_ids)
    service_principal, done = ensure_service_principal(directory, application, state, sleep=sleep)
    changes += done
    changes += ensure_admin_consent(directory, state.graph, service_principal, role_ids, sleep=sleep)
    assignments = directory.app_role_assignments(service_principal.id)
    refreshed = directory.find_application_by_app_id(application.app_id) or application
    check = check_permissions_granted(state.graph, assignments, spec.permissions, refreshed)
    return SetupResult(
        applied=True,
        changes=tuple(changes),
        client_id=application.app_id,
        application_object_id=application.id,
        service_principal_id=service_principal.id,
        check=check,
        findings=check.findings,
    )


if TYPE_CHECKING:  # mypy checks that the Graph service implements the port

    def _directory(service: ApplicationsService) -> RegistrationDirectory:
        return service
