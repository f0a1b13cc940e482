"""The ``powershell`` backend of the calendar plane: ``pwsh`` with ExchangeOnlineManagement, app-only.

Each call is one session: ``Connect-ExchangeOnline -AppId -Certificate -Organization`` (the certificate
loaded with ``X509Certificate2::CreateFromPemFile``), then the work, printing one compressed JSON
document per result. App-only Exchange PowerShell needs the app to hold the Office 365 Exchange Online
application permission ``Exchange.ManageAsApp`` (admin-consented) and an Entra role such as Exchange
Administrator; a refusal says so. The runner is the Teams policy's (:mod:`meetgate.admin.policy.powershell`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from meetgate.admin.mailbox_scope.model import (
    Assignment,
    DesiredMailboxScope,
    ExchangeState,
    MailboxScopeError,
    Pointer,
    Scope,
)
from meetgate.admin.mailbox_scope.planner import Step
from meetgate.admin.mailbox_scope.script import step_command
from meetgate.admin.policy.powershell import (
    PwshResult,
    PwshRunner,
    SubprocessPwshRunner,
    _as_list,
    _failure,
    _json_lines,
)
from meetgate.admin.policy.script import ps_quote

#: the remedy when Exchange refuses the app-only connection or a cmdlet for lack of rights
RIGHTS_REMEDY = (
    "app-only Exchange Online PowerShell needs, on the app: the API permission Office 365 Exchange Online "
    "> Exchange.ManageAsApp (application, admin-consented) and the Entra role Exchange Administrator on "
    "its service principal; or write a script with `meetgate mailbox-scope script` and let an Exchange "
    "administrator (Organization Management) run it"
)
_RIGHTS_WORDS = ("unauthorized", "isn't supported in this scenario", "aadsts", "access denied", "403")


class StepResult(NamedTuple):
    step: Step
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class ExchangeConnection:
    """How the session signs in: app id + PEM certificate and key, for ``-Organization``."""

    organization: str
    app_id: str
    certificate_path: Path
    private_key_path: Path

    def script(self) -> str:
        return (
            "$Certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile("
            f"{ps_quote(str(self.certificate_path))}, {ps_quote(str(self.private_key_path))})\n"
            f"Connect-ExchangeOnline -AppId {ps_quote(self.app_id)} -Certificate $Certificate "
            f"-Organization {ps_quote(self.organization)} -ShowBanner:$false\n"
        )


def _remedy(result: PwshResult) -> str:
    text = f"{result.stderr}\n{result.stdout}".lower()
    if any(word in text for word in _RIGHTS_WORDS):
        return RIGHTS_REMEDY
    return (
        "the PowerShell session failed: read the error above; check --pwsh and that the "
        "ExchangeOnlineManagement module loads (`pwsh -c Import-Module ExchangeOnlineManagement`), and "
        "that -Organization is the tenant's primary .onmicrosoft.com domain (exchange_organization)"
    )


@dataclass
class ExchangePowerShellBackend:
    """Reads and changes RBAC for Applications through Exchange Online PowerShell (or the stand-in)."""

    connection: ExchangeConnection
    runner: PwshRunner = field(default_factory=SubprocessPwshRunner)
    name: str = "powershell"
    sessions: int = 0

    def _run(self, body: str) -> PwshResult:
        self.sessions += 1
        return self.runner.run("$ErrorActionPreference = 'Stop'\n" + self.connection.script() + body, {})

    def _document(self, result: PwshResult, what: str) -> dict[str, Any]:
        docs = _json_lines(result.stdout)
        if result.code != 0 or not docs or not isinstance(docs[-1], dict):
            raise MailboxScopeError(f"{what} through pwsh failed: {_failure(result)}", _remedy(result))
        document: dict[str, Any] = docs[-1]
        return document

    def read_state(self, desired: DesiredMailboxScope) -> ExchangeState:
        """The pointers, scopes, application role assignments, and the tagged mailboxes or the group's DN."""
        extra = "$Tagged = @()\n$Dn = $null\n"
        if desired.mode == "attribute":
            extra += (
                "$Tagged = @(Get-Mailbox -ResultSize Unlimited -Filter "
                f"{ps_quote(desired.attribute + ' -eq ' + chr(39) + desired.tag + chr(39))} | "
                "Select-Object ExternalDirectoryObjectId, UserPrincipalName)\n"
            )
        elif desired.mode == "group":
            extra += (
                f"$Group = Get-Group -Identity {ps_quote(str(desired.group))} -ErrorAction SilentlyContinue\n"
                "if ($null -ne $Group) { $Dn = $Group.DistinguishedName }\n"
            )
        result = self._run(
            "$Sps = @(Get-ServicePrincipal | Select-Object DisplayName, ObjectId, AppId)\n"
            "$Scopes = @(Get-ManagementScope | Select-Object Name, RecipientFilter)\n"
            # every assignment, filtered here: -RoleAssigneeType ServicePrincipal is not a documented value
            "$Assignments = @(Get-ManagementRoleAssignment | Select-Object Name, Role, RoleAssignee, "
            "RoleAssigneeName, RoleAssigneeType, RecipientWriteScope, CustomResourceScope, RecipientGroupScope, "
            "RecipientAdministrativeUnitScope, WhenCreatedUTC)\n"
            f"{extra}"
            "ConvertTo-Json -InputObject ([pscustomobject]@{ sps = $Sps; scopes = $Scopes; "
            "assignments = $Assignments; tagged = $Tagged; dn = $Dn }) -Depth 4 -Compress\n"
        )
        data = self._document(result, "reading RBAC for Applications")
        state = ExchangeState(group_dn=data.get("dn") or None)
        for sp in _as_list(data.get("sps")):
            state.pointers.append(
                Pointer(
                    str(sp.get("AppId") or ""),
                    str(sp.get("ObjectId") or ""),
                    str(sp.get("DisplayName") or ""),
                )
            )
        for scope in _as_list(data.get("scopes")):
            name = str(scope.get("Name") or "")
            state.scopes[name.lower()] = Scope(name, str(scope.get("RecipientFilter") or ""))
        for row in _as_list(data.get("assignments")):
            if str(row.get("RoleAssigneeType") or "ServicePrincipal").lower() != "serviceprincipal":
                continue
            scope_type = str(row.get("RecipientWriteScope") or "Organization")
            if row.get("RecipientAdministrativeUnitScope"):
                # what RecipientWriteScope says for an administrative unit is not documented
                scope_type = "AdministrativeUnit"
            state.assignments.append(
                Assignment(
                    str(row.get("Name") or ""),
                    str(row.get("Role") or ""),
                    str(row.get("RoleAssignee") or ""),
                    scope_type,
                    row.get("CustomResourceScope")
                    or row.get("RecipientGroupScope")
                    or row.get("RecipientAdministrativeUnitScope")
                    or None,
                    row.get("WhenCreatedUTC") or None,
                    str(row.get("RoleAssigneeName") or ""),
                )
            )
        for box in _as_list(data.get("tagged")):
            uid = str(box.get("ExternalDirectoryObjectId") or "").lower()
            if uid:
                state.tagged[uid] = str(box.get("UserPrincipalName") or "")
        return state

    def apply(self, steps: Sequence[Step], attribute: str) -> list[StepResult]:
        """Carry out ``steps`` in order in one session; a failed step is reported, later ones still run."""
        if not steps:
            return []
        blocks = "".join(
            "try {\n"
            f"    {step_command(step, attribute)}\n"
            f"    [pscustomobject]@{{ step = {index}; ok = $true }} | ConvertTo-Json -Compress\n"
            "} catch {\n"
            f"    [pscustomobject]@{{ step = {index}; ok = $false; error = $_.Exception.Message }} | "
            "ConvertTo-Json -Compress\n"
            "}\n"
            for index, step in enumerate(steps)
        )
        result = self._run(blocks)
        seen: dict[int, StepResult] = {}
        for doc in _json_lines(result.stdout):
            if isinstance(doc, dict) and isinstance(doc.get("step"), int) and 0 <= doc["step"] < len(steps):
                seen[doc["step"]] = StepResult(steps[doc["step"]], bool(doc.get("ok")), doc.get("error"))
        if not seen and result.code != 0:
            raise MailboxScopeError(
                f"applying the mailbox scope through pwsh failed: {_failure(result)}", _remedy(result)
            )
        missing = f"no result from pwsh ({_failure(result)})"
        return [seen.get(i) or StepResult(step, False, missing) for i, step in enumerate(steps)]

    def test_authorization(self, app_id: str, role: str, resources: Sequence[str]) -> dict[str, bool]:
        """``Test-ServicePrincipalAuthorization -Resource`` for each mailbox: in scope through ``role``?"""
        if not resources:
            return {}
        rows = ", ".join(ps_quote(r) for r in resources)
        result = self._run(
            f"foreach ($Resource in @({rows})) {{\n"
            f"    $Rows = @(Test-ServicePrincipalAuthorization -Identity {ps_quote(app_id)} -Resource $Resource | "
            "Select-Object RoleName, InScope)\n"
            "    ConvertTo-Json -InputObject ([pscustomobject]@{ resource = $Resource; rows = $Rows }) "
            "-Depth 4 -Compress\n"
            "}\n"
        )
        docs = [d for d in _json_lines(result.stdout) if isinstance(d, dict) and "resource" in d]
        if result.code != 0 or len(docs) != len(resources):
            raise MailboxScopeError(
                f"Test-ServicePrincipalAuthorization through pwsh failed: {_failure(result)}", _remedy(result)
            )
        out: dict[str, bool] = {}
        for test in docs:
            out[str(test.get("resource"))] = any(
                str(row.get("RoleName", "")).lower() == role.lower() and row.get("InScope") is True
                for row in _as_list(test.get("rows"))
            )
        return out
