"""The sandbox's state: tenants (by id and by domain) with their directory, apps and logs.

Everything here is touched only on the server's event-loop thread (route handlers are ``async``), so
nothing is locked. Route modules that keep per-tenant state of their own (meetings, policies) register
a *tenant extension*: a factory called for every tenant, new or loaded, whose object lives in
``tenant.extensions[name]`` and is persisted through its ``to_dict``::

    state = SandboxState(extensions={"policy": PolicyStore.for_tenant})
    store = tenant.extensions["policy"]
"""

from __future__ import annotations

import datetime as dt
import random
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from meetgate.errors import MeetgateError
from meetgate_sandbox import seed
from meetgate_sandbox.apps import AppRegistry, iso, parse_iso
from meetgate_sandbox.faults import FaultSettings, SandboxSettings
from meetgate_sandbox.recording import ActivityLog

DEFAULT_DOMAIN = "contoso-sbx.onmicrosoft.com"
DEFAULT_USERS = 50
MAX_USERS = 5000
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)

#: properties every app with User.ReadBasic.All may read
BASIC_USER_PROPERTIES = frozenset(
    {"id", "displayName", "givenName", "surname", "mail", "userPrincipalName", "businessPhones"}
)
#: what Graph returns without $select
DEFAULT_USER_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
DEFAULT_GROUP_PROPERTIES = (
    "id",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "visibility",
)


class StateError(MeetgateError, ValueError):
    """A control-API request cannot be applied to the state; the message says why."""


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


@dataclass
class User:
    id: str
    display_name: str
    given_name: str
    surname: str
    user_principal_name: str
    account_enabled: bool = True
    job_title: str | None = None
    department: str | None = None
    office_location: str | None = None
    mobile_phone: str | None = None
    usage_location: str = "US"
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def mail(self) -> str:
        return self.user_principal_name

    def to_graph(self) -> dict[str, Any]:
        """Every property the sandbox knows, in Graph's names."""
        return {
            "id": self.id,
            "accountEnabled": self.account_enabled,
            "businessPhones": [],
            "city": None,
            "companyName": None,
            "country": None,
            "createdDateTime": iso(self.created),
            "department": self.department,
            "displayName": self.display_name,
            "givenName": self.given_name,
            "jobTitle": self.job_title,
            "mail": self.mail,
            "mailNickname": self.user_principal_name.split("@", 1)[0],
            "mobilePhone": self.mobile_phone,
            "officeLocation": self.office_location,
            "preferredLanguage": "en-US",
            "surname": self.surname,
            "usageLocation": self.usage_location,
            "userPrincipalName": self.user_principal_name,
            "userType": "Member",
        }

    def to_dict(self) -> dict[str, Any]:
        return self.to_graph()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> User:
        return cls(
            id=data["id"],
            display_name=data["displayName"],
            given_name=data.get("givenName") or "",
            surname=data.get("surname") or "",
            user_principal_name=data["userPrincipalName"],
            account_enabled=bool(data.get("accountEnabled", True)),
            job_title=data.get("jobTitle"),
            department=data.get("department"),
            office_location=data.get("officeLocation"),
            mobile_phone=data.get("mobilePhone"),
            usage_location=data.get("usageLocation") or "US",
            created=parse_iso(data["createdDateTime"])
            if data.get("createdDateTime")
            else dt.datetime.now(dt.UTC),
        )


@dataclass
class Group:
    id: str
    display_name: str
    description: str
    mail_nickname: str
    security_enabled: bool
    unified: bool
    member_ids: list[str] = field(default_factory=list)
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def to_graph(self, domain: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "createdDateTime": iso(self.created),
            "description": self.description,
            "displayName": self.display_name,
            "groupTypes": ["Unified"] if self.unified else [],
            "mail": f"{self.mail_nickname}@{domain}" if self.unified else None,
            "mailEnabled": self.unified,
            "mailNickname": self.mail_nickname,
            "securityEnabled": self.security_enabled,
            "visibility": "Private" if self.unified else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "createdDateTime": iso(self.created),
            "displayName": self.display_name,
            "description": self.description,
            "mailNickname": self.mail_nickname,
            "securityEnabled": self.security_enabled,
            "unified": self.unified,
            "memberIds": list(self.member_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Group:
        return cls(
            id=data["id"],
            display_name=data["displayName"],
            description=data.get("description") or "",
            mail_nickname=data.get("mailNickname") or "",
            security_enabled=bool(data.get("securityEnabled", True)),
            unified=bool(data.get("unified", False)),
            member_ids=list(data.get("memberIds") or []),
            created=parse_iso(data["createdDateTime"])
            if data.get("createdDateTime")
            else dt.datetime.now(dt.UTC),
        )


@dataclass
class AdministrativeUnit:
    """An Entra administrative unit: a container of users and groups (``/directory/administrativeUnits``).

    Membership is direct only: a group in a unit does not bring its members with it.
    """

    id: str
    display_name: str
    description: str | None = None
    visibility: str | None = None
    member_ids: list[str] = field(default_factory=list)

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deletedDateTime": None,
            "displayName": self.display_name,
            "description": self.description,
            "isMemberManagementRestricted": None,
            "visibility": self.visibility,
            "membershipRule": None,
            "membershipType": None,
            "membershipRuleProcessingState": None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "description": self.description,
            "visibility": self.visibility,
            "memberIds": list(self.member_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdministrativeUnit:
        return cls(
            id=data["id"],
            display_name=data["displayName"],
            description=data.get("description"),
            visibility=data.get("visibility"),
            member_ids=list(data.get("memberIds") or []),
        )


class TenantExtension(Protocol):
    """Per-tenant state of a route module; persisted with the tenant."""

    def to_dict(self) -> dict[str, Any]: ...


#: builds a tenant's extension: ``factory(tenant, saved_dict_or_None)``
ExtensionFactory = Callable[["Tenant", dict[str, Any] | None], TenantExtension]


class Tenant:
    """One Entra tenant: directory, app registrations, activity log, extensions."""

    def __init__(self, tenant_id: str, domain: str, display_name: str) -> None:
        self.id = tenant_id
        self.domain = domain
        self.display_name = display_name
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        #: administrative units by object id (seeded tenants have none)
        self.administrative_units: dict[str, AdministrativeUnit] = {}
        self.admin_id: str | None = None
        self.seeded_user_ids: list[str] = []
        self.apps = AppRegistry(tenant_id)
        self.log = ActivityLog()
        self.extensions: dict[str, TenantExtension] = {}
        self._upn_index: dict[str, str] = {}

    # --- directory -------------------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        self.users[user.id] = user
        self._upn_index[user.user_principal_name.lower()] = user.id

    def find_user(self, key: str) -> User | None:
        """By object id or userPrincipalName (case-insensitive)."""
        user = self.users.get(key.lower()) or self.users.get(key)
        if user is not None:
            return user
        user_id = self._upn_index.get(key.lower())
        return self.users.get(user_id) if user_id else None

    @property
    def admin(self) -> User | None:
        return self.users.get(self.admin_id) if self.admin_id else None

    def direct_members(self, group: Group) -> list[User | Group]:
        members: list[User | Group] = []
        for member_id in group.member_ids:
            found: User | Group | None = self.users.get(member_id) or self.groups.get(member_id)
            if found is not None:
                members.append(found)
        return members

    def transitive_members(self, group: Group) -> list[User | Group]:
        """Users and groups reachable through nested groups, each once, in discovery order."""
        seen: set[str] = {group.id}
        ordered: list[User | Group] = []
        stack = [group]
        while stack:
            current = stack.pop(0)
            for member in self.direct_members(current):
                if member.id in seen:
                    continue
                seen.add(member.id)
                ordered.append(member)
                if isinstance(member, Group):
                    stack.append(member)
        return ordered

    def groups_of(self, member_id: str) -> list[Group]:
        """Groups the member belongs to, directly or through nesting."""
        result: list[Group] = []
        seen: set[str] = set()
        frontier = [member_id]
        while frontier:
            current = frontier.pop(0)
            for group in self.groups.values():
                if current in group.member_ids and group.id not in seen:
                    seen.add(group.id)
                    result.append(group)
                    frontier.append(group.id)
        return result

    def administrative_units_of(self, member_id: str) -> list[AdministrativeUnit]:
        """The administrative units holding ``member_id`` directly (units do not nest)."""
        return [unit for unit in self.administrative_units.values() if member_id in unit.member_ids]

    # --- views -----------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The control API's tenant shape."""
        seeded = [self.users[uid] for uid in self.seeded_user_ids if uid in self.users]
        admin = self.admin
        return {
            "tenantId": self.id,
            "domain": self.domain,
            "displayName": self.display_name,
            "users": [
                {
                    "id": u.id,
                    "userPrincipalName": u.user_principal_name,
                    "displayName": u.display_name,
                    "accountEnabled": u.account_enabled,
                }
                for u in seeded
            ],
            "groups": [{"id": g.id, "displayName": g.display_name} for g in self.groups.values()],
            "adminUpn": admin.user_principal_name if admin else None,
            "adminId": admin.id if admin else None,
        }

    # --- persistence -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "domain": self.domain,
            "displayName": self.display_name,
            "adminId": self.admin_id,
            "seededUserIds": list(self.seeded_user_ids),
            "users": [u.to_dict() for u in self.users.values()],
            "groups": [g.to_dict() for g in self.groups.values()],
            "administrativeUnits": [unit.to_dict() for unit in self.administrative_units.values()],
            "apps": self.apps.to_dict(),
            "log": self.log.to_dict(),
            "extensions": {name: ext.to_dict() for name, ext in self.extensions.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tenant:
        tenant = cls(data["id"], data["domain"], data.get("displayName") or data["domain"])
        for item in data.get("users") or []:
            tenant.add_user(User.from_dict(item))
        for item in data.get("groups") or []:
            group = Group.from_dict(item)
            tenant.groups[group.id] = group
        for item in data.get("administrativeUnits") or []:
            unit = AdministrativeUnit.from_dict(item)
            tenant.administrative_units[unit.id] = unit
        tenant.admin_id = data.get("adminId")
        tenant.seeded_user_ids = list(data.get("seededUserIds") or [])
        tenant.apps = AppRegistry.from_dict(tenant.id, data.get("apps") or {})
        tenant.log = ActivityLog.from_dict(data.get("log"))
        return tenant


def _display_domain(domain: str) -> str:
    label = domain.split(".", 1)[0].replace("-sbx", "").replace("-", " ")
    return label.title() if label else domain


def build_tenant(
    *,
    users: int = DEFAULT_USERS,
    domain: str | None = None,
    seed_value: int | None = None,
    tenant_id: str | None = None,
) -> Tenant:
    """A new tenant with ``users`` seeded users, an admin and nested groups (deterministic by seed)."""
    if isinstance(users, bool) or not isinstance(users, int) or not 0 <= users <= MAX_USERS:
        raise StateError(f"users must be an integer between 0 and {MAX_USERS}, got {users!r}")
    if seed_value is not None and (isinstance(seed_value, bool) or not isinstance(seed_value, int)):
        raise StateError(f"seed must be an integer, got {seed_value!r}")
    rng = random.Random(seed_value if seed_value is not None else secrets.randbits(64))  # noqa: S311
    if domain is None:
        domain = f"sbx-{secrets.token_hex(4)}.onmicrosoft.com"  # unique even for a repeated seed
    domain = domain.strip().lower()
    if not _DOMAIN.match(domain):
        raise StateError(f"domain {domain!r} is not a valid DNS name such as contoso-sbx.onmicrosoft.com")
    tenant = Tenant(tenant_id or str(uuid.uuid4()), domain, _display_domain(domain))
    for item in seed.seed_users(users, domain, rng):
        tenant.add_user(
            User(
                id=item.id,
                display_name=f"{item.given_name} {item.surname}",
                given_name=item.given_name,
                surname=item.surname,
                user_principal_name=item.user_principal_name,
                account_enabled=item.account_enabled,
                job_title=item.job_title,
                department=item.department,
                office_location=item.office_location,
                mobile_phone=item.mobile_phone,
            )
        )
        tenant.seeded_user_ids.append(item.id)
    admin = User(
        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        display_name="MOD Administrator",
        given_name="MOD",
        surname="Administrator",
        user_principal_name=f"admin@{domain}",
        job_title="Teams Administrator",
        department="IT",
    )
    tenant.add_user(admin)
    tenant.admin_id = admin.id
    for group in seed.seed_groups(tenant.seeded_user_ids, admin.id, rng):
        tenant.groups[group.id] = Group(
            id=group.id,
            display_name=group.display_name,
            description=group.description,
            mail_nickname=group.mail_nickname,
            security_enabled=group.security_enabled,
            unified=group.unified,
            member_ids=group.member_ids,
        )
    return tenant


class SandboxState:
    """All tenants plus server-wide settings. Call :meth:`changed` after every mutation."""

    def __init__(
        self,
        *,
        extensions: Mapping[str, ExtensionFactory] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.default_tenant_id: str | None = None
        self.faults = FaultSettings()
        self.settings = SandboxSettings()
        #: requests that belong to no tenant (unauthenticated, unknown tenant)
        self.unattributed = ActivityLog(max_tokens=1)
        self._extensions: dict[str, ExtensionFactory] = dict(extensions or {})
        self.on_change = on_change

    @property
    def extension_names(self) -> list[str]:
        """Names of the tenant extensions (route modules with state: ``policy``, ``meetings``...)."""
        return list(self._extensions)

    def changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # --- tenants ---------------------------------------------------------------------------------

    def _attach_extensions(self, tenant: Tenant, saved: Mapping[str, Any] | None) -> None:
        for name, factory in self._extensions.items():
            data = (saved or {}).get(name)
            tenant.extensions[name] = factory(tenant, data if isinstance(data, dict) else None)

    def add_tenant(self, tenant: Tenant) -> Tenant:
        if tenant.id in self.tenants:
            raise StateError(f"tenant {tenant.id} exists")
        if self.find_tenant(tenant.domain) is not None:
            raise StateError(f"domain {tenant.domain} is already used by another sandbox tenant")
        self._attach_extensions(tenant, None)
        self.tenants[tenant.id] = tenant
        self.changed()
        return tenant

    def create_tenant(
        self, *, users: int = DEFAULT_USERS, domain: str | None = None, seed_value: int | None = None
    ) -> Tenant:
        return self.add_tenant(build_tenant(users=users, domain=domain, seed_value=seed_value))

    def find_tenant(self, key: str) -> Tenant | None:
        """By tenant id or domain (case-insensitive)."""
        lowered = key.lower()
        tenant = self.tenants.get(lowered) or self.tenants.get(key)
        if tenant is not None:
            return tenant
        return next((t for t in self.tenants.values() if t.domain == lowered), None)

    @property
    def default_tenant(self) -> Tenant | None:
        return self.tenants.get(self.default_tenant_id) if self.default_tenant_id else None

    def ensure_default_tenant(self, *, users: int = DEFAULT_USERS, seed_value: int = 0) -> Tenant:
        tenant = self.default_tenant
        if tenant is None:
            tenant = self.add_tenant(build_tenant(users=users, domain=DEFAULT_DOMAIN, seed_value=seed_value))
            self.default_tenant_id = tenant.id
            self.changed()
        return tenant

    # --- persistence -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "defaultTenantId": self.default_tenant_id,
            "faults": self.faults.to_dict(),
            "settings": self.settings.to_dict(),
            "tenants": [t.to_dict() for t in self.tenants.values()],
        }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        """Replace the state with a saved one (tenants keep their ids, users, apps and logs)."""
        if data.get("version") != 1:
            raise StateError(f"unsupported sandbox state version {data.get('version')!r}")
        self.tenants.clear()
        for item in data.get("tenants") or []:
            tenant = Tenant.from_dict(item)
            self._attach_extensions(tenant, item.get("extensions"))
            self.tenants[tenant.id] = tenant
        self.default_tenant_id = data.get("defaultTenantId")
        self.faults = FaultSettings.from_dict(data.get("faults") or {})
        self.settings = SandboxSettings.from_dict(data.get("settings") or {})

    def all_tenants(self) -> Iterable[Tenant]:
        return self.tenants.values()
