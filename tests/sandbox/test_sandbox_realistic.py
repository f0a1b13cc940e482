"""The realistic profile: its draws, its meter and buckets (fake clock), its settings, and what a
client sees of it over HTTPS (token lifetimes, the documented 429)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from conftest import app_token, post_token
from meetgate_sandbox.faults import SandboxSettings, SettingsError
from meetgate_sandbox.realistic import (
    ACCESS_TOKEN_LIFETIME_SECONDS,
    LIMITS,
    POLICY_PROPAGATION_SECONDS,
    Metered,
    RealisticDraws,
    RealisticThrottle,
    identity_amount,
    meter,
    throttle_headers,
)
from meetgate_sandbox.server import SandboxOptions, SandboxServer

TENANT, APP = "tenant-1", "app-1"


# --- draws ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [1.0, 300.0, 1800.0])
def test_policy_delays_are_drawn_from_the_documented_range_compressed(compression):
    draws = RealisticDraws(seed=11, time_compression=compression)
    delays = [draws.policy_delay_seconds() for _ in range(500)]
    low, high = POLICY_PROPAGATION_SECONDS
    assert all(low / compression <= d <= high / compression for d in delays)
    # they spread over the range: not one fixed delay
    assert min(delays) < 0.1 * high / compression and max(delays) > 0.9 * high / compression


def test_token_lifetimes_are_whole_seconds_from_60_to_90_minutes():
    draws = RealisticDraws(seed=3)
    lifetimes = [draws.access_token_lifetime_seconds() for _ in range(500)]
    assert all(isinstance(n, int) and 3600 <= n <= 5400 for n in lifetimes)
    assert ACCESS_TOKEN_LIFETIME_SECONDS == (3600, 5400)
    assert len(set(lifetimes)) > 100  # expires_in varies


def test_a_seed_reproduces_the_draws_and_each_kind_has_its_own_stream():
    first, again, other = RealisticDraws(seed=42), RealisticDraws(seed=42), RealisticDraws(seed=43)
    delays = [first.policy_delay_seconds() for _ in range(20)]
    lifetimes = [first.access_token_lifetime_seconds() for _ in range(20)]
    # the same seed gives the same sequences, whatever the order the two kinds are drawn in
    assert [again.access_token_lifetime_seconds() for _ in range(20)] == lifetimes
    assert [again.policy_delay_seconds() for _ in range(20)] == delays
    assert [other.policy_delay_seconds() for _ in range(20)] != delays
    unseeded = [RealisticDraws().policy_delay_seconds() for _ in range(2)]
    assert unseeded[0] != unseeded[1]


def test_compression_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        RealisticDraws(time_compression=0.5)


# --- meter --------------------------------------------------------------------------------------------


def _identity(units: int, write: bool = False) -> dict[str, int]:
    costs = {"global": 1, "identity": units, "identityApp": units}
    if write:
        costs |= {"identityWrites": 1, "identityAppWrites": 1, "identityTenantWrites": 1}
    return costs


@pytest.mark.parametrize(
    ("method", "path", "query", "costs"),
    [
        ("GET", "/v1.0/users", "", _identity(2)),
        ("GET", "/v1.0/users", "$select=id&$top=5", _identity(1)),  # never below 1
        ("GET", "/v1.0/users/u1", "%24select=id", _identity(1)),
        ("GET", "/v1.0/users/u1/memberOf", "", _identity(2)),  # priced as me/memberOf
        ("GET", "/beta/groups/g1/transitiveMembers", "$expand=manager", _identity(6)),
        ("GET", "/v1.0/groups/g1/members/$count", "", _identity(3)),
        ("GET", "/v1.0/applications", "", _identity(2)),
        ("PATCH", "/v1.0/applications/a1", "", _identity(1, write=True)),
        ("POST", "/v1.0/users/u1/onlineMeetings/createOrGet", "", {"global": 1, "onlineMeetings": 1}),
        ("GET", "/v1.0/me/onlineMeetings", "", {"global": 1, "onlineMeetings": 1}),
        ("POST", "/v1.0/admin/teams/policy/userAssignments/assign", "", {"global": 1, "teamsAdmin": 1}),
        ("GET", "/beta/auditLogs/signIns", "", {"global": 1}),  # throttled by its own 5 per 10 s
    ],
)
def test_requests_are_metered_with_the_documented_costs(method, path, query, costs):
    assert meter(method, path, query).costs == costs


def test_identity_budget_follows_the_tenant_size():
    assert [identity_amount(n) for n in (12, 49, 50, 500, 501, 5000)] == [3500, 3500, 5000, 5000, 8000, 8000]


def test_the_realistic_fixture_switches_the_server(sandbox_realistic, sandbox_control):
    assert sandbox_realistic["profile"] == "realistic" and sandbox_realistic["profileSeed"] == 0
    assert sandbox_control.settings()["timeCompression"] == 300


# --- buckets ------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_online_meetings_pass_30_per_second_per_app_and_tenant_then_wait():
    clock = Clock()
    throttle = RealisticThrottle(clock=clock)
    create = meter("POST", "/v1.0/users/u1/onlineMeetings")
    assert all(throttle.check(create, TENANT, APP) is None for _ in range(30))
    refused = throttle.check(create, TENANT, APP)
    assert refused is not None and refused.limit.name == "onlineMeetings"
    assert refused.retry_after == pytest.approx(1 / 30)
    assert throttle.check(create, "tenant-2", APP) is None  # another tenant's budget
    assert throttle.check(create, TENANT, "app-2") is None  # another app's budget
    clock.now += 1 / 30
    assert throttle.check(create, TENANT, APP) is None  # refused requests were not charged
    assert throttle.check(create, TENANT, APP) is not None


def test_identity_resource_units_by_tenant_size_and_the_write_quota():
    clock = Clock()
    throttle = RealisticThrottle(clock=clock)
    listing = meter("GET", "/v1.0/users")  # 2 resource units
    assert all(throttle.check(listing, TENANT, APP, user_count=12) is None for _ in range(1750))
    refused = throttle.check(listing, TENANT, APP, user_count=12)
    assert refused is not None and refused.limit.name == "identity"
    assert refused.retry_after == pytest.approx(2 / 350)  # 3,500 units per 10 s refill 350 a second
    assert throttle.used("identity", TENANT, APP, user_count=12) == pytest.approx(1.0)

    writes = RealisticThrottle(scale=0.001, clock=clock)  # 3 writes per 150 s, 3.5 units per 10 s
    patch = meter("PATCH", "/v1.0/applications/a1")
    assert [writes.check(patch, TENANT, APP) is None for _ in range(3)] == [True, True, True]
    clock.now += 1.5  # the resource units refill (0.35 a second), the write quota hardly (0.02)
    refused = writes.check(patch, TENANT, APP)
    assert refused is not None and refused.limit.name == "identityWrites"
    assert refused.retry_after == pytest.approx(150 / 3 - 1.5)
    assert writes.check(meter("GET", "/v1.0/users/u1"), TENANT, APP) is None  # reads still pass


def test_the_global_limit_is_per_app_across_tenants():
    throttle = RealisticThrottle(scale=0.0001, clock=Clock())  # 13 requests per 10 s
    create = Metered({"global": 1.0})
    passed = [throttle.check(create, f"tenant-{i}", APP) is None for i in range(14)]
    assert passed == [True] * 13 + [False]
    assert throttle.check(create, "tenant-0", "app-2") is None


def test_the_tenant_write_quota_is_shared_by_every_app():
    throttle = RealisticThrottle(scale=0.0001, clock=Clock())  # 1.8 writes per 5 minutes per tenant
    patch = meter("PATCH", "/v1.0/applications/a1")
    assert throttle.check(patch, TENANT, "app-1") is None
    refused = throttle.check(patch, TENANT, "app-2")
    assert refused is not None and refused.limit.name == "identityTenantWrites"
    assert throttle_headers(refused, TENANT, "app-2")["x-ms-throttle-scope"] == f"Tenant/Write/app-2/{TENANT}"
    assert throttle.check(patch, "tenant-2", "app-2") is None


def test_identity_429s_name_their_scope_and_reason():
    clock = Clock()
    throttle = RealisticThrottle(scale=0.001, clock=clock)
    patch = meter("PATCH", "/v1.0/applications/a1")
    for _ in range(3):
        throttle.check(patch, TENANT, APP)
    refused = throttle.check(patch, TENANT, APP)
    assert refused is not None
    assert throttle_headers(refused, TENANT, APP) == {
        "x-ms-throttle-scope": f"Tenant_Application/Write/{APP}/{TENANT}",
        "x-ms-throttle-information": "WriteLimitExceeded",
    }
    meetings = RealisticThrottle(scale=1 / 30, clock=clock)
    create = meter("POST", "/v1.0/users/u1/onlineMeetings")
    meetings.check(create, TENANT, APP)
    refused = meetings.check(create, TENANT, APP)
    assert refused is not None and throttle_headers(refused, TENANT, APP) == {}  # documented for identity
    assert LIMITS["onlineMeetings"].amount == 30


# --- settings -----------------------------------------------------------------------------------------


def test_settings_take_the_profile_and_keep_the_fast_defaults_otherwise():
    fast = SandboxSettings()
    assert not fast.realistic and fast.to_dict()["profile"] == "fast"
    realistic = SandboxSettings.from_dict(
        {"profile": "realistic", "timeCompression": 60, "profileSeed": 9, "throttleScale": 0.5}, fast
    )
    assert realistic.realistic and realistic.time_compression == 60 and realistic.profile_seed == 9
    assert realistic.throttle_scale == 0.5
    kept = SandboxSettings.from_dict({"policyDelaySeconds": 2}, realistic)
    assert kept.realistic and kept.profile_seed == 9  # only what is given changes
    assert SandboxSettings.from_dict({"profileSeed": None}, realistic).profile_seed is None
    assert SandboxSettings.from_dict(realistic.to_dict()) == realistic


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"profile": "slow"}, "profile must be one of fast, realistic"),
        ({"timeCompression": 0.5}, "timeCompression must be between 1"),
        ({"profileSeed": True}, "profileSeed must be an integer"),
        ({"throttleScale": 0}, "throttleScale must be between"),
    ],
)
def test_bad_profile_settings_are_refused(body, message):
    with pytest.raises(SettingsError, match=message):
        SandboxSettings.from_dict(body)


def test_server_options_select_the_profile():
    with SandboxServer(
        SandboxOptions(users=2, realistic=True, time_compression=600, profile_seed=4)
    ) as server:
        assert server.runtime is not None
        settings = server.runtime.state.settings
        assert settings.realistic and settings.time_compression == 600 and settings.profile_seed == 4
        assert server.runtime.realistic() is server.runtime.realistic()  # built once for these settings
        assert 0 <= server.runtime.policy_delay() <= 1800 / 600


def test_serve_realistic_prints_the_profile(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "meetgate", "sandbox", "serve", "--port", "0", "--state", str(tmp_path),
         "--users", "3", "--realistic", "--time-compression", "900", "--realistic-seed", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        lines = []
        while not lines or not lines[-1].startswith("ready:"):
            line = process.stdout.readline()
            assert line, "serve ended early: " + "".join(lines) + process.stderr.read()
            lines.append(line)
        [profile] = [line for line in lines if line.startswith("profile")]
        assert profile.split(None, 1)[1].strip() == "realistic (time compression 900, seed 5)"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, process.stderr.read()


# --- over HTTPS ---------------------------------------------------------------------------------------


def test_access_tokens_live_60_to_90_minutes_as_the_seed_draws(sandbox, http, creds, sandbox_control):
    before = sandbox_control.settings()
    try:
        sandbox_control.realistic(seed=21)
        lifetimes = []
        for _ in range(4):
            answer = post_token(
                http, sandbox, creds.tenant_id, client_id=creds.app_id, client_secret=creds.secret
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["expires_in"] == body["ext_expires_in"]
            lifetimes.append(body["expires_in"])
        sandbox_control.realistic(seed=21)  # setting the profile again restarts its draws
        restarted = post_token(
            http, sandbox, creds.tenant_id, client_id=creds.app_id, client_secret=creds.secret
        )
        assert restarted.json()["expires_in"] == lifetimes[0]
    finally:
        sandbox_control.request("PUT", "/settings", json=before)
    draws = RealisticDraws(seed=21)
    assert lifetimes == [draws.access_token_lifetime_seconds() for _ in range(4)]
    assert len(set(lifetimes)) > 1
    # the fast profile again: the fixed lifetime
    again = post_token(http, sandbox, creds.tenant_id, client_id=creds.app_id, client_secret=creds.secret)
    assert again.json()["expires_in"] == before["accessTokenLifetimeSeconds"]


def test_a_throttled_request_gets_the_documented_429(sandbox, http, creds, sandbox_control):

    token = app_token(sandbox, http, creds)
    user = sandbox_control.tenant(creds.tenant_id)["users"][0]["id"]
    url = f"{sandbox.info.graph_url}/v1.0/users/{user}"
    headers = {"Authorization": f"Bearer {token}"}
    before = sandbox_control.settings()
    try:
        # 3,000 writes per 150 s scaled to two: the third write within 75 s is refused (the tenant's
        # 3,500 resource units per 10 s become 2.3, so the two reads and writes before it pass)
        sandbox_control.realistic(seed=1, throttle_scale=1 / 1500)
        first = http.patch(url, headers=headers, json={})
        assert first.status_code != 429 and first.headers["x-ms-resource-unit"] == "1"
        second = http.patch(url, headers=headers, json={})
        assert second.status_code != 429
        assert float(second.headers["x-ms-throttle-limit-percentage"]) > 0.8  # the budget is nearly used
        refused = http.patch(url, headers={**headers, "client-request-id": "c-1"}, json={})
    finally:
        sandbox_control.request("PUT", "/settings", json=before)
    assert refused.status_code == 429
    assert 0 < float(refused.headers["Retry-After"]) <= 150
    assert (
        refused.headers["x-ms-throttle-scope"] == f"Tenant_Application/Write/{creds.app_id}/{creds.tenant_id}"
    )
    assert refused.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    error = refused.json()["error"]
    assert error["code"] == "TooManyRequests" and error["message"] == "Please retry again later."
    inner = error["innerError"]
    assert (inner["code"], inner["message"], inner["status"]) == ("429", "Please retry after", "429")
    assert inner["client-request-id"] == "c-1" and inner["request-id"] and inner["date"]
    # the fast profile sends no such throttling
    assert http.patch(url, headers=headers, json={}).status_code != 429
    log = sandbox_control.request_log(creds.tenant_id)
    assert any(r["status"] == 429 and r["fault"] == "throttled" for r in log)
