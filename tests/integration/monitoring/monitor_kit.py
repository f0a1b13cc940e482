"""A sandbox tenant with the integration app, a monitoring reader app and an admin tool app."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import httpx

from meetgate import certificates
from meetgate.composition import graph_client_from_profile
from meetgate.config import Profile
from meetgate.graph.client import GraphClient
from meetgate_sandbox.pytest_plugin import SandboxApp


def new_certificate(directory: Path, name: str, valid_days: int = 365) -> tuple[Path, Path, str]:
    pair = certificates.generate_self_signed(valid_days=valid_days)
    key, cert = directory / f"{name}.key.pem", directory / f"{name}.pem"
    certificates.write_secret_file(key, certificates.private_key_pem(pair.private_key))
    pem = certificates.certificate_pem(pair.certificate)
    certificates.write_public_file(cert, pem)
    return key, cert, pem


def register(app: SandboxApp, tmp_path: Path, name: str, roles: list[str]) -> Profile:
    key, cert, pem = new_certificate(tmp_path, name)
    data = app.control.register_app(app.tenant_id, name, certificate_pem=pem, roles=roles)
    return dataclasses.replace(
        app.profile(),
        name=name,
        client_id=data["appId"],
        private_key_path=key,
        certificate_path=cert,
        application_object_id=data["objectId"],
        service_principal_id=data["servicePrincipalId"],
    )


@dataclass
class World:
    app: SandboxApp
    tmp_path: Path
    #: reads the logs (AuditLog.Read.All), as a monitoring deployment would
    reader: Profile
    #: an administrator's automation that can change app registrations
    admin: Profile

    @property
    def profile(self) -> Profile:
        return self.app.profile()

    def client(self, profile: Profile | None = None) -> GraphClient:
        return graph_client_from_profile(profile or self.profile)

    def sign_in(self, times: int = 1, *, forwarded_for: str | None = None) -> None:
        """Token requests of the integration app (each one is a sign-in)."""
        if forwarded_for is None:
            with self.client() as client:
                for _ in range(times):
                    client.tokens.get_token(force_refresh=True)
            return
        # a sign-in from another address: the sandbox (uvicorn) honours X-Forwarded-For from loopback
        from meetgate.composition import graph_settings_from_profile
        from meetgate.graph.auth import TokenProvider, build_ssl_context

        settings = graph_settings_from_profile(self.profile)
        transport = ForwardedFor(forwarded_for, verify=build_ssl_context(settings.ca_bundle))
        provider = TokenProvider(settings, transport=transport)
        for _ in range(times):
            provider.get_token(force_refresh=True)

    def token_url(self) -> str:
        return f"{self.app.authority_url}/{self.app.tenant_id}/oauth2/v2.0/token"


class ForwardedFor(httpx.HTTPTransport):
    """Adds ``X-Forwarded-For`` to every request (a client behind another address)."""

    def __init__(self, ip: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.ip = ip

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["X-Forwarded-For"] = self.ip
        return super().handle_request(request)


# ---- a monitoring deployment over the world: store, gateway, monitor ----------------------------

import datetime as dt  # noqa: E402
import itertools  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

from meetgate.admin.monitoring.collect import Collector  # noqa: E402
from meetgate.admin.monitoring.model import CertificateStatus, MonitorScope, Thresholds  # noqa: E402
from meetgate.admin.monitoring.service import Monitor  # noqa: E402
from meetgate.graph.audit import AuditLogService  # noqa: E402
from meetgate.store import Store  # noqa: E402
from meetgate.store.monitoring import MonitorRepository  # noqa: E402

#: a normal day is one inside its working hours: the tests run at any hour
ALL_DAY = Thresholds(active_hours=(0, 24))
_keys = itertools.count()


def certificate_status(profile: Profile) -> CertificateStatus:
    from meetgate.graph.credentials import CertificateCredential

    assert profile.private_key_path and profile.certificate_path
    cred = CertificateCredential.from_pem_files(profile.private_key_path, profile.certificate_path)
    return CertificateStatus(cred.thumbprint_sha1, cred.not_after, str(profile.certificate_path))


@dataclass
class GatewayHandle:
    client: object
    app: object
    keys: dict[str, str]

    def create(self, consumer: str, organizer: str) -> int:
        response = self.client.post(  # type: ignore[attr-defined]
            "/v1/meetings",
            json={
                "organizer": organizer,
                "subject": "Consultation",
                "start": "2030-12-01T09:00:00Z",
                "end": "2030-12-01T09:30:00Z",
            },
            headers={"Authorization": f"Bearer {self.keys[consumer]}", "Idempotency-Key": f"k-{next(_keys)}"},
        )
        return int(response.status_code)

    def flush(self) -> None:
        self.app.state.audit.drain()  # type: ignore[attr-defined]


class Deployment:
    """What an administrator runs: the gateway and ``meetgate monitor`` sharing one store."""

    def __init__(
        self, world: World, thresholds: Thresholds = ALL_DAY, hypercare: Thresholds | None = None
    ) -> None:
        self.world = world
        self.store = Store.open(f"sqlite:///{world.tmp_path}/meetgate.db")
        self.reader = world.client(world.reader)
        self.scope = MonitorScope(
            tenant_id=world.app.tenant_id,
            app_id=world.app.client_id,
            application_object_id=world.app.object_id,
            service_principal_id=world.app.service_principal_id,
            policy_name="Tag:TeamsMeetingsIntegration",
        )
        self.thresholds = thresholds
        self.hypercare = hypercare
        self.monitor = self.new_monitor()

    def new_monitor(self, store: Store | None = None) -> Monitor:
        repo = MonitorRepository(store or self.store)
        logs = AuditLogService(self.reader.http)
        return Monitor(
            repo,
            self.scope,
            collector=Collector(logs, repo, self.scope),
            thresholds=self.thresholds,
            hypercare_thresholds=self.hypercare,
            certificates=[certificate_status(self.world.profile)],
        )

    def run(self, since: dt.timedelta = dt.timedelta(hours=1)):  # type: ignore[no-untyped-def]
        return self.monitor.run(since)

    def rules(self, since: dt.timedelta = dt.timedelta(hours=1)) -> list[str]:
        return sorted(a.rule for a in self.run(since).alerts)

    @contextmanager
    def gateway(self) -> Iterator[GatewayHandle]:
        from fastapi.testclient import TestClient

        from meetgate.composition import async_graph_client_from_profile
        from meetgate.gateway.app import create_app
        from meetgate.gateway.consumers import ConsumerAdmin
        from meetgate.gateway.limits import InMemoryLimiter
        from meetgate.gateway.scope import StaticPolicyScope
        from meetgate.gateway.settings import GatewaySettings

        app_ = self.world.app
        everyone = [u.upn for u in (*app_.pilot_users, *app_.other_users)]
        scope = StaticPolicyScope(everyone)
        graph = async_graph_client_from_profile(self.world.profile)
        settings = GatewaySettings(store_url="sqlite://", policy_cache_seconds=0, admin_key_sha256=None)
        admin = ConsumerAdmin(self.store, scope)
        keys = {}
        for name, organizers in (
            ("booking", [u.upn for u in app_.pilot_users]),
            ("crm", [app_.pilot_users[0].upn, app_.other_users[0].upn]),
        ):
            keys[name] = admin.add(f"{name}-{uuid.uuid4().hex[:6]}", organizers=organizers).api_key
        gw = create_app(
            settings, meetings=graph.meetings, scope=scope, store=self.store, limiter=InMemoryLimiter()
        )
        with TestClient(gw) as client:
            handle = GatewayHandle(client, gw, keys)
            yield handle
            handle.flush()

    def close(self) -> None:
        self.reader.close()
        self.store.close()
