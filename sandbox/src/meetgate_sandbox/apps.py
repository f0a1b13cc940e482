"""App registrations as Entra keeps them: applications, service principals, app role assignments.

Objects are Graph-shaped (``to_graph``) so the ``/applications`` and ``/servicePrincipals`` routes can
return them as they are; ``to_dict`` / ``from_dict`` persist them. Client secrets are kept as a
SHA-256 hash plus Entra's three-character hint, never in clear.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from meetgate import certificates

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"
#: the tenant that owns Microsoft's first-party apps (appOwnerOrganizationId of Graph's service principal)
MICROSOFT_SERVICES_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

#: Microsoft's first-party public clients a user may sign in with (present in every tenant)
FIRST_PARTY_PUBLIC_CLIENTS = {
    "14d82eec-204b-4c2f-b7e8-296a70dab67e": "Microsoft Graph Command Line Tools",
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46": "Microsoft Azure CLI",
    "1950a258-227b-4e31-a9cf-717495945fc2": "Microsoft Azure PowerShell",
    "de8bc8b5-d9f9-48b1-a8ad-b748da725064": "Graph Explorer",
}

#: Microsoft Graph application permissions: value -> (id, display name). Ids as Graph publishes them;
#: TeamsPolicyUserAssign.ReadWrite.All from a public permission listing (not Microsoft's own page).
GRAPH_APP_ROLES: dict[str, tuple[str, str]] = {
    "OnlineMeetings.ReadWrite.All": (
        "b8bb2037-6e08-44ac-a4ea-4674e010e2a4",
        "Read and create online meetings",
    ),
    "OnlineMeetings.Read.All": ("c1684f21-1984-47fa-9d61-2dc8c296bb70", "Read online meeting details"),
    "OnlineMeetingArtifact.Read.All": (
        "df01ed3b-eb61-4eca-9965-6b3d789751b2",
        "Read online meeting artifacts",
    ),
    "OnlineMeetingTranscript.Read.All": (
        "a4a80d8d-d283-4bd8-8504-555ec3870630",
        "Read all transcripts of online meetings.",
    ),
    "OnlineMeetingRecording.Read.All": (
        "a4a08342-c95d-476b-b943-97e100569c8d",
        "Read all recordings of online meetings.",
    ),
    "CallRecords.Read.All": ("45bbb07e-7321-4fd7-a8f6-3ff27e6a81c8", "Read all call records"),
    "User.Read.All": ("df021288-bdef-4463-88db-98f22de89214", "Read all users' full profiles"),
    "User.ReadBasic.All": ("97235f07-e226-4f63-ace3-39588e11d3a1", "Read all users' basic profiles"),
    "User.ReadWrite.All": ("741f803b-c850-494e-b5df-cde7c675a1ca", "Read and write all users' full profiles"),
    "AuditLog.Read.All": ("b0afded3-3588-46d8-8b3d-9842eff778da", "Read all audit log data"),
    "Directory.Read.All": ("7ab1d382-f21e-4acd-a863-ba3e13f7da61", "Read directory data"),
    "Directory.ReadWrite.All": ("19dbc75e-c2e2-444c-a770-ec69d8559fc7", "Read and write directory data"),
    "Group.Read.All": ("5b567255-7703-4780-807c-7be8301ae99b", "Read all groups"),
    "GroupMember.Read.All": ("98830695-27a2-44f7-8c18-0c3ebc9698f6", "Read all group memberships"),
    "AdministrativeUnit.Read.All": ("134fd756-38ce-4afd-ba33-e9623dbe66c2", "Read all administrative units"),
    "AdministrativeUnit.ReadWrite.All": (
        "5eb59dd3-1da2-4329-8733-9dabdc435916",
        "Read and write all administrative units",
    ),
    "Application.Read.All": ("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", "Read all applications"),
    "Application.ReadWrite.All": (
        "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
        "Read and write all applications",
    ),
    "Application.ReadWrite.OwnedBy": (
        "18a4783c-866b-4cc7-a460-3d5e5662c884",
        "Manage apps that this app creates or owns",
    ),
    "AppRoleAssignment.ReadWrite.All": (
        "06b708a9-e830-4db3-a914-8e69da51d44f",
        "Manage app permission grants and app role assignments",
    ),
    "Organization.Read.All": ("498476ce-e0fe-48b0-b801-37ba7e2685c6", "Read organization information"),
    "Calendars.Read": ("798ee544-9d2d-430c-a058-570e29e34338", "Read calendars in all mailboxes"),
    "Calendars.ReadWrite": (
        "ef54d2bf-783f-4e0f-bca1-3210c0444d99",
        "Read and write calendars in all mailboxes",
    ),
    "TeamsPolicyUserAssign.ReadWrite.All": (
        "1801e8f4-cf09-4c4e-a1b5-036dfcca6c90",
        "Read and Write Teams policy user assignment and unassigment for all policy types.",
    ),
}
ROLE_VALUE_BY_ID = {role_id: value for value, (role_id, _) in GRAPH_APP_ROLES.items()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(value: dt.datetime) -> str:
    """Graph's timestamp form: UTC with ``Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass
class KeyCredential:
    """A certificate registered on an application (``keyCredentials`` entry)."""

    key_id: str
    der: bytes
    start: dt.datetime
    end: dt.datetime
    display_name: str
    #: ``AsymmetricX509Cert`` (usage ``Verify``: client assertions, proofs) or ``X509CertAndPassword``
    #: (usage ``Sign``: a signing certificate uploaded with its private key; only its certificate is kept)
    type: str = "AsymmetricX509Cert"
    usage: str = "Verify"

    @classmethod
    def from_certificate(
        cls,
        cert: x509.Certificate,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        key_id: str | None = None,
    ) -> KeyCredential:
        return cls(
            key_id=key_id or str(uuid.uuid4()),
            der=certificates.certificate_der(cert),
            start=start or cert.not_valid_before_utc,
            end=end or cert.not_valid_after_utc,
            display_name=cert.subject.rfc4514_string(),
        )

    @property
    def certificate(self) -> x509.Certificate:
        return certificates.load_certificate_bytes(self.der)

    @property
    def thumbprint_sha1(self) -> str:
        return hashlib.sha1(self.der, usedforsecurity=False).hexdigest().upper()

    @property
    def thumbprint_sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest().upper()

    def valid_at(self, when: dt.datetime) -> bool:
        return self.start <= when <= self.end

    @property
    def verifies(self) -> bool:
        """Whether Entra checks signatures with this key (client assertions, proofs of possession)."""
        return self.usage == "Verify"

    def to_graph(self) -> dict[str, Any]:
        return {
            "customKeyIdentifier": self.thumbprint_sha1,
            "displayName": self.display_name,
            "endDateTime": iso(self.end),
            "key": base64.b64encode(self.der).decode("ascii"),
            "keyId": self.key_id,
            "startDateTime": iso(self.start),
            "type": self.type,
            "usage": self.usage,
        }

    @classmethod
    def from_graph(cls, data: dict[str, Any]) -> KeyCredential:
        return cls(
            key_id=str(data.get("keyId") or uuid.uuid4()),
            der=base64.b64decode(data["key"]),
            start=parse_iso(data["startDateTime"]),
            end=parse_iso(data["endDateTime"]),
            display_name=str(data.get("displayName") or ""),
            type=str(data.get("type") or "AsymmetricX509Cert"),
            usage=str(data.get("usage") or "Verify"),
        )


@dataclass
class PasswordCredential:
    """A client secret; only its SHA-256 hash is kept."""

    key_id: str
    secret_hash: str = field(repr=False)
    hint: str
    start: dt.datetime
    end: dt.datetime
    display_name: str

    @classmethod
    def generate(
        cls,
        *,
        display_name: str = "sandbox secret",
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> tuple[PasswordCredential, str]:
        """A new credential and its secret text (returned once, like the portal shows it once)."""
        secret = secrets.token_urlsafe(30)[:3] + "8Q~" + secrets.token_urlsafe(30)[:34]
        begin = start or _now()
        credential = cls(
            key_id=str(uuid.uuid4()),
            secret_hash=hashlib.sha256(secret.encode()).hexdigest(),
            hint=secret[:3],
            start=begin,
            end=end or begin + dt.timedelta(days=180),
            display_name=display_name,
        )
        return credential, secret

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hashlib.sha256(secret.encode()).hexdigest())

    def to_graph(self) -> dict[str, Any]:
        return {
            "customKeyIdentifier": None,
            "displayName": self.display_name,
            "endDateTime": iso(self.end),
            "hint": self.hint,
            "keyId": self.key_id,
            "secretText": None,
            "startDateTime": iso(self.start),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.to_graph(), "secretHash": self.secret_hash}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PasswordCredential:
        return cls(
            key_id=data["keyId"],
            secret_hash=data["secretHash"],
            hint=data.get("hint") or "",
            start=parse_iso(data["startDateTime"]),
            end=parse_iso(data["endDateTime"]),
            display_name=data.get("displayName") or "",
        )


@dataclass
class Application:
    """An application object (``/applications``)."""

    id: str
    app_id: str
    display_name: str
    created: dt.datetime
    sign_in_audience: str = "AzureADMyOrg"
    required_resource_access: list[dict[str, Any]] = field(default_factory=list)
    key_credentials: list[KeyCredential] = field(default_factory=list)
    password_credentials: list[PasswordCredential] = field(default_factory=list)

    @property
    def verify_credentials(self) -> list[KeyCredential]:
        """The key credentials Entra verifies signatures with (usage ``Verify``)."""
        return [k for k in self.key_credentials if k.verifies]

    def to_graph(self, publisher_domain: str = "") -> dict[str, Any]:
        return {
            "id": self.id,
            "appId": self.app_id,
            "displayName": self.display_name,
            "createdDateTime": iso(self.created),
            "publisherDomain": publisher_domain,
            "signInAudience": self.sign_in_audience,
            "requiredResourceAccess": self.required_resource_access,
            "keyCredentials": [k.to_graph() for k in self.key_credentials],
            "passwordCredentials": [p.to_graph() for p in self.password_credentials],
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.to_graph()
        data["passwordCredentials"] = [p.to_dict() for p in self.password_credentials]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Application:
        return cls(
            id=data["id"],
            app_id=data["appId"],
            display_name=data["displayName"],
            created=parse_iso(data["createdDateTime"]),
            sign_in_audience=data.get("signInAudience", "AzureADMyOrg"),
            required_resource_access=list(data.get("requiredResourceAccess") or []),
            key_credentials=[KeyCredential.from_graph(k) for k in data.get("keyCredentials") or []],
            password_credentials=[
                PasswordCredential.from_dict(p) for p in data.get("passwordCredentials") or []
            ],
        )


@dataclass
class ServicePrincipal:
    """A service principal (``/servicePrincipals``): the app's identity in this tenant."""

    id: str
    app_id: str
    display_name: str
    app_owner_organization_id: str
    account_enabled: bool = True
    app_roles: list[dict[str, Any]] = field(default_factory=list)

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "appId": self.app_id,
            "displayName": self.display_name,
            "accountEnabled": self.account_enabled,
            "appOwnerOrganizationId": self.app_owner_organization_id,
            "servicePrincipalType": "Application",
            "servicePrincipalNames": [self.app_id]
            + ([GRAPH_RESOURCE] if self.app_id == GRAPH_APP_ID else []),
            "appRoles": self.app_roles,
        }

    def to_dict(self) -> dict[str, Any]:
        return self.to_graph()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServicePrincipal:
        return cls(
            id=data["id"],
            app_id=data["appId"],
            display_name=data["displayName"],
            app_owner_organization_id=data.get("appOwnerOrganizationId") or "",
            account_enabled=bool(data.get("accountEnabled", True)),
            app_roles=list(data.get("appRoles") or []),
        )


@dataclass
class AppRoleAssignment:
    """Admin consent to one application permission."""

    id: str
    app_role_id: str
    principal_id: str
    principal_display_name: str
    resource_id: str
    resource_display_name: str
    created: dt.datetime

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "appRoleId": self.app_role_id,
            "createdDateTime": iso(self.created),
            "deletedDateTime": None,
            "principalDisplayName": self.principal_display_name,
            "principalId": self.principal_id,
            "principalType": "ServicePrincipal",
            "resourceDisplayName": self.resource_display_name,
            "resourceId": self.resource_id,
        }

    def to_dict(self) -> dict[str, Any]:
        return self.to_graph()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppRoleAssignment:
        return cls(
            id=data["id"],
            app_role_id=data["appRoleId"],
            principal_id=data["principalId"],
            principal_display_name=data.get("principalDisplayName") or "",
            resource_id=data["resourceId"],
            resource_display_name=data.get("resourceDisplayName") or "",
            created=parse_iso(data["createdDateTime"]),
        )


def graph_app_roles() -> list[dict[str, Any]]:
    return [
        {
            "allowedMemberTypes": ["Application"],
            "description": f"Allows the app to {name[0].lower()}{name[1:]} without a signed-in user.",
            "displayName": name,
            "id": role_id,
            "isEnabled": True,
            "origin": "Application",
            "value": value,
        }
        for value, (role_id, name) in GRAPH_APP_ROLES.items()
    ]


class UnknownRoleError(ValueError):
    """A role name that Microsoft Graph's service principal does not offer."""


class AppRegistry:
    """One tenant's applications, service principals and app role assignments."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.applications: dict[str, Application] = {}  # by object id
        self.service_principals: dict[str, ServicePrincipal] = {}  # by object id
        self.assignments: dict[str, AppRoleAssignment] = {}  # by id
        graph = ServicePrincipal(
            id=str(uuid.uuid4()),
            app_id=GRAPH_APP_ID,
            display_name="Microsoft Graph",
            app_owner_organization_id=MICROSOFT_SERVICES_TENANT,
            app_roles=graph_app_roles(),
        )
        self.service_principals[graph.id] = graph

    # --- lookups ---------------------------------------------------------------------------------

    @property
    def graph_service_principal(self) -> ServicePrincipal:
        sp = self.service_principal_by_app_id(GRAPH_APP_ID)
        assert sp is not None
        return sp

    def application_by_app_id(self, app_id: str) -> Application | None:
        wanted = app_id.lower()
        return next((a for a in self.applications.values() if a.app_id.lower() == wanted), None)

    def service_principal_by_app_id(self, app_id: str) -> ServicePrincipal | None:
        wanted = app_id.lower()
        return next((s for s in self.service_principals.values() if s.app_id.lower() == wanted), None)

    def granted_roles(self, service_principal_id: str) -> list[str]:
        """Values of the Graph application permissions consented to for the principal."""
        graph = self.graph_service_principal
        by_id = {role["id"]: role["value"] for role in graph.app_roles}
        return sorted(
            {
                by_id[a.app_role_id]
                for a in self.assignments.values()
                if a.principal_id == service_principal_id
                and a.resource_id == graph.id
                and a.app_role_id in by_id
            }
        )

    # --- changes ---------------------------------------------------------------------------------

    def create_application(self, display_name: str, *, roles: list[str] | None = None) -> Application:
        role_ids = [self.role_id(name) for name in roles or []]
        app = Application(
            id=str(uuid.uuid4()),
            app_id=str(uuid.uuid4()),
            display_name=display_name,
            created=_now(),
            required_resource_access=[
                {
                    "resourceAppId": GRAPH_APP_ID,
                    "resourceAccess": [{"id": rid, "type": "Role"} for rid in role_ids],
                }
            ]
            if role_ids
            else [],
        )
        self.applications[app.id] = app
        return app

    def create_service_principal(self, app: Application) -> ServicePrincipal:
        existing = self.service_principal_by_app_id(app.app_id)
        if existing is not None:
            return existing
        sp = ServicePrincipal(
            id=str(uuid.uuid4()),
            app_id=app.app_id,
            display_name=app.display_name,
            app_owner_organization_id=self.tenant_id,
        )
        self.service_principals[sp.id] = sp
        return sp

    def role_id(self, value: str) -> str:
        for role in self.graph_service_principal.app_roles:
            if role["value"].lower() == value.lower() or role["id"] == value:
                return str(role["id"])
        raise UnknownRoleError(
            f"Microsoft Graph has no application permission {value!r}; "
            f"known: {', '.join(sorted(r['value'] for r in self.graph_service_principal.app_roles))}"
        )

    def assign_role(self, sp: ServicePrincipal, role: str) -> AppRoleAssignment:
        role_id = self.role_id(role)
        graph = self.graph_service_principal
        for existing in self.assignments.values():
            if (
                existing.principal_id == sp.id
                and existing.resource_id == graph.id
                and existing.app_role_id == role_id
            ):
                return existing
        assignment = AppRoleAssignment(
            id=base64.urlsafe_b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes[:4]).decode().rstrip("="),
            app_role_id=role_id,
            principal_id=sp.id,
            principal_display_name=sp.display_name,
            resource_id=graph.id,
            resource_display_name=graph.display_name,
            created=_now(),
        )
        self.assignments[assignment.id] = assignment
        return assignment

    # --- persistence -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "applications": [a.to_dict() for a in self.applications.values()],
            "servicePrincipals": [s.to_dict() for s in self.service_principals.values()],
            "appRoleAssignments": [a.to_dict() for a in self.assignments.values()],
        }

    @classmethod
    def from_dict(cls, tenant_id: str, data: dict[str, Any]) -> AppRegistry:
        registry = cls(tenant_id)
        registry.service_principals.clear()
        for item in data.get("applications") or []:
            app = Application.from_dict(item)
            registry.applications[app.id] = app
        for item in data.get("servicePrincipals") or []:
            sp = ServicePrincipal.from_dict(item)
            registry.service_principals[sp.id] = sp
        for item in data.get("appRoleAssignments") or []:
            assignment = AppRoleAssignment.from_dict(item)
            registry.assignments[assignment.id] = assignment
        if registry.service_principal_by_app_id(GRAPH_APP_ID) is None:
            fresh = cls(tenant_id).graph_service_principal
            registry.service_principals[fresh.id] = fresh
        return registry
