"""Exchange Online PowerShell for the calendar plane: one command per plan step, and the ``script``
backend's reviewed, idempotent ``.ps1`` for an administrator to run.

The script, at run time: logs with ``Start-Transcript``; connects unless ``-SkipConnect`` (the
admin interactively, or app-only with ``-CertificateThumbPrint``: the app then needs the Office 365
Exchange Online permission ``Exchange.ManageAsApp`` and the Exchange Administrator role); creates the
service principal pointer, tags and untags the listed mailboxes, creates the management scope (none
for an administrative unit, which an Entra admin fills) and the role assignment only when missing (a second run changes nothing); removes the listed extra
assignments when they still exist; then runs ``Test-ServicePrincipalAuthorization`` for every
approved organizer (must be in scope) and every outside sample (must not be), counts failures and
exits 1 when any happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from meetgate.admin.mailbox_scope.planner import MailboxScopePlan, Step
from meetgate.admin.policy.script import _comment, ps_quote


def step_command(step: Step, attribute: str) -> str:
    """The cmdlet call that carries out ``step``."""
    p = step.param
    if step.action == "new-service-principal":
        return (
            f"New-ServicePrincipal -AppId {ps_quote(p('AppId'))} -ObjectId {ps_quote(p('ObjectId'))} "
            f"-DisplayName {ps_quote(p('DisplayName'))} | Out-Null"
        )
    if step.action == "tag":
        return f"Set-Mailbox -Identity {ps_quote(p('Identity'))} -{attribute} {ps_quote(_tag(step))}"
    if step.action == "untag":
        return f"Set-Mailbox -Identity {ps_quote(p('Identity'))} -{attribute} $null"
    if step.action == "remove-assignment":
        return f"Remove-ManagementRoleAssignment -Identity {ps_quote(p('Identity'))} -Confirm:$false"
    if step.action == "remove-scope":
        return f"Remove-ManagementScope -Identity {ps_quote(p('Identity'))} -Confirm:$false"
    if step.action == "new-scope":
        return (
            f"New-ManagementScope -Name {ps_quote(p('Name'))} "
            f"-RecipientRestrictionFilter {ps_quote(p('RecipientRestrictionFilter'))} | Out-Null"
        )
    over = dict(step.params)
    scope = (
        f"-RecipientAdministrativeUnitScope {ps_quote(over['RecipientAdministrativeUnitScope'])}"
        if "RecipientAdministrativeUnitScope" in over
        else f"-CustomResourceScope {ps_quote(p('CustomResourceScope'))}"
    )
    return (
        f"New-ManagementRoleAssignment -Name {ps_quote(p('Name'))} -App {ps_quote(p('App'))} "
        f"-Role {ps_quote(p('Role'))} {scope} | Out-Null"
    )


def _tag(step: Step) -> str:
    return step.detail.split(" = ", 1)[1]


def _guarded(step: Step, attribute: str) -> str:
    """``step`` wrapped so that a second run of the script changes nothing."""
    command = step_command(step, attribute)
    p = step.param
    if step.action == "new-service-principal":
        test = (
            f"$null -eq (Get-ServicePrincipal -Identity {ps_quote(p('AppId'))} -ErrorAction SilentlyContinue)"
        )
    elif step.action == "new-scope":
        test = (
            f"$null -eq (Get-ManagementScope -Identity {ps_quote(p('Name'))} -ErrorAction SilentlyContinue)"
        )
    elif step.action == "new-assignment":
        test = f"$null -eq (Get-ManagementRoleAssignment -Identity {ps_quote(p('Name'))} -ErrorAction SilentlyContinue)"
    elif step.action == "remove-assignment":
        test = (
            f"$null -ne (Get-ManagementRoleAssignment -Identity {ps_quote(p('Identity'))} "
            "-ErrorAction SilentlyContinue)"
        )
    elif step.action == "remove-scope":
        test = f"$null -ne (Get-ManagementScope -Identity {ps_quote(p('Identity'))} -ErrorAction SilentlyContinue)"
    else:
        test = "$true"  # Set-Mailbox to the same value changes nothing
    return (
        "try {\n"
        f"    if ({test}) {{\n"
        f"        {command}\n"
        f"        Write-Host {ps_quote('done: ' + step.action + ' ' + _comment(step.target))}\n"
        "    }\n"
        "} catch {\n"
        "    $Failures = $Failures + 1\n"
        f"    Write-Warning ({ps_quote('failed: ' + step.action + ' ' + _comment(step.target) + ': ')} + "
        "$_.Exception.Message)\n"
        "}\n"
    )


def _test_block(app_id: str, role: str, resources: Sequence[tuple[str, bool]]) -> str:
    rows = ",\n".join(
        f"    [pscustomobject]@{{ resource = {ps_quote(r)}; expected = ${'true' if inside else 'false'} }}"
        for r, inside in resources
    )
    return (
        f"$Tests = @(\n{rows}\n)\n"
        "foreach ($Test in $Tests) {\n"
        "    $InScope = $false\n"
        "    try {\n"
        f"        foreach ($Row in @(Test-ServicePrincipalAuthorization -Identity {ps_quote(app_id)} "
        "-Resource $Test.resource)) {\n"
        f"            if ($Row.RoleName -eq {ps_quote(role)} -and $Row.InScope -eq $true) {{ $InScope = $true }}\n"
        "        }\n"
        "    } catch {\n"
        "        Write-Warning ('Test-ServicePrincipalAuthorization failed for ' + $Test.resource + ': ' + "
        "$_.Exception.Message)\n"
        "    }\n"
        "    if ($InScope -ne $Test.expected) {\n"
        "        $Failures = $Failures + 1\n"
        "        Write-Warning ('unexpected: ' + $Test.resource + ' InScope ' + $InScope)\n"
        "    } else {\n"
        "        Write-Host ('ok: ' + $Test.resource + ' InScope ' + $InScope)\n"
        "    }\n"
        "}\n"
    )


def render_script(
    plan: MailboxScopePlan,
    *,
    organization: str | None = None,
    outside: Sequence[str] = (),
    generated_by: str = "meetgate",
    now: dt.datetime | None = None,
) -> str:
    """The whole ``.ps1`` for ``plan`` (``outside``: mailboxes that must test out of scope)."""
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stamp = when.replace("-", "").replace(":", "")
    d = plan.desired
    org = ps_quote(organization) if organization else "$null"
    warnings = "\n".join(f"  WARNING {w.code}: {_comment(w.message)}" for w in plan.warnings) or "  none"
    steps = "".join(_guarded(step, d.attribute) for step in plan.steps) or "# nothing to change\n"
    tests = [(u.upn or uid, True) for uid, u in plan.organizers.in_scope.items()]
    tests += [(ref, False) for ref in outside]
    if d.administrative_unit is not None:
        over = f"administrative unit {d.administrative_unit} (-RecipientAdministrativeUnitScope)"
    else:
        over = (
            f"the management scope '{_comment(d.scope_name)}'\n"
            f"  recipient filter: {_comment(plan.recipient_filter)}"
        )
    return (
        f"<#\n  meetgate mailbox-scope script, generated {when} by {_comment(generated_by)}\n"
        f"  app {d.app_id}: {d.role} over {over}\n"
        f"  approved organizers {len(plan.organizers.approved)}, in scope {len(plan.organizers.in_scope)}; "
        f"steps {len(plan.steps)} (plan {plan.plan_id})\n"
        f"{warnings}\n"
        "  Needs the ExchangeOnlineManagement module and an Organization Management admin (or, app-only,\n"
        "  Exchange.ManageAsApp consented and the Exchange Administrator role on the app).\n"
        "  Changes reach Graph after Exchange's permission cache: 30 minutes to 2 hours.\n"
        "#>\n"
        "param(\n"
        f"    [string]$TranscriptPath = 'meetgate-mailbox-scope-{stamp}.log',\n"
        f"    [string]$Organization = {org},\n"
        f"    [string]$AppId = {ps_quote(d.app_id)},\n"
        "    [string]$CertificateThumbPrint = '',\n"
        "    [switch]$SkipConnect\n"
        ")\n"
        "$ErrorActionPreference = 'Stop'\n"
        "$Failures = 0\n"
        "Start-Transcript -Path $TranscriptPath | Out-Null\n"
        "try {\n"
        "    if (-not $SkipConnect) {\n"
        "        if ($CertificateThumbPrint) {\n"
        "            Connect-ExchangeOnline -AppId $AppId -CertificateThumbPrint $CertificateThumbPrint "
        "-Organization $Organization -ShowBanner:$false\n"
        "        } else {\n"
        "            Connect-ExchangeOnline -Organization $Organization -ShowBanner:$false\n"
        "        }\n"
        "    }\n"
        f"{steps}"
        f"{_test_block(d.app_id, d.role, tests)}"
        "} finally {\n"
        "    Stop-Transcript | Out-Null\n"
        "}\n"
        "if ($Failures -gt 0) {\n"
        "    Write-Warning ('' + $Failures + ' failure(s): read the transcript')\n"
        "    exit 1\n"
        "}\n"
        "Write-Host 'mailbox scope applied; Graph follows after Exchange''s cache (30 minutes to 2 hours)'\n"
    )
