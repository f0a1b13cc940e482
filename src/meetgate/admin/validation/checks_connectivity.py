"""Checks that prove the tenant can be reached the way the runbook does: Teams PowerShell connects
app-only with the certificate, and Graph answers cheap calls quickly and without throttling."""

from __future__ import annotations

import statistics
from typing import Any

from meetgate.admin.validation.context import _error_evidence, _Run
from meetgate.admin.validation.model import CheckResult
from meetgate.admin.validation.ports import ProbeSample
from meetgate.graph.errors import GraphError, ThrottledError, TransportError
from meetgate.graph.identifiers import GUID

SLOW_MEDIAN_MS = 1500.0


# --- 8 Teams PowerShell ---------------------------------------------------------------------------


def check_teams_powershell(run: _Run) -> CheckResult:
    probe = run.target.teams
    if probe is None:
        return CheckResult(
            "teams_powershell",
            "skip",
            f"not run: {run.target.teams_skip_reason}",
            remedy="install PowerShell 7 and the MicrosoftTeams module (or pass --pwsh) to test runbook step 6's "
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
