"""Who is signed in for provisioning, and may they do it? Checked before anything is changed.

A delegated sign-in needs the delegated permission *and* a directory role: Global, Application or
Cloud Application Administrator to write app registrations; Global or Privileged Role Administrator
to grant admin consent to Microsoft Graph application permissions. An automation app (``--as-app``)
needs ``Application.ReadWrite.All`` and ``AppRoleAssignment.ReadWrite.All``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from meetgate.errors import MeetgateError

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
APPLICATION_ADMINISTRATOR = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
CLOUD_APPLICATION_ADMINISTRATOR = "158c047a-c907-4556-b7ef-446551a6b5f7"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
ROLE_NAMES = {
    GLOBAL_ADMINISTRATOR: "Global Administrator",
    APPLICATION_ADMINISTRATOR: "Application Administrator",
    CLOUD_APPLICATION_ADMINISTRATOR: "Cloud Application Administrator",
    PRIVILEGED_ROLE_ADMINISTRATOR: "Privileged Role Administrator",
}
REGISTRATION_ROLES = {GLOBAL_ADMINISTRATOR, APPLICATION_ADMINISTRATOR, CLOUD_APPLICATION_ADMINISTRATOR}
CONSENT_ROLES = {GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR}
WRITE_PERMISSIONS = {"application.readwrite.all", "directory.readwrite.all"}
READ_PERMISSIONS = WRITE_PERMISSIONS | {"application.read.all", "directory.read.all"}
CONSENT_PERMISSIONS = {"approleassignment.readwrite.all"}


class SignInError(MeetgateError, PermissionError):
    """The signed-in identity may not do what was asked; nothing was changed."""


@dataclass(frozen=True)
class AdminRights:
    """What the signed-in identity may do to app registrations."""

    kind: str  # "user" (delegated) or "app"
    name: str
    directory_roles: tuple[str, ...]
    permissions: tuple[str, ...]
    can_read: bool
    can_register: bool
    can_consent: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "directory_roles": list(self.directory_roles),
            "permissions": list(self.permissions),
            "can_read": self.can_read,
            "can_register": self.can_register,
            "can_consent": self.can_consent,
        }

    def require(self, *, register: bool = False, consent: bool = False) -> None:
        """Raise :class:`SignInError` unless the identity may do what is asked."""
        if self.kind == "user":
            roles = ", ".join(self.directory_roles) or "no directory role"
            if register and not self.can_register:
                raise SignInError(
                    f"{self.name} ({roles}) may not change app registrations",
                    "sign in as a Global Administrator or Application Administrator",
                )
            if consent and not self.can_consent:
                raise SignInError(
                    f"{self.name} ({roles}) may not grant admin consent to Microsoft Graph application permissions",
                    "sign in as a Global Administrator (or Privileged Role Administrator)",
                )
            if not self.can_read:
                raise SignInError(
                    f"{self.name} has no delegated permission to read app registrations",
                    "sign in again and accept the requested permissions",
                )
            return
        held = ", ".join(self.permissions) or "no application permissions"
        if register and not self.can_register:
            raise SignInError(
                f"app {self.name} ({held}) lacks Application.ReadWrite.All",
                "grant the automation app Application.ReadWrite.All, or sign in as an administrator",
            )
        if consent and not self.can_consent:
            raise SignInError(
                f"app {self.name} ({held}) lacks AppRoleAssignment.ReadWrite.All",
                "grant the automation app AppRoleAssignment.ReadWrite.All, or sign in as an administrator",
            )
        if not self.can_read:
            raise SignInError(
                f"app {self.name} ({held}) may not read app registrations",
                "grant it Application.Read.All, or sign in as an administrator",
            )


def admin_rights(
    *,
    is_app_only: bool,
    name: str,
    permissions: Iterable[str],
    role_template_ids: Iterable[str] = (),
) -> AdminRights:
    """Rights from a token's ``scp`` / ``roles`` and (delegated) the user's directory role ids."""
    perms = tuple(permissions)
    lowered = {p.lower() for p in perms}
    if is_app_only:
        return AdminRights(
            "app",
            name,
            (),
            perms,
            can_read=bool(lowered & READ_PERMISSIONS),
            can_register=bool(lowered & WRITE_PERMISSIONS),
            can_consent=bool(lowered & CONSENT_PERMISSIONS),
        )
    role_ids = {r.lower() for r in role_template_ids}
    return AdminRights(
        "user",
        name,
        tuple(ROLE_NAMES.get(r, r) for r in sorted(role_ids)),
        perms,
        can_read=bool(lowered & (READ_PERMISSIONS | {"directory.accessasuser.all"})),
        can_register=bool(lowered & WRITE_PERMISSIONS) and bool(role_ids & REGISTRATION_ROLES),
        can_consent=bool(lowered & CONSENT_PERMISSIONS) and bool(role_ids & CONSENT_ROLES),
    )
