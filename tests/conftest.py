"""Shared fixtures. Service tests skip when PostgreSQL/Redis are absent, and fail instead when
MEETGATE_TEST_SERVICES=1 (as CI sets)."""

from __future__ import annotations

import os
import socket

import pytest

from meetgate.config import save_profile_values

POSTGRES_URL = os.environ.get(
    "MEETGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MEETGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail, when MEETGATE_TEST_SERVICES=1) unless the service answers on host:port."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("MEETGATE_TEST_SERVICES") == "1":
        pytest.fail(f"{message}, and MEETGATE_TEST_SERVICES=1 requires it")
    pytest.skip(f"{message}; start it or set MEETGATE_TEST_POSTGRES_URL / MEETGATE_TEST_REDIS_URL")


@pytest.fixture
def postgres_url() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def sandbox_cli_env(sandbox_app, tmp_path):
    """A meetgate.toml whose `sandbox` profile signs in as the sandbox app; the CLI's environment."""
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
    return {"MEETGATE_CONFIG": str(config), "MEETGATE_PROFILE": "sandbox", "COLUMNS": "200"}
