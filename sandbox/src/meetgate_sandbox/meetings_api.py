"""Graph routes for online meetings and Teams policy assignment, over the per-tenant domain objects.

Mounted by the sandbox app under ``/v1.0`` and ``/beta``:

- ``/users/{userId}/onlineMeetings`` (+ ``/createOrGet``, ``/{meetingId}``, ``/attendanceReports``)
  for app-only callers, ``/me/onlineMeetings/...`` for delegated callers;
- ``/communications/onlineMeetings?$filter=VideoTeleconferenceId eq '...'`` (app-only, tenant-wide);
- ``/admin/teams/policy/getPolicyId(type=...,name=...)``, ``/admin/teams/policy/userAssignments/assign``
  and ``/unassign``, ``/admin/teams/userConfigurations/{userId}``.

Order of checks on a meeting call, as the real service answers: path form (``/me`` vs ``/users``) →
permission (roles / scopes) → organizer lookup → application access policy (app-only only) → body.

The routes reach tenant state through :class:`MeetingsBackend`, a small port the app factory
implements over its own state; tests use an in-memory fake.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meetgate_sandbox import teams_policy_types
from meetgate_sandbox.http import Caller, GraphErrorResponse, caller_of, json_object_body
from meetgate_sandbox.meeting_settings import MeetingSandboxSettings
from meetgate_sandbox.meetings import MeetingError, MeetingStore, Organizer, render_meeting
from meetgate_sandbox.policy import POLICY_TYPE, PolicyEngine, PolicyEngineError, policy_key

READ_WRITE_ROLE = "OnlineMeetings.ReadWrite.All"
READ_ROLES = frozenset({"OnlineMeetings.Read.All", READ_WRITE_ROLE})
ATTENDANCE_ROLES = READ_ROLES | {"OnlineMeetingArtifact.Read.All"}
READ_WRITE_SCOPE = "OnlineMeetings.ReadWrite"
READ_SCOPES = frozenset({"OnlineMeetings.Read", READ_WRITE_SCOPE})
ATTENDANCE_SCOPES = READ_SCOPES | {"OnlineMeetingArtifact.Read.All"}
POLICY_ASSIGN_PERMISSION = "TeamsPolicyUserAssign.ReadWrite.All"
#: the sandbox's maximum of assignments in one assign/unassign request (Graph documents none)
MAX_ASSIGNMENTS_PER_REQUEST = 20
ASSIGNMENT_TYPE = "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_JOIN_URL_FILTER = re.compile(r"^\s*joinWebUrl\s+eq\s+'(.*)'\s*$", re.IGNORECASE | re.DOTALL)
_VTC_FILTER = re.compile(r"^\s*videoTeleconferenceId\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_JOIN_ID_FILTER = re.compile(r"^\s*joinMeetingIdSettings/joinMeetingId\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_GET_POLICY_ID = re.compile(
    r"^getPolicyId\(\s*type\s*=\s*'((?:[^']|'')*)'\s*,\s*name\s*=\s*'((?:[^']|'')*)'\s*\)$", re.IGNORECASE
)


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    user_principal_name: str
    display_name: str | None = None


class MeetingsBackend(Protocol):
    """What the meeting and policy routes need from the sandbox's tenant state."""

    def user(self, tenant_id: str, id_or_upn: str) -> DirectoryUser | None:
        """A user of the tenant by object id or UPN (case-insensitive), or None."""
        ...

    def meetings(self, tenant_id: str) -> MeetingStore: ...

    def policy_engine(self, tenant_id: str) -> PolicyEngine: ...

    def meeting_settings(self) -> MeetingSandboxSettings: ...

    def group(self, tenant_id: str, group_id: str) -> str | None:
        """The group's object id when the tenant has that group, else None."""
        ...

    def tenant_exists(self, tenant_id: str) -> bool: ...

    def changed(self, tenant_id: str) -> None:
        """Called after a successful write (for persistence)."""
        ...


# ---- helpers ----------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def _denied(what: str) -> GraphErrorResponse:
    return GraphErrorResponse(403, "Forbidden", f"Insufficient privileges to complete the operation: {what}.")


def _base(request: Request) -> str:
    """``https://host:port/v1.0`` as the client reached it (from the scope: ``request.url`` is slow)."""
    scope = request.scope
    host = request.headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 443)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'https')}://{host}/{request.path_params['version']}"


def _include_unknown(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return "include-unknown-enum-members" in prefer.lower()


def _selected(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """``$select=subject,joinWebUrl``: only those properties (names case-insensitive), plus annotations."""
    select = request.query_params.get("$select")
    if not select:
        return body
    wanted = {name.strip().lower() for name in select.split(",") if name.strip()}
    known = {key.lower() for key in body if not key.startswith("@")}
    unknown = sorted(wanted - known)
    if unknown:
        raise GraphErrorResponse(
            400,
            "BadRequest",
            f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.onlineMeeting'.",
        )
    return {key: value for key, value in body.items() if key.startswith("@") or key.lower() in wanted}


@dataclass(frozen=True)
class _Target:
    caller: Caller
    organizer: DirectoryUser
    store: MeetingStore
    me: bool

    def context(self, request: Request, suffix: str) -> str:
        where = "me" if self.me else f"users('{self.organizer.id}')"
        return f"{_base(request)}/$metadata#{where}/onlineMeetings{suffix}"


class MeetingRoutes:
    """The online-meeting routes, bound to a backend."""

    def __init__(self, backend: MeetingsBackend) -> None:
        self.backend = backend

    # -- the common preamble of every meeting call

    def _target(
        self,
        request: Request,
        *,
        write: bool,
        attendance: bool = False,
        permissions: tuple[frozenset[str], frozenset[str]] | None = None,
    ) -> _Target:
        """Path form, permission, organizer and policy checks; ``permissions`` (roles, scopes)
        replaces the meeting read permissions (the artifact routes: one permission per kind)."""
        caller = caller_of(request)
        me = "userId" not in request.path_params
        if me and caller.is_app_only:
            raise GraphErrorResponse(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        if not me and not caller.is_app_only:
            raise GraphErrorResponse(
                403,
                "Forbidden",
                "Delegated callers may only use /me/onlineMeetings: the signed-in user is the organizer.",
            )
        if caller.is_app_only:
            allowed_roles = {READ_WRITE_ROLE} if write else (ATTENDANCE_ROLES if attendance else READ_ROLES)
            if permissions is not None:
                allowed_roles = set(permissions[0])
            if not caller.roles & allowed_roles:
                raise _denied(
                    f"the app needs the application permission {' or '.join(sorted(allowed_roles))}"
                )
        else:
            allowed_scopes = (
                {READ_WRITE_SCOPE} if write else (ATTENDANCE_SCOPES if attendance else READ_SCOPES)
            )
            if permissions is not None:
                allowed_scopes = set(permissions[1])
            if not caller.scopes & allowed_scopes:
                raise _denied(
                    f"the token needs the delegated permission {' or '.join(sorted(allowed_scopes))}"
                )
        tenant_id = caller.tenant_id
        if me:
            assert caller.delegated_user_id is not None
            organizer = self.backend.user(tenant_id, caller.delegated_user_id)
            if organizer is None:
                raise GraphErrorResponse(404, "NotFound", "The signed-in user no longer exists.")
        else:
            organizer = self._organizer(tenant_id, request.path_params["userId"])
            engine = self.backend.policy_engine(tenant_id)
            if not engine.allows(organizer.id, caller.app_id):
                raise self._policy_denied(caller, organizer, write)
        return _Target(caller, organizer, self.backend.meetings(tenant_id), me)

    def _organizer(self, tenant_id: str, user_id: str) -> DirectoryUser:
        settings = self.backend.meeting_settings()
        if not _GUID.match(user_id):
            if "@" in user_id and settings.upn_in_path == "resolve":
                user = self.backend.user(tenant_id, user_id)
                if user is not None:
                    return user
            if "@" in user_id and settings.upn_in_path == "forbiddenEmpty":
                raise GraphErrorResponse(403, "Forbidden", "")
            raise GraphErrorResponse(
                404,
                "NotFound",
                f"The user '{user_id}' was not found: /users/{{userId}}/onlineMeetings takes the organizer's "
                "object id, not a user principal name.",
            )
        user = self.backend.user(tenant_id, user_id)
        if user is None:
            raise GraphErrorResponse(404, "NotFound", f"The user '{user_id}' was not found in this tenant.")
        return user

    def _policy_denied(self, caller: Caller, organizer: DirectoryUser, write: bool) -> GraphErrorResponse:
        variant = self.backend.meeting_settings().policy_error_variant
        if variant == "general":
            return GraphErrorResponse(403, "General", "No application access policy found for this app.")
        if variant == "suffix":
            return GraphErrorResponse(
                403,
                "Forbidden",
                f"No application access policy found for this app {caller.app_id} on the user",
            )
        if variant == "legacy":
            action = "Create" if write else "Get"
            return GraphErrorResponse(
                403,
                "Unauthorized",
                f"App {caller.app_id} is not authorized to {action} meeting on behalf of user {organizer.id}",
            )
        return GraphErrorResponse(403, "Forbidden", "No application access policy found for this app")

    def _upn_required(self) -> bool:
        return self.backend.meeting_settings().upn_required

    @staticmethod
    def _organizer_of(target: _Target) -> Organizer:
        user = target.organizer
        return Organizer(user.id, user.user_principal_name, user.display_name)

    def _render(
        self, request: Request, target: _Target, meeting: Any, suffix: str = "/$entity"
    ) -> dict[str, Any]:
        body = render_meeting(
            meeting,
            target.caller.tenant_id,
            context_url=target.context(request, suffix),
            include_unknown_enums=_include_unknown(request),
        )
        return _selected(request, body)

    # -- handlers

    async def create(self, request: Request) -> Response:
        target = self._target(request, write=True)
        body = await json_object_body(request)
        meeting = target.store.create(self._organizer_of(target), body, upn_required=self._upn_required())
        self.backend.changed(target.caller.tenant_id)
        return _json(self._render(request, target, meeting), 201)

    async def create_or_get(self, request: Request) -> Response:
        target = self._target(request, write=True)
        body = await json_object_body(request)
        meeting, created = target.store.create_or_get(
            self._organizer_of(target), body, upn_required=self._upn_required()
        )
        if created:
            self.backend.changed(target.caller.tenant_id)
        return _json(self._render(request, target, meeting), 201 if created else 200)

    async def find(self, request: Request) -> Response:
        target = self._target(request, write=False)
        query = request.query_params.get("$filter")
        if query is None:
            raise GraphErrorResponse(
                400,
                "BadRequest",
                "Filter expression expected - /onlineMeetings?$filter=JoinWebUrl eq 'XXXX'.",
            )
        organizer_id = target.organizer.id
        by_url = _JOIN_URL_FILTER.match(query)
        by_id = _JOIN_ID_FILTER.match(query)
        if by_url:
            found = target.store.find_by_join_url(organizer_id, by_url.group(1).replace("''", "'"))
        elif by_id:
            found = target.store.find_by_join_meeting_id(organizer_id, by_id.group(1))
        else:
            raise GraphErrorResponse(
                400,
                "BadRequest",
                "Unsupported filter: use $filter=JoinWebUrl eq '{joinWebUrl}' or "
                "$filter=joinMeetingIdSettings/joinMeetingId eq '{joinMeetingId}'.",
            )
        values = [
            _selected(
                request,
                render_meeting(m, target.caller.tenant_id, include_unknown_enums=_include_unknown(request)),
            )
            for m in found
        ]
        return _json({"@odata.context": target.context(request, ""), "value": values})

    async def find_in_tenant(self, request: Request) -> Response:
        """``GET /communications/onlineMeetings?$filter=VideoTeleconferenceId eq '...'`` (or JoinWebUrl).

        App-only (``OnlineMeetings.Read.All``), any organizer of the tenant: the get page says this
        scenario "only supports application token and doesn't support application access policy".
        """
        caller = caller_of(request)
        if not caller.is_app_only:
            raise GraphErrorResponse(
                403,
                "Forbidden",
                "/communications/onlineMeetings supports application tokens only: use /me/onlineMeetings.",
            )
        if not caller.roles & READ_ROLES:
            raise _denied(f"the app needs the application permission {' or '.join(sorted(READ_ROLES))}")
        query = request.query_params.get("$filter")
        by_vtc = _VTC_FILTER.match(query) if query else None
        by_url = _JOIN_URL_FILTER.match(query) if query else None
        store = self.backend.meetings(caller.tenant_id)
        if by_vtc:
            found = store.find_in_tenant(vtc_id=by_vtc.group(1))
        elif by_url:
            found = store.find_in_tenant(join_url=by_url.group(1).replace("''", "'"))
        else:
            raise GraphErrorResponse(
                400,
                "BadRequest",
                "Filter expression expected - /communications/onlineMeetings?$filter=VideoTeleconferenceId eq 'XXXX'.",
            )
        include = _include_unknown(request)
        values = [
            _selected(
                request,
                render_meeting(m, caller.tenant_id, include_unknown_enums=include, odata_type=True),
            )
            for m in found
        ]
        context = f"{_base(request)}/$metadata#communications/onlineMeetings"
        return _json({"@odata.context": context, "value": values})

    async def get(self, request: Request) -> Response:
        target = self._target(request, write=False)
        meeting = target.store.get(target.organizer.id, request.path_params["meetingId"])
        return _json(self._render(request, target, meeting))

    async def update(self, request: Request) -> Response:
        target = self._target(request, write=True)
        body = await json_object_body(request)
        meeting = target.store.update(
            target.organizer.id, request.path_params["meetingId"], body, upn_required=self._upn_required()
        )
        self.backend.changed(target.caller.tenant_id)
        return _json(self._render(request, target, meeting))

    async def delete(self, request: Request) -> Response:
        target = self._target(request, write=True)
        target.store.delete(target.organizer.id, request.path_params["meetingId"])
        self.backend.changed(target.caller.tenant_id)
        return Response(status_code=204)

    async def attendance_reports(self, request: Request) -> Response:
        target = self._target(request, write=False, attendance=True)
        meeting_id = request.path_params["meetingId"]
        reports = target.store.attendance_reports(target.organizer.id, meeting_id)
        expand = "attendancerecords" in request.query_params.get("$expand", "").lower()
        values = [r if expand else {k: v for k, v in r.items() if k != "attendanceRecords"} for r in reports]
        context = target.context(request, f"('{meeting_id}')/attendanceReports")
        return _json({"@odata.context": context, "value": values})

    async def attendance_report(self, request: Request) -> Response:
        target = self._target(request, write=False, attendance=True)
        meeting_id, report_id = request.path_params["meetingId"], request.path_params["reportId"]
        report = target.store.attendance_report(target.organizer.id, meeting_id, report_id)
        if "attendancerecords" not in request.query_params.get("$expand", "").lower():
            report = {k: v for k, v in report.items() if k != "attendanceRecords"}
        context = target.context(request, f"('{meeting_id}')/attendanceReports('{report_id}')")
        return _json({"@odata.context": context, **report})

    async def attendance_records(self, request: Request) -> Response:
        target = self._target(request, write=False, attendance=True)
        meeting_id, report_id = request.path_params["meetingId"], request.path_params["reportId"]
        report = target.store.attendance_report(target.organizer.id, meeting_id, report_id)
        context = target.context(
            request, f"('{meeting_id}')/attendanceReports('{report_id}')/attendanceRecords"
        )
        return _json({"@odata.context": context, "value": report["attendanceRecords"]})


Handler = Callable[[Request], Awaitable[Response]]


#: how a route finds the backend of the request (the sandbox app: from ``request.app.state``)
BackendResolver = Callable[[Request], MeetingsBackend]


def backend_resolver(backend: MeetingsBackend | BackendResolver) -> BackendResolver:
    if callable(backend) and not hasattr(backend, "policy_engine"):
        return backend
    fixed = backend

    def resolve(_request: Request) -> MeetingsBackend:
        return fixed  # type: ignore[return-value]

    return resolve


def bind_handler(
    version: str, resolve: BackendResolver, factory: Callable[[MeetingsBackend], Any], name: str
) -> Handler:
    """An endpoint that builds the handler object over the request's backend and calls ``name``."""

    async def endpoint(request: Request) -> Response:
        request.path_params["version"] = version
        handler: Handler = getattr(factory(resolve(request)), name)
        try:
            return await handler(request)
        except MeetingError as error:
            raise GraphErrorResponse(error.status, error.code, error.message) from None
        except PolicyEngineError as error:
            raise GraphErrorResponse(error.status, error.code, error.message) from None

    endpoint.__name__ = name
    return endpoint


def meeting_routes(
    backend: MeetingsBackend | BackendResolver, versions: tuple[str, ...] = ("v1.0", "beta")
) -> list[Route]:
    """Starlette routes for ``/{version}/users/{userId}/onlineMeetings...`` and ``/me/onlineMeetings...``."""
    resolve = backend_resolver(backend)
    routes: list[Route] = []
    for version in versions:

        def bind(name: str, version: str = version) -> Handler:
            return bind_handler(version, resolve, MeetingRoutes, name)

        tenant_wide = f"/{version}/communications/onlineMeetings"
        routes += [
            Route(tenant_wide, bind("find_in_tenant"), methods=["GET"]),
            Route(f"{tenant_wide}/", bind("find_in_tenant"), methods=["GET"]),
        ]
        for owner in ("/users/{userId}", "/me"):
            base = f"/{version}{owner}/onlineMeetings"
            report = f"{base}/{{meetingId}}/attendanceReports"
            routes += [
                Route(base, bind("create"), methods=["POST"]),
                Route(base, bind("find"), methods=["GET"]),
                Route(f"{base}/createOrGet", bind("create_or_get"), methods=["POST"]),
                Route(f"{base}/{{meetingId}}", bind("get"), methods=["GET"]),
                Route(f"{base}/{{meetingId}}", bind("update"), methods=["PATCH"]),
                Route(f"{base}/{{meetingId}}", bind("delete"), methods=["DELETE"]),
                Route(report, bind("attendance_reports"), methods=["GET"]),
                Route(f"{report}/{{reportId}}", bind("attendance_report"), methods=["GET"]),
                Route(
                    f"{report}/{{reportId}}/attendanceRecords", bind("attendance_records"), methods=["GET"]
                ),
            ]
    return routes


# ---- Teams policy assignment (Graph, teamsAdministration) ------------------------------------------


class TeamsPolicyRoutes:
    """``/admin/teams/policy/...`` and ``/admin/teams/userConfigurations/{id}``."""

    def __init__(self, backend: MeetingsBackend) -> None:
        self.backend = backend

    @staticmethod
    def _authorize(request: Request) -> Caller:
        caller = caller_of(request)
        granted = caller.roles if caller.is_app_only else caller.scopes
        if POLICY_ASSIGN_PERMISSION not in granted:
            raise _denied(f"the caller needs the permission {POLICY_ASSIGN_PERMISSION}")
        return caller

    async def get_policy_id(self, request: Request) -> Response:
        caller = self._authorize(request)
        match = _GET_POLICY_ID.match(request.path_params["call"])
        if not match:
            raise GraphErrorResponse(
                400,
                "BadRequest",
                "Use getPolicyId(type='{policyType}',name='{policyName}').",
            )
        raw_type, name = (g.replace("''", "'") for g in match.groups())
        policy_type = teams_policy_types.require_type(raw_type, "type")
        found: list[tuple[str, str]] = []
        if policy_type == POLICY_TYPE:
            engine = self.backend.policy_engine(caller.tenant_id)
            found = [
                (p.identity, p.policy_id) for p in engine.policies() if policy_key(p.name) == policy_key(name)
            ]
        elif (instance := teams_policy_types.find_instance(policy_type, name)) is not None:
            policy_id = teams_policy_types.instance_id(caller.tenant_id, policy_type, instance)
            found = [(teams_policy_types.identity(instance), policy_id)]
        if not found:
            raise GraphErrorResponse(
                404, "NotFound", f"Policy '{name}' of type '{raw_type}' was not found in this tenant."
            )
        context = f"{_base(request)}/$metadata#Collection(microsoft.graph.teamsAdministration.policyIdentifierDetail)"
        return _json(
            {
                "@odata.context": context,
                "value": [
                    {
                        "@odata.type": "#microsoft.graph.teamsAdministration.policyIdentifierDetail",
                        "name": identity,
                        "policyId": policy_id,
                    }
                    for identity, policy_id in found
                ],
            }
        )

    async def _assignments(self, request: Request) -> tuple[Caller, list[dict[str, Any]]]:
        """The request's assignments, checked; each with its ``policyType`` in the documented spelling."""
        caller = self._authorize(request)
        body = await json_object_body(request)
        items = body.get("value")
        if not isinstance(items, list) or not items:
            raise GraphErrorResponse(
                400, "BadRequest", "The body needs a non-empty 'value' array of teamsPolicyUserAssignment."
            )
        if len(items) > MAX_ASSIGNMENTS_PER_REQUEST:
            raise GraphErrorResponse(
                400,
                "BadRequest",
                f"Too many assignments in one request ({len(items)}): send at most "
                f"{MAX_ASSIGNMENTS_PER_REQUEST} per request.",
            )
        checked: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise GraphErrorResponse(
                    400, "BadRequest", f"value[{index}] must be a teamsPolicyUserAssignment."
                )
            policy_type = teams_policy_types.require_type(
                item.get("policyType"), f"value[{index}].policyType"
            )
            user_id = item.get("userId")
            if not isinstance(user_id, str) or not _GUID.match(user_id):
                raise GraphErrorResponse(
                    400, "BadRequest", f"value[{index}].userId must be a user object id."
                )
            if self.backend.user(caller.tenant_id, user_id) is None:
                raise GraphErrorResponse(
                    404, "NotFound", f"value[{index}].userId: user '{user_id}' was not found."
                )
            checked.append({**item, "policyType": policy_type})
        return caller, checked

    async def assign(self, request: Request) -> Response:
        caller, items = await self._assignments(request)
        engine = self.backend.policy_engine(caller.tenant_id)
        names: list[str] = []
        for index, item in enumerate(items):  # every policy is checked before anything changes
            policy_id, policy_type = item.get("policyId"), item["policyType"]
            name: str | None = None
            if isinstance(policy_id, str) and policy_type == POLICY_TYPE:
                policy = engine.policy_by_id(policy_id)
                name = policy.name if policy else None
            elif isinstance(policy_id, str):
                name = teams_policy_types.instance_by_id(caller.tenant_id, policy_type, policy_id)
            if name is None:
                raise GraphErrorResponse(
                    404,
                    "NotFound",
                    f"value[{index}].policyId {policy_id!r} is not a policy of type {policy_type}: "
                    "look it up with getPolicyId.",
                )
            names.append(name)
        for item, name in zip(items, names, strict=True):
            user_id = str(item["userId"]).lower()
            if item["policyType"] == POLICY_TYPE:
                engine.grant_user(user_id, name)
            else:
                engine.assign_type(user_id, item["policyType"], name)
        self.backend.changed(caller.tenant_id)
        return Response(status_code=204)

    async def unassign(self, request: Request) -> Response:
        caller, items = await self._assignments(request)
        engine = self.backend.policy_engine(caller.tenant_id)
        for item in items:
            user_id = str(item["userId"]).lower()
            if item["policyType"] == POLICY_TYPE:
                engine.grant_user(user_id, None)
            else:
                engine.assign_type(user_id, item["policyType"], None)
        self.backend.changed(caller.tenant_id)
        return Response(status_code=204)

    async def user_configuration(self, request: Request) -> Response:
        caller = self._authorize(request)
        user_id = request.path_params["userId"]
        user = self.backend.user(caller.tenant_id, user_id) if _GUID.match(user_id) else None
        if user is None:
            raise GraphErrorResponse(404, "NotFound", f"The user '{user_id}' was not found in this tenant.")
        engine = self.backend.policy_engine(caller.tenant_id)
        assignments = []
        direct = engine.direct_policy(user.id)
        group = engine.group_policy(user.id)
        if direct is not None:
            assignments.append(
                {
                    "policyType": POLICY_TYPE,
                    "policyAssignment": {
                        "displayName": direct.name,
                        "assignmentType": "direct",
                        "policyId": direct.policy_id,
                    },
                }
            )
        elif group is not None:
            assignments.append(
                {
                    "policyType": POLICY_TYPE,
                    "policyAssignment": {
                        "displayName": group.policy.name,
                        "assignmentType": "group",
                        "policyId": group.policy.policy_id,
                        "groupId": group.group_id,
                    },
                }
            )
        for policy_type, instance in engine.type_assignments_of(user.id).items():
            assignments.append(
                {
                    "policyType": policy_type,
                    "policyAssignment": {
                        "displayName": instance,
                        "assignmentType": "direct",
                        "policyId": teams_policy_types.instance_id(caller.tenant_id, policy_type, instance),
                    },
                }
            )
        entity = {
            "@odata.context": f"{_base(request)}/$metadata#admin/teams/userConfigurations/$entity",
            "id": user.id,
            "userPrincipalName": user.user_principal_name,
            "tenantId": caller.tenant_id,
            "effectivePolicyAssignments": assignments,
            "telephoneNumbers": [],
            "isEnterpriseVoiceEnabled": False,
            "featureTypes": ["Teams", "AudioConferencing"],
            "accountType": "user",
        }
        if self.backend.meeting_settings().user_configuration_shape == "wrapped":
            return _json({"value": entity})
        return _json(entity)


def teams_policy_routes(
    backend: MeetingsBackend | BackendResolver, versions: tuple[str, ...] = ("v1.0", "beta")
) -> list[Route]:
    """``/{version}/admin/teams/policy/...`` and ``/{version}/admin/teams/userConfigurations/{userId}``."""
    resolve = backend_resolver(backend)
    routes: list[Route] = []
    for version in versions:

        def bind(name: str, version: str = version) -> Handler:
            return bind_handler(version, resolve, TeamsPolicyRoutes, name)

        base = f"/{version}/admin/teams"
        routes += [
            Route(f"{base}/policy/userAssignments/assign", bind("assign"), methods=["POST"]),
            Route(f"{base}/policy/userAssignments/unassign", bind("unassign"), methods=["POST"]),
            Route(f"{base}/policy/{{call}}", bind("get_policy_id"), methods=["GET"]),
            Route(f"{base}/userConfigurations/{{userId}}", bind("user_configuration"), methods=["GET"]),
        ]
    return routes
