"""The product against the sandbox's realistic profile: `meetgate policy verify` polls through a
propagation delay drawn from the documented range, and a bulk job meets the throttle and still
creates every meeting exactly once. Nothing here is timed: the delay is known from the seed, the
first probe comes before the grant by construction, and the throttle is scaled so that any client
meets it."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from meetgate.admin.bulk import BULK_RETRY, run_bulk_job
from meetgate.cli.main import app as cli_app
from meetgate.composition import async_graph_client_from_profile
from meetgate.config import save_profile_values
from meetgate.graph.limiter import AdaptiveLimiter, Permit
from meetgate_sandbox.realistic import RealisticDraws

POLICY = "TeamsMeetingsIntegration"
#: with compression 300 this seed's first two propagation delays are 3.4 s and 4.5 s
SEED, COMPRESSION = 2003, 300.0


def _profile_config(sandbox_app, tmp_path: Path) -> Path:
    config = tmp_path / "meetgate.toml"
    p = sandbox_app.profile()
    save_profile_values(
        config,
        "sandbox",
        {
            "tenant_id": p.tenant_id,
            "client_id": p.client_id,
            "private_key_path": p.private_key_path,
            "certificate_path": p.certificate_path,
            "authority_url": p.authority_url,
            "graph_url": p.graph_url,
            "ca_bundle": p.ca_bundle,
        },
    )
    return config


def _wait_for(condition, what: str, deadline_seconds: float = 120.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_policy_verify_polls_through_the_propagation_delay(sandbox_app, tmp_path):
    control, tenant = sandbox_app.control, sandbox_app.tenant_id
    pilots = sandbox_app.pilot_users
    for user in pilots:  # no grant yet (the fast profile revokes at once)
        control.grant_policy(tenant, None, user=user.id)
    config = _profile_config(sandbox_app, tmp_path)
    policy = tmp_path / "policy.toml"
    policy.write_text(
        f'[policy]\nidentity = "Tag:{POLICY}"\napp_ids = ["{sandbox_app.client_id}"]\n'
        f"[organizers]\nusers = {json.dumps([u.upn for u in pilots])}\n"
    )
    draws = RealisticDraws(SEED, COMPRESSION)
    delays = [draws.policy_delay_seconds() for _ in pilots]
    assert min(delays) > 2.5  # a real delay to poll through, documented range ÷ compression

    before = control.settings()
    result: dict[str, Any] = {}
    try:
        control.realistic(seed=SEED, time_compression=COMPRESSION)

        def verify() -> None:
            result["run"] = CliRunner().invoke(
                cli_app,
                ["--config", str(config), "policy", "verify", "--file", str(policy), "--backend", "graph",
                 "--sample", "0", "--negative", "1", "--timeout", "120", "--interval", "0.25", "--json"],
                catch_exceptions=False,
            )  # fmt: skip

        thread = threading.Thread(target=verify, name="policy-verify")
        thread.start()

        def refused_once() -> bool:
            log = control.request_log(tenant, app_id=sandbox_app.client_id)
            return any(
                r["status"] == 403
                and "/onlineMeetings" in r["path"]
                and pilots[0].id.lower() in r["path"].lower()
                for r in log
            )

        try:
            _wait_for(refused_once, "verify's first probe of an approved organizer (refused: no grant yet)")
        finally:
            for user in pilots:  # the change the probes poll through; each waits its drawn delay
                control.grant_policy(tenant, POLICY, user=user.id)
            pending = control.user_policy(tenant, pilots[-1].id)
        thread.join(timeout=180)
        assert not thread.is_alive(), "policy verify did not finish"
    finally:
        control.request("PUT", "/settings", json=before)
    run = result["run"]
    report = json.loads(run.output)
    assert run.exit_code == 0, run.output
    assert pending["effective"] is not None  # the admin view has the grant at once …
    observed = {r["id"].lower(): r for r in report["results"]}
    for user in pilots:  # … Graph only after the delay, which verify polled through
        entry = observed[user.id.lower()]
        assert entry["observed"] == "allowed" and entry["ok"]
        assert entry["attempts"] >= 2  # refused at least once, then allowed
    [negative] = [r for r in report["results"] if r["expect"] == "refused"]
    assert negative["observed"] == "refused"
    assert report["ok"] and report["meetingsCreated"] == report["meetingsDeleted"] == len(pilots)


class RecordingLimiter(AdaptiveLimiter):
    """The adaptive limiter, noting the ``Retry-After`` of every 429 it is told about."""

    def __init__(self) -> None:
        super().__init__()
        self.retry_afters: list[float | None] = []

    def release(
        self,
        permit: Permit,
        outcome: int | BaseException,
        retry_after: float | None = None,
        now: float | None = None,
    ) -> None:
        if outcome == 429:
            self.retry_afters.append(retry_after)
        super().release(permit, outcome, retry_after, now)


def _write_rows(path: Path, count: int, organizers: list[str]) -> None:
    start = dt.datetime(2031, 3, 3, 8, 0, tzinfo=dt.UTC)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["key", "organizer", "start", "end", "subject"])
        for i in range(count):
            at = start + dt.timedelta(minutes=30 * i)
            end = at + dt.timedelta(minutes=25)
            writer.writerow([f"office-hours-{i:03d}", organizers[i % len(organizers)], at.isoformat(), end.isoformat(),
                             f"Office hours {i}"])  # fmt: skip


def test_bulk_job_meets_the_throttle_and_creates_every_meeting_once(sandbox_app, tmp_path):
    control, tenant = sandbox_app.control, sandbox_app.tenant_id
    rows = 30
    path = tmp_path / "office-hours.csv"
    _write_rows(path, rows, [u.upn for u in sandbox_app.pilot_users])
    limiter = RecordingLimiter()

    async def job():
        client = async_graph_client_from_profile(sandbox_app.profile(), limiter=limiter, retry=BULK_RETRY)
        async with client:
            return await run_bulk_job(client, path, "create", limiter=limiter)

    before = control.settings()
    try:
        # online meetings: 30 requests a second per app per tenant, scaled by 0.1 to 3 (a burst of 3):
        # a client meets it unless each request takes over a second with four of them in flight
        control.realistic(seed=7, throttle_scale=0.1)
        report = asyncio.run(job())
        again = asyncio.run(job())  # every row is in the journal: nothing is sent twice
    finally:
        control.request("PUT", "/settings", json=before)
    log = control.request_log(tenant, app_id=sandbox_app.client_id)
    creates = [r for r in log if r["path"].endswith("/onlineMeetings/createOrGet")]
    throttled = [r for r in creates if r["status"] == 429]
    assert throttled and all(r["fault"] == "throttled" for r in throttled)
    assert limiter.retry_afters and all(ra is not None and ra > 0 for ra in limiter.retry_afters)
    assert limiter.snapshot().stats.throttled == len(limiter.retry_afters)
    assert report.done == rows and report.failed == 0 and not report.problems
    assert len({o.meeting_id for o in report.outcomes.values()}) == rows
    assert sum(1 for r in creates if r["status"] == 201) == rows  # each meeting created once
    assert again.progress is not None and again.progress.skipped == rows
