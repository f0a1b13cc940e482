"""The meeting-artifacts check (run only when the profile enables ``artifacts``): for each kind
enabled, its application permission is in the token, and one read of that kind for a pilot organizer
gets through the Teams application access policy (and, for transcripts, the tenant's "Graph API
access to transcripts" setting). Nothing is created: transcripts and recordings are listed for the
organizer's last day (``getAllTranscripts`` / ``getAllRecordings``), attendance is asked of a meeting
id of the organizer that cannot exist (a 404 means the permission and the policy let it through)."""

from __future__ import annotations

from typing import Any

from meetgate.admin.validation.context import _error_evidence, _Run
from meetgate.admin.validation.model import CheckResult
from meetgate.graph.artifact_models import ARTIFACT_PERMISSIONS
from meetgate.graph.errors import GraphError

SETUP_REMEDY = (
    "run `meetgate setup app` (it requests the permission of every kind in the profile's `artifacts`) and "
    "grant admin consent; roles appear only in tokens issued after consent"
)


def check_artifacts(run: _Run) -> CheckResult:
    kinds = run.target.config.artifacts
    token = run.acquire()
    assert token is not None  # the token check passed
    roles = {role.lower() for role in token.claims.roles}
    evidence: dict[str, Any] = {"kinds": list(kinds)}
    missing = [ARTIFACT_PERMISSIONS[k] for k in kinds if ARTIFACT_PERMISSIONS[k].lower() not in roles]
    if missing:
        evidence["missing"] = missing
        return CheckResult(
            "artifacts", "fail", f"the token lacks {', '.join(missing)}", evidence, SETUP_REMEDY
        )
    pilots = [run.user_ids.get(p, p) for p in run.pilot]
    if run.target.artifacts is None or not pilots:
        return CheckResult(
            "artifacts",
            "warn",
            "the permissions are in the token; no read was tried (no pilot organizer)",
            evidence,
            "give a pilot organizer (--pilot) so each kind is read through the Teams policy",
        )
    organizer = pilots[0]
    evidence["organizer"] = organizer
    reads: dict[str, Any] = {}
    for kind in kinds:
        try:
            reads[kind] = {"ok": True, "seen": run.target.artifacts.probe(organizer, kind)}
        except GraphError as exc:
            reads[kind] = {"ok": False, "error": type(exc).__name__, **_error_evidence(exc)}
            evidence["reads"] = reads
            return CheckResult(
                "artifacts",
                "fail",
                f"reading {kind} for pilot {organizer} was refused: {exc.message}",
                evidence,
                exc.remedy,
            )
    evidence["reads"] = reads
    return CheckResult(
        "artifacts",
        "pass",
        f"{', '.join(kinds)}: permission in the token and a read through the Teams policy for {organizer}",
        evidence,
    )
