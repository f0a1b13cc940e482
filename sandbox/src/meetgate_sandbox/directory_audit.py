"""Directory audit records of app registration changes, per tenant (a tenant extension).

Each change the ``/applications`` and ``/servicePrincipals`` routes make is recorded in the shape of
Graph's ``directoryAudit`` (``/auditLogs/directoryAudits``), with the activity names real logs use
(``Add application``, ``Update application – Certificates and secrets management``,
``Add app role assignment to service principal``...), so the monitoring code can read them later.
The device login settings of the tenant live here too (who approves device codes), and the details
of user sign-ins (who signed in, with which client) that ``/auditLogs/signIns`` shows beside the token
records.
"""

from __future__ import annotations

import collections
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

MAX_AUDITS = 2000
#: as many as the token log keeps (recording.MAX_TOKENS)
MAX_USER_SIGN_INS = 1000
EXTENSION = "provisioning"

#: real logs use an en dash in this activity name (the docs a hyphen)
CERTIFICATES_AND_SECRETS = "Update application – Certificates and secrets management"


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Initiator:
    """Who made a change: a signed-in user (delegated) or an application (app-only)."""

    user_id: str | None = None
    user_principal_name: str | None = None
    app_id: str | None = None
    service_principal_id: str | None = None
    display_name: str | None = None
    #: the signed-in user's client IP address (``initiatedBy.user.ipAddress``)
    ip_address: str | None = None
    #: the calling app's service principal name (``initiatedBy.app.servicePrincipalName``)
    service_principal_name: str | None = None

    def to_graph(self) -> dict[str, Any]:
        """Graph's ``auditActivityInitiator``: ``user`` (a userIdentity) or ``app`` (an appIdentity)."""
        if self.user_id:
            return {
                "app": None,
                "user": {
                    "id": self.user_id,
                    "displayName": self.display_name,
                    "userPrincipalName": self.user_principal_name,
                    "ipAddress": self.ip_address,
                },
            }
        return {
            "user": None,
            "app": {
                "appId": self.app_id,
                "displayName": self.display_name,
                "servicePrincipalId": self.service_principal_id,
                "servicePrincipalName": self.service_principal_name,
            },
        }


@dataclass(frozen=True)
class UserSignInDetail:
    """What the token endpoint knew of a user sign-in beyond its token record: who signed in, with
    which client (``User-Agent``, MSAL's ``x-client-os``); matched to the record by request id."""

    request_id: str
    user_id: str
    user_agent: str = ""
    client_os: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "requestId": self.request_id,
            "userId": self.user_id,
            "userAgent": self.user_agent,
            "clientOs": self.client_os,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserSignInDetail:
        return cls(
            request_id=str(data["requestId"]),
            user_id=str(data["userId"]),
            user_agent=str(data.get("userAgent") or ""),
            client_os=str(data.get("clientOs") or ""),
        )


@dataclass
class DeviceLoginSettings:
    """Who approves device codes in this tenant: ``auto`` approves at once as ``approve_as``
    (the tenant's admin when None); ``manual`` waits for the control API; ``deny`` declines."""

    mode: str = "auto"
    approve_as: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "approveAs": self.approve_as}


@dataclass
class ProvisioningExtension:
    audits: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_AUDITS)
    )
    device_login: DeviceLoginSettings = field(default_factory=DeviceLoginSettings)
    #: extra directory roles by user id (the tenant's admin is always a Global Administrator)
    directory_roles: dict[str, list[str]] = field(default_factory=dict)
    #: user sign-in details by request id, oldest first (bounded like the token log)
    user_sign_ins: collections.OrderedDict[str, UserSignInDetail] = field(
        default_factory=collections.OrderedDict
    )

    def record_user_sign_in(self, detail: UserSignInDetail) -> None:
        """Keep ``detail`` for the sign-in log; the oldest fall off past :data:`MAX_USER_SIGN_INS`."""
        self.user_sign_ins[detail.request_id] = detail
        while len(self.user_sign_ins) > MAX_USER_SIGN_INS:
            self.user_sign_ins.popitem(last=False)

    def record(
        self,
        activity: str,
        initiator: Initiator,
        *,
        target_id: str,
        target_name: str | None,
        target_type: str,
        operation: str,
        modified: dict[str, tuple[Any, Any]] | None = None,
        result: str = "success",
    ) -> dict[str, Any]:
        entry = {
            "id": f"Directory_{uuid.uuid4()}",
            "category": "ApplicationManagement",
            "correlationId": str(uuid.uuid4()),
            "result": result,
            "resultReason": "",
            "activityDisplayName": activity,
            "activityDateTime": _stamp(),
            "loggedByService": "Core Directory",
            "operationType": operation,
            "initiatedBy": initiator.to_graph(),
            "targetResources": [
                {
                    "id": target_id,
                    "displayName": target_name,
                    "type": target_type,
                    "userPrincipalName": None,
                    "groupType": None,
                    "modifiedProperties": [
                        {"displayName": name, "oldValue": _text(old), "newValue": _text(new)}
                        for name, (old, new) in (modified or {}).items()
                    ],
                }
            ],
            "additionalDetails": [],
        }
        self.audits.append(entry)
        return entry

    def to_dict(self) -> dict[str, Any]:
        return {
            "audits": list(self.audits),
            "deviceLogin": self.device_login.to_dict(),
            "directoryRoles": self.directory_roles,
            "userSignIns": [d.to_dict() for d in self.user_sign_ins.values()],
        }

    @classmethod
    def for_tenant(cls, tenant: Any, saved: dict[str, Any] | None) -> ProvisioningExtension:
        ext = cls()
        if saved:
            ext.audits.extend(saved.get("audits") or [])
            login = saved.get("deviceLogin") or {}
            ext.device_login = DeviceLoginSettings(login.get("mode", "auto"), login.get("approveAs"))
            ext.directory_roles = {k: list(v) for k, v in (saved.get("directoryRoles") or {}).items()}
            for item in saved.get("userSignIns") or []:
                ext.record_user_sign_in(UserSignInDetail.from_dict(item))
        return ext


def _text(value: Any) -> str | None:
    if value is None:
        return None
    import json

    return json.dumps(value, separators=(",", ":"), default=str)
