"""The MicrosoftTeams cmdlets of the pwsh stand-in: Connect-MicrosoftTeams, the
*-CsApplicationAccessPolicy cmdlets, Get-CsOnlineUser and the policy assignment reads.
"""

from __future__ import annotations

import time
from typing import Any

from meetgate_sandbox.pwsh.certs import _certificate_sign_in, certificate_from_store
from meetgate_sandbox.pwsh.errors import PSError
from meetgate_sandbox.pwsh.interpreter import Interpreter
from meetgate_sandbox.pwsh.registry import _arg, cmdlet
from meetgate_sandbox.pwsh.tenant import Connection, _b64json, _values
from meetgate_sandbox.pwsh.values import PSObject, _enum, _to_str


@cmdlet("Connect-MicrosoftTeams", "TenantId ApplicationId Certificate CertificateThumbprint AccessTokens")
def _connect(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    tenant = it.tenant()
    tenant_id = _to_str(named.get("tenantid")) or None
    app_id = _to_str(named.get("applicationid")) or None
    account: str
    if "accesstokens" in named:
        tokens = [_to_str(t) for t in _enum(named["accesstokens"])]
        if not tokens or not all(t.count(".") == 2 for t in tokens):
            raise PSError(
                "Connect-MicrosoftTeams: the access tokens are not JWTs.",
                "InvalidAccessTokens",
                "AuthenticationError",
            )
        claims = [_b64json(t.split(".")[1]) for t in tokens]
        now = time.time()
        for claim in claims:
            if float(claim.get("exp", 0)) < now:
                raise PSError(
                    "Connect-MicrosoftTeams: an access token has expired; acquire new tokens.",
                    "TokenExpired",
                    "AuthenticationError",
                )
            if tenant_id and claim.get("tid") and claim["tid"] != tenant_id:
                raise PSError(
                    "Connect-MicrosoftTeams: the access tokens belong to another tenant.",
                    "TenantMismatch",
                    "AuthenticationError",
                )
        tenant_id = tenant_id or str(claims[0].get("tid", ""))
        account = str(claims[0].get("appid") or claims[0].get("azp") or "app")
    elif "certificate" in named or "certificatethumbprint" in named:
        if "certificatethumbprint" in named:
            cert = certificate_from_store(_to_str(named["certificatethumbprint"]))
        else:
            cert = named["certificate"]
        if not isinstance(cert, PSObject) or not cert.get("_key_path") or not tenant_id or not app_id:
            raise PSError(
                "Connect-MicrosoftTeams: -Certificate needs an X509Certificate2, -TenantId and -ApplicationId.",
                "InvalidArgument",
                "InvalidArgument",
            )
        _certificate_sign_in(tenant, tenant_id, app_id, cert)
        account = app_id
    else:
        if not tenant_id:
            raise PSError(
                "Connect-MicrosoftTeams: no interactive sign-in is possible here; pass -TenantId.",
                "InteractiveUnavailable",
                "AuthenticationError",
            )
        account = "admin"
    info = tenant.call("GET", f"/tenants/{tenant_id}")
    if account == "admin":
        account = str(info.get("adminUpn") or "admin")
    it.conn = Connection(str(info.get("tenantId", tenant_id)), account, list(info.get("users", [])))
    return [
        PSObject(
            Account=account, Environment="AzureCloud", Tenant=it.conn.tenant_id, TenantId=it.conn.tenant_id
        )
    ]


def _policy_obj(p: dict[str, Any]) -> PSObject:
    identity = str(p.get("identity") or "")
    if identity and not identity.lower().startswith("tag:") and identity.lower() != "global":
        identity = "Tag:" + identity
    return PSObject(Identity=identity, AppIds=list(p.get("appIds", [])), Description=p.get("description", ""))


def _policies(it: Interpreter) -> list[PSObject]:
    return [_policy_obj(p) for p in _values(it.tenant().call("GET", it.tpath("/policies")), "policies")]


def _grants(it: Interpreter) -> dict[str, Any]:
    data = it.tenant().call("GET", it.tpath("/policy-grants"))
    return data if isinstance(data, dict) else {}


def _bare(name: Any) -> str:
    text = _to_str(name)
    return text[4:] if text.lower().startswith("tag:") else text


@cmdlet("Get-CsApplicationAccessPolicy", "Identity Filter")
def _get_policy(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.connected()
    policies = _policies(it)
    global_name = _grants(it).get("global")
    by_name = {_bare(p["Identity"]).lower(): p for p in policies}
    glob = by_name.get(_bare(global_name).lower()) if global_name else None
    # the Global instance: what users without a direct or group grant get (empty when none is granted)
    global_obj = PSObject(
        Identity="Global",
        AppIds=list(glob["AppIds"]) if glob else [],
        Description=f"Global grant: {_to_str(global_name)}" if glob else "",
    )
    identity = _arg(named, pos, "Identity", 0)
    if identity is None:
        return [*policies, global_obj]
    if _bare(identity).lower() == "global":
        return [global_obj]
    found = by_name.get(_bare(identity).lower())
    if found is None:
        raise PSError(
            f'Cannot get policy "{_to_str(identity)}" because it does not exist.',
            "PolicyNotFound",
            "ObjectNotFound",
        )
    return [found]


def _policy_body(named: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if "appids" in named:
        body["appIds"] = [_to_str(a) for a in _enum(named["appids"])]
    if "description" in named:
        body["description"] = _to_str(named["description"])
    return body


@cmdlet("New-CsApplicationAccessPolicy", "Identity AppIds Description")
def _new_policy(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.connected()
    identity = _to_str(_arg(named, pos, "Identity", 0))
    if not identity:
        raise PSError(
            "Cannot bind argument to parameter 'Identity' because it is an empty string.",
            "ParameterArgumentValidationErrorEmptyStringNotAllowed",
            "InvalidData",
        )
    body = {"identity": "Tag:" + _bare(identity), "appIds": [], "description": "", **_policy_body(named)}
    try:
        created = it.tenant().call("POST", it.tpath("/policies"), body)
    except PSError as exc:
        if exc.error_id == "HTTP409":
            raise PSError(
                f'The policy "Tag:{_bare(identity)}" already exists. Use Set-CsApplicationAccessPolicy to change it.',
                "PolicyAlreadyExists",
                "ResourceExists",
            ) from None
        raise
    return [_policy_obj(created if isinstance(created, dict) else body)]


@cmdlet("Set-CsApplicationAccessPolicy", "Identity AppIds Description")
def _set_policy(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.connected()
    identity = _bare(_arg(named, pos, "Identity", 0))
    try:
        it.tenant().call("PATCH", it.tpath(f"/policies/Tag:{identity}"), _policy_body(named))
    except PSError as exc:
        if exc.error_id == "HTTP404":
            raise PSError(
                f'Cannot get policy "Tag:{identity}" because it does not exist.',
                "PolicyNotFound",
                "ObjectNotFound",
            ) from None
        raise
    return []


@cmdlet("Remove-CsApplicationAccessPolicy", "Identity Force")
def _remove_policy(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    it.connected()
    identity = _bare(_arg(named, pos, "Identity", 0))
    try:
        it.tenant().call("DELETE", it.tpath(f"/policies/Tag:{identity}"))
    except PSError as exc:
        if exc.error_id == "HTTP404":
            raise PSError(
                f'Cannot remove policy "Tag:{identity}" because it does not exist.',
                "PolicyNotFound",
                "ObjectNotFound",
            ) from None
        raise
    return []


@cmdlet("Grant-CsApplicationAccessPolicy", "Identity PolicyName Group Rank Global")
def _grant(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.connected()
    if "policyname" not in named and len(pos) < 2:
        raise PSError(
            "Grant-CsApplicationAccessPolicy: -PolicyName is required (use $null to revoke).",
            "MissingArgument",
            "InvalidArgument",
        )
    raw = named["policyname"] if "policyname" in named else pos[1]
    policy = None if raw in (None, "") else _bare(raw)
    targets = [k for k in ("identity", "group", "global") if k in named] or (["identity"] if pos else [])
    if len(targets) != 1:
        raise PSError(
            "Parameter set cannot be resolved using the specified named parameters: give one of -Identity, -Group or -Global.",
            "AmbiguousParameterSet",
            "InvalidArgument",
        )
    body: dict[str, Any] = {"policyName": policy}
    if targets == ["identity"]:
        body["user"] = _to_str(_arg(named, pos, "Identity", 0))
    elif targets == ["group"]:
        body["group"] = _to_str(named["group"])
        if policy is not None and "rank" not in named:
            raise PSError(
                "Grant-CsApplicationAccessPolicy: -Rank is required with -Group.",
                "MissingArgument",
                "InvalidArgument",
            )
        if "rank" in named:
            body["rank"] = int(named["rank"])
    else:
        body["global"] = True
    try:
        it.tenant().call("POST", it.tpath("/policy-grants"), body)
    except PSError as exc:
        if exc.error_id == "HTTP404":
            raise PSError(f"{exc.message}", "ObjectNotFound", "ObjectNotFound") from None
        raise
    return []


def _user_obj(user: dict[str, Any], direct: str | None) -> PSObject:
    return PSObject(
        Identity=user.get("id"),
        UserPrincipalName=user.get("userPrincipalName"),
        DisplayName=user.get("displayName"),
        AccountEnabled=user.get("accountEnabled", True),
        ApplicationAccessPolicy=direct,
    )


def _find_user(it: Interpreter, ref: str) -> dict[str, Any]:
    low = ref.lower()
    for user in it.connected().users:
        if str(user.get("id", "")).lower() == low or str(user.get("userPrincipalName", "")).lower() == low:
            return user
    # the tenant may have changed since Connect: refresh once
    info = it.tenant().call("GET", it.tpath())
    it.connected().users = list(info.get("users", []))
    for user in it.connected().users:
        if str(user.get("id", "")).lower() == low or str(user.get("userPrincipalName", "")).lower() == low:
            return user
    raise PSError(
        f"Management object not found for identity '{ref}'.", "ManagementObjectNotFound", "ObjectNotFound"
    )


def _direct_map(it: Interpreter) -> dict[str, str]:
    out: dict[str, str] = {}
    for grant in _values(_grants(it).get("direct", [])):
        user = grant.get("user") or grant.get("userId")
        if user and grant.get("policyName"):
            out[str(user).lower()] = _bare(grant["policyName"])
    return out


@cmdlet("Get-CsOnlineUser", "Identity ResultSize Filter")
def _get_user(it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None) -> list[Any]:
    it.connected()
    if "filter" in named:
        raise PSError(
            "Get-CsOnlineUser: -Filter is not supported by the sandbox pwsh stand-in.",
            "NotSupported",
            "NotImplemented",
        )
    identity = _arg(named, pos, "Identity", 0)
    direct = _direct_map(it)
    if identity is not None:
        user = _find_user(it, _to_str(identity))
        return [_user_obj(user, direct.get(str(user.get("id")).lower()))]
    info = it.tenant().call("GET", it.tpath())
    it.connected().users = list(info.get("users", []))
    return [_user_obj(u, direct.get(str(u.get("id")).lower())) for u in it.connected().users]


@cmdlet("Get-CsUserPolicyAssignment", "Identity PolicyType")
def _get_assignment(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    it.connected()
    policy_type = _to_str(named.get("policytype", "ApplicationAccessPolicy"))
    if policy_type.lower() != "applicationaccesspolicy":
        raise PSError(
            f"Get-CsUserPolicyAssignment: policy type '{policy_type}' is not modelled by the sandbox.",
            "NotSupported",
            "NotImplemented",
        )
    user = _find_user(it, _to_str(_arg(named, pos, "Identity", 0)))
    data = it.tenant().call("GET", it.tpath(f"/users/{user['id']}/policy")) or {}
    out = []
    for source in ("direct", "group"):
        value = data.get(source)
        if not value:
            continue
        name = (
            value.get("policyName") or value.get("name") or value.get("identity")
            if isinstance(value, dict)
            else value
        )
        ref = (value.get("groupId") if isinstance(value, dict) else None) or (
            data.get("groupId") if source == "group" else None
        )
        out.append(
            PSObject(
                PolicyType="ApplicationAccessPolicy",
                PolicyName=_bare(name),
                PolicySource=PSObject(
                    AssignmentType="Direct" if source == "direct" else "Group",
                    PolicyName=_bare(name),
                    Reference=ref,
                ),
            )
        )
    return out


@cmdlet("Get-CsGroupPolicyAssignment", "PolicyType GroupId")
def _get_group_assignment(
    it: Interpreter, named: dict[str, Any], pos: list[Any], inp: list[Any] | None
) -> list[Any]:
    it.connected()
    out = []
    for grant in _values(_grants(it).get("group", [])):
        group = grant.get("group") or grant.get("groupId")
        if "groupid" in named and _to_str(named["groupid"]).lower() != str(group).lower():
            continue
        out.append(
            PSObject(
                GroupId=group,
                PolicyType="ApplicationAccessPolicy",
                PolicyName=_bare(grant.get("policyName")),
                Priority=grant.get("rank"),
            )
        )
    return out
