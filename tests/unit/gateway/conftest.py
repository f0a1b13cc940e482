"""Fixtures for the gateway unit tests (helpers live in gateway_kit.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gateway_kit import Gateway, make_gateway


@pytest.fixture
def gw(tmp_path) -> Iterator[Gateway]:
    gateway = make_gateway(tmp_path)
    with gateway.client:
        yield gateway
    gateway.store.close()
