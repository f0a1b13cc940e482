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
from meetgate.sandbox.pytest_plugin import SandboxApp


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
