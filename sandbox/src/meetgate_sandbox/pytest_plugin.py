"""pytest fixtures for a sandbox tenant: for meetgate's own tests and for integrators' CI.

Enable with ``pytest_plugins = ["meetgate_sandbox.pytest_plugin"]`` in a ``conftest.py``.

- ``sandbox`` (session): one running :class:`~meetgate_sandbox.server.SandboxServer` on 127.0.0.1.
- ``sandbox_control`` (session): a :class:`~meetgate_sandbox.control.SandboxControl` for it.
- ``sandbox_tenant`` (function): a fresh tenant (:class:`SandboxTenant`).
- ``sandbox_app`` (function): a fresh tenant plus an app registered with a newly generated
  certificate (key mode 0600 in ``tmp_path``), consented to OnlineMeetings.ReadWrite.All and
  User.Read.All. When the server runs the policy engine (``GET /_sandbox/health`` lists ``policy``
  among its features), the policy ``Tag:TeamsMeetingsIntegration`` listing the app is created and
  granted to the two ``pilot_users``; otherwise no policy exists yet.
- ``sandbox_realistic`` (function): the server in the realistic profile (documented propagation
  delays compressed ×300, 60-90 minute tokens, the published throttling limits; seed 0) for the
  test; the settings before it are restored afterwards. Call ``sandbox_control.realistic(...)`` in
  the test for another seed, compression or throttle scale.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from meetgate import certificates
from meetgate_sandbox.control import SandboxControl
from meetgate_sandbox.server import SandboxOptions, SandboxServer

if TYPE_CHECKING:
    from meetgate.config import Profile

APP_ROLES = ("OnlineMeetings.ReadWrite.All", "User.Read.All")
POLICY_IDENTITY = "Tag:TeamsMeetingsIntegration"


@dataclass(frozen=True)
class TenantUser:
    id: str
    upn: str
    display_name: str


@dataclass(frozen=True)
class SandboxTenant:
    tenant_id: str
    domain: str
    users: tuple[TenantUser, ...]
    admin_upn: str
    groups: tuple[dict[str, str], ...]
    control: SandboxControl = field(repr=False)


@dataclass(frozen=True)
class SandboxApp:
    tenant_id: str
    client_id: str
    object_id: str
    service_principal_id: str
    private_key_path: Path
    certificate_path: Path
    ca_bundle: Path
    authority_url: str
    graph_url: str
    #: users the policy is granted to (when the server has the policy engine)
    pilot_users: tuple[TenantUser, ...]
    #: every other enabled seeded user
    other_users: tuple[TenantUser, ...]
    control: SandboxControl = field(repr=False)
    #: True when the policy was created and granted to the pilot users
    policy_granted: bool = False

    def scope_calendars(self, users: Sequence[TenantUser] | None = None) -> dict[str, Any]:
        """Calendar access for this app to ``users``' mailboxes only (the pilots by default), through
        Exchange RBAC for Applications, as an Exchange administrator would set it up."""
        chosen = self.pilot_users if users is None else users
        return self.control.scope_mailboxes(
            self.tenant_id, self.client_id, self.service_principal_id, [user.id for user in chosen]
        )

    def profile(self, name: str = "sandbox") -> Profile:
        """A :class:`meetgate.config.Profile` for this tenant and app, as ``meetgate.toml`` would hold."""
        from meetgate.config import Profile

        return Profile(
            name=name,
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            private_key_path=self.private_key_path,
            certificate_path=self.certificate_path,
            authority_url=self.authority_url,
            graph_url=self.graph_url,
            ca_bundle=self.ca_bundle,
            policy_name=POLICY_IDENTITY,
            application_object_id=self.object_id,
            service_principal_id=self.service_principal_id,
        )


def _tenant_handle(data: dict[str, Any], control: SandboxControl) -> SandboxTenant:
    return SandboxTenant(
        tenant_id=data["tenantId"],
        domain=data["domain"],
        users=tuple(TenantUser(u["id"], u["userPrincipalName"], u["displayName"]) for u in data["users"]),
        admin_upn=data["adminUpn"],
        groups=tuple(data["groups"]),
        control=control,
    )


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """One sandbox server for the session (TLS on 127.0.0.1, any free port, state in a temp dir)."""
    with SandboxServer(SandboxOptions()) as server:
        yield server


@pytest.fixture(scope="session")
def sandbox_control(sandbox: SandboxServer) -> Iterator[SandboxControl]:
    with SandboxControl(sandbox.info.control_url, sandbox.info.ca_bundle) as control:
        yield control


@pytest.fixture
def sandbox_tenant(sandbox_control: SandboxControl) -> SandboxTenant:
    """A fresh tenant with 12 seeded users, an admin and nested groups."""
    return _tenant_handle(sandbox_control.create_tenant(users=12), sandbox_control)


@pytest.fixture
def sandbox_app(sandbox: SandboxServer, sandbox_control: SandboxControl, tmp_path: Path) -> SandboxApp:
    """A fresh tenant + a certificate-authenticated app (see the module docstring)."""
    tenant = _tenant_handle(sandbox_control.create_tenant(users=12), sandbox_control)
    pair = certificates.generate_self_signed()
    key_path = tmp_path / "TeamsMeetingsIntegration.key.pem"
    cert_path = tmp_path / "TeamsMeetingsIntegration.pem"
    certificates.write_secret_file(key_path, certificates.private_key_pem(pair.private_key))
    cert_pem = certificates.certificate_pem(pair.certificate)
    certificates.write_public_file(cert_path, cert_pem)
    app = sandbox_control.register_app(
        tenant.tenant_id, "Teams Meetings Integration", certificate_pem=cert_pem, roles=APP_ROLES
    )
    data = sandbox_control.tenant(tenant.tenant_id)
    enabled = [
        TenantUser(u["id"], u["userPrincipalName"], u["displayName"])
        for u in data["users"]
        if u["accountEnabled"]
    ]
    pilots, others = tuple(enabled[:2]), tuple(enabled[2:])
    granted = False
    if "policy" in sandbox_control.health().get("features", []):
        sandbox_control.create_policy(
            tenant.tenant_id, POLICY_IDENTITY, [app["appId"]], "Teams meetings integration (pytest)"
        )
        for user in pilots:
            sandbox_control.grant_policy(tenant.tenant_id, POLICY_IDENTITY.removeprefix("Tag:"), user=user.id)
        granted = True
    info = sandbox.info
    return SandboxApp(
        tenant_id=tenant.tenant_id,
        client_id=app["appId"],
        object_id=app["objectId"],
        service_principal_id=app["servicePrincipalId"],
        private_key_path=key_path,
        certificate_path=cert_path,
        ca_bundle=info.ca_bundle,
        authority_url=info.authority_url,
        graph_url=info.graph_url,
        pilot_users=pilots,
        other_users=others,
        control=sandbox_control,
        policy_granted=granted,
    )


@pytest.fixture
def sandbox_realistic(sandbox_control: SandboxControl) -> Iterator[dict[str, Any]]:
    """The realistic profile for one test (see the module docstring); yields the settings."""
    before = sandbox_control.settings()
    try:
        yield sandbox_control.realistic(seed=0)
    finally:
        sandbox_control.request("PUT", "/settings", json=before)
