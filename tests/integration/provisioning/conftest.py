"""Fixtures of the provisioning integration tests (a sandbox over TLS on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meetgate.sandbox.server import SandboxOptions, SandboxServer


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxOptions(users=5)) as server:
        yield server
