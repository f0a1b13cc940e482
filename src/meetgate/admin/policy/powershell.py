"""The ``powershell`` backend: runs ``pwsh`` with the MicrosoftTeams module, app-only.

Each call is one ``pwsh`` session: connect (certificate via ``X509Certificate2::CreateFromPemFile``, or
``-AccessTokens`` handed over in environment variables so they never appear in the script or its
transcript), then the work, printing one compressed JSON document per result. Grants are batched
(``batch_size`` users per session) because connecting costs seconds in the real module.

The executable is configurable (``pwsh`` by default); tests and the demo use the sandbox's stand-in.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from meetgate.admin.policy.model import (
    DirectoryUser,
    GroupGrant,
    PolicyDefinition,
    PolicyError,
    TenantPolicyState,
    policy_key,
    policy_name,
)
from meetgate.admin.policy.ports import OpResult, UserOp
from meetgate.admin.policy.script import ps_quote

PWSH_FLAGS = ("-NoLogo", "-NoProfile", "-NonInteractive", "-Command", "-")
TOKEN_ENV = ("MEETGATE_TEAMS_GRAPH_TOKEN", "MEETGATE_TEAMS_ADMIN_TOKEN")
#: the resource the Teams module's second token is for
TEAMS_RESOURCE_SCOPE = "48ac35b8-9aa8-4d74-927d-1f4a14a0b239/.default"


@dataclass(frozen=True)
class PwshResult:
    code: int
    stdout: str
    stderr: str


class PwshRunner(Protocol):
    def run(self, script: str, env: Mapping[str, str]) -> PwshResult: ...


@dataclass
class SubprocessPwshRunner:
    """Runs ``command`` (e.g. ``["pwsh"]``) with the script on stdin."""

    command: Sequence[str] = ("pwsh",)
    timeout_seconds: float = 1800.0
    #: extra environment for every session (e.g. where the sandbox stand-in finds its tenant)
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def run(self, script: str, env: Mapping[str, str]) -> PwshResult:
        try:
            done = subprocess.run(
                [*self.command, *PWSH_FLAGS],
                input=script,
                capture_output=True,
                text=True,
                env={**os.environ, **self.extra_env, **env},
                timeout=self.timeout_seconds,
                check=False,
            )
        except FileNotFoundError:
            raise PolicyError(
                f"cannot run {self.command[0]!r}: PowerShell 7 is not installed here",
                "install PowerShell 7 and the MicrosoftTeams module, pass --pwsh PATH, or write a "
                "script with `meetgate policy script --out policy.ps1` and let an administrator run it",
            ) from None
        except subprocess.TimeoutExpired:
            raise PolicyError(
                f"pwsh did not finish within {self.timeout_seconds:.0f} s",
                "retry; apply resumes where it stopped",
            ) from None
        return PwshResult(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class PwshConnection:
    """How the session signs in, app-only: a PEM certificate + key, or tokens from a provider."""

    tenant_id: str
    app_id: str | None = None
    certificate_path: Path | None = None
    private_key_path: Path | None = None
    #: returns (graph token, teams token); they travel in environment variables, never in the script
    tokens: Callable[[], tuple[str, str]] | None = None

    def script(self) -> str:
        if self.tokens is not None:
            return (
                f"Connect-MicrosoftTeams -TenantId {ps_quote(self.tenant_id)} "
                f"-AccessTokens @($env:{TOKEN_ENV[0]}, $env:{TOKEN_ENV[1]}) | Out-Null\n"
            )
        if self.certificate_path and self.private_key_path and self.app_id:
            return (
                "$Certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile("
                f"{ps_quote(str(self.certificate_path))}, {ps_quote(str(self.private_key_path))})\n"
                f"Connect-MicrosoftTeams -TenantId {ps_quote(self.tenant_id)} -ApplicationId {ps_quote(self.app_id)} "
                "-Certificate $Certificate | Out-Null\n"
            )
        raise PolicyError(
            "the powershell backend needs app-only credentials",
            "set client_id, certificate_path and private_key_path in the profile (unencrypted PEM key), "
            "or write a script for an administrator with `meetgate policy script --out policy.ps1`",
        )

    def env(self) -> dict[str, str]:
        if self.tokens is None:
            return {}
        graph, teams = self.tokens()
        return {TOKEN_ENV[0]: graph, TOKEN_ENV[1]: teams}


def _json_lines(stdout: str) -> list[Any]:
    out = []
    for line in stdout.splitlines():
        text = line.strip()
        if text.startswith(("{", "[")):
            try:
                out.append(json.loads(text))
            except json.JSONDecodeError:
                continue
        # anything else is host output (banners, warnings): ignored
    return out


#: stderr lines that frame an error rather than say it (a traceback's header and frames, PowerShell's
#: "At line:" position and "+ CategoryInfo" details)
_NOISE_PREFIXES = ("Traceback (most recent call last)", "At line:", "+ ", "~")


def _failure(result: PwshResult) -> str:
    """The error the session printed last: a traceback's final line, PowerShell's error message."""
    lines = [
        line.strip()
        for line in result.stderr.strip().splitlines()
        if line.strip() and not line.startswith((" ", "\t")) and not line.strip().startswith(_NOISE_PREFIXES)
    ]
    return lines[-1] if lines else f"pwsh exited with {result.code}"


#: words in a failure that point at the credentials or the role rather than at the session itself
_AUTH_WORDS = ("AADSTS", "unauthorized", "forbidden", "access denied", "401", "403", "not authorized", "role")


def _remedy(result: PwshResult, auth_remedy: str) -> str:
    """The credentials-and-role advice only when the failure is about them; else how to check the
    PowerShell session itself (it failed before Teams could say yes or no)."""
    text = f"{result.stderr}\n{result.stdout}".lower()
    if any(word.lower() in text for word in _AUTH_WORDS):
        return auth_remedy
    return (
        "the PowerShell session failed before reaching Teams: read the error above; check --pwsh and that "
        "the MicrosoftTeams module loads (`pwsh -c Import-Module MicrosoftTeams`); against the sandbox, "
        "check that it runs (`meetgate sandbox info`)"
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass
class PowerShellBackend:
    """Reads and changes the policy through Teams PowerShell (or the sandbox stand-in)."""

    connection: PwshConnection
    runner: PwshRunner = field(default_factory=SubprocessPwshRunner)
    batch_size: int = 200
    name: str = "powershell"
    #: users seen by the last :meth:`read_state` (id → user), so the directory can be skipped
    users: dict[str, DirectoryUser] = field(default_factory=dict)
    sessions: int = 0

    def _run(self, body: str) -> PwshResult:
        script = "$ErrorActionPreference = 'Stop'\n" + self.connection.script() + body
        self.sessions += 1
        return self.runner.run(script, self.connection.env())

    def read_state(self, identity: str) -> TenantPolicyState:
        result = self._run(
            "$Policies = @(Get-CsApplicationAccessPolicy | Select-Object Identity, AppIds, Description)\n"
            "$Users = @(Get-CsOnlineUser -ResultSize Unlimited | "
            "Select-Object Identity, UserPrincipalName, AccountEnabled, ApplicationAccessPolicy)\n"
            "$Groups = @(Get-CsGroupPolicyAssignment -PolicyType ApplicationAccessPolicy | "
            "Select-Object GroupId, PolicyName, Priority)\n"
            "ConvertTo-Json -InputObject ([pscustomobject]@{ policies = $Policies; users = $Users; "
            "groups = $Groups }) -Depth 4 -Compress\n"
        )
        docs = _json_lines(result.stdout)
        if result.code != 0 or not docs or not isinstance(docs[-1], dict):
            raise PolicyError(
                f"reading the policy state through pwsh failed: {_failure(result)}",
                _remedy(
                    result,
                    "check the credentials (the app needs the Teams Administrator role) and that the "
                    "MicrosoftTeams module is installed",
                ),
            )
        data = docs[-1]
        state = TenantPolicyState()
        for pol in _as_list(data.get("policies")):
            ident = str(pol.get("Identity") or "")
            ids = tuple(str(a) for a in _as_list(pol.get("AppIds")))
            if ident.lower() == "global":
                if ids:  # the tenant-wide instance lists apps: a policy is granted -Global
                    state.policies["global"] = PolicyDefinition(
                        "Global", ids, str(pol.get("Description") or "")
                    )
                    state.global_policy = "Global"
                continue
            state.policies[policy_key(ident) or ""] = PolicyDefinition(
                ident, ids, str(pol.get("Description") or "")
            )
        self.users = {}
        for user in _as_list(data.get("users")):
            uid = str(user.get("Identity") or "").lower()
            if not uid:
                continue
            upn = str(user.get("UserPrincipalName") or "")
            self.users[uid] = DirectoryUser(uid, upn, "", bool(user.get("AccountEnabled", True)))
            state.upns[uid] = upn
            held = user.get("ApplicationAccessPolicy")
            if held:
                state.direct[uid] = policy_name(str(held))
        for grant in _as_list(data.get("groups")):
            state.group_grants.append(
                GroupGrant(
                    str(grant.get("GroupId")),
                    policy_name(str(grant.get("PolicyName"))),
                    int(grant.get("Priority") or 0),
                )
            )
        return state

    def ensure_policy(self, definition: PolicyDefinition) -> None:
        ids = ", ".join(ps_quote(a) for a in definition.app_ids)
        ident, desc = ps_quote(definition.identity), ps_quote(definition.description)
        result = self._run(
            f"$Existing = Get-CsApplicationAccessPolicy -Identity {ident} -ErrorAction SilentlyContinue\n"
            "if ($null -eq $Existing) {\n"
            f"    New-CsApplicationAccessPolicy -Identity {ident} -AppIds @({ids}) -Description {desc} | Out-Null\n"
            "    $Action = 'created'\n"
            "} else {\n"
            f"    Set-CsApplicationAccessPolicy -Identity {ident} -AppIds @({ids}) -Description {desc} | Out-Null\n"
            "    $Action = 'updated'\n"
            "}\n"
            "[pscustomobject]@{ policy = $Action } | ConvertTo-Json -Compress\n"
        )
        if result.code != 0 or not _json_lines(result.stdout):
            raise PolicyError(
                f"creating or updating {definition.identity} through pwsh failed: {_failure(result)}",
                _remedy(result, "check the credentials and the Teams Administrator role, then apply again"),
            )

    def apply_batch(self, policy_name_: str, ops: Sequence[UserOp]) -> list[OpResult]:
        rows = "\n".join(
            f"    [pscustomobject]@{{ user = {ps_quote(op.user_id)}; action = {ps_quote(op.action)} }}"
            for op in ops
        )
        result = self._run(
            f"$PolicyName = {ps_quote(policy_name(policy_name_))}\n"
            f"$Ops = @(\n{rows}\n)\n"
            "foreach ($Op in $Ops) {\n"
            "    try {\n"
            "        if ($Op.action -eq 'grant') {\n"
            "            Grant-CsApplicationAccessPolicy -Identity $Op.user -PolicyName $PolicyName\n"
            "        } else {\n"
            "            Grant-CsApplicationAccessPolicy -Identity $Op.user -PolicyName $null\n"
            "        }\n"
            "        [pscustomobject]@{ user = $Op.user; action = $Op.action; ok = $true } | ConvertTo-Json -Compress\n"
            "    } catch {\n"
            "        [pscustomobject]@{ user = $Op.user; action = $Op.action; ok = $false; "
            "error = $_.Exception.Message } | ConvertTo-Json -Compress\n"
            "    }\n"
            "}\n"
        )
        seen: dict[tuple[str, str], OpResult] = {}
        for doc in _json_lines(result.stdout):
            if isinstance(doc, dict) and "user" in doc:
                key = (str(doc["user"]), str(doc.get("action")))
                seen[key] = OpResult(key[0], key[1], bool(doc.get("ok")), doc.get("error"))
        missing = f"no result from pwsh ({_failure(result)})"
        return [
            seen.get((op.user_id, op.action)) or OpResult(op.user_id, op.action, False, missing) for op in ops
        ]

    # DirectoryPort over the users Get-CsOnlineUser listed (groups need Graph)
    def find_users(self, refs: Sequence[str]) -> dict[str, DirectoryUser]:
        by_upn = {u.upn.lower(): u for u in self.users.values()}
        out = {}
        for ref in refs:
            user = self.users.get(ref.lower()) or by_upn.get(ref.lower())
            if user is not None:
                out[ref] = user
        return out

    def group_members(self, group_id: str) -> list[DirectoryUser] | None:
        raise PolicyError(
            "expanding Entra groups needs Microsoft Graph",
            "configure the profile for Graph (client_id and certificate) so groups can be expanded",
        )
