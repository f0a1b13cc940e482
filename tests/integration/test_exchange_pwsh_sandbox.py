"""The Exchange Online PowerShell cmdlets of the pwsh stand-in against the sandbox (a real subprocess):
app-only connection and what it needs, RBAC for Applications objects as Exchange prints them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

STANDIN = (sys.executable, "-m", "meetgate_sandbox.pwsh", "-NoProfile", "-NonInteractive", "-Command", "-")


def _run(sandbox, script: str) -> subprocess.CompletedProcess[str]:
    info = sandbox.info
    env = {
        "MEETGATE_SANDBOX_CONTROL_URL": info.control_url,
        "MEETGATE_SANDBOX_CA_BUNDLE": str(info.ca_bundle),
        "MEETGATE_SANDBOX_AUTHORITY_URL": info.authority_url,
    }
    return subprocess.run(
        STANDIN,
        input=script,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def _connect(app, domain: str) -> str:
    return (
        "$ErrorActionPreference = 'Stop'\n"
        "$Certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile("
        f"'{app.certificate_path}', '{app.private_key_path}')\n"
        f"Connect-ExchangeOnline -AppId '{app.client_id}' -Certificate $Certificate -Organization '{domain}' "
        "-ShowBanner:$false\n"
    )


def _domain(app) -> str:
    return str(app.control.tenant(app.tenant_id)["domain"])


def _grant_app_only(app, **access: bool) -> None:
    values = {"manageAsApp": True, "exchangeAdministrator": True, **access}
    app.control.request(
        "PUT", f"/tenants/{app.tenant_id}/exchange/app-only-access/{app.client_id}", json=values
    )


def test_app_only_connection_needs_manage_as_app_and_the_role(sandbox, sandbox_app):
    domain = _domain(sandbox_app)
    script = _connect(sandbox_app, domain) + "Get-ServicePrincipal | ConvertTo-Json -Compress\n"
    refused = _run(sandbox, script)
    assert refused.returncode == 1 and "UnAuthorized" in refused.stderr
    _grant_app_only(sandbox_app, exchangeAdministrator=False)
    no_role = _run(sandbox, script)
    assert no_role.returncode == 1 and "isn't supported in this scenario" in no_role.stderr
    _grant_app_only(sandbox_app)
    assert _run(sandbox, script).returncode == 0
    wrong = _run(sandbox, _connect(sandbox_app, "contoso.com"))
    assert wrong.returncode == 1 and ".onmicrosoft.com" in wrong.stderr


def test_cmdlets_do_not_exist_before_connecting(sandbox):
    done = _run(
        sandbox,
        "$ErrorActionPreference = 'Stop'\nNew-ManagementScope -Name x -RecipientRestrictionFilter \"Department -eq 'x'\"\n",
    )
    assert done.returncode == 1 and "is not recognized" in done.stderr


def test_rbac_objects_as_exchange_prints_them(sandbox, sandbox_app):
    _grant_app_only(sandbox_app)
    domain = _domain(sandbox_app)
    pilot, other = sandbox_app.pilot_users[0], sandbox_app.other_users[0]
    script = _connect(sandbox_app, domain) + (
        f"Set-Mailbox -Identity '{pilot.upn}' -CustomAttribute9 'meetgate'\n"
        f"$Sp = New-ServicePrincipal -AppId '{sandbox_app.client_id}' "
        f"-ObjectId '{sandbox_app.service_principal_id}' -DisplayName 'meetgate'\n"
        "$Scope = New-ManagementScope -Name 'meetgate organizers' "
        "-RecipientRestrictionFilter \"CustomAttribute9 -eq 'meetgate'\"\n"
        "$A = New-ManagementRoleAssignment -App $Sp.ObjectId -Role 'Application Calendars.ReadWrite' "
        "-CustomResourceScope 'meetgate organizers'\n"
        f"$In = Test-ServicePrincipalAuthorization -Identity $Sp.AppId -Resource '{pilot.upn}'\n"
        f"$Out = Test-ServicePrincipalAuthorization -Identity $Sp.AppId -Resource '{other.upn}'\n"
        "$Tagged = @(Get-Mailbox -ResultSize Unlimited -Filter \"CustomAttribute9 -eq 'meetgate'\")\n"
        "ConvertTo-Json -InputObject ([pscustomobject]@{ sp = $Sp; scope = $Scope; a = $A; inScope = $In; "
        "outScope = $Out; tagged = $Tagged }) -Depth 4 -Compress\n"
        "Remove-ManagementRoleAssignment -Identity $A.Name -Confirm:$false\n"
        "@(Get-ManagementRoleAssignment -RoleAssigneeType ServicePrincipal).Count\n"
    )
    done = _run(sandbox, script)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    data = json.loads(lines[0])
    assert data["sp"]["ObjectId"] == sandbox_app.service_principal_id.lower()
    assert data["sp"]["AppId"] == sandbox_app.client_id.lower() and data["sp"]["DisplayName"] == "meetgate"
    assert data["scope"]["RecipientFilter"] == "CustomAttribute9 -eq 'meetgate'"
    assert data["a"]["RoleAssigneeType"] == "ServicePrincipal" and data["a"]["AssignmentMethod"] == "Direct"
    assert data["a"]["Role"] == "Application Calendars.ReadWrite"
    assert data["inScope"]["InScope"] is True and data["inScope"]["ScopeType"] == "CustomRecipientScope"
    assert data["outScope"]["InScope"] is False
    assert [box["UserPrincipalName"] for box in _as_list(data["tagged"])] == [pilot.upn]
    assert lines[-1] == "0"


def test_an_assignment_scoped_by_an_administrative_unit(sandbox, sandbox_app):
    _grant_app_only(sandbox_app)
    pilot, other = sandbox_app.pilot_users[0], sandbox_app.other_users[0]
    unit = sandbox_app.control.request(
        "POST",
        f"/tenants/{sandbox_app.tenant_id}/administrative-units",
        json={"displayName": "meetgate pilot", "members": [pilot.upn]},
    )
    script = _connect(sandbox_app, _domain(sandbox_app)) + (
        f"$Sp = New-ServicePrincipal -AppId '{sandbox_app.client_id}' "
        f"-ObjectId '{sandbox_app.service_principal_id}' -DisplayName 'meetgate'\n"
        "$A = New-ManagementRoleAssignment -App $Sp.ObjectId -Role 'Application Calendars.ReadWrite' "
        f"-RecipientAdministrativeUnitScope '{unit['id']}'\n"
        f"$In = Test-ServicePrincipalAuthorization -Identity $Sp.AppId -Resource '{pilot.upn}'\n"
        f"$Out = Test-ServicePrincipalAuthorization -Identity $Sp.AppId -Resource '{other.upn}'\n"
        "ConvertTo-Json -InputObject ([pscustomobject]@{ a = $A; inScope = $In; outScope = $Out; "
        "listed = @(Get-ManagementRoleAssignment -Identity $A.Name) }) -Depth 4 -Compress\n"
    )
    done = _run(sandbox, script)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout.strip().splitlines()[0])
    assert data["a"]["RecipientWriteScope"] == "AdministrativeUnit"
    assert data["a"]["RecipientAdministrativeUnitScope"] == unit["id"]
    assert data["inScope"]["ScopeType"] == "AdministrativeUnit" and data["inScope"]["InScope"] is True
    assert data["inScope"]["AllowedResourceScope"] == unit["id"]
    assert data["outScope"]["InScope"] is False
    assert _as_list(data["listed"])[0]["RecipientAdministrativeUnitScope"] == unit["id"]


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_get_group_gives_the_distinguished_name(sandbox, sandbox_app):
    _grant_app_only(sandbox_app)
    group = sandbox_app.control.tenant(sandbox_app.tenant_id)["groups"][0]
    done = _run(
        sandbox,
        _connect(sandbox_app, _domain(sandbox_app))
        + f"(Get-Group -Identity '{group['id']}').DistinguishedName\n",
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip().startswith("CN=") and "OU=Microsoft Exchange Hosted Organizations" in done.stdout
    )


@pytest.mark.parametrize("missing", ["-AppId", "-Organization"])
def test_app_only_needs_app_id_and_organization(sandbox, sandbox_app, missing):
    script = _connect(sandbox_app, _domain(sandbox_app))
    script = script.replace(f"-AppId '{sandbox_app.client_id}' ", "") if missing == "-AppId" else script
    script = (
        script.replace(f"-Organization '{_domain(sandbox_app)}' ", "")
        if missing == "-Organization"
        else script
    )
    done = _run(sandbox, script)
    assert done.returncode == 1 and missing in done.stderr


def test_connect_with_a_pfx_file_and_its_password(sandbox, sandbox_app, tmp_path):
    from pathlib import Path

    from meetgate import certificates

    _grant_app_only(sandbox_app)
    pair = certificates.KeyPair(
        certificates.load_private_key(Path(sandbox_app.private_key_path)),
        certificates.load_certificate(Path(sandbox_app.certificate_path)),
    )
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(certificates.pfx_bytes(pair, b"s3cret"))
    connect = (
        "$ErrorActionPreference = 'Stop'\n"
        f"Connect-ExchangeOnline -AppId '{sandbox_app.client_id}' -CertificateFilePath '{pfx}' "
        f"-CertificatePassword 's3cret' -Organization '{_domain(sandbox_app)}'\n"
        "@(Get-ServicePrincipal).Count\n"
    )
    done = _run(sandbox, connect)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0" and "s3cret" not in done.stderr
    wrong = _run(sandbox, connect.replace("'s3cret'", "'nope'"))
    assert wrong.returncode == 1 and "certificate file" in wrong.stderr and "nope" not in wrong.stderr
