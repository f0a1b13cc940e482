"""Runbook step 6: the validation suite — the right test made the easy one.

People often "test" the integration with a delegated token (to which the application access policy
does not apply) and conclude the policy works. :func:`run_validation` runs a named, ordered set of
checks with the app's own app-only certificate credential, each ending in ``pass``, ``warn``,
``fail`` or ``skip`` with a one-line finding, the evidence (ids, times, request ids) and the fix::

    configuration      tenant, client id, credential files, authority and Graph URLs
    certificate        key >= 2048 bits, SHA-256, validity and horizon, key file 0600, on the app,
                       no client secrets
    token              app-only token by client credentials: roles and no scp, idtyp app,
                       tenant, appidacr = certificate
    permissions        required application roles present, nothing more than needed
    organizer_lookup   pilot and negative users resolve through /users (User.Read(Basic).All)
    policy_positive    per pilot: createOrGet (recognisable externalId), read back, delete
    policy_negative    per negative user: the create must be refused with the policy 403
    teams_powershell   Connect-MicrosoftTeams app-only with the certificate (when pwsh is there)
    graph_reachability latency of a few cheap calls, throttling seen

A check that makes later checks meaningless *blocks* them: they are reported as ``skip`` naming the
check that failed, so one misconfiguration fails exactly one check.

Every test meeting is announced to a :class:`CleanupJournal` before it is created and deleted in a
``finally`` (also on Ctrl-C); :func:`cleanup_leftovers` deletes what an earlier run killed hard
left behind. Nothing here prints; everything is reached through small ports (Graph in production,
fakes in unit tests, the sandbox in integration tests).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from meetgate import certificates as certs
from meetgate.admin.credentials import EXPIRY_WARNING_DAYS, inspect_local_certificate
from meetgate.graph.applications import Application
from meetgate.graph.auth import USER_READ_ROLES, AccessToken, TokenClaims
from meetgate.graph.errors import (
    AccessPolicyMissing,
    AuthenticationError,
    GraphError,
    InvalidTokenError,
    MissingRolesError,
    ThrottledError,
    TransportError,
    UserNotFound,
)
from meetgate.graph.identifiers import GUID, tenant_problem
from meetgate.graph.models import CreateOrGetResult, MeetingRequest, OnlineMeeting, User

Status = Literal["pass", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip")

#: the checks, in the order they run
CHECKS: tuple[tuple[str, str], ...] = (
    ("configuration", "Configuration complete and consistent"),
    ("certificate", "Certificate usable and registered"),
    ("token", "App-only token with the certificate"),
    ("permissions", "Application permissions"),
    ("organizer_lookup", "Organizer lookup"),
    ("policy_positive", "Policy positive test (pilot organizers)"),
    ("policy_negative", "Policy negative test (users not covered)"),
    ("teams_powershell", "Teams PowerShell app-only connection"),
    ("graph_reachability", "Graph reachability and throttling headroom"),
)
TITLES = dict(CHECKS)

#: roles the integration needs: this one, plus any one of :data:`USER_READ_ROLES`
REQUIRED_ROLE = "OnlineMeetings.ReadWrite.All"
#: roles that are expected: anything else is more privilege than needed
EXPECTED_ROLES = frozenset({"onlinemeetings.readwrite.all", "user.read.all", "user.readbasic.all"})
#: roles other meetgate features use on the same app (reported, not warned about)
FEATURE_ROLES = {"auditlog.read.all": "monitoring reads service principal sign-ins"}
TEST_EXTERNAL_ID_PREFIX = "meetgate-validate-"
TEST_SUBJECT = "meetgate validation test meeting (deleted automatically)"
SLOW_MEDIAN_MS = 1500.0

DELEGATED_EXPLANATION = (
    "Configure app-only authentication: client credentials with the app's certificate "
    "(tenant_id, client_id, private_key_path, certificate_path). The runbook is explicit: test with "
    "application permissions, NOT delegated user authentication — application access policies only "
    "apply to app-only flows, so a delegated token (scp, no roles, acting as a signed-in user on /me) "
    "proves nothing about the policy and gives false confidence."
)


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome. ``evidence`` holds ids, times and request ids — never a secret."""

    name: str
    status: Status
    finding: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fix: str | None = None
    duration_ms: float = 0.0
    #: a failure that makes later checks meaningless (they are skipped)
    blocking: bool = False

    @property
    def title(self) -> str:
        return TITLES.get(self.name, self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "finding": self.finding,
            "evidence": dict(self.evidence),
            "fix": self.fix,
            "duration_ms": round(self.duration_ms, 1),
            "blocking": self.blocking,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        status = str(data.get("status"))
        if status not in STATUSES:
            raise ValueError(f"unknown check status {status!r}")
        return cls(
            name=str(data["name"]),
            status=status,
            finding=str(data.get("finding", "")),
            evidence=dict(data.get("evidence") or {}),
            fix=data.get("fix"),
            duration_ms=float(data.get("duration_ms") or 0.0),
            blocking=bool(data.get("blocking", False)),
        )


def overall_status(checks: Sequence[CheckResult]) -> Literal["pass", "warn", "fail"]:
    statuses = {c.status for c in checks}
    if "fail" in statuses:
        return "fail"
    if "warn" in statuses:
        return "warn"
    return "pass"


@dataclass(frozen=True)
class ValidationRun:
    """A whole run: kept in the store so `meetgate golive` can cite it."""

    id: str
    started_at: dt.datetime
    finished_at: dt.datetime
    tenant_id: str | None
    client_id: str | None
    profile: str
    pilot: tuple[str, ...]
    negative: tuple[str, ...]
    checks: tuple[CheckResult, ...]

    @property
    def status(self) -> Literal["pass", "warn", "fail"]:
        return overall_status(self.checks)

    @property
    def ok(self) -> bool:
        """No check failed (warnings allowed)."""
        return self.status != "fail"

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    def passed(self, name: str) -> bool:
        result = self.check(name)
        return result is not None and result.status in ("pass", "warn")

    @property
    def covers_policy_tests(self) -> bool:
        """Both the positive and the negative policy tests ran and passed."""
        return self.passed("policy_positive") and self.passed("policy_negative")

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.checks if c.status == s) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_ms": round((self.finished_at - self.started_at).total_seconds() * 1000, 1),
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "profile": self.profile,
            "pilot": list(self.pilot),
            "negative": list(self.negative),
            "counts": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationRun:
        return cls(
            id=str(data["id"]),
            started_at=dt.datetime.fromisoformat(str(data["started_at"])),
            finished_at=dt.datetime.fromisoformat(str(data["finished_at"])),
            tenant_id=data.get("tenant_id"),
            client_id=data.get("client_id"),
            profile=str(data.get("profile", "default")),
            pilot=tuple(data.get("pilot") or ()),
            negative=tuple(data.get("negative") or ()),
            checks=tuple(CheckResult.from_dict(c) for c in data.get("checks") or ()),
        )


# --- what the checks look at ----------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationConfig:
    """The profile's facts the checks need (built by the CLI from a ``Profile``); no secret values."""

    profile: str = "default"
    tenant_id: str | None = None
    client_id: str | None = None
    authority_url: str | None = None
    graph_url: str | None = None
    private_key_path: Path | None = None
    certificate_path: Path | None = None
    pfx_path: Path | None = None
    passphrase: bytes | None = field(default=None, repr=False)
    #: the environment variable a client secret would be read from, and whether it is set
    client_secret_env: str = "MEETGATE_CLIENT_SECRET"
    client_secret_configured: bool = False
    #: a token handed over instead of the certificate (e.g. what a third-party app was given)
    external_token: bool = False
    policy_name: str = "Tag:TeamsMeetingsIntegration"

    @property
    def has_certificate(self) -> bool:
        return self.pfx_path is not None or (
            self.private_key_path is not None and self.certificate_path is not None
        )


class TokenPort(Protocol):
    def get_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> AccessToken: ...


class MeetingsPort(Protocol):
    """What the policy tests need (``meetgate.graph.meetings.MeetingsService`` implements it)."""

    def create_or_get(
        self, organizer: str, external_id: str, request: MeetingRequest
    ) -> CreateOrGetResult: ...

    def get(self, organizer: str, meeting_id: str) -> OnlineMeeting: ...

    def delete(self, organizer: str, meeting_id: str) -> None: ...


class DirectoryPort(Protocol):
    """``meetgate.graph.directory.DirectoryService`` implements it."""

    def get_user(self, id_or_upn: str) -> User: ...


class RegistrationReader(Protocol):
    """The app's registration (key and password credentials); ``ApplicationsService`` implements it."""

    def find_application_by_app_id(self, app_id: str) -> Application | None: ...


@dataclass(frozen=True)
class ProbeSample:
    """One cheap Graph call: how long it took and what it said about throttling."""

    status: int
    latency_ms: float
    request_id: str | None = None
    retry_after: float | None = None
    #: throttling-related response headers (RateLimit-*, x-ms-throttle-*), when Graph sent any
    headers: Mapping[str, str] = field(default_factory=dict)


class ReachabilityProbe(Protocol):
    def sample(self) -> ProbeSample: ...


@dataclass(frozen=True)
class TeamsConnection:
    """What ``Connect-MicrosoftTeams`` reported (or why it failed)."""

    ok: bool
    account: str | None = None
    tenant_id: str | None = None
    detail: str = ""


class TeamsConnectionProbe(Protocol):
    def connect(self) -> TeamsConnection: ...


@dataclass(frozen=True)
class PendingMeeting:
    organizer_id: str
    external_id: str
    meeting_id: str | None = None


class CleanupJournal(Protocol):
    """Test meetings announced before they are created, removed once deleted (the store in production)."""

    def announce(self, meeting: PendingMeeting) -> None: ...

    def resolve(self, meeting: PendingMeeting) -> None: ...

    def pending(self) -> list[PendingMeeting]: ...


class InMemoryCleanupJournal:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], PendingMeeting] = {}

    def announce(self, meeting: PendingMeeting) -> None:
        self.items[(meeting.organizer_id, meeting.external_id)] = meeting

    def resolve(self, meeting: PendingMeeting) -> None:
        self.items.pop((meeting.organizer_id, meeting.external_id), None)

    def pending(self) -> list[PendingMeeting]:
        return list(self.items.values())


@dataclass
class ValidationTarget:
    """Everything the suite talks to. ``tokens`` and ``meetings``/``directory`` may be None when the
    configuration is too broken to build a client (the checks then report why)."""

    config: ValidationConfig
    tokens: TokenPort | None = None
    meetings: MeetingsPort | None = None
    directory: DirectoryPort | None = None
    registration: RegistrationReader | None = None
    reachability: ReachabilityProbe | None = None
    teams: TeamsConnectionProbe | None = None
    #: why the Teams PowerShell check cannot run (shown when ``teams`` is None)
    teams_skip_reason: str = "pwsh is not configured"
    journal: CleanupJournal = field(default_factory=InMemoryCleanupJournal)
    #: why no client could be built (a configuration error's message), when that happened
    client_error: str | None = None


# --- the runner -----------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _Run:
    target: ValidationTarget
    pilot: tuple[str, ...]
    negative: tuple[str, ...]
    run_id: str
    now: Callable[[], dt.datetime]
    reachability_samples: int
    token: AccessToken | None = None
    token_error: GraphError | None = None
    token_tried: bool = False
    #: reference → resolved user id (organizer_lookup)
    user_ids: dict[str, str] = field(default_factory=dict)
    results: dict[str, CheckResult] = field(default_factory=dict)

    # a token is requested once and shared by the certificate and token checks
    def acquire(self) -> AccessToken | None:
        if not self.token_tried:
            self.token_tried = True
            if self.target.tokens is None:
                self.token_error = GraphError(self.target.client_error or "no Graph client could be built")
            else:
                try:
                    self.token = self.target.tokens.get_token()
                except GraphError as exc:
                    self.token_error = exc
        return self.token


#: check → the checks whose blocking failure means it cannot run meaningfully
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "certificate": ("configuration",),
    "token": ("configuration", "certificate"),
    "permissions": ("configuration", "certificate", "token"),
    "organizer_lookup": ("configuration", "certificate", "token", "permissions"),
    "policy_positive": ("configuration", "certificate", "token", "permissions", "organizer_lookup"),
    "policy_negative": ("configuration", "certificate", "token", "permissions", "organizer_lookup"),
    "teams_powershell": ("configuration", "certificate"),
    "graph_reachability": ("configuration", "certificate", "token"),
}


def run_validation(
    target: ValidationTarget,
    *,
    pilot: Sequence[str] = (),
    negative: Sequence[str] = (),
    run_id: str | None = None,
    now: Callable[[], dt.datetime] = _now,
    reachability_samples: int = 3,
    only: Sequence[str] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> ValidationRun:
    """Run the checks in order and return the run (nothing is printed or stored here).

    ``only`` restricts the run to some checks (the others are reported as ``skip``). ``on_result``
    is called after each check (progress display).
    """
    pilot_t = tuple(dict.fromkeys(p.strip() for p in pilot if p.strip()))
    negative_t = tuple(dict.fromkeys(n.strip() for n in negative if n.strip()))
    run = _Run(target, pilot_t, negative_t, run_id or str(uuid.uuid4()), now, reachability_samples)
    started = now()
    checks: dict[str, Callable[[_Run], CheckResult]] = {
        "configuration": check_configuration,
        "certificate": check_certificate,
        "token": check_token,
        "permissions": check_permissions,
        "organizer_lookup": check_organizer_lookup,
        "policy_positive": check_policy_positive,
        "policy_negative": check_policy_negative,
        "teams_powershell": check_teams_powershell,
        "graph_reachability": check_graph_reachability,
    }
    wanted = set(only) if only else None
    if wanted:
        unknown = wanted - set(checks)
        if unknown:
            raise ValueError(f"unknown check(s): {', '.join(sorted(unknown))}; known: {', '.join(checks)}")
    for name, fn in checks.items():
        blocked_by = next(
            (d for d in DEPENDS_ON.get(name, ()) if d in run.results and run.results[d].blocking), None
        )
        if wanted is not None and name not in wanted:
            result = CheckResult(name, "skip", "not selected in this run")
        elif blocked_by is not None:
            result = CheckResult(
                name,
                "skip",
                f"not run: the {blocked_by} check failed",
                {"blocked_by": blocked_by},
                fix=f"fix the {blocked_by} check first",
            )
        else:
            t0 = time.perf_counter()
            result = fn(run)
            result = replace(result, duration_ms=(time.perf_counter() - t0) * 1000)
        run.results[name] = result
        if on_result is not None:
            on_result(result)
    return ValidationRun(
        id=run.run_id,
        started_at=started,
        finished_at=now(),
        tenant_id=target.config.tenant_id,
        client_id=target.config.client_id,
        profile=target.config.profile,
        pilot=pilot_t,
        negative=negative_t,
        checks=tuple(run.results[name] for name in checks),
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
    fails: list[tuple[str, str, bool]] = []  # (finding, fix, blocking)
    warns: list[tuple[str, str]] = []
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
    else:
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
    blocked_local = any(b for _, _, b in fails)
    # the app registration: read it when we can, else let Entra's answer tell
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
    if registration is not None:
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
    if not blocked_local and not (registration is not None and fails):
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
    if c.client_secret_configured:
        warns.append(
            (
                f"a client secret is configured in ${c.client_secret_env}",
                f"unset {c.client_secret_env}: the certificate is used and a secret is an extra credential to leak",
            )
        )
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
    extra = sorted(r for key, r in have.items() if key not in EXPECTED_ROLES and key not in FEATURE_ROLES)
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


# --- 5 organizer lookup ---------------------------------------------------------------------------


def check_organizer_lookup(run: _Run) -> CheckResult:
    directory = run.target.directory
    refs = [*run.pilot, *(n for n in run.negative if n not in run.pilot)]
    if not refs:
        return CheckResult(
            "organizer_lookup",
            "skip",
            "no pilot or negative users given",
            fix="pass --pilot UPN and --negative UPN, or list organizers in the policy file",
        )
    overlap = sorted(set(run.pilot) & set(run.negative))
    if overlap:
        return CheckResult(
            "organizer_lookup",
            "fail",
            f"{', '.join(overlap)} is given both as pilot and as negative user",
            {"overlap": overlap},
            "a negative user must be one the policy must NOT cover: choose another --negative",
            blocking=True,
        )
    assert directory is not None
    found: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for ref in refs:
        try:
            user = directory.get_user(ref)
        except UserNotFound as exc:
            missing.append(ref)
            found[ref] = {"error": "not found", "request_id": exc.request_id}
            continue
        except MissingRolesError as exc:
            return CheckResult(
                "organizer_lookup",
                "fail",
                f"the app cannot read users: {exc.message}",
                {"request_id": exc.request_id},
                exc.remedy,
                blocking=True,
            )
        except GraphError as exc:
            return CheckResult(
                "organizer_lookup",
                "fail",
                f"looking up {ref} failed: {exc.message}",
                {"request_id": exc.request_id, "status": exc.status},
                exc.remedy,
                blocking=True,
            )
        run.user_ids[ref] = user.id
        found[ref] = {"id": user.id, "upn": user.user_principal_name, "enabled": user.account_enabled}
    evidence = {"users": found}
    if missing:
        return CheckResult(
            "organizer_lookup",
            "fail",
            f"not found in the directory: {', '.join(missing)}",
            evidence,
            "check the UPNs given with --pilot / --negative (or in the policy file)",
        )
    disabled = [r for r, u in found.items() if u.get("enabled") is False]
    if disabled:
        return CheckResult(
            "organizer_lookup",
            "warn",
            f"disabled account(s): {', '.join(disabled)}",
            evidence,
            "use enabled accounts for the tests",
        )
    return CheckResult("organizer_lookup", "pass", f"{len(found)} user(s) resolved to object ids", evidence)


# --- 6/7 policy tests -----------------------------------------------------------------------------


def validation_external_id(run_id: str, index: int, kind: str) -> str:
    """A recognisable externalId: ``meetgate-validate-<run>-<kind><n>``."""
    return f"{TEST_EXTERNAL_ID_PREFIX}{run_id.replace('-', '')[:12]}-{kind}{index}"


def _test_request(now: dt.datetime) -> MeetingRequest:
    start = (now + dt.timedelta(days=1)).replace(microsecond=0)
    return MeetingRequest(subject=TEST_SUBJECT, start=start, end=start + dt.timedelta(minutes=30))


def _error_evidence(exc: GraphError) -> dict[str, Any]:
    return {
        "status": exc.status,
        "code": exc.code,
        "request_id": exc.request_id,
        "client_request_id": exc.client_request_id,
    }


@dataclass
class _Attempt:
    """One create attempt for one organizer, with its cleanup."""

    ref: str
    organizer_id: str
    external_id: str
    meeting: OnlineMeeting | None = None
    created: bool | None = None
    read_back: bool = False
    deleted: bool = False
    error: GraphError | None = None
    cleanup_error: str | None = None

    def evidence(self) -> dict[str, Any]:
        data: dict[str, Any] = {"organizer_id": self.organizer_id, "external_id": self.external_id}
        if self.meeting is not None:
            data.update(
                {
                    "meeting_id": self.meeting.id,
                    "created": self.created,
                    "read_back": self.read_back,
                    "deleted": self.deleted,
                }
            )
            if self.meeting.join_meeting_id:
                data["join_meeting_id"] = self.meeting.join_meeting_id
        if self.error is not None:
            data["error"] = type(self.error).__name__
            data.update({k: v for k, v in _error_evidence(self.error).items() if v is not None})
        if self.cleanup_error:
            data["cleanup_error"] = self.cleanup_error
        return data


def _attempt_meeting(run: _Run, ref: str, index: int, kind: str, *, read_back: bool) -> _Attempt:
    """createOrGet → (get) → delete, announcing the meeting to the journal first; the delete runs in
    a ``finally`` so an interruption (KeyboardInterrupt included) leaves nothing behind."""
    meetings = run.target.meetings
    journal = run.target.journal
    assert meetings is not None
    attempt = _Attempt(ref, run.user_ids[ref], validation_external_id(run.run_id, index, kind))
    pending = PendingMeeting(attempt.organizer_id, attempt.external_id)
    journal.announce(pending)
    try:
        try:
            result = meetings.create_or_get(
                attempt.organizer_id, attempt.external_id, _test_request(run.now())
            )
        except GraphError as exc:
            attempt.error = exc
            if isinstance(exc, AccessPolicyMissing):
                journal.resolve(pending)  # refused: nothing was created
            return attempt
        attempt.meeting, attempt.created = result.meeting, result.created
        pending = PendingMeeting(attempt.organizer_id, attempt.external_id, result.meeting.id)
        journal.announce(pending)
        if read_back:
            try:
                back = meetings.get(attempt.organizer_id, result.meeting.id)
                attempt.read_back = back.id == result.meeting.id
            except GraphError as exc:
                attempt.error = exc
        return attempt
    finally:
        if attempt.meeting is not None and not attempt.deleted:
            try:
                meetings.delete(attempt.organizer_id, attempt.meeting.id)
                attempt.deleted = True
                journal.resolve(pending)
            except GraphError as exc:
                attempt.cleanup_error = f"{type(exc).__name__}: {exc.message}"


def _resolved(run: _Run, refs: Sequence[str]) -> list[str]:
    return [r for r in refs if r in run.user_ids]


def check_policy_positive(run: _Run) -> CheckResult:
    if not run.pilot:
        return CheckResult(
            "policy_positive",
            "skip",
            "no pilot organizers given",
            fix="pass --pilot UPN (an approved organizer), or list organizers in the policy file",
        )
    refs = _resolved(run, run.pilot)
    if not refs:
        return CheckResult(
            "policy_positive", "skip", "no pilot organizer could be resolved (organizer_lookup)"
        )
    attempts = [_attempt_meeting(run, ref, i, "pilot", read_back=True) for i, ref in enumerate(refs, 1)]
    evidence: dict[str, Any] = {"organizers": {a.ref: a.evidence() for a in attempts}}
    refused = [a for a in attempts if isinstance(a.error, AccessPolicyMissing)]
    failed = [a for a in attempts if a.error is not None and a not in refused]
    unread = [a for a in attempts if a.error is None and not a.read_back]
    left = [a for a in attempts if a.cleanup_error]
    if refused:
        first = refused[0].error
        assert first is not None
        return CheckResult(
            "policy_positive",
            "fail",
            "the policy 403 for pilot organizer(s) "
            + ", ".join(refused_ref.ref for refused_ref in refused)
            + ": no application access policy lists this app for them",
            evidence,
            first.remedy,
        )
    if failed:
        first = failed[0].error
        assert first is not None
        return CheckResult(
            "policy_positive",
            "fail",
            f"creating a test meeting for {failed[0].ref} failed: {first.message}",
            evidence,
            first.remedy,
        )
    if unread:
        return CheckResult(
            "policy_positive",
            "fail",
            f"the meeting created for {unread[0].ref} could not be read back",
            evidence,
            "retry; if it persists, quote the request ids to Microsoft support",
        )
    if left:
        return CheckResult(
            "policy_positive",
            "warn",
            f"a test meeting could not be deleted for {left[0].ref}: {left[0].cleanup_error}",
            evidence,
            "it is kept in the cleanup journal: the next `meetgate validate` deletes it",
        )
    return CheckResult(
        "policy_positive",
        "pass",
        f"created, read back and deleted a test meeting for {len(attempts)} pilot organizer(s)",
        evidence,
    )


def check_policy_negative(run: _Run) -> CheckResult:
    if not run.negative:
        return CheckResult(
            "policy_negative",
            "skip",
            "no negative user given",
            fix="pass --negative UPN: a user the policy must NOT cover",
        )
    refs = _resolved(run, run.negative)
    if not refs:
        return CheckResult("policy_negative", "skip", "no negative user could be resolved (organizer_lookup)")
    attempts = [_attempt_meeting(run, ref, i, "negative", read_back=False) for i, ref in enumerate(refs, 1)]
    evidence: dict[str, Any] = {"users": {a.ref: a.evidence() for a in attempts}}
    allowed = [a for a in attempts if a.meeting is not None]
    if allowed:
        names = ", ".join(a.ref for a in allowed)
        return CheckResult(
            "policy_negative",
            "fail",
            f"POLICY NOT ENFORCED: a meeting was created for {names}, who must not be covered "
            "(a Global grant, a group grant or a direct grant covers them)",
            evidence,
            "see who holds the policy: `meetgate policy status`; revoke a Global grant with "
            "Grant-CsApplicationAccessPolicy -PolicyName $null -Global and any grant to these users with "
            "Grant-CsApplicationAccessPolicy -PolicyName $null -Identity <user> (or `meetgate policy apply` "
            "from the approved list); changes take up to 30 minutes to reach Graph",
        )
    odd = [a for a in attempts if not isinstance(a.error, AccessPolicyMissing)]
    if odd:
        first = odd[0].error
        assert first is not None
        return CheckResult(
            "policy_negative",
            "fail",
            f"inconclusive for {odd[0].ref}: expected the policy 403, got {type(first).__name__}: {first.message}",
            evidence,
            first.remedy,
        )
    return CheckResult(
        "policy_negative",
        "pass",
        f"refused with the policy 403 for {len(attempts)} user(s) outside the policy",
        evidence,
    )


def cleanup_leftovers(
    meetings: MeetingsPort, journal: CleanupJournal, *, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Delete test meetings an earlier, hard-killed run announced but never deleted."""
    from meetgate.graph.errors import NotFoundError

    done: list[dict[str, Any]] = []
    for item in journal.pending():
        outcome = "deleted"
        try:
            meeting_id = item.meeting_id
            if meeting_id is None:  # interrupted inside the create: find it by its externalId
                found = meetings.create_or_get(
                    item.organizer_id, item.external_id, _test_request(now or _now())
                )
                meeting_id = found.meeting.id
            meetings.delete(item.organizer_id, meeting_id)
        except (AccessPolicyMissing, NotFoundError):
            outcome = "nothing to delete"
        except GraphError as exc:
            done.append(
                {
                    "organizer_id": item.organizer_id,
                    "external_id": item.external_id,
                    "outcome": f"kept: {exc.message}",
                }
            )
            continue
        journal.resolve(item)
        done.append({"organizer_id": item.organizer_id, "external_id": item.external_id, "outcome": outcome})
    return done


# --- 8 Teams PowerShell ---------------------------------------------------------------------------


def check_teams_powershell(run: _Run) -> CheckResult:
    probe = run.target.teams
    if probe is None:
        return CheckResult(
            "teams_powershell",
            "skip",
            f"not run: {run.target.teams_skip_reason}",
            fix="install PowerShell 7 and the MicrosoftTeams module (or pass --pwsh) to test runbook step 6's "
            "Connect-MicrosoftTeams with the certificate",
        )
    result = probe.connect()
    evidence = {"account": result.account, "tenant_id": result.tenant_id}
    if not result.ok:
        return CheckResult(
            "teams_powershell",
            "fail",
            f"Connect-MicrosoftTeams with the certificate failed: {result.detail}",
            evidence,
            "the app needs the Teams Administrator role for app-only Teams PowerShell, and the certificate "
            "must be uploaded to the app (`meetgate cert upload`)",
        )
    c = run.target.config
    if (
        c.tenant_id
        and result.tenant_id
        and GUID.match(c.tenant_id)
        and result.tenant_id.lower() != c.tenant_id.lower()
    ):
        return CheckResult(
            "teams_powershell",
            "fail",
            f"connected to tenant {result.tenant_id}, not {c.tenant_id}",
            evidence,
            "check tenant_id in the profile",
        )
    return CheckResult(
        "teams_powershell",
        "pass",
        f"Connect-MicrosoftTeams app-only as {result.account} in tenant {result.tenant_id}",
        evidence,
    )


# --- 9 reachability -------------------------------------------------------------------------------


def check_graph_reachability(run: _Run) -> CheckResult:
    probe = run.target.reachability
    if probe is None:
        return CheckResult("graph_reachability", "skip", "no probe configured")
    samples: list[ProbeSample] = []
    throttled: list[dict[str, Any]] = []
    for _ in range(max(1, run.reachability_samples)):
        try:
            samples.append(probe.sample())
        except ThrottledError as exc:
            throttled.append({"retry_after": exc.retry_after, "request_id": exc.request_id})
        except TransportError as exc:
            return CheckResult(
                "graph_reachability",
                "fail",
                f"Graph is unreachable: {exc.message}",
                {"client_request_id": exc.client_request_id},
                "check graph_url, proxies/firewall and ca_bundle",
            )
        except GraphError as exc:
            return CheckResult(
                "graph_reachability",
                "fail",
                f"a cheap Graph call failed: {exc.message}",
                _error_evidence(exc),
                exc.remedy,
            )
    latencies = [s.latency_ms for s in samples]
    throttled += [
        {"retry_after": s.retry_after, "request_id": s.request_id} for s in samples if s.status == 429
    ]
    evidence: dict[str, Any] = {
        "samples": len(samples) + len(throttled),
        "latency_ms": {
            "min": round(min(latencies), 1) if latencies else None,
            "median": round(statistics.median(latencies), 1) if latencies else None,
            "max": round(max(latencies), 1) if latencies else None,
        },
        "request_ids": [s.request_id for s in samples if s.request_id],
        "throttled": throttled,
    }
    limits = {k: v for s in samples for k, v in s.headers.items()}
    if limits:
        evidence["rate_limit_headers"] = limits
    if throttled:
        return CheckResult(
            "graph_reachability",
            "warn",
            f"throttled {len(throttled)} time(s) in {evidence['samples']} calls: little headroom",
            evidence,
            "lower the request rate (gateway limits) or spread calls; Graph's Teams limit is 30 rps per app per tenant",
        )
    median = evidence["latency_ms"]["median"] or 0.0
    if median > SLOW_MEDIAN_MS:
        return CheckResult(
            "graph_reachability",
            "warn",
            f"Graph answers slowly: median {median:.0f} ms",
            evidence,
            "check the network path to graph.microsoft.com (proxy, DNS)",
        )
    return CheckResult(
        "graph_reachability",
        "pass",
        f"{len(samples)} call(s), median {median:.0f} ms, no throttling",
        evidence,
    )


# --- defaults for --pilot / --negative ------------------------------------------------------------


def default_test_users(
    approved: Sequence[str],
    directory_users: Iterator[User] | Sequence[User],
    *,
    pilots: int = 2,
    exclude: Sequence[str] = (),
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Pilot = the first ``pilots`` approved organizers; negative = the first enabled directory user
    who is not approved (the policy must not cover them) and not in ``exclude`` (the pilots given
    by hand: a pilot is never also the negative user)."""
    pilot = tuple(approved[:pilots])
    approved_keys = {a.lower() for a in (*approved, *exclude)}
    for user in directory_users:
        keys = {user.id.lower(), (user.user_principal_name or "").lower()}
        if user.account_enabled is False or keys & approved_keys:
            continue
        return pilot, (user.user_principal_name or user.id,)
    return pilot, ()


# --- adapters over the real things (used by the CLI) ----------------------------------------------


class GraphReachabilityProbe:
    """``GET /users?$top=1&$select=id`` through the Graph client, timed, with its throttling headers."""

    THROTTLE_HEADERS = (
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ms-throttle-limit-percentage",
        "x-ms-throttle-scope",
    )

    def __init__(self, http: Any, clock: Callable[[], float] = time.perf_counter) -> None:
        self.http = http
        self.clock = clock

    def sample(self) -> ProbeSample:
        started = self.clock()
        response = self.http.request("GET", "/users", params={"$top": "1", "$select": "id"}, full=True)
        elapsed = (self.clock() - started) * 1000
        headers = {k: v for k, v in response.headers.items() if k.lower() in self.THROTTLE_HEADERS}
        return ProbeSample(
            status=response.status,
            latency_ms=elapsed,
            request_id=response.headers.get("request-id"),
            headers=headers,
        )


class PwshTeamsProbe:
    """``Connect-MicrosoftTeams -TenantId -ApplicationId -Certificate`` in one pwsh session (runbook
    step 6), through a :class:`~meetgate.admin.policy.powershell.PwshRunner` (real pwsh or the sandbox's
    stand-in)."""

    def __init__(
        self, tenant_id: str, app_id: str, certificate_path: Path, private_key_path: Path, runner: Any
    ) -> None:
        self.tenant_id = tenant_id
        self.app_id = app_id
        self.certificate_path = certificate_path
        self.private_key_path = private_key_path
        self.runner = runner

    def script(self) -> str:
        from meetgate.admin.policy.script import ps_quote

        return (
            "$ErrorActionPreference = 'Stop'\n"
            "$Certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile("
            f"{ps_quote(str(self.certificate_path))}, {ps_quote(str(self.private_key_path))})\n"
            f"$Connection = Connect-MicrosoftTeams -TenantId {ps_quote(self.tenant_id)} "
            f"-ApplicationId {ps_quote(self.app_id)} -Certificate $Certificate\n"
            "$Connection | Select-Object Account, TenantId | ConvertTo-Json -Compress\n"
        )

    def connect(self) -> TeamsConnection:
        import json

        from meetgate.admin.policy.model import PolicyError

        try:
            result = self.runner.run(self.script(), {})
        except PolicyError as exc:
            return TeamsConnection(False, detail=str(exc))
        if result.code != 0:
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
            return TeamsConnection(False, detail=lines[0] if lines else f"pwsh exited with {result.code}")
        for line in result.stdout.splitlines():
            text = line.strip()
            if text.startswith("{"):
                try:
                    data = json.loads(text)
                except ValueError:
                    continue
                return TeamsConnection(True, str(data.get("Account") or ""), str(data.get("TenantId") or ""))
        return TeamsConnection(False, detail="Connect-MicrosoftTeams printed no connection")
