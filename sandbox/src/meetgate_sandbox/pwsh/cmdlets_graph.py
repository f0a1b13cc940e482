"""Microsoft Graph PowerShell cmdlets for the sandbox's pwsh stand-in (:mod:`meetgate_sandbox.pwsh`).

Enough of ``Microsoft.Graph.Authentication`` and ``Microsoft.Graph.CloudCommunications`` to run the
runbook's step 6 by hand (the script ``meetgate validate --export DIR`` writes):

    Connect-MgGraph  -TenantId -ClientId (-CertificateThumbprint | -Certificate) [-NoWelcome]
    Get-MgContext, Disconnect-MgGraph
    New-MgUserOnlineMeeting     -UserId -BodyParameter @{...}
    Get-MgUserOnlineMeeting     -UserId -OnlineMeetingId
    Remove-MgUserOnlineMeeting  -UserId -OnlineMeetingId

Calls go to the sandbox's Graph with an app-only token signed for by the certificate, exactly as a
client would; a Graph error surfaces the way the SDK shows it (message, ``Status: 403 (Forbidden)``,
``ErrorCode: …``). ``-CertificateThumbprint`` looks in the folder ``MEETGATE_PWSH_CERT_STORE`` names,
the stand-in's ``Cert:\\CurrentUser\\My``.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from meetgate_sandbox.pwsh.certs import _certificate_sign_in, certificate_from_store
from meetgate_sandbox.pwsh.errors import PSError
from meetgate_sandbox.pwsh.interpreter import Interpreter
from meetgate_sandbox.pwsh.registry import _arg, cmdlet
from meetgate_sandbox.pwsh.tenant import _b64json
from meetgate_sandbox.pwsh.values import PSObject, _to_str


@dataclass
class GraphConnection:
    tenant_id: str
    client_id: str
    thumbprint: str
    access_token: str
    roles: list[str]


def _graph(it: Interpreter) -> GraphConnection:
    if it.graph is None:
        raise PSError(
            "Authentication needed. Please call Connect-MgGraph.",
            "AuthenticationNeeded",
            "AuthenticationError",
        )
    connection: GraphConnection = it.graph
    return connection


def _claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    return _b64json(parts[1]) if len(parts) == 3 else {}


@cmdlet("Connect-MgGraph", "TenantId ClientId CertificateThumbprint Certificate NoWelcome Scopes Environment")
def _connect_mg_graph(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    tenant_id = _to_str(named.get("tenantid"))
    client_id = _to_str(named.get("clientid"))
    if "scopes" in named or not ("certificatethumbprint" in named or "certificate" in named):
        raise PSError(
            "A delegated (interactive) sign-in is not possible here, and the application "
            "access policy governs app-only calls only; pass -TenantId -ClientId -CertificateThumbprint.",
            "InteractiveUnavailable",
            "AuthenticationError",
        )
    if not tenant_id or not client_id:
        raise PSError(
            "App-only sign-in needs -TenantId and -ClientId.",
            "InvalidArgument",
            "InvalidArgument",
        )
    if "certificatethumbprint" in named:
        cert = certificate_from_store(_to_str(named["certificatethumbprint"]))
    else:
        cert = named["certificate"]
        if not isinstance(cert, PSObject) or not cert.get("_key_path"):
            raise PSError(
                "-Certificate needs an X509Certificate2 with its private key.",
                "InvalidArgument",
                "InvalidArgument",
            )
    token = _certificate_sign_in(it.tenant(), tenant_id, client_id, cert, command="")
    access_token = str(token.get("access_token", ""))
    claims = _claims(access_token)
    it.graph = GraphConnection(
        tenant_id=str(claims.get("tid") or tenant_id),
        client_id=client_id,
        thumbprint=_to_str(cert.get("Thumbprint")),
        access_token=access_token,
        roles=[str(r) for r in claims.get("roles", [])],
    )
    if "nowelcome" not in named:
        it.host("Welcome to Microsoft Graph!")
    return []


@cmdlet("Get-MgContext")
def _get_mg_context(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    if it.graph is None:
        return []
    conn = _graph(it)
    return [
        PSObject(
            ClientId=conn.client_id,
            TenantId=conn.tenant_id,
            CertificateThumbprint=conn.thumbprint,
            Scopes=list(conn.roles),
            AuthType="AppOnly",
            TokenCredentialType="ClientCertificate",
            ContextScope="Process",
            Environment="Global",
        )
    ]


@cmdlet("Disconnect-MgGraph")
def _disconnect_mg_graph(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    if it.graph is None:
        raise PSError("No application to sign out from.", "NotConnected", "AuthenticationError")
    conn = _graph(it)
    it.graph = None
    return [PSObject(ClientId=conn.client_id, TenantId=conn.tenant_id, AuthType="AppOnly")]


def _pascal(value: Any) -> Any:
    """The SDK's objects show properties in PascalCase (``JoinWebUrl``); nested values likewise."""
    if isinstance(value, dict):
        return PSObject(
            (k[:1].upper() + k[1:], _pascal(v)) for k, v in value.items() if not k.startswith("@")
        )
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """A hashtable / PSObject as the JSON body the SDK would send (keys as written)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _call(it: Interpreter, command: str, method: str, path: str, body: Any = None) -> Any:
    conn = _graph(it)
    tenant = it.tenant()
    response = tenant.http.request(
        method, f"{tenant.graph_url}/v1.0{path}", json_body=body, bearer=conn.access_token
    )
    if response.status_code >= 400:
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        code = str(error.get("code") or "UnknownError")
        message = str(error.get("message") or "")
        reason = (
            HTTPStatus(response.status_code).phrase
            if response.status_code in HTTPStatus._value2member_map_
            else ""
        )
        raise PSError(
            f"{message}\r\n\r\nStatus: {response.status_code} ({reason})\r\nErrorCode: {code}",
            f"{command}_{re.sub(r'[^A-Za-z]', '', code)}",
            "InvalidOperation",
        )
    if response.status_code == 204 or not response.text:
        return None
    return response.json()


def _user_path(named: dict[str, Any], pos: list[Any], command: str) -> str:
    user = _to_str(_arg(named, pos, "UserId", 0))
    if not user:
        raise PSError(
            f"{command}: -UserId is required.", "ParameterArgumentValidationError", "InvalidArgument"
        )
    return f"/users/{urllib.parse.quote(user, safe='@.')}/onlineMeetings"


def _meeting_id(named: dict[str, Any], pos: list[Any], command: str) -> str:
    meeting = _to_str(_arg(named, pos, "OnlineMeetingId", 1))
    if not meeting:
        raise PSError(
            f"{command}: -OnlineMeetingId is required.", "ParameterArgumentValidationError", "InvalidArgument"
        )
    return urllib.parse.quote(meeting, safe="")


@cmdlet("New-MgUserOnlineMeeting", "UserId BodyParameter Subject StartDateTime EndDateTime")
def _new_meeting(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    path = _user_path(named, pos, "New-MgUserOnlineMeeting")
    if "bodyparameter" in named:
        body = _plain(named["bodyparameter"])
    else:
        body = {
            key: _to_str(named[key.lower()])
            for key in ("subject", "startDateTime", "endDateTime")
            if key.lower() in named
        }
    return [_pascal(_call(it, "New-MgUserOnlineMeeting", "POST", path, body))]


@cmdlet("Get-MgUserOnlineMeeting", "UserId OnlineMeetingId")
def _get_meeting(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    path = _user_path(named, pos, "Get-MgUserOnlineMeeting")
    return [
        _pascal(
            _call(
                it,
                "Get-MgUserOnlineMeeting",
                "GET",
                f"{path}/{_meeting_id(named, pos, 'Get-MgUserOnlineMeeting')}",
            )
        )
    ]


@cmdlet("Remove-MgUserOnlineMeeting", "UserId OnlineMeetingId")
def _remove_meeting(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    path = _user_path(named, pos, "Remove-MgUserOnlineMeeting")
    _call(
        it,
        "Remove-MgUserOnlineMeeting",
        "DELETE",
        f"{path}/{_meeting_id(named, pos, 'Remove-MgUserOnlineMeeting')}",
    )
    return []
