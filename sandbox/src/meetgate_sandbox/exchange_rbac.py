"""Exchange Online RBAC for Applications, as the sandbox tenant keeps it.

The second governance plane of calendar access: an application permission granted in Entra
(``Calendars.ReadWrite``) reaches every mailbox; Exchange's RBAC for Applications grants the same
permission *scoped* to some mailboxes. What Exchange keeps (``New-ServicePrincipal``,
``New-ManagementScope``, ``New-ManagementRoleAssignment -App``):

- **service principal pointers** (app id, the enterprise app's object id, display name);
- **management scopes** with a recipient filter in OPATH (``"MemberOfGroup -eq 'CN=…'"``,
  ``CustomAttribute1 -eq 'x'``, ``Department -eq 'Sales'`` joined by ``-and`` / ``-or`` / ``-not``);
- **role assignments** of an application role (``Application Calendars.ReadWrite`` …) to a pointer,
  scoped by a management scope, a group's **direct** members (``-RecipientGroupScope``; nested members
  are out of scope, as in Exchange), an Entra administrative unit's user members
  (``-RecipientAdministrativeUnitScope``) or, unscoped, the whole organization.

Assignments take effect after a cache delay (Exchange documents 30 minutes to 2 hours; 0 by default in
the sandbox, set by the ``mailboxScopeDelaySeconds`` switch); :meth:`ExchangeRbac.test_authorization`
(``Test-ServicePrincipalAuthorization``) bypasses the cache and, like the cmdlet, ignores Entra grants.
The union with Entra grants is the calendar routes' job (:mod:`~meetgate_sandbox.calendar_api`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from meetgate_sandbox.state import Tenant, User

__all__ = [
    "APPLICATION_ROLES",
    "EXTENSION",
    "ExchangeRbac",
    "RbacError",
    "RecipientFilter",
    "group_dn",
    "mailbox_permitted",
]

EXTENSION = "exchangeRbac"
_MAIL_ROLES = ("Mail.Read", "Mail.ReadBasic", "Mail.ReadWrite", "Mail.Send")
#: Exchange's application roles → the Graph permissions each grants
APPLICATION_ROLES: Final[dict[str, frozenset[str]]] = {
    **{f"Application {name}": frozenset({name}) for name in _MAIL_ROLES},
    "Application MailboxSettings.Read": frozenset({"MailboxSettings.Read"}),
    "Application MailboxSettings.ReadWrite": frozenset({"MailboxSettings.ReadWrite"}),
    "Application Calendars.Read": frozenset({"Calendars.Read"}),
    "Application Calendars.ReadWrite": frozenset({"Calendars.ReadWrite"}),
    "Application Contacts.Read": frozenset({"Contacts.Read"}),
    "Application Contacts.ReadWrite": frozenset({"Contacts.ReadWrite"}),
    "Application Mail Full Access": frozenset({"Mail.ReadWrite", "Mail.Send"}),
    "Application Exchange Full Access": frozenset(
        {
            "Mail.ReadWrite",
            "Mail.Send",
            "MailboxSettings.ReadWrite",
            "Calendars.ReadWrite",
            "Contacts.ReadWrite",
        }
    ),
}
#: recipient filter properties the sandbox evaluates (besides CustomAttribute1..15)
_FILTER_PROPERTIES: Final[dict[str, Callable[[User], str | None]]] = {
    "department": lambda user: user.department,
    "title": lambda user: user.job_title,
    "office": lambda user: user.office_location,
    "displayname": lambda user: user.display_name,
    "userprincipalname": lambda user: user.user_principal_name,
    "primarysmtpaddress": lambda user: user.user_principal_name,
    "windowsemailaddress": lambda user: user.user_principal_name,
    "alias": lambda user: user.user_principal_name.split("@")[0],
}
_CUSTOM_ATTRIBUTE = re.compile(r"^customattribute([1-9]|1[0-5])$")
_TOKEN = re.compile(
    r"\s*(?:(\()|(\))|(-and|-or|-not)\b|(-eq|-ne|-like|-notlike)\b|('(?:[^']|'')*'|\"[^\"]*\")|([A-Za-z][A-Za-z0-9]*))",
    re.IGNORECASE,
)


class RbacError(ValueError):
    """A cmdlet refused; the message is Exchange's (what the PowerShell stand-in shows)."""


def group_dn(tenant: Tenant, group_id: str) -> str | None:
    """The distinguished name Exchange gives a group (``Get-Group … | fl DistinguishedName``)."""
    group = tenant.groups.get(group_id.lower()) or tenant.groups.get(group_id)
    if group is None:
        return None
    suffix = hashlib.sha256(group.id.encode()).hexdigest()[:10]
    return (
        f"CN={group.mail_nickname}{suffix},OU={tenant.domain},OU=Microsoft Exchange Hosted Organizations,"
        "DC=NAMPR00A001,DC=prod,DC=outlook,DC=com"
    )


# ---- recipient filters (OPATH) ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Compare:
    prop: str
    op: str
    value: str


@dataclass(frozen=True)
class _Logic:
    op: str  # -and, -or, -not
    parts: tuple[Any, ...]


class RecipientFilter:
    """An OPATH recipient filter, parsed once; :meth:`matches` evaluates it for a user."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._tokens = self._tokenize(text)
        self._at = 0
        self.tree = self._or()
        if self._at != len(self._tokens):
            raise RbacError(
                f"The recipient filter \"{text}\" is not valid: unexpected '{self._tokens[self._at][1]}'."
            )

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        at = 0
        while at < len(text.rstrip()):
            match = _TOKEN.match(text, at)
            if match is None:
                raise RbacError(f'The recipient filter "{text}" is not valid at position {at}.')
            kinds = ("open", "close", "logic", "compare", "string", "name")
            kind = next(k for k, group in zip(kinds, match.groups(), strict=True) if group is not None)
            tokens.append((kind, match.group(0).strip()))
            at = match.end()
        return tokens

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self, kind: str) -> str:
        token = self._peek()
        if token is None or token[0] != kind:
            raise RbacError(f'The recipient filter "{self.text}" is not valid: expected {kind}.')
        self._at += 1
        return token[1]

    def _or(self) -> Any:
        parts = [self._and()]
        while (token := self._peek()) is not None and token[1].lower() == "-or":
            self._at += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else _Logic("-or", tuple(parts))

    def _and(self) -> Any:
        parts = [self._unary()]
        while (token := self._peek()) is not None and token[1].lower() == "-and":
            self._at += 1
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else _Logic("-and", tuple(parts))

    def _unary(self) -> Any:
        token = self._peek()
        if token is not None and token[1].lower() == "-not":
            self._at += 1
            return _Logic("-not", (self._unary(),))
        if token is not None and token[0] == "open":
            self._at += 1
            inner = self._or()
            self._take("close")
            return inner
        prop = self._take("name")
        op = self._take("compare").lower()
        raw = self._take("string")
        value = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw[1:-1]
        name = prop.lower()
        if name != "memberofgroup" and name not in _FILTER_PROPERTIES and not _CUSTOM_ATTRIBUTE.match(name):
            raise RbacError(f"The recipient filter property '{prop}' is not supported by the sandbox.")
        return _Compare(name, op, value)

    def matches(self, user: User, attributes: Mapping[str, str], member_of: set[str]) -> bool:
        """Whether the filter holds for ``user`` (``attributes``: its CustomAttributeN, ``member_of``: the
        DNs of the groups it is a direct member of)."""
        return self._eval(self.tree, user, attributes, member_of)

    def _eval(self, node: Any, user: User, attributes: Mapping[str, str], member_of: set[str]) -> bool:
        if isinstance(node, _Logic):
            results = [self._eval(part, user, attributes, member_of) for part in node.parts]
            return all(results) if node.op == "-and" else any(results) if node.op == "-or" else not results[0]
        assert isinstance(node, _Compare)
        if node.prop == "memberofgroup":
            found = node.value.lower() in member_of
            return found if node.op in ("-eq", "-like") else not found
        actual = (
            attributes.get(node.prop)
            if node.prop.startswith("custom")
            else _FILTER_PROPERTIES[node.prop](user)
        )
        actual = (actual or "").lower()
        wanted = node.value.lower()
        if node.op in ("-like", "-notlike"):
            pattern = "^" + ".*".join(re.escape(part) for part in wanted.split("*")) + "$"
            hit = re.match(pattern, actual) is not None
            return hit if node.op == "-like" else not hit
        return (actual == wanted) if node.op == "-eq" else (actual != wanted)


# ---- the store --------------------------------------------------------------------------------------


@dataclass
class ServicePrincipalPointer:
    app_id: str
    object_id: str
    display_name: str


@dataclass
class ManagementScope:
    name: str
    recipient_filter: str


@dataclass
class RoleAssignment:
    name: str
    role: str
    app_object_id: str
    #: "Organization", "CustomRecipientScope" (a management scope), "Group" (direct members) or
    #: "AdministrativeUnit" (the unit's user members; ``scope`` is the unit's object id)
    scope_type: str
    scope: str | None
    created: str
    #: when the assignment reaches the permission cache (created + the cache delay)
    effective: str
    removed: str | None = None


@dataclass
class ExchangeRbac:
    """One tenant's RBAC for Applications: pointers, scopes, assignments and mailbox attributes."""

    tenant: Tenant
    pointers: dict[str, ServicePrincipalPointer] = field(default_factory=dict)
    scopes: dict[str, ManagementScope] = field(default_factory=dict)
    assignments: dict[str, RoleAssignment] = field(default_factory=dict)
    #: user id → CustomAttributeN (lower-cased name) → value (``Set-Mailbox -CustomAttribute1``)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    #: app id → what app-only Exchange Online PowerShell needs of it: ``manageAsApp`` (the
    #: Office 365 Exchange Online application permission Exchange.ManageAsApp, consented) and
    #: ``exchangeAdministrator`` (the Entra role on its service principal)
    app_only_access: dict[str, dict[str, bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._filters: dict[str, RecipientFilter] = {}

    # -- cmdlets

    def new_service_principal(
        self, app_id: str, object_id: str, display_name: str | None
    ) -> ServicePrincipalPointer:
        """``New-ServicePrincipal``: the pointer must name the enterprise app (service principal) in Entra."""
        with self._lock:
            sp = self.tenant.apps.service_principal_by_app_id(app_id)
            if sp is not None and sp.id.lower() != object_id.lower():
                raise RbacError(
                    f"The ObjectId '{object_id}' is not the enterprise application of AppId '{app_id}': use the "
                    "Object ID from Enterprise applications, not from App registrations."
                )
            if object_id.lower() in self.pointers:
                raise RbacError(f"A service principal with ObjectId '{object_id}' already exists.")
            pointer = ServicePrincipalPointer(app_id.lower(), object_id.lower(), display_name or app_id)
            self.pointers[pointer.object_id] = pointer
            return pointer

    def remove_service_principal(self, identity: str) -> None:
        """``Remove-ServicePrincipal``: the pointer and its role assignments go (scopes stay)."""
        with self._lock:
            pointer = self.find_pointer(identity)
            if pointer is None:
                raise RbacError(
                    f"The operation couldn't be performed because object '{identity}' couldn't be found."
                )
            del self.pointers[pointer.object_id]
            for name in [
                key for key, item in self.assignments.items() if item.app_object_id == pointer.object_id
            ]:
                del self.assignments[name]

    def find_pointer(self, identity: str) -> ServicePrincipalPointer | None:
        wanted = identity.lower()
        for pointer in self.pointers.values():
            if wanted in (pointer.object_id, pointer.app_id, pointer.display_name.lower()):
                return pointer
        return None

    def new_scope(self, name: str, recipient_filter: str) -> ManagementScope:
        """``New-ManagementScope -RecipientRestrictionFilter``."""
        with self._lock:
            if name.lower() in self.scopes:
                raise RbacError(f"The management scope '{name}' already exists.")
            self._filters[name.lower()] = RecipientFilter(recipient_filter)
            scope = ManagementScope(name, recipient_filter)
            self.scopes[name.lower()] = scope
            return scope

    def remove_scope(self, name: str) -> None:
        with self._lock:
            if name.lower() not in self.scopes:
                raise RbacError(
                    f"The operation couldn't be performed because object '{name}' couldn't be found."
                )
            if any(
                item.scope == self.scopes[name.lower()].name and item.removed is None
                for item in self.assignments.values()
            ):
                raise RbacError(
                    f"The management scope '{name}' is used by role assignments: remove them first."
                )
            del self.scopes[name.lower()]
            self._filters.pop(name.lower(), None)

    def new_assignment(
        self,
        *,
        role: str,
        app: str,
        name: str | None,
        custom_scope: str | None,
        group_scope: str | None,
        now: dt.datetime,
        delay_seconds: float,
        unit_scope: str | None = None,
    ) -> RoleAssignment:
        """``New-ManagementRoleAssignment -App … -Role … [-CustomResourceScope | -RecipientGroupScope |
        -RecipientAdministrativeUnitScope]``."""
        with self._lock:
            canonical = next((key for key in APPLICATION_ROLES if key.lower() == role.lower()), None)
            if canonical is None:
                raise RbacError(
                    f"The role '{role}' isn't an application role: with -App, assign a role such as "
                    "'Application Calendars.ReadWrite'."
                )
            pointer = self.find_pointer(app)
            if pointer is None:
                raise RbacError(
                    f"The service principal '{app}' couldn't be found: create its pointer with New-ServicePrincipal first."
                )
            if sum(scope is not None for scope in (custom_scope, group_scope, unit_scope)) > 1:
                raise RbacError(
                    "Give one scope: -CustomResourceScope, -RecipientGroupScope or "
                    "-RecipientAdministrativeUnitScope."
                )
            scope_type, scope = "Organization", None
            if custom_scope is not None:
                found = self.scopes.get(custom_scope.lower())
                if found is None:
                    raise RbacError(f"The management scope '{custom_scope}' couldn't be found.")
                scope_type, scope = "CustomRecipientScope", found.name
            if group_scope is not None:
                group = self._group(group_scope)
                if group is None:
                    raise RbacError(f"The group '{group_scope}' couldn't be found.")
                scope_type, scope = "Group", group
            if unit_scope is not None:
                unit = self._unit(unit_scope)
                if unit is None:
                    raise RbacError(f"The administrative unit '{unit_scope}' couldn't be found.")
                scope_type, scope = "AdministrativeUnit", unit
            assignment_name = name or f"{canonical}-{pointer.display_name}"[:64]
            existing = self.assignments.get(assignment_name.lower())
            if existing is not None and existing.removed is None:
                raise RbacError(f"The role assignment '{assignment_name}' already exists.")
            if existing is not None:  # a removed one frees its name; the cache forgets it at `removed`
                self.assignments[f"{assignment_name.lower()}#removed-{existing.created}"] = existing
            effective = now + dt.timedelta(seconds=delay_seconds)
            assignment = RoleAssignment(
                assignment_name,
                canonical,
                pointer.object_id,
                scope_type,
                scope,
                now.isoformat(),
                effective.isoformat(),
            )
            self.assignments[assignment_name.lower()] = assignment
            return assignment

    def remove_assignment(self, name: str, *, now: dt.datetime, delay_seconds: float) -> None:
        """``Remove-ManagementRoleAssignment``: gone at once for the cmdlets, from the cache after the delay."""
        with self._lock:
            assignment = self.assignments.get(name.lower())
            if assignment is None or assignment.removed is not None:
                raise RbacError(
                    f"The operation couldn't be performed because object '{name}' couldn't be found."
                )
            assignment.removed = (now + dt.timedelta(seconds=delay_seconds)).isoformat()

    def set_attributes(self, user_id: str, values: Mapping[str, str]) -> None:
        """``Set-Mailbox -CustomAttributeN``."""
        with self._lock:
            current = self.attributes.setdefault(user_id, {})
            for key, value in values.items():
                if not _CUSTOM_ATTRIBUTE.match(key.lower()):
                    raise RbacError(
                        f"'{key}' is not a custom attribute (CustomAttribute1 … CustomAttribute15)."
                    )
                current[key.lower()] = value

    # -- evaluation

    def _group(self, identity: str) -> str | None:
        wanted = identity.lower()
        for group in self.tenant.groups.values():
            if wanted in (group.id.lower(), group.display_name.lower(), group.mail_nickname.lower()):
                return group.id
        return None

    def _unit(self, identity: str) -> str | None:
        """An administrative unit by object id or display name (what the parameter takes)."""
        wanted = identity.lower()
        units = self.tenant.administrative_units.values()
        found = next((u for u in units if u.id.lower() == wanted), None) or next(
            (u for u in units if u.display_name.lower() == wanted), None
        )
        return found.id if found is not None else None

    def _direct_groups(self, user: User) -> set[str]:
        return {group.id for group in self.tenant.groups.values() if user.id in group.member_ids}

    def in_scope(self, assignment: RoleAssignment, user: User) -> bool:
        """Whether the assignment's scope holds the user's mailbox."""
        if assignment.scope_type == "Organization":
            return True
        if assignment.scope_type == "Group":
            return assignment.scope in self._direct_groups(user)
        if assignment.scope_type == "AdministrativeUnit":
            unit = self.tenant.administrative_units.get(assignment.scope or "")
            return unit is not None and user.id in unit.member_ids
        scope = self.scopes.get((assignment.scope or "").lower())
        if scope is None:
            return False
        parsed = self._filters.get(scope.name.lower()) or RecipientFilter(scope.recipient_filter)
        self._filters[scope.name.lower()] = parsed
        dns = {dn.lower() for dn in (group_dn(self.tenant, gid) for gid in self._direct_groups(user)) if dn}
        return parsed.matches(user, self.attributes.get(user.id, {}), dns)

    def _assignments_of(self, app_id: str) -> list[RoleAssignment]:
        pointers = {p.object_id for p in self.pointers.values() if p.app_id == app_id.lower()}
        return [item for item in self.assignments.values() if item.app_object_id in pointers]

    def permits(self, app_id: str, permission: str, user: User, now: dt.datetime) -> bool:
        """What Exchange's permission cache says: an effective assignment grants ``permission`` on ``user``."""
        with self._lock:
            for assignment in self._assignments_of(app_id):
                if permission not in APPLICATION_ROLES[assignment.role]:
                    continue
                if dt.datetime.fromisoformat(assignment.effective) > now:
                    continue
                if assignment.removed is not None and dt.datetime.fromisoformat(assignment.removed) <= now:
                    continue
                if self.in_scope(assignment, user):
                    return True
            return False

    def test_authorization(self, identity: str, resource: User | None) -> list[dict[str, Any]]:
        """``Test-ServicePrincipalAuthorization``: each live assignment, in scope of ``resource`` or
        ``Not Run``; no cache, no Entra grants."""
        with self._lock:
            pointer = self.find_pointer(identity)
            if pointer is None:
                raise RbacError(f"The service principal '{identity}' couldn't be found.")
            rows = []
            for assignment in self.assignments.values():
                if assignment.app_object_id != pointer.object_id or assignment.removed is not None:
                    continue
                in_scope: bool | str = "Not Run" if resource is None else self.in_scope(assignment, resource)
                rows.append(
                    {
                        "RoleName": assignment.role,
                        "GrantedPermissions": ", ".join(sorted(APPLICATION_ROLES[assignment.role])),
                        "AllowedResourceScope": assignment.scope or "Organization",
                        "ScopeType": assignment.scope_type,
                        "InScope": in_scope,
                    }
                )
            return rows

    # -- persistence

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pointers": [asdict(item) for item in self.pointers.values()],
                "scopes": [asdict(item) for item in self.scopes.values()],
                "assignments": [asdict(item) for item in self.assignments.values()],
                "attributes": self.attributes,
                "appOnlyAccess": self.app_only_access,
            }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        with self._lock:
            self.pointers = {
                row["object_id"]: ServicePrincipalPointer(**row) for row in data.get("pointers") or []
            }
            self.scopes = {row["name"].lower(): ManagementScope(**row) for row in data.get("scopes") or []}
            self.assignments = {
                (
                    row["name"].lower()
                    if row.get("removed") is None
                    else f"{row['name'].lower()}#removed-{row['created']}"
                ): RoleAssignment(**row)
                for row in data.get("assignments") or []
            }
            self.attributes = {key: dict(value) for key, value in (data.get("attributes") or {}).items()}
            self.app_only_access = {
                key.lower(): dict(value) for key, value in (data.get("appOnlyAccess") or {}).items()
            }

    @classmethod
    def for_tenant(cls, tenant: Tenant, saved: dict[str, Any] | None) -> ExchangeRbac:
        """The tenant extension factory."""
        rbac = cls(tenant)
        if saved:
            rbac.load_dict(saved)
        return rbac


def mailbox_permitted(tenant: Tenant, app_id: str, permission: str, user_id: str, now: dt.datetime) -> bool:
    """Whether Exchange RBAC (through its cache) grants ``app_id`` ``permission`` on ``user_id``'s mailbox."""
    rbac = tenant.extensions.get(EXTENSION)
    user = tenant.users.get(user_id)
    return isinstance(rbac, ExchangeRbac) and user is not None and rbac.permits(app_id, permission, user, now)
