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
    calendar_positive  only with [mailbox_scope]: per pilot, a calendar meeting (placement calendar)
                       with a Teams join URL whose onlineMeeting is reachable, then deleted
    calendar_negative  only with [mailbox_scope]: per outside mailbox, the create must be refused by
                       Exchange (MailboxAccessDenied)
    teams_powershell   Connect-MicrosoftTeams app-only with the certificate (when pwsh is there)
    graph_reachability latency of a few cheap calls, throttling seen

A check that makes later checks meaningless *blocks* them: they are reported as ``skip`` naming the
check that failed, so one misconfiguration fails exactly one check.

Every test meeting is announced to a :class:`CleanupJournal` before it is created and deleted in a
``finally`` (also on Ctrl-C); :func:`cleanup_leftovers` deletes what an earlier run killed hard
left behind. Nothing here prints; everything is reached through small ports (Graph in production,
fakes in unit tests, the sandbox in integration tests).

The package, one concern per module (this module re-exports their names, so callers import from
``meetgate.admin.validation``)::

    model                CheckResult, ValidationRun, overall_status, the checks' names and titles
    ports                ValidationConfig, ValidationTarget and the ports the checks talk through
    context              the state one run shares between its checks
    runner               run_validation and which check blocks which
    checks_credentials   configuration, certificate, token, permissions
    checks_policy        organizer_lookup, policy_positive, policy_negative, cleanup_leftovers,
                         default_test_users
    checks_calendar      calendar_positive, calendar_negative (the calendar plane)
    checks_connectivity  teams_powershell, graph_reachability
    adapters             GraphReachabilityProbe, PwshTeamsProbe (the real things, used by the CLI)
"""

# The private helpers (``_Run``, ``_test_request``, …) are re-exported as ``name as name`` too: they
# were reachable here when validation was one module. ``__all__`` lists the public names.
from meetgate.admin.validation.adapters import GraphReachabilityProbe, PwshTeamsProbe
from meetgate.admin.validation.checks_calendar import (
    calendar_outside,
    check_calendar_negative,
    check_calendar_positive,
)
from meetgate.admin.validation.checks_connectivity import (
    SLOW_MEDIAN_MS,
    check_graph_reachability,
    check_teams_powershell,
)
from meetgate.admin.validation.checks_credentials import (
    DELEGATED_EXPLANATION,
    EXPECTED_ROLES,
    FEATURE_ROLES,
    REQUIRED_ROLE,
    check_certificate,
    check_configuration,
    check_permissions,
    check_token,
)
from meetgate.admin.validation.checks_credentials import _claims_evidence as _claims_evidence
from meetgate.admin.validation.checks_credentials import _signature_hash as _signature_hash
from meetgate.admin.validation.checks_policy import (
    TEST_EXTERNAL_ID_PREFIX,
    TEST_SUBJECT,
    check_organizer_lookup,
    check_policy_negative,
    check_policy_positive,
    cleanup_leftovers,
    default_test_users,
    validation_external_id,
)
from meetgate.admin.validation.checks_policy import _Attempt as _Attempt
from meetgate.admin.validation.checks_policy import _attempt_meeting as _attempt_meeting
from meetgate.admin.validation.checks_policy import _resolved as _resolved
from meetgate.admin.validation.checks_policy import _test_request as _test_request
from meetgate.admin.validation.context import _error_evidence as _error_evidence
from meetgate.admin.validation.context import _now as _now
from meetgate.admin.validation.context import _Run as _Run
from meetgate.admin.validation.model import (
    CALENDAR_CHECKS,
    CHECKS,
    STATUSES,
    TITLES,
    CheckResult,
    Outcome,
    Status,
    ValidationRun,
    overall_status,
)
from meetgate.admin.validation.ports import (
    CleanupJournal,
    DirectoryPort,
    InMemoryCleanupJournal,
    PendingMeeting,
    ProbeSample,
    ReachabilityProbe,
    RegistrationReader,
    SyncEventsPort,
    SyncMeetingsPort,
    TeamsConnection,
    TeamsConnectionProbe,
    TokenPort,
    ValidationConfig,
    ValidationTarget,
)
from meetgate.admin.validation.runner import DEPENDS_ON, run_validation

__all__ = [
    "CALENDAR_CHECKS",
    "CHECKS",
    "DELEGATED_EXPLANATION",
    "DEPENDS_ON",
    "EXPECTED_ROLES",
    "FEATURE_ROLES",
    "REQUIRED_ROLE",
    "SLOW_MEDIAN_MS",
    "STATUSES",
    "TEST_EXTERNAL_ID_PREFIX",
    "TEST_SUBJECT",
    "TITLES",
    "CheckResult",
    "CleanupJournal",
    "DirectoryPort",
    "GraphReachabilityProbe",
    "InMemoryCleanupJournal",
    "Outcome",
    "PendingMeeting",
    "ProbeSample",
    "PwshTeamsProbe",
    "ReachabilityProbe",
    "RegistrationReader",
    "Status",
    "SyncEventsPort",
    "SyncMeetingsPort",
    "TeamsConnection",
    "TeamsConnectionProbe",
    "TokenPort",
    "ValidationConfig",
    "ValidationRun",
    "ValidationTarget",
    "calendar_outside",
    "check_calendar_negative",
    "check_calendar_positive",
    "check_certificate",
    "check_configuration",
    "check_graph_reachability",
    "check_organizer_lookup",
    "check_permissions",
    "check_policy_negative",
    "check_policy_positive",
    "check_teams_powershell",
    "check_token",
    "cleanup_leftovers",
    "default_test_users",
    "overall_status",
    "run_validation",
    "validation_external_id",
]
