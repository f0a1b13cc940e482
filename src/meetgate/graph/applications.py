"""Entra application registrations through Microsoft Graph: applications, service principals,
key and password credentials, app role assignments (admin consent).

The models are tolerant (unknown fields are kept, unknown enum values are plain strings). The
service is a thin layer over the client's JSON http (``get`` / ``post`` / ``patch`` / ``delete``):
it builds paths and bodies and parses answers; retry, errors and auth are the http layer's job.

Graph behaviour this relies on (Microsoft Graph's application and servicePrincipal reference):

- ``POST /applications`` (``signInAudience`` ``AzureADMyOrg`` = single tenant) and
  ``POST /servicePrincipals {"appId"}``;
- admin consent to an application permission is an app role assignment
  ``POST /servicePrincipals/{resourceSpId}/appRoleAssignedTo``;
- role ids are looked up at run time from the resource's service principal ``appRoles``;
- certificates: ``PATCH /applications/{id}`` with the *whole* ``keyCredentials`` list, or
  ``POST /applications/{id}/addKey`` / ``removeKey`` with a proof-of-possession JWT;
- ``keyCredentials[].key`` is returned only by ``GET /applications/{id}?$select=keyCredentials``;
- ``customKeyIdentifier`` defaults to the certificate's SHA-1 thumbprint (base64 of the digest).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

#: appId of the Microsoft Graph resource (its service principal exists in every tenant).
MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
#: audience of the addKey / removeKey proof JWT (the legacy Azure AD Graph resource id).
PROOF_AUDIENCE = "00000002-0000-0000-c000-000000000000"
SINGLE_TENANT = "AzureADMyOrg"


class _GraphModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
        populate_by_name=True,
        extra="allow",
    )


class KeyCredential(_GraphModel):
    """A certificate (or other key) on an application. ``key`` is base64 DER, often absent."""

    key_id: str | None = None
    type: str | None = None
    usage: str | None = None
    key: str | None = Field(default=None, repr=False)
    display_name: str | None = None
    custom_key_identifier: str | None = None
    start_date_time: dt.datetime | None = None
    end_date_time: dt.datetime | None = None

    @property
    def thumbprint_sha1(self) -> str | None:
        """Upper-case hex SHA-1 thumbprint, from ``key`` when present, else ``customKeyIdentifier``."""
        if self.key:
            import hashlib

            try:
                der = base64.b64decode(self.key, validate=True)
            except (binascii.Error, ValueError):
                der = b""
            if der:
                return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()
        return thumbprint_from_custom_key_identifier(self.custom_key_identifier)

    def to_request(self) -> dict[str, Any]:
        """The JSON Graph expects when this credential is sent back in a ``keyCredentials`` PATCH."""
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return {k: v for k, v in body.items() if not k.startswith("@")}


def thumbprint_from_custom_key_identifier(value: str | None) -> str | None:
    """``customKeyIdentifier`` is Binary (base64); a 20-byte value is a SHA-1 thumbprint.

    Some tools store the hex thumbprint itself; both are accepted.
    """
    if not value:
        return None
    text = value.strip()
    if len(text) == 40 and all(ch in "0123456789abcdefABCDEF" for ch in text):
        return text.upper()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) == 20:
        return raw.hex().upper()
    if len(raw) == 40:
        try:
            decoded = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
        if all(ch in "0123456789abcdefABCDEF" for ch in decoded):
            return decoded.upper()
    return None


class PasswordCredential(_GraphModel):
    """A client secret. ``secretText`` is only ever returned once, by ``addPassword``."""

    key_id: str | None = None
    display_name: str | None = None
    hint: str | None = None
    secret_text: str | None = Field(default=None, repr=False)
    start_date_time: dt.datetime | None = None
    end_date_time: dt.datetime | None = None


class ResourceAccess(_GraphModel):
    id: str
    type: str = "Role"  # Role = application permission, Scope = delegated


class RequiredResourceAccess(_GraphModel):
    resource_app_id: str
    resource_access: list[ResourceAccess] = []


class Application(_GraphModel):
    id: str  # object id
    app_id: str  # client id
    display_name: str | None = None
    sign_in_audience: str | None = None
    required_resource_access: list[RequiredResourceAccess] = []
    key_credentials: list[KeyCredential] = []
    password_credentials: list[PasswordCredential] = []
    created_date_time: dt.datetime | None = None

    def requested_role_ids(self, resource_app_id: str = MICROSOFT_GRAPH_APP_ID) -> set[str]:
        return {
            access.id.lower()
            for rra in self.required_resource_access
            if rra.resource_app_id.lower() == resource_app_id.lower()
            for access in rra.resource_access
            if access.type == "Role"
        }


class AppRole(_GraphModel):
    id: str
    value: str | None = None
    display_name: str | None = None
    allowed_member_types: list[str] = []
    is_enabled: bool = True


class ServicePrincipal(_GraphModel):
    id: str
    app_id: str
    display_name: str | None = None
    app_roles: list[AppRole] = []
    account_enabled: bool | None = None
    service_principal_type: str | None = None

    def application_roles(self) -> dict[str, str]:
        """Enabled application permissions: value → role id."""
        return {
            role.value: role.id
            for role in self.app_roles
            if role.value and role.is_enabled and "Application" in role.allowed_member_types
        }


class AppRoleAssignment(_GraphModel):
    id: str | None = None
    app_role_id: str
    principal_id: str
    resource_id: str
    principal_display_name: str | None = None
    resource_display_name: str | None = None
    created_date_time: dt.datetime | None = None


class DirectoryRole(_GraphModel):
    id: str | None = None
    display_name: str | None = None
    role_template_id: str | None = None


class JsonHttp(Protocol):
    """The slice of the client's http layer this service needs (``GraphClient.http``)."""

    def get(self, path: str, *, params: Mapping[str, str] | None = None) -> Any: ...

    def post(self, path: str, *, json: Any = None) -> Any: ...

    def patch(self, path: str, *, json: Any = None) -> Any: ...

    def delete(self, path: str) -> Any: ...


def _odata_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class ApplicationsService:
    """Application registrations, service principals, credentials and app role assignments."""

    def __init__(self, http: JsonHttp) -> None:
        self._http = http

    # --- applications ------------------------------------------------------------------------

    def find_applications(self, display_name: str) -> list[Application]:
        body = self._http.get(
            "/applications", params={"$filter": f"displayName eq {_odata_literal(display_name)}"}
        )
        return [Application.model_validate(item) for item in _values(body)]

    def get_application(self, object_id: str) -> Application:
        return Application.model_validate(self._http.get(f"/applications/{quote(object_id)}"))

    def get_application_by_app_id(self, app_id: str) -> Application:
        return Application.model_validate(
            self._http.get(f"/applications(appId={quote(_odata_literal(app_id))})")
        )

    def find_application_by_app_id(self, app_id: str) -> Application | None:
        body = self._http.get("/applications", params={"$filter": f"appId eq {_odata_literal(app_id)}"})
        items = list(_values(body))
        return Application.model_validate(items[0]) if items else None

    def get_key_credentials(self, object_id: str) -> list[KeyCredential]:
        """The credentials with their ``key`` (only a single-object ``$select`` returns it)."""
        body = self._http.get(f"/applications/{quote(object_id)}", params={"$select": "keyCredentials"})
        return [KeyCredential.model_validate(item) for item in body.get("keyCredentials") or []]

    def create_application(
        self,
        display_name: str,
        *,
        sign_in_audience: str = SINGLE_TENANT,
        required_resource_access: Sequence[RequiredResourceAccess] = (),
    ) -> Application:
        body = {
            "displayName": display_name,
            "signInAudience": sign_in_audience,
            "requiredResourceAccess": [
                rra.model_dump(mode="json", by_alias=True) for rra in required_resource_access
            ],
        }
        return Application.model_validate(self._http.post("/applications", json=body))

    def set_required_resource_access(
        self, object_id: str, required_resource_access: Sequence[RequiredResourceAccess]
    ) -> None:
        self._http.patch(
            f"/applications/{quote(object_id)}",
            json={
                "requiredResourceAccess": [
                    rra.model_dump(mode="json", by_alias=True) for rra in required_resource_access
                ]
            },
        )

    def set_key_credentials(self, object_id: str, credentials: Sequence[KeyCredential]) -> None:
        """Replace the whole ``keyCredentials`` list (Graph has no per-item PATCH)."""
        self._http.patch(
            f"/applications/{quote(object_id)}",
            json={"keyCredentials": [credential.to_request() for credential in credentials]},
        )

    def add_key(self, object_id: str, credential: KeyCredential, proof: str) -> KeyCredential:
        body = {"keyCredential": credential.to_request(), "passwordCredential": None, "proof": proof}
        return KeyCredential.model_validate(
            self._http.post(f"/applications/{quote(object_id)}/addKey", json=body) or {}
        )

    def remove_key(self, object_id: str, key_id: str, proof: str) -> None:
        self._http.post(f"/applications/{quote(object_id)}/removeKey", json={"keyId": key_id, "proof": proof})

    def add_password(self, object_id: str, display_name: str) -> PasswordCredential:
        body = {"passwordCredential": {"displayName": display_name}}
        return PasswordCredential.model_validate(
            self._http.post(f"/applications/{quote(object_id)}/addPassword", json=body)
        )

    def remove_password(self, object_id: str, key_id: str) -> None:
        self._http.post(f"/applications/{quote(object_id)}/removePassword", json={"keyId": key_id})

    # --- service principals ------------------------------------------------------------------

    def get_service_principal_by_app_id(self, app_id: str) -> ServicePrincipal:
        return ServicePrincipal.model_validate(
            self._http.get(f"/servicePrincipals(appId={quote(_odata_literal(app_id))})")
        )

    def find_service_principal(self, app_id: str) -> ServicePrincipal | None:
        body = self._http.get("/servicePrincipals", params={"$filter": f"appId eq {_odata_literal(app_id)}"})
        items = list(_values(body))
        return ServicePrincipal.model_validate(items[0]) if items else None

    def create_service_principal(self, app_id: str) -> ServicePrincipal:
        return ServicePrincipal.model_validate(self._http.post("/servicePrincipals", json={"appId": app_id}))

    def graph_service_principal(self) -> ServicePrincipal:
        """Microsoft Graph's own service principal with its ``appRoles`` (the permission ids)."""
        body = self._http.get(
            f"/servicePrincipals(appId={quote(_odata_literal(MICROSOFT_GRAPH_APP_ID))})",
            params={"$select": "id,appId,displayName,appRoles"},
        )
        return ServicePrincipal.model_validate(body)

    # --- the signed-in administrator -----------------------------------------------------------

    def my_directory_roles(self) -> list[DirectoryRole]:
        """Directory roles of the signed-in user (delegated tokens only)."""
        body = self._http.get("/me/transitiveMemberOf/microsoft.graph.directoryRole")
        return [DirectoryRole.model_validate(item) for item in _values(body)]

    # --- app role assignments (admin consent to application permissions) -------------------

    def app_role_assignments(self, service_principal_id: str) -> list[AppRoleAssignment]:
        """What the principal has been granted (``/servicePrincipals/{id}/appRoleAssignments``)."""
        body = self._http.get(f"/servicePrincipals/{quote(service_principal_id)}/appRoleAssignments")
        return [AppRoleAssignment.model_validate(item) for item in _values(body)]

    def grant_app_role(self, *, resource_id: str, principal_id: str, app_role_id: str) -> AppRoleAssignment:
        """Admin consent to one application permission (an app role assignment)."""
        body = {"principalId": principal_id, "resourceId": resource_id, "appRoleId": app_role_id}
        return AppRoleAssignment.model_validate(
            self._http.post(f"/servicePrincipals/{quote(resource_id)}/appRoleAssignedTo", json=body)
        )

    def revoke_app_role(self, *, resource_id: str, assignment_id: str) -> None:
        self._http.delete(f"/servicePrincipals/{quote(resource_id)}/appRoleAssignedTo/{quote(assignment_id)}")


def _values(body: Any) -> Iterator[dict[str, Any]]:
    if isinstance(body, dict):
        for item in body.get("value") or []:
            if isinstance(item, dict):
                yield item


def key_proof(
    private_key: Any, certificate: Any, application_object_id: str, *, now: float | None = None
) -> str:
    """The proof-of-possession JWT ``addKey`` / ``removeKey`` ask for: signed (RS256, ``x5t``) by a
    current certificate of the app, ``aud`` 00000002-0000-0000-c000-000000000000, ``iss`` = the
    application's object id, valid 10 minutes."""
    import hashlib
    import time

    import jwt
    from cryptography.hazmat.primitives.serialization import Encoding

    issued = int(now if now is not None else time.time())
    der = certificate.public_bytes(Encoding.DER)
    x5t = base64.urlsafe_b64encode(hashlib.sha1(der, usedforsecurity=False).digest()).rstrip(b"=").decode()
    token: str = jwt.encode(
        {"aud": PROOF_AUDIENCE, "iss": application_object_id, "nbf": issued, "exp": issued + 600},
        private_key,
        algorithm="RS256",
        headers={"x5t": x5t},
    )
    return token
