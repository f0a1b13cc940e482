"""Throttling and fault injection, on a server of their own (faults are server-wide)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from conftest import Credentials, app_token
from meetgate import certificates
from meetgate_sandbox.control import SandboxControl, ssl_context
from meetgate_sandbox.server import SandboxOptions, SandboxServer


@pytest.fixture(scope="module")
def faulty() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxOptions(users=5)) as server:
        yield server


@pytest.fixture
def control(faulty) -> Iterator[SandboxControl]:
    with SandboxControl(faulty.info.control_url, faulty.info.ca_bundle) as control:
        yield control
        control.clear_faults()


@pytest.fixture
def client(faulty) -> Iterator[httpx.Client]:
    with httpx.Client(verify=ssl_context(faulty.info.ca_bundle), timeout=10) as client:
        yield client


@pytest.fixture
def token(faulty, client, control, key_pair) -> str:
    app = control.register_app(
        faulty.info.tenant_id, "faults", certificate_pem=certificates.certificate_pem(key_pair.certificate),
        roles=["User.Read.All"],
    )  # fmt: skip
    creds = Credentials(
        faulty.info.tenant_id, app["appId"], app["objectId"], app["servicePrincipalId"], key_pair
    )
    return app_token(faulty, client, creds)


def _users(faulty, client, token):
    return client.get(
        f"{faulty.info.graph_url}/v1.0/users?$top=1", headers={"Authorization": f"Bearer {token}"}
    )


def test_throttling_answers_429_with_retry_after_per_app(faulty, client, control, token):
    control.set_faults(throttle_rps=2)
    statuses = [_users(faulty, client, token) for _ in range(10)]
    limited = [r for r in statuses if r.status_code == 429]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    assert limited, [r.status_code for r in statuses]
    error = limited[0].json()["error"]
    assert error["code"] == "TooManyRequests"
    assert error["message"] == "Please retry again later."
    retry_after = float(limited[0].headers["Retry-After"])
    assert 0 < retry_after <= 0.5
    time.sleep(retry_after + 0.05)
    assert _users(faulty, client, token).status_code == 200
    log = control.request_log(faulty.info.tenant_id)
    assert any(r["fault"] == "throttled" and r["status"] == 429 for r in log)


def test_error_rate_one_answers_500_503_504_in_graphs_envelope(faulty, client, control, token):
    control.set_faults(error_rate=1.0, seed=7)
    responses = [_users(faulty, client, token) for _ in range(30)]
    statuses = {r.status_code for r in responses}
    assert statuses == {500, 503, 504}
    assert all("innerError" in r.json()["error"] for r in responses)
    assert any(r.status_code == 503 and "Retry-After" in r.headers for r in responses)
    assert all(r.headers.get("request-id") for r in responses)


def test_faults_on_graph_leave_the_token_endpoint_alone(faulty, client, control, key_pair):
    control.set_faults(error_rate=1.0)
    discovery = client.get(
        f"{faulty.info.authority_url}/{faulty.info.tenant_id}/v2.0/.well-known/openid-configuration"
    )
    assert discovery.status_code == 200
    control.set_faults(error_rate=1.0, paths="token")
    assert client.get(
        f"{faulty.info.authority_url}/{faulty.info.tenant_id}/v2.0/.well-known/openid-configuration"
    ).status_code in (500, 503, 504)


def test_latency_is_added(faulty, client, control, token):
    control.set_faults(latency_ms=300)
    started = time.perf_counter()
    assert _users(faulty, client, token).status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_dropped_connection_gives_the_client_a_transport_error(faulty, client, control, token):
    control.set_faults(drop_rate=1.0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        _users(faulty, client, token)
    control.clear_faults()
    # the server is fine afterwards, and the drop was recorded
    assert _users(faulty, client, token).status_code == 200
    assert any(r["fault"] == "dropped" for r in control.request_log(faulty.info.tenant_id))


def test_fault_settings_are_validated(control):
    from meetgate_sandbox.control import SandboxControlError

    with pytest.raises(SandboxControlError, match="errorRate must be between 0 and 1"):
        control.set_faults(error_rate=2.0)
    with pytest.raises(SandboxControlError, match="paths must be one of"):
        control.set_faults(paths="everything")
    assert control.faults()["errorRate"] == 0.0


def test_concurrent_clients_are_served_and_logged_with_unique_request_ids(faulty, control, token):
    from concurrent.futures import ThreadPoolExecutor

    def worker(_: int) -> list[tuple[int, str]]:
        with httpx.Client(verify=ssl_context(faulty.info.ca_bundle), timeout=10) as client:
            return [
                (response.status_code, response.headers["request-id"])
                for response in (_users(faulty, client, token) for _ in range(20))
            ]

    before = len(control.request_log(faulty.info.tenant_id, limit=5000))
    with ThreadPoolExecutor(4) as pool:
        results = [item for chunk in pool.map(worker, range(4)) for item in chunk]
    assert {status for status, _ in results} == {200}
    assert len({rid for _, rid in results}) == 80
    log = control.request_log(faulty.info.tenant_id, limit=5000)
    assert len(log) - before == 80
    assert {r["requestId"] for r in log[-80:]} == {rid for _, rid in results}


def test_a_client_that_hangs_up_mid_request_is_recorded_not_an_error(faulty, control, caplog):
    """What a killed client leaves behind: a request cut off in its body. The sandbox records it as
    499 (client closed request), and logs no failure of its own."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(faulty.info.authority_url)
    path = f"/{faulty.info.tenant_id}/oauth2/v2.0/token"
    context = ssl_context(faulty.info.ca_bundle)
    with (
        socket.create_connection((url.hostname, url.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=url.hostname) as tls,
    ):
        tls.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\n"
            "grant_type=client_credentials&client_id=".encode()
        )
        time.sleep(0.3)  # the route is waiting for the rest of the body
    deadline = time.monotonic() + 5
    cut: list[dict] = []
    while not cut and time.monotonic() < deadline:
        time.sleep(0.1)
        log = control.request_log(faulty.info.tenant_id)
        cut = [r for r in log if r["path"] == path and r["fault"] == "client-disconnected"]
    assert cut and cut[0]["status"] == 499, cut
    assert "sandbox route failed" not in caplog.text
