"""Checks that prove the app signs in as itself, app-only, with its certificate: the configuration
is complete, the certificate is usable and registered, the token is app-only and issued for a
certificate, and it carries the roles needed (and no more) — and, when calendar placement is scoped by Exchange RBAC
for Applications, no tenant-wide Entra calendar permission (the union rule)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from meetgate import certificates as certs
from meetgate.admin.credentials import EXPIRY_WARNING_DAYS, LocalCertificate, inspect_local_certificate
from meetgate.admin.mailbox_scope.model import union_violation
from meetgate.admin.validation.context import _Run
from meetgate.admin.validation.model import CheckResult
from meetgate.admin.validation.ports import ValidationConfig
from meetgate.graph.applications import Application
from meetgate.graph.artifact_models import ARTIFACT_PERMISSIONS
from meetgate.graph.auth import USER_READ_ROLES, AccessToken, TokenClaims
from meetgate.graph.errors import AuthenticationError, GraphError, InvalidTokenError
from meetgate.graph.identifiers import GUID, tenant_problem

#: roles the integration needs: this one, plus any one of :data:`USER_READ_ROLES`
REQUIRED_ROLE = "OnlineMeetings.ReadWrite.All"
#: roles that are expected: anything else is more privilege than needed
EXPECTED_ROLES = frozenset({"onlinemeetings.readwrite.all", "user.read.all", "user.readbasic.all"})
#: roles other meetgate features use on the same app (reported, not warned about)
FEATURE_ROLES = {"auditlog.read.all": "monitoring reads service principal sign-ins"}

DELEGATED_EXPLANATION = (
    "Configure app-only authentication: client credentials with the app's certificate "
    "(tenant_id, client_id, private_key_path, certificate_path). The runbook is explicit: test with "
    "application permissions, NOT delegated user authentication — application access policies only "
    "apply to app-only flows, so a delegated token (scp, no roles, acting as a signed-in user on /me) "
    "proves nothing about the policy and gives false confidence."
)


# --- 1 configuration ------------------------------------------------------------------------------


def check_configuration(run: _Run) -> CheckResult:
    c = run.target.config
    problems: list[str] = []
    fixes: list[str] = []
    evidence: dict[str, Any] = {
        "profile": c.profile,
        "tenant_id": c.tenant_id,
        "client_id": c.client_id,
        "authority_url": c.authority_url,
        "graph_url": c.graph_url,
        "credential": "external token"
        if c.external_token
        else "pfx"
        if c.pfx_path
        else "certificate"
        if c.has_certificate
        else "client secret"
        if c.client_secret_configured
        else "none",
    }
    if not c.tenant_id:
        problems.append("tenant_id is missing")
        fixes.append("set tenant_id (Directory (tenant) ID) in meetgate.toml or MEETGATE_TENANT_ID")
    elif tenant_problem(c.tenant_id):
        problems.append(f"tenant_id {tenant_problem(c.tenant_id)}")
        fixes.append("copy the Directory (tenant) ID from the app registration's overview")
    if not c.client_id:
        problems.append("client_id is missing")
        fixes.append("set client_id (Application (client) ID), e.g. from `meetgate setup app`")
    elif not GUID.match(c.client_id):
        problems.append(f"client_id {c.client_id!r} is not a GUID")
        fixes.append("copy the Application (client) ID from the app registration's overview")
    for name, url in (("authority_url", c.authority_url), ("graph_url", c.graph_url)):
        if not url or not url.startswith("https://"):
            problems.append(f"{name} must be an https URL (got {url!r})")
            fixes.append(f"set {name} to https://… (the defaults are Microsoft's public cloud)")
    if not c.external_token:
        if c.pfx_path is None and (c.private_key_path is None) != (c.certificate_path is None):
            problems.append("only one of private_key_path / certificate_path is set")
            fixes.append("set both, to the key and certificate that `meetgate cert new` wrote")
        elif not c.has_certificate:
            if c.client_secret_configured:
                problems.append(
                    f"no certificate is configured: the app signs in with the client secret in ${c.client_secret_env}"
                )
                fixes.append(
                    "the runbook requires certificate authentication: `meetgate cert new`, "
                    "`meetgate cert upload`, then set private_key_path and certificate_path"
                )
            else:
                problems.append("no credential is configured")
                fixes.append("run `meetgate cert new` and set private_key_path and certificate_path")
        for label, path in (
            ("private_key_path", c.private_key_path),
            ("certificate_path", c.certificate_path),
            ("pfx_path", c.pfx_path),
        ):
            if path is not None and not path.is_file():
                problems.append(f"{label} {path} does not exist")
                fixes.append(f"point {label} at the file `meetgate cert new` wrote")
    if run.target.client_error and not problems:
        problems.append(run.target.client_error)
        fixes.append("fix the profile (see docs/configuration.md)")
    if problems:
        return CheckResult(
            "configuration",
            "fail",
            "; ".join(problems),
            evidence,
            "; ".join(dict.fromkeys(fixes)),
            blocking=True,
        )
    return CheckResult(
        "configuration",
        "pass",
        f"profile {c.profile}: tenant {c.tenant_id}, app {c.client_id}, {evidence['credential']} credential",
        evidence,
    )


# --- 2 certificate --------------------------------------------------------------------------------


#: a failure: (finding, fix, blocking) — a blocking one skips the checks that need a certificate
_Fail = tuple[str, str, bool]
#: a warning: (finding, fix)
_Warn = tuple[str, str]


def _signature_hash(cert: Any) -> str | None:
    algorithm = getattr(cert, "signature_hash_algorithm", None)
    return getattr(algorithm, "name", None)


def check_certificate(run: _Run) -> CheckResult:
    c = run.target.config
    if c.external_token or not c.has_certificate:
        return CheckResult(
            "certificate",
            "skip",
            "no certificate is configured"
            + (" (an external token is used)" if c.external_token else " (see the configuration check)"),
        )
    now = run.now()
    local = inspect_local_certificate(
        key_path=c.private_key_path,
        certificate_path=c.certificate_path,
        pfx_path=c.pfx_path,
        passphrase=c.passphrase,
    )
    evidence: dict[str, Any] = {
        "key_path": str(local.key_path) if local.key_path else None,
        "key_mode": f"{local.key_mode:o}" if local.key_mode is not None else None,
        "thumbprint_sha1": local.thumbprint_sha1,
        "thumbprint_sha256": local.thumbprint_sha256,
        "not_after": local.not_after.isoformat() if local.not_after else None,
    }
    fails: list[_Fail] = []
    warns: list[_Warn] = []
    _local_findings(c, local, now, evidence, fails, warns)
    blocked_local = any(b for _, _, b in fails)
    # the app registration: read it when we can, else let Entra's answer tell
    registration = _read_registration(run, evidence)
    if registration is not None:
        _registration_findings(c, local, registration, blocked_local, evidence, fails, warns)
    if not blocked_local and not (registration is not None and fails):
        _entra_findings(run, local, evidence, fails)
    if c.client_secret_configured:
        warns.append(
            (
                f"a client secret is configured in ${c.client_secret_env}",
                f"unset {c.client_secret_env}: the certificate is used and a secret is an extra credential to leak",
            )
        )
    return _certificate_result(evidence, fails, warns)


def _local_findings(
    c: ValidationConfig,
    local: LocalCertificate,
    now: dt.datetime,
    evidence: dict[str, Any],
    fails: list[_Fail],
    warns: list[_Warn],
) -> None:
    """The files on this machine: key file mode, readable pair, key size, hash, validity."""
    key_where = str(local.key_path) if local.key_path else "the key file"
    if local.key_mode is not None and local.key_mode & 0o077:
        fails.append(
            (
                f"{key_where} has mode {local.key_mode:o}: readable by others than its owner",
                f"chmod 600 {key_where}",
                False,
            )
        )
    if local.error:
        fails.append(
            (
                f"the certificate files cannot be used: {local.error}",
                "fix private_key_path / certificate_path (or the passphrase variable) in the profile",
                True,
            )
        )
        return
    cert = certs.load_pfx(c.pfx_path, c.passphrase).certificate if c.pfx_path else None
    if cert is None and c.certificate_path is not None:
        cert = certs.load_certificate(c.certificate_path)
    assert cert is not None
    key_size = getattr(cert.public_key(), "key_size", None)
    sig = _signature_hash(cert)
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    days_left = (not_after - now).days
    evidence.update(
        {
            "subject": cert.subject.rfc4514_string(),
            "key_size": key_size,
            "signature_hash": sig,
            "not_before": not_before.isoformat(),
            "days_left": days_left,
        }
    )
    if local.key_matches is False:
        fails.append(
            (
                f"{key_where} is not the private key of {c.certificate_path}",
                "point private_key_path and certificate_path at the same pair",
                True,
            )
        )
    if key_size is None or key_size < 2048:
        fails.append(
            (
                f"the key has {key_size} bits; Entra and the runbook need RSA 2048 or more",
                "`meetgate cert new --key-size 2048` (or 3072/4096), upload it, remove the old one",
                False,
            )
        )
    if (sig or "").lower() != "sha256":
        fails.append(
            (
                f"the certificate is signed with {sig or 'an unknown hash'}, not SHA-256",
                "`meetgate cert new` makes a SHA-256 certificate; upload it and remove the old one",
                False,
            )
        )
    if not_after <= now:
        fails.append(
            (
                f"the certificate {local.thumbprint_sha1} expired on {not_after:%Y-%m-%d}",
                "`meetgate cert new`, `meetgate cert upload`, point the profile at the new files "
                "(or `meetgate cert rotate`)",
                True,
            )
        )
    elif not_before > now:
        fails.append(
            (
                f"the certificate is valid only from {not_before:%Y-%m-%d %H:%M} UTC",
                "check the machine clock, or use a certificate valid now",
                True,
            )
        )
    elif days_left < EXPIRY_WARNING_DAYS:
        warns.append(
            (
                f"the certificate expires in {days_left} days ({not_after:%Y-%m-%d})",
                "rotate it now: `meetgate cert rotate`",
            )
        )


def _read_registration(run: _Run, evidence: dict[str, Any]) -> Application | None:
    """The app registration, when a reader (Application.Read.All) is there and it answers."""
    c = run.target.config
    registration: Application | None = None
    reader = run.target.registration
    if reader is not None and c.client_id:
        try:
            registration = reader.find_application_by_app_id(c.client_id)
            evidence["registration"] = "read" if registration else "not found"
        except GraphError as exc:
            evidence["registration"] = f"not readable ({type(exc).__name__}, HTTP {exc.status})"
    else:
        evidence["registration"] = "not read (no reader with Application.Read.All)"
    return registration


def _registration_findings(
    c: ValidationConfig,
    local: LocalCertificate,
    registration: Application,
    blocked_local: bool,
    evidence: dict[str, Any],
    fails: list[_Fail],
    warns: list[_Warn],
) -> None:
    """The local certificate is a key credential of the app, and the app has no client secrets."""
    on_app = {kc.thumbprint_sha1 for kc in registration.key_credentials if kc.thumbprint_sha1}
    evidence["app_certificates"] = sorted(on_app)
    evidence["app_client_secrets"] = len(registration.password_credentials)
    if local.thumbprint_sha1 and local.thumbprint_sha1 not in on_app and not blocked_local:
        fails.append(
            (
                f"the local certificate {local.thumbprint_sha1} is not a key credential of app {c.client_id}",
                "upload it: `meetgate cert upload` (or point the profile at the certificate that is uploaded)",
                True,
            )
        )
    for secret in registration.password_credentials:
        label = secret.display_name or secret.hint or secret.key_id or "a client secret"
        warns.append(
            (
                f"the app has a client secret ({label})",
                "the runbook recommends certificate authentication only: remove the secret under "
                "Certificates & secrets once nothing uses it",
            )
        )


def _entra_findings(run: _Run, local: LocalCertificate, evidence: dict[str, Any], fails: list[_Fail]) -> None:
    """Entra's answer to the token request (shared with the token check): certificate refused or accepted."""
    c = run.target.config
    run.acquire()
    error = run.token_error
    if isinstance(error, AuthenticationError) and error.aadsts_code in (700027, 700024):
        evidence["aadsts"] = error.aadsts_code
        evidence["trace_id"] = error.request_id
        fails.append(
            (
                f"Entra refused the certificate {local.thumbprint_sha1} for app {c.client_id} "
                f"(AADSTS{error.aadsts_code}): it is not (or no longer) uploaded to the app registration",
                "upload it: `meetgate cert upload` (or point the profile at the certificate the app has)",
                True,
            )
        )
    elif run.token is not None:
        evidence["accepted_by_entra"] = True


def _certificate_result(evidence: dict[str, Any], fails: list[_Fail], warns: list[_Warn]) -> CheckResult:
    if fails:
        return CheckResult(
            "certificate",
            "fail",
            "; ".join(f for f, _, _ in fails),
            evidence,
            "; ".join(dict.fromkeys(x for _, x, _ in fails)),
            blocking=any(b for _, _, b in fails),
        )
    if warns:
        return CheckResult(
            "certificate",
            "warn",
            "; ".join(f for f, _ in warns),
            evidence,
            "; ".join(dict.fromkeys(x for _, x in warns)),
        )
    return CheckResult(
        "certificate",
        "pass",
        f"RSA {evidence.get('key_size')} / SHA-256, valid {evidence.get('days_left')} more days, "
        f"key file {evidence.get('key_mode')}",
        evidence,
    )


# --- 3 token --------------------------------------------------------------------------------------


def _claims_evidence(claims: TokenClaims, token: AccessToken) -> dict[str, Any]:
    return {
        "appid": claims.appid,
        "tid": claims.tid,
        "idtyp": claims.idtyp,
        "appidacr": claims.appidacr,
        "credential": claims.credential_kind,
        "roles": list(claims.roles),
        "scp": list(claims.scopes),
        "aud": claims.aud,
        "expires_at": token.expires_at.isoformat(),
        "source": token.source,
    }


def check_token(run: _Run) -> CheckResult:
    c = run.target.config
    token = run.acquire()
    if token is None:
        error = run.token_error or GraphError("no token")
        evidence: dict[str, Any] = {"error": type(error).__name__}
        if isinstance(error, AuthenticationError) and error.aadsts_code:
            evidence["aadsts"] = error.aadsts_code
        if error.request_id:
            evidence["trace_id"] = error.request_id
        return CheckResult(
            "token",
            "fail",
            f"no app-only token: {error.message}",
            evidence,
            error.remedy,
            blocking=True,
        )
    try:
        claims = token.claims
    except InvalidTokenError as exc:
        return CheckResult(
            "token", "fail", f"the token cannot be read: {exc.message}", {}, exc.remedy, blocking=True
        )
    evidence = _claims_evidence(claims, token)
    if not claims.is_app_only:
        who = f" for {claims.upn}" if claims.upn else ""
        return CheckResult(
            "token",
            "fail",
            f"the configured token is DELEGATED{who} (scp {' '.join(claims.scopes) or '-'}, "
            f"idtyp {claims.idtyp or '-'}): the application access policy does not apply to it",
            evidence,
            DELEGATED_EXPLANATION,
            blocking=True,
        )
    problems: list[tuple[str, str, bool]] = []
    if c.tenant_id and GUID.match(c.tenant_id) and claims.tid and claims.tid.lower() != c.tenant_id.lower():
        problems.append(
            (
                f"the token is for tenant {claims.tid}, not the profile's {c.tenant_id}",
                "set tenant_id to the tenant the organizers live in",
                True,
            )
        )
    if c.client_id and claims.appid and claims.appid.lower() != c.client_id.lower():
        problems.append(
            (
                f"the token was issued to app {claims.appid}, not the profile's {c.client_id}",
                "use the integration app's own credential",
                True,
            )
        )
    if claims.credential_kind != "certificate":
        problems.append(
            (
                f"the app authenticated with {claims.credential_kind.replace('_', ' ')} "
                f"(appidacr {claims.appidacr or '-'}), not a certificate",
                "configure certificate authentication (private_key_path, certificate_path) and "
                f"remove the client secret (${c.client_secret_env})",
                False,
            )
        )
    if problems:
        return CheckResult(
            "token",
            "fail",
            "; ".join(p for p, _, _ in problems),
            evidence,
            "; ".join(f for _, f, _ in problems),
            blocking=any(b for _, _, b in problems),
        )
    return CheckResult(
        "token",
        "pass",
        f"app-only token for app {claims.appid} in tenant {claims.tid}, signed in with a certificate, "
        f"{len(claims.roles)} role(s), valid until {token.expires_at:%H:%M:%S} UTC",
        evidence,
    )


# --- 4 permissions --------------------------------------------------------------------------------


def check_permissions(run: _Run) -> CheckResult:
    token = run.acquire()
    assert token is not None  # the token check passed
    claims = token.claims
    have = {r.lower(): r for r in claims.roles}
    evidence: dict[str, Any] = {"roles": sorted(claims.roles)}
    missing: list[str] = []
    if REQUIRED_ROLE.lower() not in have:
        missing.append(REQUIRED_ROLE)
    if not any(r.lower() in have for r in USER_READ_ROLES):
        missing.append("User.ReadBasic.All (or User.Read.All)")
    if missing:
        evidence["missing"] = missing
        return CheckResult(
            "permissions",
            "fail",
            f"the token lacks {', '.join(missing)}",
            evidence,
            f"add the Microsoft Graph application permission(s) {', '.join(missing)} and grant admin consent "
            "(`meetgate setup app`, or API permissions > Grant admin consent); roles appear in tokens "
            "issued after consent",
            blocking=True,
        )
    held = union_violation(claims.roles)
    if held and run.target.config.mailbox_scoped:
        # the union rule: Entra grants and Exchange RBAC add up, so this grant voids the mailbox scope
        evidence["entra_calendar_roles"] = list(held)
        return CheckResult(
            "permissions",
            "fail",
            f"the app holds the tenant-wide Entra permission(s) {', '.join(held)} beside its Exchange mailbox "
            "scope ([mailbox_scope]): Entra grants and Exchange RBAC add up, so the app can reach EVERY mailbox",
            evidence,
            f"remove {', '.join(held)} from the app's API permissions and revoke the admin consent; the "
            "Exchange role assignment (`meetgate mailbox-scope apply`) gives the scoped access",
        )
    enabled = {ARTIFACT_PERMISSIONS[kind].lower() for kind in run.target.config.artifacts}
    expected = EXPECTED_ROLES | enabled
    extra = sorted(r for key, r in have.items() if key not in expected and key not in FEATURE_ROLES)
    features = sorted(r for key, r in have.items() if key in FEATURE_ROLES)
    if features:
        evidence["feature_roles"] = {r: FEATURE_ROLES[r.lower()] for r in features}
    if extra:
        evidence["extra"] = extra
        return CheckResult(
            "permissions",
            "warn",
            f"more privilege than needed: {', '.join(extra)}",
            evidence,
            f"remove {', '.join(extra)} from the app's API permissions (and revoke the consent): the "
            "integration needs only OnlineMeetings.ReadWrite.All and User.ReadBasic.All",
        )
    return CheckResult(
        "permissions",
        "pass",
        f"has {REQUIRED_ROLE} and {next(have[r.lower()] for r in USER_READ_ROLES if r.lower() in have)}",
        evidence,
    )
