"""Runbook step 6 by hand: a Postman collection + environment and a PowerShell script for one tenant.

``meetgate validate`` proves step 6 automatically; change boards and auditors often want to repeat
it themselves and attach the result to a change record. :func:`build_kit` renders what they run:

- ``meetgate-step6.postman_collection.json`` (Postman v2.1): the client-credentials token request,
  the positive create for a pilot organizer, the negative create for a user outside the policy
  (expecting the policy 403), a GET and a DELETE of the created meeting, each with its tests.
- ``meetgate-step6.postman_environment.json``: tenant, app and users, plus a short-lived signed
  ``client_assertion`` (Postman cannot sign one) or the client secret where the profile uses one.
  It is the only secret-holding file: the caller writes it 0600.
- ``runbook-step6.ps1``: ``Connect-MgGraph``, ``Connect-MicrosoftTeams`` and
  ``New-MgUserOnlineMeeting`` (positive and negative) with the tenant, client id and thumbprint filled
  in, printing PASS/FAIL per step in the runbook's order; exit code = the number of failures.
- ``README.md``: what each file proves and how to run it.

Pure rendering: nothing here signs, reads files or talks to a service.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

COLLECTION_FILE = "meetgate-step6.postman_collection.json"
ENVIRONMENT_FILE = "meetgate-step6.postman_environment.json"
POWERSHELL_FILE = "runbook-step6.ps1"
README_FILE = "README.md"

POSTMAN_SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REQUIRED_ROLE = "OnlineMeetings.ReadWrite.All"
#: error codes the policy 403 has been seen with in the field (docs/troubleshooting.md, the policy 403)
POLICY_403_CODES = ("Forbidden", "General", "Unauthorized")
TEST_SUBJECT = "Teams Integration Test (meetgate manual test, delete after the run)"


@dataclass(frozen=True)
class TestUser:
    """A user the tests create meetings for: the object id goes in the path (a UPN may 404)."""

    id: str
    upn: str


@dataclass(frozen=True)
class KitCredential:
    """What the token request sends: a signed assertion (certificate) or the client secret."""

    kind: str  # "assertion" | "secret"
    value: str
    expires_at: dt.datetime | None = None  # assertions only

    def __repr__(self) -> str:
        return f"KitCredential(kind={self.kind!r}, value=<redacted>, expires_at={self.expires_at!r})"


@dataclass(frozen=True)
class KitSpec:
    """Everything the files are generated from."""

    tenant_id: str
    client_id: str
    authority_url: str
    graph_url: str
    graph_scope: str
    policy_name: str
    pilot: TestUser
    negative: TestUser | None
    credential: KitCredential
    #: SHA-1 thumbprint of the app's certificate (None when the profile uses a client secret)
    thumbprint: str | None
    generated_at: dt.datetime
    meetgate_version: str


@dataclass(frozen=True)
class KitFile:
    name: str
    text: str
    #: holds a credential: write it 0600
    secret: bool = False


def build_kit(spec: KitSpec) -> list[KitFile]:
    """The files of the manual-test kit, README last."""
    files = [
        KitFile(COLLECTION_FILE, _dump(postman_collection(spec))),
        KitFile(ENVIRONMENT_FILE, _dump(postman_environment(spec)), secret=True),
    ]
    if spec.thumbprint is not None:
        files.append(KitFile(POWERSHELL_FILE, powershell_script(spec)))
    files.append(KitFile(README_FILE, readme(spec)))
    return files


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- Postman ---------------------------------------------------------------------------------------


def _script(listen: str, lines: list[str]) -> dict[str, Any]:
    return {"listen": listen, "script": {"type": "text/javascript", "exec": lines}}


_TOKEN_TESTS = [
    "const ok = pm.response.code === 200;",
    "let body = {};",
    "try { body = pm.response.json(); } catch (e) { body = {}; }",
    "if (!ok) {",
    "    // stop the run: nothing else can pass without a token",
    "    postman.setNextRequest(null);",
    "}",
    'pm.test("token: Entra answers 200 with a Bearer token", function () {',
    "    if (!ok) {",
    "        const first = String(body.error_description || pm.response.text()).split(/\\r?\\n/)[0];",
    '        let hint = "check tenantId and clientId, and that the app has a certificate or secret";',
    '        if (/AADSTS700024/.test(first)) { hint = "the client assertion in this environment expired at " '
    '+ pm.environment.get("assertionExpiresAt") + ": run `meetgate validate --export DIR` again"; }',
    '        if (/AADSTS700027/.test(first)) { hint = "the certificate is not (or no longer) on the app '
    'registration: `meetgate cert status`"; }',
    '        if (/AADSTS7000215|AADSTS7000222/.test(first)) { hint = "the client secret is wrong or expired"; }',
    '        throw new Error(pm.response.code + " " + first + " -> " + hint);',
    "    }",
    '    pm.expect(body.token_type).to.eql("Bearer");',
    '    pm.expect(body.access_token).to.be.a("string");',
    '    pm.collectionVariables.set("accessToken", body.access_token);',
    "});",
    'pm.test("token: app-only (roles, no scp) for this tenant and app", function () {',
    "    pm.expect(ok, 'no token').to.eql(true);",
    '    const part = body.access_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");',
    "    const claims = JSON.parse(CryptoJS.enc.Base64.parse(part).toString(CryptoJS.enc.Utf8));",
    '    pm.expect(claims.scp, "a delegated token: the access policy only governs app-only calls").to.be.undefined;',
    '    pm.expect(claims.roles || []).to.include(pm.environment.get("requiredRole"));',
    '    pm.expect(claims.tid).to.eql(pm.environment.get("tenantId"));',
    '    pm.expect(claims.appid || claims.azp).to.eql(pm.environment.get("clientId"));',
    "});",
]

_START_TIMES = [
    "// tomorrow, on the minute: a meeting in the past would be a poor test",
    "const start = new Date(Date.now() + 24 * 3600 * 1000);",
    "start.setUTCSeconds(0, 0);",
    'pm.collectionVariables.set("startDateTime", start.toISOString());',
    'pm.collectionVariables.set("endDateTime", new Date(start.getTime() + 30 * 60 * 1000).toISOString());',
]

_POSITIVE_TESTS = [
    "let body = {};",
    "try { body = pm.response.json(); } catch (e) { body = {}; }",
    'pm.test("positive: the meeting is created for the pilot organizer (201)", function () {',
    "    if (pm.response.code === 403) {",
    '        throw new Error("403 for a pilot organizer: the application access policy does not cover "'
    ' + pm.environment.get("pilotUpn") + " (policy changes take up to 30 minutes to reach Graph)");',
    "    }",
    "    pm.expect(pm.response.code).to.eql(201);",
    '    pm.collectionVariables.set("meetingId", body.id);',
    '    pm.collectionVariables.set("joinWebUrl", body.joinWebUrl);',
    "});",
    'pm.test("positive: join URL, subject and organizer are as asked", function () {',
    "    pm.expect(body.joinWebUrl).to.match(/^https:\\/\\//);",
    '    pm.expect(body.subject).to.eql(pm.environment.get("subject"));',
    '    pm.expect(body.participants.organizer.identity.user.id).to.eql(pm.environment.get("pilotUserId"));',
    "});",
]

_NEGATIVE_TESTS = [
    "let body = {};",
    "try { body = pm.response.json(); } catch (e) { body = {}; }",
    "if (pm.response.code === 201 && body.id) {",
    "    // the policy did not hold: delete what was created, then fail",
    "    pm.sendRequest({",
    '        url: pm.environment.get("graphUrl") + "/v1.0/users/" + pm.environment.get("negativeUserId")'
    ' + "/onlineMeetings/" + body.id,',
    '        method: "DELETE",',
    '        header: { Authorization: "Bearer " + pm.collectionVariables.get("accessToken") },',
    "    }, function () {});",
    "}",
    'pm.test("negative: refused with the policy 403 for a user outside the policy", function () {',
    "    if (pm.response.code === 201) {",
    '        throw new Error("POLICY NOT ENFORCED: a meeting was created for " + pm.environment.get("negativeUpn")'
    ' + " (a Global, group or direct grant covers them)");',
    "    }",
    "    pm.expect(pm.response.code).to.eql(403);",
    f"    pm.expect({json.dumps(list(POLICY_403_CODES))}).to.include((body.error || {{}}).code);",
    "});",
]

_GET_TESTS = [
    'pm.test("get: the created meeting reads back (200)", function () {',
    "    pm.expect(pm.response.code).to.eql(200);",
    "    const body = pm.response.json();",
    '    pm.expect(body.id).to.eql(pm.collectionVariables.get("meetingId"));',
    '    pm.expect(body.joinWebUrl).to.eql(pm.collectionVariables.get("joinWebUrl"));',
    "});",
]

_DELETE_TESTS = [
    'pm.test("delete: the test meeting is deleted (204)", function () {',
    "    pm.expect(pm.response.code).to.eql(204);",
    "});",
]


def _meeting_body() -> str:
    """The runbook's example payload, with times the pre-request script sets."""
    body = {
        "startDateTime": "{{startDateTime}}",
        "endDateTime": "{{endDateTime}}",
        "subject": "{{subject}}",
        "participants": {},
        "lobbyBypassSettings": {"scope": "everyone", "isDialInBypassEnabled": True},
        "allowedPresenters": "everyone",
    }
    return json.dumps(body, indent=2)


def _graph_request(method: str, path: str, *, body: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": method,
        "header": [{"key": "Authorization", "value": "Bearer {{accessToken}}", "type": "text"}],
        "url": "{{graphUrl}}/v1.0" + path,
    }
    if body is not None:
        request["header"].append({"key": "Content-Type", "value": "application/json", "type": "text"})
        request["body"] = {"mode": "raw", "raw": body, "options": {"raw": {"language": "json"}}}
    return request


def _token_request(spec: KitSpec) -> dict[str, Any]:
    fields = [
        ("client_id", "{{clientId}}"),
        ("scope", "{{graphScope}}"),
        ("grant_type", "client_credentials"),
    ]
    if spec.credential.kind == "assertion":
        fields += [("client_assertion_type", ASSERTION_TYPE), ("client_assertion", "{{clientAssertion}}")]
    else:
        fields += [("client_secret", "{{clientSecret}}")]
    return {
        "method": "POST",
        "header": [],
        "body": {
            "mode": "urlencoded",
            "urlencoded": [{"key": k, "value": v, "type": "text"} for k, v in fields],
        },
        "url": "{{authorityUrl}}/{{tenantId}}/oauth2/v2.0/token",
    }


def postman_collection(spec: KitSpec) -> dict[str, Any]:
    """The Postman v2.1 collection: token, positive create, negative create, GET, DELETE."""
    items: list[dict[str, Any]] = [
        {
            "name": "1 Token (client credentials, app-only)",
            "event": [_script("test", _TOKEN_TESTS)],
            "request": _token_request(spec),
        },
        {
            "name": "2 Create meeting for a pilot organizer (expect 201)",
            "event": [_script("prerequest", _START_TIMES), _script("test", _POSITIVE_TESTS)],
            "request": _graph_request("POST", "/users/{{pilotUserId}}/onlineMeetings", body=_meeting_body()),
        },
    ]
    if spec.negative is not None:
        items.append(
            {
                "name": "3 Create meeting for a user outside the policy (expect the policy 403)",
                "event": [_script("prerequest", _START_TIMES), _script("test", _NEGATIVE_TESTS)],
                "request": _graph_request(
                    "POST", "/users/{{negativeUserId}}/onlineMeetings", body=_meeting_body()
                ),
            }
        )
    items += [
        {
            "name": "4 Read the created meeting back (expect 200)",
            "event": [_script("test", _GET_TESTS)],
            "request": _graph_request("GET", "/users/{{pilotUserId}}/onlineMeetings/{{meetingId}}"),
        },
        {
            "name": "5 Delete the created meeting (expect 204)",
            "event": [_script("test", _DELETE_TESTS)],
            "request": _graph_request("DELETE", "/users/{{pilotUserId}}/onlineMeetings/{{meetingId}}"),
        },
    ]
    return {
        "info": {
            "_postman_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"meetgate:{spec.tenant_id}:{spec.client_id}")),
            "name": f"meetgate runbook step 6 — {spec.tenant_id}",
            "description": (
                "Runbook step 6 by hand: an app-only token, a meeting created for an organizer the "
                f"application access policy {spec.policy_name} covers, the policy 403 for a user it "
                "does not cover, and the created meeting read back and deleted. Generated by "
                f"meetgate {spec.meetgate_version} on {_stamp(spec.generated_at)}; run it with the "
                f"environment {ENVIRONMENT_FILE}."
            ),
            "schema": POSTMAN_SCHEMA,
        },
        "item": items,
        "variable": [
            {"key": k, "value": ""}
            for k in ("accessToken", "meetingId", "joinWebUrl", "startDateTime", "endDateTime")
        ],
    }


def postman_environment(spec: KitSpec) -> dict[str, Any]:
    """The Postman environment: ids, URLs, users, and the credential (a secret-typed value)."""
    credential = spec.credential
    values: list[tuple[str, str, str]] = [
        ("tenantId", spec.tenant_id, "default"),
        ("clientId", spec.client_id, "default"),
        ("authorityUrl", spec.authority_url.rstrip("/"), "default"),
        ("graphUrl", spec.graph_url.rstrip("/"), "default"),
        ("graphScope", spec.graph_scope, "default"),
        ("requiredRole", REQUIRED_ROLE, "default"),
        ("subject", TEST_SUBJECT, "default"),
        ("pilotUserId", spec.pilot.id, "default"),
        ("pilotUpn", spec.pilot.upn, "default"),
    ]
    if spec.negative is not None:
        values += [
            ("negativeUserId", spec.negative.id, "default"),
            ("negativeUpn", spec.negative.upn, "default"),
        ]
    if credential.kind == "assertion":
        assert credential.expires_at is not None
        values += [
            ("clientAssertion", credential.value, "secret"),
            ("assertionExpiresAt", _stamp(credential.expires_at), "default"),
        ]
        about = (
            "The clientAssertion is signed with the app's private key and is valid until "
            f"{_stamp(credential.expires_at)}; after that the token request answers AADSTS700024. "
            "Run `meetgate validate --export DIR` again for a new one. Until then it is a credential: "
            "do not share this file."
        )
    else:
        values.append(("clientSecret", credential.value, "secret"))
        about = (
            "clientSecret is the app's client secret: this file is a credential; delete it after the "
            "test and never attach it to a change record."
        )
    return {
        "id": str(uuid.uuid4()),
        "name": f"meetgate step 6 — {spec.tenant_id}",
        "description": about,
        "values": [{"key": k, "value": v, "type": t, "enabled": True} for k, v, t in values],
        "_postman_variable_scope": "environment",
        "_postman_exported_at": spec.generated_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "_postman_exported_using": f"meetgate/{spec.meetgate_version}",
    }


# --- PowerShell ------------------------------------------------------------------------------------


def _ps(value: str) -> str:
    """A PowerShell single-quoted string literal."""
    return "'" + value.replace("'", "''") + "'"


def powershell_script(spec: KitSpec) -> str:
    """Runbook step 6's PowerShell checks, PASS/FAIL per step; exit code = number of failures."""
    assert spec.thumbprint is not None
    negative_id = spec.negative.id if spec.negative else ""
    start = (
        (spec.generated_at + dt.timedelta(days=1))
        .astimezone(dt.UTC)
        .replace(minute=0, second=0, microsecond=0)
    )
    lines = [
        "<#",
        f"  meetgate runbook step 6, by hand — tenant {spec.tenant_id}, app {spec.client_id}.",
        f"  Generated by meetgate {spec.meetgate_version} on {_stamp(spec.generated_at)}.",
        "",
        f"  Needs the app's certificate (SHA-1 thumbprint {spec.thumbprint}) with its private key in",
        "  Cert:\\CurrentUser\\My, and the modules Microsoft.Graph.Authentication,",
        "  Microsoft.Graph.CloudCommunications and MicrosoftTeams. Prints PASS or FAIL per step, in the",
        "  runbook's order; the exit code is the number of failed steps. The test meeting is deleted.",
        "#>",
        "param(",
        f"    [string]$TenantId = {_ps(spec.tenant_id)},",
        f"    [string]$ClientId = {_ps(spec.client_id)},",
        f"    [string]$CertificateThumbprint = {_ps(spec.thumbprint)},",
        f"    [string]$PilotUserId = {_ps(spec.pilot.id)},",
        f"    [string]$NegativeUserId = {_ps(negative_id)},",
        f"    [string]$StartDateTime = {_ps(_iso(start))},",
        f"    [string]$EndDateTime = {_ps(_iso(start + dt.timedelta(minutes=30)))}",
        ")",
        "$ErrorActionPreference = 'Stop'",
        "$failures = 0",
        "$meeting = @{",
        "    startDateTime = $StartDateTime",
        "    endDateTime = $EndDateTime",
        f"    subject = {_ps(TEST_SUBJECT)}",
        "}",
        "",
        "# 1. Validate Graph authentication (app-only, certificate)",
        "try {",
        "    Connect-MgGraph -TenantId $TenantId -ClientId $ClientId -CertificateThumbprint $CertificateThumbprint -NoWelcome",
        "    $context = Get-MgContext",
        "    if ($context.AuthType -eq 'AppOnly') {",
        "        Write-Host ('PASS  1 Connect-MgGraph: app-only sign-in as ' + $context.ClientId)",
        "    } else {",
        "        Write-Host ('FAIL  1 Connect-MgGraph: signed in as ' + $context.AuthType + ', not app-only')",
        "        $failures = $failures + 1",
        "    }",
        "} catch {",
        "    Write-Host ('FAIL  1 Connect-MgGraph: ' + $_.Exception.Message)",
        "    $failures = $failures + 1",
        "}",
        "",
        "# 2. Validate Teams PowerShell authentication",
        "try {",
        "    Connect-MicrosoftTeams -TenantId $TenantId -ApplicationId $ClientId -CertificateThumbprint $CertificateThumbprint | Out-Null",
        "    Write-Host 'PASS  2 Connect-MicrosoftTeams: app-only sign-in to Teams'",
        "} catch {",
        "    Write-Host ('FAIL  2 Connect-MicrosoftTeams: ' + $_.Exception.Message)",
        "    $failures = $failures + 1",
        "}",
        "",
        "# 3. A meeting for an organizer the policy covers: must succeed",
        "try {",
        "    $created = New-MgUserOnlineMeeting -UserId $PilotUserId -BodyParameter $meeting",
        "    Write-Host ('PASS  3 New-MgUserOnlineMeeting for the pilot organizer: ' + $created.JoinWebUrl)",
        "    Remove-MgUserOnlineMeeting -UserId $PilotUserId -OnlineMeetingId $created.Id",
        "} catch {",
        "    Write-Host ('FAIL  3 New-MgUserOnlineMeeting for the pilot organizer: ' + $_.Exception.Message)",
        "    $failures = $failures + 1",
        "}",
        "",
        "# 4. A meeting for a user outside the policy: must be refused with 403",
        "if ($NegativeUserId -eq '') {",
        "    Write-Host 'SKIP  4 no user outside the policy was named (meetgate validate --export --negative UPN)'",
        "} else {",
        "    try {",
        "        $leak = New-MgUserOnlineMeeting -UserId $NegativeUserId -BodyParameter $meeting",
        "        Write-Host 'FAIL  4 POLICY NOT ENFORCED: a meeting was created for a user outside the policy'",
        "        Remove-MgUserOnlineMeeting -UserId $NegativeUserId -OnlineMeetingId $leak.Id",
        "        $failures = $failures + 1",
        "    } catch {",
        "        if ($_.Exception.Message -like '*403*' -or $_.Exception.Message -like '*Forbidden*') {",
        "            Write-Host 'PASS  4 New-MgUserOnlineMeeting outside the policy: refused with 403'",
        "        } else {",
        "            Write-Host ('FAIL  4 expected the policy 403, got: ' + $_.Exception.Message)",
        "            $failures = $failures + 1",
        "        }",
        "    }",
        "}",
        "",
        "Disconnect-MgGraph -ErrorAction SilentlyContinue | Out-Null",
        "if ($failures -eq 0) { Write-Host 'PASS  runbook step 6' } else { Write-Host ('FAIL  runbook step 6: ' + $failures + ' step(s) failed') }",
        "exit $failures",
        "",
    ]
    return "\n".join(lines)


# --- README ----------------------------------------------------------------------------------------


def readme(spec: KitSpec) -> str:
    """What each file proves and how to run it."""
    credential = spec.credential
    if credential.kind == "assertion":
        assert credential.expires_at is not None
        expiry = (
            f"The environment carries a client assertion signed with the app's private key, valid until "
            f"**{_stamp(credential.expires_at)}**. After that the token request fails with `AADSTS700024` "
            "(the collection says so); run `meetgate validate --export DIR` again for a new one. No key "
            "leaves meetgate: the assertion is the only credential in these files."
        )
    else:
        expiry = (
            "This profile signs in with a client secret, so the environment holds **the secret itself**: "
            "delete the environment file after the test and never attach it to a change record."
        )
    negative = (
        f"`{spec.negative.upn}` (object id `{spec.negative.id}`)" if spec.negative else "*(none named)*"
    )
    ps_section = (
        f"""## {POWERSHELL_FILE}

On Windows PowerShell 5.1 or PowerShell 7, with the certificate (thumbprint `{spec.thumbprint}`) and its
private key in `Cert:\\CurrentUser\\My` and the modules `Microsoft.Graph.Authentication`,
`Microsoft.Graph.CloudCommunications` and `MicrosoftTeams`:

```powershell
pwsh -File .\\{POWERSHELL_FILE}
```

It runs the runbook's checks in order — `Connect-MgGraph`, `Connect-MicrosoftTeams`, a meeting created
with `New-MgUserOnlineMeeting` for the pilot organizer (then removed), and one for the user outside the
policy, which must be refused with 403 — printing `PASS` or `FAIL` per step. The exit code is the number
of failed steps.
"""
        if spec.thumbprint
        else "## PowerShell\n\nNot generated: this profile uses a client secret, and the runbook's PowerShell "
        "checks sign in with the certificate (`meetgate cert new`).\n"
    )
    return f"""# Runbook step 6 — manual tests for tenant {spec.tenant_id}

Generated by meetgate {spec.meetgate_version} on {_stamp(spec.generated_at)} for app `{spec.client_id}` and
the application access policy `{spec.policy_name}`.

| Test | Expected |
|---|---|
| Client-credentials token | 200, an app-only token (`roles` with {REQUIRED_ROLE}, no `scp`) |
| Create for pilot organizer `{spec.pilot.upn}` | 201 with a join URL |
| Create for {negative}, outside the policy | **403** (the policy refuses it) |
| Read the created meeting back | 200 |
| Delete it | 204 |

{expiry}

## Postman

Import `{COLLECTION_FILE}` and `{ENVIRONMENT_FILE}` (File → Import), pick the environment and
run the collection (Run collection). Every request has tests; all must pass. A 403 in request 2 means the
policy does not (yet) cover the pilot organizer — changes take up to 30 minutes to reach Graph.

## newman (the same collection from a terminal or a CI job)

```sh
npx newman run {COLLECTION_FILE} -e {ENVIRONMENT_FILE} --reporters cli,junit
```

Add `--ssl-extra-ca-certs CA.pem` when Graph is reached through a TLS-inspecting proxy (or, for
meetgate's sandbox tenant, its `ca.pem`). The JUnit file newman writes (`newman/*.xml`) can be attached to
the change record.

{ps_section}
## What this proves, and what it does not

These files repeat `meetgate validate`'s token, policy-positive and policy-negative checks by hand.
`meetgate validate` adds the certificate, permission, organizer-lookup and reachability checks and keeps
the evidence; `meetgate golive` turns both into the go/no-go report.
"""
