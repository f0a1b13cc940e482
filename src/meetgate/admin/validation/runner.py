"""The runner: :func:`run_validation` runs the checks in order, skipping those a blocking failure
makes meaningless (:data:`DEPENDS_ON`), and returns the :class:`ValidationRun` (nothing is printed or
stored here)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

from meetgate.admin.validation.checks_artifacts import check_artifacts
from meetgate.admin.validation.checks_calendar import check_calendar_negative, check_calendar_positive
from meetgate.admin.validation.checks_connectivity import check_graph_reachability, check_teams_powershell
from meetgate.admin.validation.checks_credentials import (
    check_certificate,
    check_configuration,
    check_permissions,
    check_token,
)
from meetgate.admin.validation.checks_policy import (
    check_organizer_lookup,
    check_policy_negative,
    check_policy_positive,
)
from meetgate.admin.validation.context import _now, _Run
from meetgate.admin.validation.model import CheckResult, ValidationRun
from meetgate.admin.validation.ports import ValidationTarget

#: check → the checks whose blocking failure means it cannot run meaningfully
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "certificate": ("configuration",),
    "token": ("configuration", "certificate"),
    "permissions": ("configuration", "certificate", "token"),
    "organizer_lookup": ("configuration", "certificate", "token", "permissions"),
    "policy_positive": ("configuration", "certificate", "token", "permissions", "organizer_lookup"),
    "policy_negative": ("configuration", "certificate", "token", "permissions", "organizer_lookup"),
    "calendar_positive": ("configuration", "certificate", "token", "permissions", "organizer_lookup"),
    "calendar_negative": ("configuration", "certificate", "token", "permissions", "organizer_lookup"),
    "artifacts": ("configuration", "certificate", "token", "organizer_lookup"),
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

    When the configuration says calendar placement is scoped (``mailbox_scoped``), the calendar
    positive and negative tests run after the policy tests; otherwise the run holds exactly
    :data:`~meetgate.admin.validation.model.CHECKS` (no calendar permission is needed or used).
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
    }
    if target.config.mailbox_scoped:
        checks["calendar_positive"] = check_calendar_positive
        checks["calendar_negative"] = check_calendar_negative
    if target.config.artifacts:
        checks["artifacts"] = check_artifacts
    checks |= {
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
                remedy=f"fix the {blocked_by} check first",
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
