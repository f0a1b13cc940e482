"""A stand-in for ``pwsh`` + the MicrosoftTeams module, acting on a sandbox tenant.

PowerShell 7 and the MicrosoftTeams module cannot be installed on our machines, so this small
program runs exactly the PowerShell meetgate emits (the ``powershell`` backend's batches and the
``script`` backend's ``.ps1``) and applies it to a sandbox tenant through the control API. It
understands a small language subset — ``param``, variables, ``'..'``/``".."`` strings, ``@()``,
``@{}``, ``[pscustomobject]``, member access, ``+``, ``-eq -ne -gt -lt -replace -not -and -or``,
``if/elseif/else``, ``foreach``, ``try/catch/finally``, ``exit``, pipelines — and these commands:

    Connect-MicrosoftTeams  (-TenantId, with -ApplicationId -Certificate <X509Certificate2> or
                             -CertificateThumbprint (see the certificate store below),
                             -AccessTokens @(graph, teams), or interactively as the tenant admin)
    New-/Set-/Get-/Remove-CsApplicationAccessPolicy
    Grant-CsApplicationAccessPolicy  -Identity u | -Group g -Rank n | -Global,  -PolicyName n|$null
    Get-CsOnlineUser [-Identity u] [-ResultSize Unlimited]
    Get-CsUserPolicyAssignment -Identity u -PolicyType ApplicationAccessPolicy
    Get-CsGroupPolicyAssignment -PolicyType ApplicationAccessPolicy
    ConvertTo-Json, Select-Object, Out-Null, Write-Host, Write-Output, Write-Warning,
    Start-Transcript, Stop-Transcript,
    [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile(cert, key)
    Microsoft Graph PowerShell (module :mod:`meetgate_sandbox.pwsh.cmdlets_graph`): Connect-MgGraph,
    Get-MgContext, Disconnect-MgGraph, New-/Get-/Remove-MgUserOnlineMeeting
    Exchange Online PowerShell (module :mod:`meetgate_sandbox.pwsh.cmdlets_exchange`):
    Connect-/Disconnect-ExchangeOnline, New-/Get-/Remove-ServicePrincipal, -ManagementScope,
    -ManagementRoleAssignment, Test-ServicePrincipalAuthorization, Get-Group, Get-/Set-Mailbox

``-CertificateThumbprint`` reads ``Cert:\\CurrentUser\\My`` on Windows; here the store is the folder
``MEETGATE_PWSH_CERT_STORE`` names: PEM certificates and their unencrypted PEM keys, matched by
thumbprint and public key.

Anything else is refused with PowerShell's own error text. Invocation mirrors pwsh:
``-Command <text>``, ``-Command -`` or no argument (script on stdin), ``-File x.ps1 [-Param value]``;
``-NoLogo -NoProfile -NonInteractive`` are accepted. Exit code 1 after an uncaught error, or ``exit n``.

The sandbox is found from ``MEETGATE_SANDBOX_CONTROL_URL`` (+ ``MEETGATE_SANDBOX_CA_BUNDLE``,
``MEETGATE_SANDBOX_AUTHORITY_URL``), else the ``sandbox.json`` named by ``MEETGATE_SANDBOX_JSON``,
else ``./sandbox.json`` or ``./.meetgate/sandbox/sandbox.json``.

The package, along the seams: ``lexer`` (tokens) → ``parser`` (AST as tuples) → ``interpreter``
(runs it; ``values`` are PowerShell's conversions, ``errors`` its error records); ``tenant`` reaches
the sandbox (HTTPS, control API), ``certs`` holds the certificate loading and the app-only sign-in;
``registry`` is where ``cmdlets_core``, ``cmdlets_teams``, ``cmdlets_graph`` and ``cmdlets_exchange`` register; ``cli`` is
pwsh's command line (``python -m meetgate_sandbox.pwsh`` runs it). Importing the package registers
every cmdlet.
"""

from __future__ import annotations

# Importing the cmdlet modules registers their cmdlets in CMDLETS / PARAMS.
from meetgate_sandbox.pwsh import cmdlets_core, cmdlets_exchange, cmdlets_graph, cmdlets_teams
from meetgate_sandbox.pwsh.certs import (
    CERT_STORE_ENV,
    _certificate_sign_in,
    _load_pem_certificate,
    certificate_from_store,
)
from meetgate_sandbox.pwsh.cli import main, run
from meetgate_sandbox.pwsh.cmdlets_graph import GraphConnection
from meetgate_sandbox.pwsh.errors import ExitScript, ParseError, PSError, _not_recognized
from meetgate_sandbox.pwsh.interpreter import Interpreter
from meetgate_sandbox.pwsh.lexer import Tok, tokenize
from meetgate_sandbox.pwsh.parser import Parser
from meetgate_sandbox.pwsh.registry import CMDLETS, PARAMS, CmdletFn, _arg, cmdlet
from meetgate_sandbox.pwsh.tenant import Connection, TenantControlClient, _b64json, _Http, _Response, _values
from meetgate_sandbox.pwsh.values import PSObject, _collapse, _enum, _eq, _jsonable, _to_str, _truthy

__all__ = [
    "CERT_STORE_ENV",
    "CMDLETS",
    "PARAMS",
    "CmdletFn",
    "Connection",
    "ExitScript",
    "GraphConnection",
    "Interpreter",
    "PSError",
    "PSObject",
    "ParseError",
    "Parser",
    "TenantControlClient",
    "Tok",
    "_Http",
    "_Response",
    "_arg",
    "_b64json",
    "_certificate_sign_in",
    "_collapse",
    "_enum",
    "_eq",
    "_jsonable",
    "_load_pem_certificate",
    "_not_recognized",
    "_to_str",
    "_truthy",
    "_values",
    "certificate_from_store",
    "cmdlet",
    "cmdlets_core",
    "cmdlets_exchange",
    "cmdlets_graph",
    "cmdlets_teams",
    "main",
    "run",
    "tokenize",
]
