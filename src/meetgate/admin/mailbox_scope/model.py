"""The calendar plane's desired state (the policy file's ``[mailbox_scope]``) and what Exchange holds.

Exchange Online's RBAC for Applications limits an application permission to some mailboxes: a
*service principal pointer* names the app's enterprise application, a *management scope* selects
mailboxes with a recipient filter, and a *role assignment* gives the pointer an application role
(``Application Calendars.ReadWrite``) over that scope. Entra grants and Exchange RBAC add up, so the
scope means something only while the app holds **no** tenant-wide Entra calendar permission
(:data:`ENTRA_CALENDAR_ROLES`, :func:`union_violation`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from meetgate.admin.policy.model import OrganizerSources
from meetgate.errors import MeetgateError

ROLES = ("Application Calendars.ReadWrite", "Application Calendars.Read")
DEFAULT_ROLE = ROLES[0]
DEFAULT_SCOPE_NAME = "meetgate approved organizers"
DEFAULT_ATTRIBUTE = "CustomAttribute10"
DEFAULT_TAG = "meetgate-organizer"
#: Entra application permissions that reach every mailbox's calendar and so void an Exchange scope
ENTRA_CALENDAR_ROLES = ("Calendars.ReadWrite", "Calendars.Read", "Calendars.ReadBasic")
#: Exchange's documented permission cache: changes reach Graph after 30 minutes to 2 hours
CACHE_MIN_SECONDS = 30 * 60
CACHE_MAX_SECONDS = 2 * 60 * 60


class MailboxScopeError(MeetgateError, ValueError):
    """Invalid desired state, or Exchange refused; ``remedy`` says what to do."""


def union_violation(roles: Iterable[str]) -> tuple[str, ...]:
    """The tenant-wide Entra calendar permissions among a token's ``roles`` (empty when none)."""
    held = {role.lower(): role for role in roles}
    return tuple(held[name.lower()] for name in ENTRA_CALENDAR_ROLES if name.lower() in held)


@dataclass(frozen=True)
class DesiredMailboxScope:
    """``[mailbox_scope]``: which mailboxes the app may reach through ``role``, and how Exchange selects them.

    With ``group`` the management scope is ``MemberOfGroup -eq '<the group's DN>'`` (Exchange counts
    the group's **direct** members only); with ``administrative_unit`` there is no management scope:
    the assignment is made with ``-RecipientAdministrativeUnitScope <unit id>`` (Exchange counts the
    unit's user members, which an Entra admin maintains; meetgate reads them and never changes them);
    otherwise the approved organizers' mailboxes are tagged (``Set-Mailbox -<attribute> <tag>``) and
    the scope is ``<attribute> -eq '<tag>'``.
    """

    app_id: str
    #: where the approved organizers come from: the Teams policy's [organizers] or the section's own
    organizers: OrganizerSources
    organizers_from: Literal["policy", "own"] = "policy"
    group: str | None = None
    #: the Entra administrative unit's object id (administrative-unit mode)
    administrative_unit: str | None = None
    scope_name: str = DEFAULT_SCOPE_NAME
    role: str = DEFAULT_ROLE
    attribute: str = DEFAULT_ATTRIBUTE
    tag: str = DEFAULT_TAG
    #: mailboxes that must stay out of scope (verify's negative tests); picked from the directory when empty
    outside: tuple[str, ...] = ()
    source: Path | None = None

    @property
    def mode(self) -> Literal["group", "administrative_unit", "attribute"]:
        if self.group:
            return "group"
        return "administrative_unit" if self.administrative_unit else "attribute"

    @property
    def assignment_name(self) -> str:
        return f"meetgate {self.role.removeprefix('Application ')} {self.scope_name}"[:64]

    def recipient_filter(self, group_dn: str | None) -> str:
        """The scope's OPATH filter (``group_dn`` is ``Get-Group``'s DistinguishedName in group mode);
        empty in administrative-unit mode, which has no management scope."""
        if self.mode == "administrative_unit":
            return ""
        if self.mode == "group":
            if not group_dn:
                raise MailboxScopeError(
                    f"the distinguished name of group {self.group} is not known",
                    "check that the group exists and is mail-enabled (Get-Group -Identity <id>)",
                )
            return f"MemberOfGroup -eq '{_opath(group_dn)}'"
        return f"{self.attribute} -eq '{_opath(self.tag)}'"


def _opath(value: str) -> str:
    return value.replace("'", "''")


@dataclass(frozen=True)
class Pointer:
    app_id: str
    object_id: str
    display_name: str


@dataclass(frozen=True)
class Scope:
    name: str
    recipient_filter: str


@dataclass(frozen=True)
class Assignment:
    name: str
    role: str
    #: the pointer's object id
    assignee: str
    #: "Organization", "CustomRecipientScope", "Group" or "AdministrativeUnit"
    scope_type: str
    #: the management scope's name, the group of -RecipientGroupScope or the administrative unit's id
    scope: str | None = None
    created: str | None = None
    #: RoleAssigneeName as Exchange prints it (the pointer's display name or id)
    assignee_name: str = ""


@dataclass
class ExchangeState:
    """What Exchange holds for the app: its pointer, the scopes, its assignments, the tagged mailboxes."""

    pointers: list[Pointer] = field(default_factory=list)
    scopes: dict[str, Scope] = field(default_factory=dict)
    assignments: list[Assignment] = field(default_factory=list)
    #: user id → UPN of mailboxes whose tag attribute holds the tag (attribute mode)
    tagged: dict[str, str] = field(default_factory=dict)
    #: the group's DistinguishedName (group mode), None when unknown
    group_dn: str | None = None

    def pointer(self, app_id: str) -> Pointer | None:
        return next((p for p in self.pointers if p.app_id.lower() == app_id.lower()), None)

    def scope(self, name: str) -> Scope | None:
        return self.scopes.get(name.lower())

    def assignments_of(self, pointer: Pointer | None) -> list[Assignment]:
        if pointer is None:
            return []
        # which property names the service principal is not documented: any of its names will do
        names = {pointer.object_id.lower(), pointer.app_id.lower(), pointer.display_name.lower()} - {""}
        return [
            a for a in self.assignments if a.assignee.lower() in names or a.assignee_name.lower() in names
        ]
