"""Profile → the calendar plane's backend: Exchange Online PowerShell (pwsh) signed in app-only."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from meetgate.config import ConfigError, Profile

if TYPE_CHECKING:
    from meetgate.admin.mailbox_scope.powershell import ExchangePowerShellBackend

BACKENDS = ("powershell",)


def exchange_organization(profile: Profile, organization: str | None = None) -> str:
    """``-Organization``: given, the profile's ``exchange_organization``, or a tenant_id that is the
    ``.onmicrosoft.com`` domain."""
    value = organization or profile.exchange_organization
    if not value and profile.tenant_id and profile.tenant_id.lower().endswith(".onmicrosoft.com"):
        value = profile.tenant_id
    if not value:
        raise ConfigError(
            "Connect-ExchangeOnline needs -Organization, the tenant's primary .onmicrosoft.com domain: "
            "set exchange_organization in the profile (or MEETGATE_EXCHANGE_ORGANIZATION), or pass --organization"
        )
    return value


def mailbox_scope_backend(
    profile: Profile, backend: str, *, pwsh: str, organization: str | None = None
) -> ExchangePowerShellBackend:
    """The backend named ``backend`` for ``profile`` (only ``powershell``: Exchange has no Graph API
    for role assignments; the ``script`` command writes a .ps1 instead)."""
    if backend != "powershell":
        raise ConfigError(
            f"unknown backend {backend!r}: use --backend powershell, or `meetgate mailbox-scope script` for a "
            "script an Exchange administrator runs"
        )
    from meetgate.admin.mailbox_scope.powershell import ExchangeConnection, ExchangePowerShellBackend
    from meetgate.admin.policy.powershell import SubprocessPwshRunner

    profile.require("tenant_id", "client_id")
    if (
        profile.certificate_path is None
        or profile.private_key_path is None
        or profile.passphrase() is not None
    ):
        raise ConfigError(
            "Exchange Online PowerShell is signed in with the profile's PEM certificate and unencrypted key "
            "(certificate_path, private_key_path); a PFX or a passphrase-protected key cannot be loaded by "
            "CreateFromPemFile: write a script with `meetgate mailbox-scope script` instead"
        )
    connection = ExchangeConnection(
        exchange_organization(profile, organization),
        str(profile.client_id),
        profile.certificate_path,
        profile.private_key_path,
    )
    return ExchangePowerShellBackend(connection, SubprocessPwshRunner(tuple(shlex.split(pwsh))))
