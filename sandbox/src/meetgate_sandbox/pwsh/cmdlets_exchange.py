"""Exchange Online PowerShell (ExchangeOnlineManagement) cmdlets of the pwsh stand-in: RBAC for Applications.

    Connect-ExchangeOnline  -AppId -Organization (-Certificate <X509Certificate2> | -CertificateThumbPrint |
                            -CertificateFilePath x.pfx [-CertificatePassword p]), or interactively as the
                            tenant admin (-UserPrincipalName, optional); -ShowBanner -ShowProgress accepted
    Disconnect-ExchangeOnline
    New-/Get-/Remove-ServicePrincipal, New-/Get-/Remove-ManagementScope,
    New-/Get-/Remove-ManagementRoleAssignment (-App -Role [-CustomResourceScope | -RecipientGroupScope |
    -RecipientAdministrativeUnitScope]),
    Test-ServicePrincipalAuthorization -Identity [-Resource], Get-Group, Get-Mailbox, Set-Mailbox -CustomAttributeN

App-only, the module needs what the sandbox keeps per app under ``/exchange/app-only-access/{appId}``:
the Office 365 Exchange Online permission ``Exchange.ManageAsApp`` (admin-consented; without it Exchange
answers ``UnAuthorized``) and an Entra role such as Exchange Administrator on the service principal. The
certificate sign-in itself is checked against the sandbox's token endpoint, and ``-Organization`` must
be the tenant's ``.onmicrosoft.com`` domain. As in the real module, the Exchange cmdlets exist only once
connected. Output objects carry the properties Exchange prints.
"""

from __future__ import annotations

import re
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meetgate_sandbox.pwsh.certs import _certificate_sign_in, _load_pem_certificate, certificate_from_store
from meetgate_sandbox.pwsh.errors import PSError, _not_recognized
from meetgate_sandbox.pwsh.interpreter import Interpreter
from meetgate_sandbox.pwsh.registry import _arg, cmdlet
from meetgate_sandbox.pwsh.tenant import _values
from meetgate_sandbox.pwsh.values import PSObject, _to_str

ROLE_MESSAGE = (
    "The role assigned to application {app} isn't supported in this scenario. Please check online "
    "documentation for assigning correct Directory Roles to Azure AD Application for EXO App-Only "
    "Authentication."
)
_CUSTOM_ATTRIBUTES = tuple(f"CustomAttribute{n}" for n in range(1, 16))


@dataclass
class ExchangeConnection:
    tenant_id: str
    organization: str
    #: the app id (app-only) or the admin's UPN
    account: str
    app_only: bool


def _exo(it: Interpreter, name: str) -> ExchangeConnection:
    """The connection; before Connect-ExchangeOnline the module's cmdlets do not exist yet."""
    if it.exchange is None:
        raise _not_recognized(name)
    connection: ExchangeConnection = it.exchange
    return connection


def _path(it: Interpreter, name: str, suffix: str) -> str:
    return f"/tenants/{_exo(it, name).tenant_id}/exchange{suffix}"


def _call(it: Interpreter, name: str, method: str, suffix: str, body: Any = None) -> Any:
    try:
        return it.tenant().call(method, _path(it, name, suffix), body)
    except PSError as exc:
        # Exchange's error records: the message, with the category the module reports
        category = "ManagementObjectNotFound" if "couldn't be found" in exc.message else "InvalidOperation"
        raise PSError(exc.message, exc.error_id, category) from None


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _certificate(named: dict[str, Any]) -> tuple[PSObject, tempfile.TemporaryDirectory[str] | None]:
    if "certificatethumbprint" in named:
        return certificate_from_store(_to_str(named["certificatethumbprint"])), None
    if "certificatefilepath" in named:
        from meetgate.certificates import CertificateError, certificate_pem, load_pfx, private_key_pem

        password = _to_str(named.get("certificatepassword")) or None
        try:
            pair = load_pfx(
                Path(_to_str(named["certificatefilepath"])), password.encode() if password else None
            )
        except CertificateError as exc:
            raise PSError(
                f"Connect-ExchangeOnline: cannot load the certificate file: {exc}",
                "CryptographicException",
                "InvalidData",
            ) from None
        folder = tempfile.TemporaryDirectory(prefix="exo-cert-")
        cert_path, key_path = Path(folder.name) / "cert.pem", Path(folder.name) / "key.pem"
        cert_path.write_bytes(certificate_pem(pair.certificate))
        key_path.touch(mode=0o600)
        key_path.write_bytes(private_key_pem(pair.private_key))
        return _load_pem_certificate(str(cert_path), str(key_path)), folder
    cert = named.get("certificate")
    if not isinstance(cert, PSObject) or not cert.get("_key_path"):
        raise PSError(
            "Connect-ExchangeOnline: -Certificate needs an X509Certificate2 with its private key.",
            "InvalidArgument",
            "InvalidArgument",
        )
    return cert, None


@cmdlet(
    "Connect-ExchangeOnline",
    "AppId Organization Certificate CertificateThumbPrint CertificateFilePath CertificatePassword "
    "UserPrincipalName ShowBanner ShowProgress",
)
def _connect(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    tenant = it.tenant()
    app_id = _to_str(named.get("appid")) or None
    organization = _to_str(named.get("organization")) or None
    with_certificate = any(
        k in named for k in ("certificate", "certificatethumbprint", "certificatefilepath")
    )
    if app_id is None and with_certificate:
        raise PSError("Connect-ExchangeOnline: -AppId is required with a certificate.", "InvalidArgument")
    if app_id is not None:
        if not organization:
            raise PSError(
                "Connect-ExchangeOnline: app-only authentication needs -Organization "
                "(the tenant's primary .onmicrosoft.com domain).",
                "InvalidArgument",
                "InvalidArgument",
            )
        if not with_certificate:
            raise PSError(
                "Connect-ExchangeOnline: app-only authentication needs -Certificate, "
                "-CertificateThumbPrint or -CertificateFilePath.",
                "InvalidArgument",
                "InvalidArgument",
            )
    key = organization or ""
    if not key:
        upn = _to_str(named.get("userprincipalname"))
        key = upn.split("@")[-1] if "@" in upn else ""
    if not key:
        raise PSError(
            "Connect-ExchangeOnline: no interactive sign-in is possible here; pass -Organization or "
            "-UserPrincipalName.",
            "InteractiveUnavailable",
            "AuthenticationError",
        )
    try:
        info = tenant.call("GET", f"/tenants/{_q(key)}")
    except PSError:
        raise PSError(
            f"Connect-ExchangeOnline: the organization '{key}' couldn't be found (-Organization is the "
            "tenant's primary .onmicrosoft.com domain).",
            "UnAuthorized",
            "AuthenticationError",
        ) from None
    domain = str(info.get("domain") or "")
    tenant_id = str(info.get("tenantId") or "")
    if organization is not None and app_id is not None and organization.lower() != domain.lower():
        raise PSError(
            f"Connect-ExchangeOnline: -Organization must be the primary .onmicrosoft.com domain "
            f"({domain}), not '{organization}'.",
            "UnAuthorized",
            "AuthenticationError",
        )
    if app_id is None:
        account = _to_str(named.get("userprincipalname")) or str(info.get("adminUpn") or "admin")
        it.exchange = ExchangeConnection(tenant_id, domain, account, app_only=False)
        return []
    cert, folder = _certificate(named)
    try:
        _certificate_sign_in(tenant, tenant_id, app_id, cert, "Connect-ExchangeOnline")
    finally:
        if folder is not None:
            folder.cleanup()
    access = tenant.call("GET", f"/tenants/{tenant_id}/exchange/app-only-access/{_q(app_id)}") or {}
    if not access.get("manageAsApp"):
        raise PSError("UnAuthorized", "UnAuthorized", "AuthenticationError")
    if not access.get("exchangeAdministrator"):
        raise PSError(ROLE_MESSAGE.format(app=app_id), "UnAuthorized", "AuthenticationError")
    it.exchange = ExchangeConnection(tenant_id, domain, app_id, app_only=True)
    return []


@cmdlet("Disconnect-ExchangeOnline", "")
def _disconnect(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.exchange = None
    return []


def _required(named: dict[str, Any], pos: list[Any], param: str, index: int | None = None) -> str:
    value = _to_str(_arg(named, pos, param, index)).strip()
    if not value:
        raise PSError(
            f"Cannot bind argument to parameter '{param}' because it is an empty string.",
            "ParameterArgumentValidationErrorEmptyStringNotAllowed",
            "InvalidData",
        )
    return value


def _pointer(row: dict[str, Any]) -> PSObject:
    return PSObject(
        DisplayName=row.get("display_name"),
        ObjectId=row.get("object_id"),
        AppId=row.get("app_id"),
        Identity=row.get("object_id"),
    )


@cmdlet("New-ServicePrincipal", "AppId ObjectId DisplayName ServiceId")
def _new_sp(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    name = "New-ServicePrincipal"
    body = {
        "appId": _required(named, pos, "AppId"),
        "objectId": _required(named, pos, "ObjectId"),
        "displayName": _to_str(named.get("displayname")) or None,
    }
    return [_pointer(_call(it, name, "POST", "/service-principals", body))]


def _pointers(it: Interpreter, name: str) -> list[dict[str, Any]]:
    return [dict(row) for row in _values(_call(it, name, "GET", "/service-principals"))]


@cmdlet("Get-ServicePrincipal", "Identity Organization")
def _get_sp(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    name = "Get-ServicePrincipal"
    rows = _pointers(it, name)
    identity = _to_str(_arg(named, pos, "Identity", 0)).lower()
    if not identity:
        return [_pointer(row) for row in rows]
    for row in rows:
        if identity in (str(row.get(k, "")).lower() for k in ("object_id", "app_id", "display_name")):
            return [_pointer(row)]
    raise PSError(
        f"The operation couldn't be performed because object '{identity}' couldn't be found.",
        "ManagementObjectNotFound",
        "ObjectNotFound",
    )


@cmdlet("Remove-ServicePrincipal", "Identity")
def _remove_sp(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    name = "Remove-ServicePrincipal"
    _call(it, name, "DELETE", f"/service-principals/{_q(_required(named, pos, 'Identity', 0))}")
    return []


def _scope(row: dict[str, Any]) -> PSObject:
    return PSObject(
        Name=row.get("name"),
        ScopeRestrictionType="RecipientScope",
        Exclusive=False,
        RecipientRoot=None,
        RecipientFilter=row.get("recipient_filter"),
        ServerFilter=None,
    )


@cmdlet("New-ManagementScope", "Name RecipientRestrictionFilter RecipientRoot")
def _new_scope(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    name = "New-ManagementScope"
    if "recipientroot" in named:
        raise PSError("New-ManagementScope: -RecipientRoot is not modelled by the sandbox.", "NotSupported")
    body = {
        "name": _required(named, pos, "Name", 0),
        "recipientRestrictionFilter": _required(named, pos, "RecipientRestrictionFilter"),
    }
    return [_scope(_call(it, name, "POST", "/management-scopes", body))]


@cmdlet("Get-ManagementScope", "Identity")
def _get_scope(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    name = "Get-ManagementScope"
    rows = [dict(row) for row in _values(_call(it, name, "GET", "/management-scopes"))]
    identity = _to_str(_arg(named, pos, "Identity", 0)).lower()
    if not identity:
        return [_scope(row) for row in rows]
    found = [row for row in rows if str(row.get("name", "")).lower() == identity]
    if not found:
        raise PSError(
            f"The operation couldn't be performed because object '{identity}' couldn't be found.",
            "ManagementObjectNotFound",
            "ObjectNotFound",
        )
    return [_scope(found[0])]


@cmdlet("Remove-ManagementScope", "Identity")
def _remove_scope(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    name = "Remove-ManagementScope"
    _call(it, name, "DELETE", f"/management-scopes/{_q(_required(named, pos, 'Identity', 0))}")
    return []


def _assignment(row: dict[str, Any], pointers: dict[str, str]) -> PSObject:
    scope_type = str(row.get("scope_type") or "Organization")
    return PSObject(
        Name=row.get("name"),
        Role=row.get("role"),
        RoleAssigneeName=pointers.get(str(row.get("app_object_id")), row.get("app_object_id")),
        RoleAssignee=row.get("app_object_id"),
        RoleAssigneeType="ServicePrincipal",
        AssignmentMethod="Direct",
        CustomResourceScope=row.get("scope") if scope_type == "CustomRecipientScope" else None,
        RecipientGroupScope=row.get("scope") if scope_type == "Group" else None,
        RecipientAdministrativeUnitScope=row.get("scope") if scope_type == "AdministrativeUnit" else None,
        RecipientWriteScope=scope_type,
        Enabled=True,
        WhenCreatedUTC=row.get("created"),
    )


def _pointer_names(it: Interpreter, name: str) -> dict[str, str]:
    return {str(row.get("object_id")): str(row.get("display_name")) for row in _pointers(it, name)}


@cmdlet(
    "New-ManagementRoleAssignment",
    "App Role Name CustomResourceScope RecipientGroupScope RecipientAdministrativeUnitScope",
)
def _new_assignment(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    name = "New-ManagementRoleAssignment"
    if "app" not in named:
        raise PSError(
            "New-ManagementRoleAssignment: the sandbox models application role assignments only (-App).",
            "NotSupported",
            "NotImplemented",
        )
    body: dict[str, Any] = {"app": _required(named, pos, "App"), "role": _required(named, pos, "Role")}
    for param, key in (
        ("name", "name"),
        ("customresourcescope", "customResourceScope"),
        ("recipientgroupscope", "recipientGroupScope"),
        ("recipientadministrativeunitscope", "recipientAdministrativeUnitScope"),
    ):
        if param in named:
            body[key] = _to_str(named[param])
    row = _call(it, name, "POST", "/role-assignments", body)
    return [_assignment(row, _pointer_names(it, name))]


@cmdlet("Get-ManagementRoleAssignment", "Identity Role RoleAssignee RoleAssigneeType")
def _get_assignment(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    name = "Get-ManagementRoleAssignment"
    pointers = _pointer_names(it, name)
    rows = [_assignment(dict(row), pointers) for row in _values(_call(it, name, "GET", "/role-assignments"))]
    identity = _to_str(_arg(named, pos, "Identity", 0)).lower()
    if identity:
        rows = [row for row in rows if _to_str(row["Name"]).lower() == identity]
        if not rows:
            raise PSError(
                f"The operation couldn't be performed because object '{identity}' couldn't be found.",
                "ManagementObjectNotFound",
                "ObjectNotFound",
            )
    if "role" in named:
        rows = [row for row in rows if _to_str(row["Role"]).lower() == _to_str(named["role"]).lower()]
    if "roleassignee" in named:
        wanted = _to_str(named["roleassignee"]).lower()
        rows = [
            row
            for row in rows
            if wanted in (_to_str(row["RoleAssignee"]).lower(), _to_str(row["RoleAssigneeName"]).lower())
        ]
    if "roleassigneetype" in named and _to_str(named["roleassigneetype"]).lower() != "serviceprincipal":
        rows = []  # the sandbox keeps application assignments only
    return rows


@cmdlet("Remove-ManagementRoleAssignment", "Identity")
def _remove_assignment(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    name = "Remove-ManagementRoleAssignment"
    _call(it, name, "DELETE", f"/role-assignments/{_q(_required(named, pos, 'Identity', 0))}")
    return []


@cmdlet("Test-ServicePrincipalAuthorization", "Identity Resource")
def _test_authorization(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    name = "Test-ServicePrincipalAuthorization"
    query = f"?identity={_q(_required(named, pos, 'Identity', 0))}"
    if "resource" in named:
        query += f"&resource={_q(_to_str(named['resource']))}"
    rows = _values(_call(it, name, "GET", f"/test-authorization{query}"))
    return [PSObject(**dict(row)) for row in rows]


@cmdlet("Get-Group", "Identity")
def _get_group(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    name = "Get-Group"
    row = _call(it, name, "GET", f"/groups/{_q(_required(named, pos, 'Identity', 0))}")
    return [PSObject(**dict(row))]


def _mailbox(row: dict[str, Any]) -> PSObject:
    attributes = {str(k).lower(): v for k, v in dict(row.get("customAttributes") or {}).items()}
    upn = row.get("userPrincipalName")
    return PSObject(
        Name=row.get("displayName"),
        DisplayName=row.get("displayName"),
        UserPrincipalName=upn,
        PrimarySmtpAddress=upn,
        ExternalDirectoryObjectId=row.get("user"),
        RecipientTypeDetails="UserMailbox",
        **{attr: attributes.get(attr.lower(), "") for attr in _CUSTOM_ATTRIBUTES},
    )


_SIMPLE_FILTER = re.compile(r"^\s*(\w+)\s+-eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


@cmdlet("Get-Mailbox", "Identity ResultSize Filter RecipientTypeDetails")
def _get_mailbox(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    name = "Get-Mailbox"
    boxes = [_mailbox(dict(row)) for row in _values(_call(it, name, "GET", "/mailboxes"))]
    identity = _to_str(_arg(named, pos, "Identity", 0)).lower()
    if identity:
        boxes = [
            box
            for box in boxes
            if identity
            in (_to_str(box["UserPrincipalName"]).lower(), _to_str(box["ExternalDirectoryObjectId"]).lower())
        ]
        if not boxes:
            raise PSError(
                f"The operation couldn't be performed because object '{identity}' couldn't be found.",
                "ManagementObjectNotFound",
                "ObjectNotFound",
            )
    if "filter" in named:
        match = _SIMPLE_FILTER.match(_to_str(named["filter"]))
        known = _mailbox({})
        prop = next((key for key in known if match and key.lower() == match.group(1).lower()), None)
        if match is None or prop is None:
            raise PSError(
                "Get-Mailbox: the sandbox evaluates -Filter \"Property -eq 'value'\" only.",
                "NotSupported",
                "NotImplemented",
            )
        wanted = match.group(2).replace("''", "'").lower()
        boxes = [box for box in boxes if _to_str(box[prop]).lower() == wanted]
    return boxes


@cmdlet("Set-Mailbox", "Identity " + " ".join(_CUSTOM_ATTRIBUTES))
def _set_mailbox(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    name = "Set-Mailbox"
    identity = _required(named, pos, "Identity", 0)
    attributes = {
        attr: _to_str(named[attr.lower()]) if named[attr.lower()] is not None else ""
        for attr in _CUSTOM_ATTRIBUTES
        if attr.lower() in named
    }
    if attributes:
        _call(it, name, "PATCH", f"/mailboxes/{_q(identity)}", {"customAttributes": attributes})
    return []
