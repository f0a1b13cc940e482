from __future__ import annotations

import pytest
from monitor_kit import World, register

READER_ROLES = ["AuditLog.Read.All", "Directory.Read.All"]
ADMIN_ROLES = ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"]


@pytest.fixture
def world(sandbox_app, tmp_path) -> World:
    return World(
        sandbox_app,
        tmp_path,
        reader=register(sandbox_app, tmp_path, "Monitoring reader", READER_ROLES),
        admin=register(sandbox_app, tmp_path, "Admin automation", ADMIN_ROLES),
    )


@pytest.fixture
def deployment(world):
    from monitor_kit import Deployment

    d = Deployment(world)
    yield d
    d.close()
