"""Control-API routes for application access policies: what Teams PowerShell does in a real tenant.

| control API | Teams PowerShell |
|---|---|
| ``GET  /_sandbox/tenants/{tid}/policies`` | ``Get-CsApplicationAccessPolicy`` |
| ``POST /_sandbox/tenants/{tid}/policies`` | ``New-CsApplicationAccessPolicy -Identity -AppIds -Description`` |
| ``PATCH /_sandbox/tenants/{tid}/policies/{identity}`` | ``Set-CsApplicationAccessPolicy`` (``appIds``, ``addAppIds``, ``removeAppIds``, ``description``) |
| ``DELETE /_sandbox/tenants/{tid}/policies/{identity}`` | ``Remove-CsApplicationAccessPolicy`` |
| ``POST /_sandbox/tenants/{tid}/policy-grants`` | ``Grant-CsApplicationAccessPolicy -Identity / -Group -Rank / -Global`` (``policyName: null`` revokes) |
| ``GET  /_sandbox/tenants/{tid}/policy-grants`` | ``Get-CsUserPolicyAssignment`` + ``Get-CsGroupPolicyAssignment`` |
| ``GET  /_sandbox/tenants/{tid}/users/{id-or-upn}/policy`` | the user's direct, group, global and effective policy |

Changes are visible here at once; Graph enforcement sees them after ``policyDelaySeconds``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meetgate_sandbox.http import GraphErrorResponse, json_object_body
from meetgate_sandbox.meetings_api import (
    BackendResolver,
    DirectoryUser,
    MeetingsBackend,
    backend_resolver,
    bind_handler,
)
from meetgate_sandbox.policy import PolicyEngine


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    """The policy control API's JSON object body: only no body at all is ``{}``."""
    return await json_object_body(
        request,
        invalid_json="The body must be JSON.",
        not_an_object="The body must be a JSON object.",
        blank_is_empty=False,
    )


class PolicyControlRoutes:
    def __init__(self, backend: MeetingsBackend) -> None:
        self.backend = backend

    def _engine(self, request: Request) -> tuple[str, PolicyEngine]:
        tenant_id = request.path_params["tid"]
        if not self.backend.tenant_exists(tenant_id):
            raise GraphErrorResponse(
                404, "NotFound", f"No sandbox tenant {tenant_id}: create it with POST /_sandbox/tenants."
            )
        return tenant_id, self.backend.policy_engine(tenant_id)

    def _user(self, tenant_id: str, key: object) -> DirectoryUser:
        if not isinstance(key, str) or not key.strip():
            raise GraphErrorResponse(400, "BadRequest", "user must be a user object id or userPrincipalName.")
        user = self.backend.user(tenant_id, key.strip())
        if user is None:
            raise GraphErrorResponse(404, "NotFound", f"No user {key!r} in tenant {tenant_id}.")
        return user

    async def list_policies(self, request: Request) -> Response:
        _, engine = self._engine(request)
        return _json({"value": [p.to_json() for p in engine.policies()]})

    async def create_policy(self, request: Request) -> Response:
        tenant_id, engine = self._engine(request)
        body = await _body(request)
        identity = body.get("identity")
        if not isinstance(identity, str):
            raise GraphErrorResponse(
                400, "BadRequest", "identity is required, like 'Tag:TeamsMeetingsIntegration'."
            )
        app_ids = body.get("appIds", [])
        if not isinstance(app_ids, list):
            raise GraphErrorResponse(400, "BadRequest", "appIds must be a list of application (client) ids.")
        policy = engine.create_policy(identity, app_ids, str(body.get("description") or ""))
        self.backend.changed(tenant_id)
        return _json(policy.to_json(), 201)

    async def get_policy(self, request: Request) -> Response:
        _, engine = self._engine(request)
        return _json(engine.policy(request.path_params["identity"]).to_json())

    async def update_policy(self, request: Request) -> Response:
        tenant_id, engine = self._engine(request)
        body = await _body(request)
        for key in ("appIds", "addAppIds", "removeAppIds"):
            if key in body and not isinstance(body[key], list):
                raise GraphErrorResponse(
                    400, "BadRequest", f"{key} must be a list of application (client) ids."
                )
        unknown = set(body) - {"appIds", "addAppIds", "removeAppIds", "description"}
        if unknown:
            raise GraphErrorResponse(
                400,
                "BadRequest",
                f"Unknown properties {sorted(unknown)}: use appIds, addAppIds, removeAppIds, description.",
            )
        policy = engine.update_policy(
            request.path_params["identity"],
            app_ids=body.get("appIds"),
            add_app_ids=body.get("addAppIds") or [],
            remove_app_ids=body.get("removeAppIds") or [],
            description=body.get("description"),
        )
        self.backend.changed(tenant_id)
        return _json(policy.to_json())

    async def delete_policy(self, request: Request) -> Response:
        tenant_id, engine = self._engine(request)
        engine.delete_policy(request.path_params["identity"])
        self.backend.changed(tenant_id)
        return Response(status_code=204)

    async def grant(self, request: Request) -> Response:
        tenant_id, engine = self._engine(request)
        body = await _body(request)
        if "policyName" not in body:
            raise GraphErrorResponse(400, "BadRequest", "policyName is required (null revokes).")
        name = body["policyName"]
        if name is not None and not isinstance(name, str):
            raise GraphErrorResponse(400, "BadRequest", "policyName must be a string or null.")
        targets = [k for k in ("user", "group", "global") if body.get(k) not in (None, False)]
        if len(targets) != 1:
            raise GraphErrorResponse(
                400,
                "BadRequest",
                "Give exactly one of user (id or UPN), group (id, with rank) or global: true.",
            )
        result: dict[str, Any] = {"policyName": None}
        if targets == ["user"]:
            user = self._user(tenant_id, body["user"])
            policy = engine.grant_user(user.id, name)
            result.update({"user": user.id, "userPrincipalName": user.user_principal_name})
        elif targets == ["group"]:
            group_key = body["group"]
            group_id = self.backend.group(tenant_id, group_key) if isinstance(group_key, str) else None
            if group_id is None:
                raise GraphErrorResponse(404, "NotFound", f"No group {group_key!r} in tenant {tenant_id}.")
            rank = body.get("rank")
            policy = engine.grant_group(group_id, name, rank)
            ranked = next((g for g in engine.grants()["group"] if g["group"] == group_id.lower()), None)
            result.update({"group": group_id, "rank": ranked["rank"] if ranked else None})
        else:
            if body["global"] is not True:
                raise GraphErrorResponse(400, "BadRequest", "global must be true.")
            policy = engine.grant_global(name)
            result["global"] = True
        result["policyName"] = policy.name if policy else None
        self.backend.changed(tenant_id)
        return _json(result)

    async def grants(self, request: Request) -> Response:
        tenant_id, engine = self._engine(request)
        grants = engine.grants()
        for item in grants["direct"]:
            user = self.backend.user(tenant_id, item["user"])
            item["userPrincipalName"] = user.user_principal_name if user else None
        return _json(grants)

    async def user_policy(self, request: Request) -> Response:
        tenant_id, engine = self._engine(request)
        user = self._user(tenant_id, request.path_params["user"])
        direct = engine.direct_policy(user.id)
        group = engine.group_policy(user.id)
        global_ = engine.global_policy()
        effective = engine.effective(user.id)
        enforced = engine.enforced_policy(user.id)
        return _json(
            {
                "user": user.id,
                "userPrincipalName": user.user_principal_name,
                "direct": direct.name if direct else None,
                "group": group.policy.name if group else None,
                "groupId": group.group_id if group else None,
                "groupRank": group.rank if group else None,
                "global": global_.name if global_ else None,
                "effective": effective.policy.name if effective else None,
                "effectiveSource": effective.source if effective else None,
                "effectiveAppIds": list(effective.policy.app_ids) if effective else [],
                "enforced": enforced.policy.name if enforced else None,
                "pendingChanges": engine.pending_changes(),
            }
        )


def policy_control_routes(backend: MeetingsBackend | BackendResolver) -> list[Route]:
    """The ``/_sandbox/tenants/{tid}/policies``, ``/policy-grants`` and ``/users/{id}/policy`` routes."""
    resolve = backend_resolver(backend)

    def bind(name: str) -> Callable[[Request], Awaitable[Response]]:
        return bind_handler("", resolve, PolicyControlRoutes, name)

    base = "/_sandbox/tenants/{tid}"
    return [
        Route(f"{base}/policies", bind("list_policies"), methods=["GET"]),
        Route(f"{base}/policies", bind("create_policy"), methods=["POST"]),
        Route(f"{base}/policies/{{identity}}", bind("get_policy"), methods=["GET"]),
        Route(f"{base}/policies/{{identity}}", bind("update_policy"), methods=["PATCH"]),
        Route(f"{base}/policies/{{identity}}", bind("delete_policy"), methods=["DELETE"]),
        Route(f"{base}/policy-grants", bind("grants"), methods=["GET"]),
        Route(f"{base}/policy-grants", bind("grant"), methods=["POST"]),
        Route(f"{base}/users/{{user}}/policy", bind("user_policy"), methods=["GET"]),
    ]
