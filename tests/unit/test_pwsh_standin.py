"""The sandbox's pwsh stand-in: the language subset, PowerShell-like refusals, and the cmdlets
against an in-memory control API (the end-to-end runs against a real sandbox are integration tests)."""

from __future__ import annotations

import io
import json

import pytest
from pwsh_control_fake import TENANT, InMemoryControl

from meetgate.admin.policy.model import DesiredPolicy, OrganizerSources
from meetgate.admin.policy.planner import build_plan, resolve_organizers
from meetgate.admin.policy.script import render_script
from meetgate_sandbox.fakes.policy_tenant import FakePolicyTenant
from meetgate_sandbox.pwsh import Interpreter, main

APP = "11111111-2222-3333-4444-555555555555"


def run(source: str, control: InMemoryControl, args: list[str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = Interpreter(out, err, tenant_factory=lambda: control).run(source, args)  # type: ignore[arg-type,return-value]
    return code, out.getvalue(), err.getvalue()


def test_language_subset():
    code, out, _ = run(
        """
        $a = @('x', 'y')
        $h = [pscustomobject]@{ Name = 'n'; Items = $a; N = 2 }
        foreach ($i in $a) { if ($i -eq 'X') { 'saw ' + $i } elseif ($i -ne 'z') { "other $i" } else { 'no' } }
        $h.Name + ':' + $h.items.Count
        ('Tag:Foo' -replace '^tag:', '')
        $null -eq $missing
        if (-not ($a -contains 'y') -or ('q' -in $a)) { 'wrong' } else { $a[1] }
        """,
        InMemoryControl(),
    )
    assert code == 0
    assert out.splitlines() == ["saw x", "other y", "n:2", "Foo", "True", "y"]


def test_outputs_json_and_catches_cmdlet_errors_with_stop():
    code, out, err = run(
        """
        $ErrorActionPreference = 'Stop'
        $r = @()
        try { Get-CsOnlineUser -Identity 'x' } catch { $r = $_.Exception.Message }
        [pscustomobject]@{ error = $r; list = @('a') } | ConvertTo-Json -Compress
        """,
        InMemoryControl(),
    )
    assert code == 0, err
    assert json.loads(out) == {
        "error": "You must call the Connect-MicrosoftTeams cmdlet before calling any other cmdlets.",
        "list": ["a"],
    }


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("Remove-Item -Recurse -Path tmp", "The term 'Remove-Item' is not recognized"),
        ("Invoke-Expression 'x'", "is not recognized as a name of a cmdlet"),
        ("Get-CsOnlineUser -Bogus 1", "A parameter cannot be found that matches parameter name 'bogus'"),
        ("while ($true) { }", "not supported by the sandbox pwsh stand-in"),
        ("$x = 'unterminated", "missing the terminator"),
    ],
)
def test_refuses_anything_else_like_powershell(source, message):
    code, _, err = run(source, InMemoryControl())
    assert code == 1
    assert message in err


def test_cmdlets_manage_policy_and_grants():
    control = InMemoryControl()
    code, out, err = run(
        f"""
        $ErrorActionPreference = 'Stop'
        Connect-MicrosoftTeams -TenantId '{TENANT}' | Out-Null
        New-CsApplicationAccessPolicy -Identity 'Tag:P' -AppIds @('{APP}') -Description 'd' | Out-Null
        try {{ New-CsApplicationAccessPolicy -Identity 'P' -AppIds '{APP}' }} catch {{ Write-Host $_.Exception.Message }}
        Grant-CsApplicationAccessPolicy -Identity 'user1@contoso.test' -PolicyName 'Tag:P'
        Grant-CsApplicationAccessPolicy -PolicyName P -Global
        (Get-CsOnlineUser -Identity 'USER1@contoso.test').ApplicationAccessPolicy
        Get-CsApplicationAccessPolicy -Identity Global | Select-Object Identity, AppIds | ConvertTo-Json -Compress
        Get-CsUserPolicyAssignment -Identity 'user1@contoso.test' -PolicyType ApplicationAccessPolicy | ConvertTo-Json -Compress -Depth 3
        Grant-CsApplicationAccessPolicy -Identity 'user1@contoso.test' -PolicyName $null
        @(Get-CsOnlineUser -ResultSize Unlimited | Select-Object Identity, ApplicationAccessPolicy).Count
        Set-CsApplicationAccessPolicy -Identity 'Tag:P' -Description 'e'
        Remove-CsApplicationAccessPolicy -Identity 'Tag:P'
        Get-CsApplicationAccessPolicy -Identity 'Tag:P' -ErrorAction SilentlyContinue
        'end'
        """,
        control,
    )
    assert code == 0, err
    lines = out.splitlines()
    assert "already exists" in lines[0]
    assert lines[1] == "P"
    assert json.loads(lines[2]) == {"Identity": "Global", "AppIds": [APP]}
    assert json.loads(lines[3])["PolicySource"]["AssignmentType"] == "Direct"
    assert lines[4] == "4" and lines[-1] == "end"
    assert control.direct == {} and control.policies == {}


def test_generated_script_is_idempotent_through_the_stand_in(tmp_path):
    control = InMemoryControl(users=5)
    fake = FakePolicyTenant()
    from meetgate.admin.policy.model import DirectoryUser

    for u in control.users:
        fake.add_user(DirectoryUser(u["id"], u["userPrincipalName"]))
    control.policies["teamsmeetingsintegration"] = {
        "identity": "Tag:TeamsMeetingsIntegration",
        "appIds": ["x"],
        "description": "",
    }
    control.direct[control.users[4]["id"]] = "TeamsMeetingsIntegration"  # a stray holder
    fake.ensure_policy(
        __import__("meetgate.admin.policy.model", fromlist=["PolicyDefinition"]).PolicyDefinition(
            "Tag:TeamsMeetingsIntegration", ("x",)
        )
    )
    fake.grant([control.users[4]["id"]], "TeamsMeetingsIntegration")
    want = DesiredPolicy(
        "Tag:TeamsMeetingsIntegration",
        (APP,),
        "It's approved",
        OrganizerSources(users=("user0@contoso.test", "user2@contoso.test")),
    )
    plan = build_plan(want, resolve_organizers(want, fake), fake.read_state(want.identity))
    script = tmp_path / "policy.ps1"
    script.write_text(render_script(plan, tenant_id=TENANT, app_id=APP))
    transcript = tmp_path / "t.log"
    code, out, err = run(script.read_text(), control, ["-TranscriptPath", str(transcript)])
    assert code == 0, err
    assert control.direct == {
        control.users[0]["id"]: "TeamsMeetingsIntegration",
        control.users[2]["id"]: "TeamsMeetingsIntegration",
    }
    assert control.policies["teamsmeetingsintegration"]["appIds"] == [APP]
    assert control.policies["teamsmeetingsintegration"]["description"] == "It's approved"
    assert "granted " + control.users[0]["id"] in transcript.read_text()
    # a second run changes nothing
    before = [c for c in control.calls if c[0] == "POST"]
    code, out, err = run(script.read_text(), control, ["-TranscriptPath", str(transcript)])
    assert code == 0, err
    assert [c for c in control.calls if c[0] == "POST"] == before
    assert out.count("unchanged") == 3
    # -PolicyName renames what is created and granted
    code, _, err = run(
        script.read_text(), control, ["-TranscriptPath", str(transcript), "-PolicyName", "Tag:Other"]
    )
    assert code == 0, err
    assert "other" in control.policies and control.direct[control.users[0]["id"]] == "Other"


def test_script_counts_per_user_failures_and_exits_1(tmp_path):
    control = InMemoryControl(users=2)
    fake = FakePolicyTenant()
    from meetgate.admin.policy.model import DirectoryUser

    for u in control.users:
        fake.add_user(DirectoryUser(u["id"], u["userPrincipalName"]))
    fake.add_user(DirectoryUser("99999999-0000-4000-8000-000000000000", "ghost@contoso.test"))
    want = DesiredPolicy(
        "Tag:P", (APP,), "", OrganizerSources(users=("ghost@contoso.test", "user1@contoso.test"))
    )
    plan = build_plan(want, resolve_organizers(want, fake), fake.read_state(want.identity))
    code, out, err = run(
        render_script(plan, tenant_id=TENANT), control, ["-TranscriptPath", str(tmp_path / "t.log")]
    )
    assert code == 1
    assert "grant 99999999-0000-4000-8000-000000000000 failed: Management object not found" in err
    assert control.direct == {control.users[1]["id"]: "P"}
    assert "done: 1 failure(s)" in out


def test_main_reads_command_file_and_stdin(tmp_path, monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    assert main(["-NoLogo", "-NonInteractive", "-Command", "'a' + 'b'"], stdout=out, stderr=err) == 0
    assert out.getvalue() == "ab\n"
    out = io.StringIO()
    assert main(["-Command", "-"], stdin=io.StringIO("exit 3"), stdout=out, stderr=err) == 3
    script = tmp_path / "s.ps1"
    script.write_text("param([string]$Name = 'x', [switch]$Loud)\n$Name + $Loud\n")
    out = io.StringIO()
    assert main(["-File", str(script), "-Name", "y", "-Loud"], stdout=out, stderr=err) == 0
    assert out.getvalue() == "yTrue\n"
    assert main(["-File", str(tmp_path / "missing.ps1")], stdout=out, stderr=err) == 64


def test_locates_the_sandbox_from_env_or_sandbox_json(tmp_path):
    from meetgate_sandbox.pwsh import PSError, TenantControlClient

    tenant = TenantControlClient.locate({"MEETGATE_SANDBOX_CONTROL_URL": "https://127.0.0.1:9/_sandbox"})
    assert tenant.control_url == "https://127.0.0.1:9" and tenant.authority_url == "https://127.0.0.1:9"
    (tmp_path / "elsewhere").mkdir()
    info = tmp_path / "elsewhere" / "info.json"
    info.write_text(
        json.dumps(
            {
                "control_url": "https://127.0.0.1:8/_sandbox",
                "authority_url": "https://127.0.0.1:8",
                "ca_bundle": None,
            }
        )
    )
    assert (
        TenantControlClient.locate({"MEETGATE_SANDBOX_JSON": str(info)}).control_url == "https://127.0.0.1:8"
    )
    with pytest.raises(PSError, match="No sandbox tenant"):
        TenantControlClient.locate({"MEETGATE_SANDBOX_JSON": str(tmp_path / "missing.json")}, cwd=tmp_path)
    (tmp_path / "sandbox.json").write_text(info.read_text())  # ./sandbox.json is the last resort
    assert TenantControlClient.locate({}, cwd=tmp_path).control_url == "https://127.0.0.1:8"


def test_like_matches_across_lines_as_powershell_does():
    # Graph PowerShell errors span lines ("message\r\n\r\nStatus: 403 (Forbidden)"): '*403*' must match
    code, out, _ = run(
        "$m = \"denied`r`n`r`nStatus: 403 (Forbidden)\"\n$m -like '*403*'\n$m -like '403*'", InMemoryControl()
    )
    assert code == 0
    assert out.split() == ["True", "False"]


def test_graph_cmdlets_need_connect_mggraph_and_a_certificate_in_the_store(monkeypatch, tmp_path):
    monkeypatch.setenv("MEETGATE_PWSH_CERT_STORE", str(tmp_path))
    code, out, _ = run(
        "$ErrorActionPreference = 'Stop'\n"
        "try { New-MgUserOnlineMeeting -UserId u -BodyParameter @{ subject = 's' } } catch { $_.Exception.Message }\n"
        "try { Connect-MgGraph -TenantId t -ClientId c -CertificateThumbprint 'AB CD' -NoWelcome } "
        "catch { $_.Exception.Message }\n"
        "try { Connect-MgGraph -Scopes 'OnlineMeetings.ReadWrite' } catch { $_.FullyQualifiedErrorId }\n"
        "Get-MgContext\n",
        InMemoryControl(),
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Authentication needed. Please call Connect-MgGraph."
    assert lines[1].startswith("no certificate with thumbprint ABCD and a private key was found in Cert:")
    assert lines[2] == "InteractiveUnavailable"
    assert len(lines) == 3  # not connected: Get-MgContext prints nothing
