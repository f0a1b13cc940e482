"""The token endpoint failing: retried like Graph calls, then a meetgate error with a remedy.

The sandbox answers 500/503/504 (half of them with ``Retry-After``) on every discovery and token
request; the library, the gateway and the CLI must each turn that into their own clear refusal.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from meetgate.cli.main import app
from meetgate.composition import graph_settings_from_profile
from meetgate.gateway.app import create_app
from meetgate.gateway.consumers import ConsumerAdmin
from meetgate.gateway.problems import TYPE_BASE
from meetgate.gateway.scope import StaticPolicyScope
from meetgate.gateway.settings import GatewaySettings
from meetgate.graph.auth import TokenProvider
from meetgate.graph.client import AsyncGraphClient, GraphClient
from meetgate.graph.errors import TokenServiceUnavailable
from meetgate.graph.retry import RetryPolicy, no_jitter
from meetgate.store import Store

MEETING = {
    "subject": "Admissions interview",
    "start": "2030-01-07T09:00:00Z",
    "end": "2030-01-07T09:30:00Z",
}


@pytest.fixture
def env(sandbox_cli_env):
    """The CLI's environment: a meetgate.toml whose `sandbox` profile is the sandbox app."""
    return sandbox_cli_env


def cli(env: dict[str, str], *args: str):
    return CliRunner().invoke(app, ["meetings", *args], env=env)


@pytest.fixture
def token_faults(sandbox_control):
    sandbox_control.clear_faults()
    sandbox_control.set_faults(error_rate=1.0, paths="token", seed=1)
    yield sandbox_control
    sandbox_control.clear_faults()


def _fast_retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=3, jitter=no_jitter)


def test_the_library_retries_then_raises_token_service_unavailable(sandbox_app, token_faults):
    sleeps: list[float] = []
    settings = graph_settings_from_profile(sandbox_app.profile(), environ={})
    with (
        GraphClient(settings, retry=_fast_retry(), sleep=sleeps.append) as graph,
        pytest.raises(TokenServiceUnavailable) as caught,
    ):
        graph.tokens.get_token()
    assert len(sleeps) == 2, "each identity-platform request is tried max_attempts times"
    assert "token" in str(caught.value).lower() and caught.value.remedy
    assert caught.value.status in (500, 503, 504)


def test_recovers_once_the_endpoint_answers_again(sandbox_app, token_faults):
    settings = graph_settings_from_profile(sandbox_app.profile(), environ={})
    with GraphClient(settings, retry=_fast_retry(), sleep=lambda _s: None) as graph:
        with pytest.raises(TokenServiceUnavailable):
            graph.tokens.get_token()
        token_faults.clear_faults()
        assert graph.tokens.get_token().token


def test_the_gateway_answers_503_identity_unavailable_with_retry_after(sandbox_app, token_faults, tmp_path):
    settings = graph_settings_from_profile(sandbox_app.profile(), environ={})
    tokens = TokenProvider(settings, retry=_fast_retry(), sleep=lambda _s: None)
    client = AsyncGraphClient(settings, retry=_fast_retry(), tokens=tokens)
    organizer = sandbox_app.pilot_users[0].upn
    scope = StaticPolicyScope([organizer])
    store = Store.open(f"sqlite:///{tmp_path}/gw.db")
    key = ConsumerAdmin(store, scope).add("booking", organizers=[organizer]).api_key
    app = create_app(
        GatewaySettings(store_url=f"sqlite:///{tmp_path}/gw.db"),
        meetings=client.meetings,
        scope=scope,
        store=store,
        on_shutdown=client.aclose,
    )
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "token-down-1"}
    with TestClient(app) as http:
        resp = http.post("/v1/meetings", json={**MEETING, "organizer": organizer}, headers=headers)
        assert resp.status_code == 503, resp.text
        body = resp.json()
        assert body["type"] == TYPE_BASE + "identity-unavailable" and body["remedy"]
        assert int(resp.headers["Retry-After"]) >= 1
        assert "Traceback" not in json.dumps(body)
        # the same key completes once Entra answers again: nothing was sent to Graph
        token_faults.clear_faults()
        done = http.post("/v1/meetings", json={**MEETING, "organizer": organizer}, headers=headers)
        assert done.status_code == 201, done.text
    store.close()


def test_the_cli_prints_the_error_and_its_remedy_and_exits_1(
    sandbox_app,
    token_faults,
    env,
    tmp_path,
):
    config_env = env
    organizer = sandbox_app.pilot_users[0].upn
    times = ("--start", "2030-03-01T10:00:00Z", "--end", "2030-03-01T10:30:00Z")
    created = cli(config_env, "create", "-o", organizer, "--subject", "S", *times)
    rows = tmp_path / "rows.csv"
    rows.write_text(f"key,organizer,subject,start,end\nk1,{organizer},A,{times[1]},{times[3]}\n")
    bulk = cli(config_env, "bulk", "create", str(rows), "--no-progress")
    for result in (created, bulk):
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output
        assert "token endpoint" in result.output or "discovery endpoint" in result.output
        assert "what to do: Microsoft Entra ID could not issue a token" in result.output
