"""Graph's ``signIn`` records, made from the token endpoint's log of one tenant.

One record per call to the token endpoint (:class:`~meetgate_sandbox.recording.TokenRecord`):

- ``servicePrincipal`` sign-ins (client credentials): the app, its service principal, the credential's
  key id and thumbprint; no user;
- ``interactiveUser`` sign-ins (the device code grant — an admin signing in to ``meetgate setup``) and
  ``nonInteractiveUser`` ones (a refresh token redeemed): the user (``userId``, ``userDisplayName``,
  ``userPrincipalName``, from the sign-in's :class:`~meetgate_sandbox.directory_audit.UserSignInDetail`),
  ``clientAppUsed`` ``Mobile Apps and Desktop clients``, ``deviceDetail`` from the client's
  ``User-Agent`` / ``x-client-os``, and Entra's answers for a tenant without Conditional Access or
  Identity Protection: ``conditionalAccessStatus`` ``notApplied``, no ``appliedConditionalAccessPolicies``,
  every risk field ``none``.

Every record has the same keys (Graph's signIn type), ``null`` where they do not apply. The location
comes from the client IP (:data:`LOCATIONS`, the sandbox's stand-in for Entra's IP geolocation).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from meetgate_sandbox.apps import FIRST_PARTY_PUBLIC_CLIENTS
from meetgate_sandbox.directory_audit import EXTENSION as PROVISIONING
from meetgate_sandbox.directory_audit import ProvisioningExtension, UserSignInDetail
from meetgate_sandbox.recording import TokenRecord
from meetgate_sandbox.state import Tenant

GRAPH_RESOURCE_ID = "00000003-0000-0000-c000-000000000000"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: what Entra reports for public clients signing in through MSAL (device code, refresh token)
DESKTOP_CLIENT = "Mobile Apps and Desktop clients"

#: IP prefix -> location; the sandbox's stand-in for Entra's IP geolocation (documentation ranges)
LOCATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "203.0.113.",
        {
            "city": "Sydney",
            "state": "New South Wales",
            "countryOrRegion": "AU",
            "lat": -33.8688,
            "lon": 151.2093,
        },
    ),
    (
        "198.51.100.",
        {
            "city": "Amsterdam",
            "state": "North Holland",
            "countryOrRegion": "NL",
            "lat": 52.3676,
            "lon": 4.9041,
        },
    ),
    (
        "192.0.2.",
        {
            "city": "Sao Paulo",
            "state": "Sao Paulo",
            "countryOrRegion": "BR",
            "lat": -23.5558,
            "lon": -46.6396,
        },
    ),
    ("", {"city": "Dublin", "state": "Leinster", "countryOrRegion": "IE", "lat": 53.3498, "lon": -6.2603}),
)

_OS = (
    (re.compile(r"windows nt 10|windows ?10", re.I), "Windows 10"),
    (re.compile(r"windows|win32", re.I), "Windows"),
    (re.compile(r"iphone|ipad|ios", re.I), "Ios"),
    (re.compile(r"android", re.I), "Android"),
    (re.compile(r"mac ?os|macintosh|darwin", re.I), "MacOs"),
    (re.compile(r"linux", re.I), "Linux"),
)
_BROWSERS = (
    (re.compile(r"Edg(?:e|A|iOS)?/([\d.]+)"), "Edge"),
    (re.compile(r"Firefox/([\d.]+)"), "Firefox"),
    (re.compile(r"Chrome/([\d.]+)"), "Chrome"),
    (re.compile(r"Version/([\d.]+).*Safari/"), "Safari"),
)


def location_of(ip: str) -> dict[str, Any]:
    """Graph's ``signInLocation`` for a client IP."""
    place = next(p for prefix, p in LOCATIONS if ip.startswith(prefix))
    return {
        "city": place["city"],
        "state": place["state"],
        "countryOrRegion": place["countryOrRegion"],
        "geoCoordinates": {"altitude": None, "latitude": place["lat"], "longitude": place["lon"]},
    }


def device_detail(user_agent: str, client_os: str = "") -> dict[str, Any]:
    """Graph's ``deviceDetail`` as Entra derives it from the client: OS and browser (or rich client)."""
    seen = f"{client_os} {user_agent}"
    system = next((name for pattern, name in _OS if pattern.search(seen)), "")
    browser = "Rich Client"
    for pattern, name in _BROWSERS:
        if match := pattern.search(user_agent):
            browser = f"{name} {match.group(1)}"
            break
    return {
        "deviceId": "",
        "displayName": None,
        "operatingSystem": system,
        "browser": browser,
        "isCompliant": None,
        "isManaged": None,
        "trustType": None,
    }


def event_type(record: TokenRecord) -> str:
    """``servicePrincipal``, ``interactiveUser`` (device code) or ``nonInteractiveUser`` (refresh)."""
    if record.grant_type == "client_credentials" or record.credential_type in ("certificate", "secret"):
        return "servicePrincipal"
    if record.grant_type == "refresh_token":
        return "nonInteractiveUser"
    return "interactiveUser"


def _user_details(tenant: Tenant) -> dict[str, UserSignInDetail]:
    ext = tenant.extensions.get(PROVISIONING)
    return dict(ext.user_sign_ins) if isinstance(ext, ProvisioningExtension) else {}


def _app_name(tenant: Tenant, app_id: str | None) -> str | None:
    if not app_id:
        return None
    app = tenant.apps.application_by_app_id(app_id)
    if app is not None:
        return app.display_name
    return FIRST_PARTY_PUBLIC_CLIENTS.get(app_id.lower())


_RISK_NONE = {
    "riskDetail": "none",
    "riskLevelAggregated": "none",
    "riskLevelDuringSignIn": "none",
    "riskState": "none",
    "riskEventTypes": [],
    "riskEventTypes_v2": [],
}


def sign_in_of(tenant: Tenant, record: TokenRecord, detail: UserSignInDetail | None = None) -> dict[str, Any]:
    """The Graph ``signIn`` for one token endpoint call (``detail``: its user, for a user sign-in)."""
    kind = event_type(record)
    for_user = kind != "servicePrincipal"
    sp = tenant.apps.service_principal_by_app_id(record.app_id) if record.app_id else None
    user = tenant.users.get(detail.user_id) if for_user and detail is not None else None
    basis = f"{tenant.id}|{record.request_id}|{record.time}|{record.correlation_id}"
    credential = {"certificate": "certificate", "secret": "clientSecret"}.get(record.credential_type or "")
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, basis)),
        "createdDateTime": record.time,
        "userDisplayName": user.display_name if user else None,
        "userPrincipalName": user.user_principal_name if user else None,
        "userId": user.id if user else (detail.user_id if for_user and detail else None),
        "appId": record.app_id,
        "appDisplayName": _app_name(tenant, record.app_id),
        "servicePrincipalId": None if for_user else (sp.id if sp else None),
        "servicePrincipalName": None if for_user else (sp.display_name if sp else None),
        "ipAddress": record.client_ip,
        "clientAppUsed": DESKTOP_CLIENT if for_user else None,
        "correlationId": record.correlation_id,
        "conditionalAccessStatus": "notApplied",
        "appliedConditionalAccessPolicies": [],
        "isInteractive": kind == "interactiveUser",
        **_RISK_NONE,
        "resourceDisplayName": "Microsoft Graph",
        "resourceId": GRAPH_RESOURCE_ID,
        "status": {
            "errorCode": 0 if record.success else (record.error_code or 0),
            "failureReason": None if record.success else (record.error or "Other."),
            "additionalDetails": None,
        },
        "deviceDetail": device_detail(detail.user_agent, detail.client_os)
        if for_user and detail
        else device_detail(""),
        "location": location_of(record.client_ip),
        "signInEventTypes": [kind],
        "clientCredentialType": credential or "none",
        "servicePrincipalCredentialKeyId": record.key_id,
        "servicePrincipalCredentialThumbprint": record.thumbprint,
        "tokenIssuerType": "AzureAD",
        "processingTimeInMilliseconds": 0,
    }


def sign_ins_of(tenant: Tenant) -> list[dict[str, Any]]:
    """Every sign-in the tenant's token log holds, as Graph ``signIn`` records (oldest first)."""
    details = _user_details(tenant)
    return [sign_in_of(tenant, r, details.get(r.request_id)) for r in list(tenant.log.tokens)]
