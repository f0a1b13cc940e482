"""Adapters over the real things (used by the CLI): Graph reachability through the Graph client,
and Teams PowerShell's ``Connect-MicrosoftTeams`` through a pwsh runner."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meetgate.admin.validation.ports import ProbeSample, TeamsConnection


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
