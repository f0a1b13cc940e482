"""An in-memory slice of the sandbox control API, for the pwsh stand-in's unit tests."""

from __future__ import annotations

from typing import Any

from meetgate_sandbox.pwsh import PSError

TENANT = "7d1e2c3b-0000-4000-8000-0000000000aa"


class InMemoryControl:
    """The slice of the sandbox control API the stand-in calls."""

    def __init__(self, users: int = 4) -> None:
        self.users = [
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "userPrincipalName": f"user{i}@contoso.test",
                "displayName": f"U{i}",
            }
            for i in range(users)
        ]
        self.policies: dict[str, dict[str, Any]] = {}
        self.direct: dict[str, str] = {}
        self.group: list[dict[str, Any]] = []
        self.global_: str | None = None
        self.authority_url = "https://127.0.0.1:1"
        self.calls: list[tuple[str, str]] = []

    def _user(self, ref: str) -> str:
        for u in self.users:
            if ref.lower() in (u["id"], u["userPrincipalName"].lower()):
                return u["id"]
        raise PSError(f"User {ref} not found.", "HTTP404")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        self.calls.append((method, path))
        rest = path.removeprefix(f"/tenants/{TENANT}")
        if rest == "":
            return {"tenantId": TENANT, "users": self.users, "adminUpn": "admin@contoso.test"}
        if rest == "/policies" and method == "GET":
            return list(self.policies.values())
        if rest == "/policies" and method == "POST":
            key = body["identity"][4:].lower()
            if key in self.policies:
                raise PSError("exists", "HTTP409")
            self.policies[key] = body
            return body
        if rest.startswith("/policies/"):
            key = rest.split(":", 1)[1].lower()
            if key not in self.policies:
                raise PSError("not found", "HTTP404")
            if method == "PATCH":
                self.policies[key].update(body)
            else:
                del self.policies[key]
            return None
        if rest == "/policy-grants" and method == "POST":
            name = body["policyName"]
            if name is not None and name.lower() not in self.policies:
                raise PSError(f"Cannot find policy Tag:{name}", "HTTP404")
            if "user" in body:
                uid = self._user(body["user"])
                if name is None:
                    self.direct.pop(uid, None)
                else:
                    self.direct[uid] = name
            elif "global" in body:
                self.global_ = name
            return {}
        if rest == "/policy-grants":
            return {
                "direct": [{"user": u, "policyName": p} for u, p in self.direct.items()],
                "group": self.group,
                "global": self.global_,
            }
        if rest.endswith("/policy"):
            uid = self._user(rest.split("/")[2])
            return {"direct": {"policyName": self.direct[uid]} if uid in self.direct else None, "group": None}
        raise AssertionError(f"unexpected call {method} {path}")
