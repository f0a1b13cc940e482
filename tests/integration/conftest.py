"""Fixtures shared by the integration tests that drive the CLI against the sandbox."""

from __future__ import annotations

import pytest

from meetgate.config import save_profile_values


@pytest.fixture
def env(sandbox_app, tmp_path):
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
