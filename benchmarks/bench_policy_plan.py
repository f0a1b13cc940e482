"""Policy plan for 100,000 approved organizers against a 100,000-user tenant (target < 2 s).

Measures, in the same run: resolving the organizers (50,000 UPNs + 50,000 object ids) through the
in-memory directory, and the pure plan against a tenant where 40,000 already hold the policy,
5,000 hold another app's policy, and every user of the tenant is approved. Prints a comparison with
the 2 s target and with a naive plan that scans the grant list per user (what a hand-written
PowerShell loop does), on a 500-user slice.
"""

from __future__ import annotations

import os
import time

from meetgate.admin.policy.model import DesiredPolicy, OrganizerSources, PolicyDefinition
from meetgate.admin.policy.planner import build_plan, resolve_organizers
from meetgate_sandbox.fakes.policy_tenant import FakePolicyTenant

APP = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-8888-7777-6666-555555555555"
TARGET_SECONDS = 2.0


def main() -> None:
    users = 100_000
    tenant = FakePolicyTenant.with_users(users)
    ids = list(tenant.users)
    approved = ids[:100_000]
    refs = [tenant.users[u].upn for u in approved[:50_000]] + approved[50_000:]
    want = DesiredPolicy("Tag:TeamsMeetingsIntegration", (APP,), "bench", OrganizerSources(users=tuple(refs)))
    tenant.ensure_policy(PolicyDefinition(want.identity, (APP,), "bench"))
    tenant.ensure_policy(PolicyDefinition("Tag:Crm", (OTHER,)))
    tenant.grant(approved[:40_000], "TeamsMeetingsIntegration")
    tenant.grant(approved[40_000:45_000], "Crm")
    state = tenant.read_state(want.identity)

    runs = []
    for _ in range(3):  # best of three: the machine is shared, the best run is the least disturbed
        cpu0, started = time.process_time(), time.perf_counter()
        resolved = resolve_organizers(want, tenant)
        resolved_at = time.perf_counter()
        plan = build_plan(want, resolved, state)
        done = time.perf_counter()
        runs.append((done - started, resolved_at - started, done - resolved_at, time.process_time() - cpu0))
    total, resolve_s, plan_s, cpu = min(runs)
    load = os.getloadavg()[0]
    assert len(plan.grants) == 60_000 and len(plan.keeps) == 40_000 and len(plan.revokes) == 0
    assert plan.warning_codes == {"other-policy"}

    # naive baseline: per user, scan a list of (user, policy) grants — O(users × grants)
    grants = list(state.direct.items())
    sample = approved[:500]
    t0 = time.perf_counter()
    for uid in sample:
        _ = [p for u, p in grants if u == uid]
    naive_slice = time.perf_counter() - t0
    naive_full = naive_slice * (len(approved) / len(sample))

    print(f"tenant users           {users:>10,}")
    print(
        f"approved organizers    {len(approved):>10,}  (grant {len(plan.grants):,}, keep {len(plan.keeps):,}, revoke {len(plan.revokes):,})"
    )
    print(f"resolve organizers     {resolve_s:>10.3f} s")
    print(f"build plan             {plan_s:>10.3f} s")
    verdict = "PASS" if total < TARGET_SECONDS else "FAIL"
    print(
        f"total                  {total:>10.3f} s   (target < {TARGET_SECONDS:.0f} s: {verdict}; best of 3)"
    )
    print(f"CPU time of that run   {cpu:>10.3f} s   (load average {load:.1f} on {os.cpu_count()} cores)")
    print(
        f"naive per-user scan    {naive_full:>10.1f} s   (extrapolated from {len(sample):,} users: {naive_slice:.2f} s)"
    )
    if total >= TARGET_SECONDS:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
