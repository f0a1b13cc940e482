"""Graph change-notification subscriptions: what a subscription is, the resources it may watch, the
tenant's store of them (a tenant extension), and the encryption of rich notifications.

The routes are in :mod:`~meetgate_sandbox.subscriptions_api`, the delivery in
:mod:`~meetgate_sandbox.notifications_delivery`. Facts (Graph docs, ``resources/subscription.md``,
``concepts/change-notifications-*.md``):

- maximum lifetimes per resource (Outlook events 4,230 minutes, Teams online meetings, transcripts and
  recordings 4,320, call records 4,230); a request under 45 minutes is raised to 45;
- ``includeResourceData`` needs ``encryptionCertificate`` (RSA 2048–4096 bits) and ``encryptionCertificateId``;
  resource data is AES-256-CBC encrypted (PKCS7, IV = the key's first 16 bytes) with a random key per
  item, wrapped with RSA-OAEP; ``dataSignature`` is the HMAC-SHA256 of the encrypted bytes with that key.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import threading
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding

from meetgate_sandbox.state import Tenant

__all__ = [
    "CHANGE_TYPES",
    "EXTENSION",
    "NOTIFICATION_APP_ID",
    "DeliverySettings",
    "ResourceRule",
    "Subscription",
    "SubscriptionStore",
    "encrypt_resource_data",
    "match_key",
    "resource_rule",
    "store_of",
]

EXTENSION = "subscriptions"
#: the ``appid`` of the validation tokens Graph puts in rich notifications (Microsoft Graph Change Tracking)
NOTIFICATION_APP_ID = "0bf30f3b-4a52-48df-9a82-234910c4a086"
CHANGE_TYPES = ("created", "updated", "deleted")
MIN_MINUTES = 45
TRANSCRIPTS = "OnlineMeetingTranscript.Read.All"
RECORDINGS = "OnlineMeetingRecording.Read.All"
LIFECYCLE_REQUIRED_MESSAGE = (
    "lifecycleNotificationUrl is required for subscription creation on this resource when the "
    "expirationDateTime value exceeds 1 hour."
)


@dataclass(frozen=True)
class ResourceRule:
    """What Graph allows for one kind of subscription resource."""

    kind: str
    pattern: re.Pattern[str]
    change_types: tuple[str, ...]
    permissions: tuple[str, ...]
    #: the :class:`DeliverySettings` field holding the maximum lifetime in minutes
    max_minutes_setting: str
    #: the named group of ``pattern`` holding a user (its mailbox, or the Teams policy's organizer)
    user_group: str | None = None
    #: Teams artifacts: a lifetime beyond one hour needs ``lifecycleNotificationUrl``
    lifecycle_beyond_hour: bool = False
    #: the Teams application access policy applies (the organizer must be granted to the app)
    teams_policy: bool = False
    beta_only: bool = False


_ID = r"[^/()']+"
RULES: tuple[ResourceRule, ...] = (
    ResourceRule(
        "events",
        re.compile(
            rf"^(?:users/(?P<user>{_ID})|me)/(?:calendar/)?events(?:\?\$select=[^&]+)?$", re.IGNORECASE
        ),
        CHANGE_TYPES,
        ("Calendars.Read", "Calendars.ReadWrite"),
        "outlook_max_minutes",
        user_group="user",
    ),
    *(
        rule
        for artifact, permission in (("Transcripts", TRANSCRIPTS), ("Recordings", RECORDINGS))
        for rule in (
            ResourceRule(
                artifact.lower(),
                re.compile(rf"^communications/onlineMeetings/getAll{artifact}$", re.IGNORECASE),
                ("created",),
                (permission,),
                "teams_max_minutes",
                lifecycle_beyond_hour=True,
            ),
            ResourceRule(
                artifact.lower(),
                re.compile(rf"^users/(?P<user>{_ID})/onlineMeetings/getAll{artifact}$", re.IGNORECASE),
                ("created",),
                (permission,),
                "teams_max_minutes",
                user_group="user",
                lifecycle_beyond_hour=True,
                teams_policy=True,
            ),
            ResourceRule(
                artifact.lower(),
                re.compile(rf"^communications/onlineMeetings/(?P<meeting>{_ID})/{artifact}$", re.IGNORECASE),
                ("created",),
                (permission,),
                "teams_max_minutes",
                lifecycle_beyond_hour=True,
                teams_policy=True,
            ),
        )
    ),
    ResourceRule(
        "callEvents",
        re.compile(r"^communications/onlineMeetings/?\?\$filter=JoinWebUrl eq '(?P<url>.+)'$", re.IGNORECASE),
        ("updated",),
        ("OnlineMeetings.Read.All", "OnlineMeetings.ReadWrite.All"),
        "teams_max_minutes",
        teams_policy=True,
        beta_only=True,
    ),
    ResourceRule(
        "callRecords",
        re.compile(r"^communications/callRecords$", re.IGNORECASE),
        ("created", "updated"),
        ("CallRecords.Read.All",),
        "call_record_max_minutes",
    ),
)


def resource_rule(resource: str) -> tuple[ResourceRule, dict[str, str]] | None:
    """The rule of a subscription ``resource`` and the ids it names, or None when no rule knows it."""
    path = resource.strip().lstrip("/")
    for rule in RULES:
        match = rule.pattern.match(path)
        if match:
            return rule, {k: v for k, v in match.groupdict().items() if v is not None}
    return None


def match_key(resource: str) -> str:
    """How a resource string is compared with a change's topics: case-insensitive, URL-decoded
    (repeatedly), without a leading slash or a trailing one before a query."""
    text = resource.strip()
    for _ in range(3):  # a join URL may come encoded once, twice or not at all
        decoded = urllib.parse.unquote(text)
        if decoded == text:
            break
        text = decoded
    return text.lstrip("/").replace("/?", "?").lower()


#: the control API's names of the :class:`DeliverySettings` fields
_SETTING_NAMES: dict[str, str] = {
    "allowHttpLoopback": "allow_http_loopback",
    "validationTimeoutSeconds": "validation_timeout_seconds",
    "deliveryTimeoutSeconds": "delivery_timeout_seconds",
    "retryWindowSeconds": "retry_window_seconds",
    "retryBaseSeconds": "retry_base_seconds",
    "outlookMaxMinutes": "outlook_max_minutes",
    "teamsMaxMinutes": "teams_max_minutes",
    "callRecordMaxMinutes": "call_record_max_minutes",
}


@dataclass
class DeliverySettings:
    """The tenant's notification switches (control API ``/_sandbox/tenants/{tid}/subscriptions/settings``)."""

    #: deliver to (and validate) ``http://127.0.0.1`` / ``http://localhost`` URLs (tests only)
    allow_http_loopback: bool = False
    #: seconds Graph waits for the validation handshake's answer
    validation_timeout_seconds: float = 10.0
    #: seconds Graph waits for a notification's 2xx
    delivery_timeout_seconds: float = 3.0
    #: how long a failing notification is retried before it is dropped ("up to 4 hours")
    retry_window_seconds: float = 4 * 3600.0
    #: the first retry's delay; each later one doubles it
    retry_base_seconds: float = 60.0
    #: Outlook events: 4,230 minutes per the docs' table; 2026 quotes of learn say 10,080 (UNCONFIRMED)
    outlook_max_minutes: int = 4230
    #: Teams online meetings, transcripts and recordings (4,320; another row of the docs says 4,230)
    teams_max_minutes: int = 4320
    call_record_max_minutes: int = 4230

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, attr) for name, attr in _SETTING_NAMES.items()}

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply camelCase ``changes``; ValueError names an unknown or ill-typed one (nothing applied)."""
        staged: dict[str, Any] = {}
        for name, value in changes.items():
            attr = _SETTING_NAMES.get(name)
            if attr is None:
                raise ValueError(f"unknown setting {name!r}; known: {', '.join(_SETTING_NAMES)}")
            current = getattr(self, attr)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{name} must be a positive number")
            elif isinstance(current, int):
                value = int(value)
            staged[attr] = value
        for attr, value in staged.items():
            setattr(self, attr, value)


def iso(value: dt.datetime) -> str:
    """Graph's subscription time format (``2016-11-20T18:23:45.9356913Z``)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def parse_time(value: str) -> dt.datetime:
    """A DateTimeOffset; ValueError when it is not one."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


@dataclass
class Subscription:
    """One subscription, as Graph stores it (plus what the sandbox needs to match and deliver)."""

    id: str
    resource: str
    change_type: str
    notification_url: str
    expiration: dt.datetime
    application_id: str
    creator_id: str
    version: str = "v1.0"
    client_state: str | None = None
    lifecycle_notification_url: str | None = None
    include_resource_data: bool = False
    encryption_certificate: str | None = None
    encryption_certificate_id: str | None = None
    latest_supported_tls_version: str = "v1_2"
    notification_url_app_id: str | None = None
    #: the resource as changes' topics name it (user keys resolved to ids), see :func:`match_key`
    key: str = ""
    #: the organizer the Teams policy is checked for at delivery (user or meeting organizer)
    policy_user_id: str | None = None
    reauthorization_required: bool = False

    def change_types(self) -> set[str]:
        return {part.strip() for part in self.change_type.split(",") if part.strip()}

    def to_json(self) -> dict[str, Any]:
        """The subscription as Graph answers it."""
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_notification_url,
            "expirationDateTime": iso(self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": self.include_resource_data,
            "latestSupportedTlsVersion": self.latest_supported_tls_version,
            "encryptionCertificate": self.encryption_certificate,
            "encryptionCertificateId": self.encryption_certificate_id,
            "notificationUrlAppId": self.notification_url_app_id,
        }

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["expiration"] = self.expiration.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Subscription:
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["expiration"] = dt.datetime.fromisoformat(str(data["expiration"]))
        return cls(**values)


@dataclass
class DeliveryRecord:
    """One notification (or lifecycle event) for one subscription, and each attempt to deliver it."""

    id: str
    subscription_id: str
    kind: str  # notification | lifecycle
    url: str
    body: dict[str, Any]
    state: str = "pending"  # pending | delivered | dropped
    attempts: list[dict[str, Any]] = field(default_factory=list)
    created: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subscriptionId": self.subscription_id,
            "kind": self.kind,
            "url": self.url,
            "state": self.state,
            "attempts": list(self.attempts),
            "body": self.body,
        }


class SubscriptionStore:
    """A tenant's subscriptions (persisted), its delivery settings (persisted) and delivery records
    (kept in memory, the latest :data:`MAX_RECORDS` per subscription)."""

    MAX_RECORDS = 200

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.subscriptions: dict[str, Subscription] = {}
        self.settings = DeliverySettings()
        self._records: dict[str, list[DeliveryRecord]] = {}
        #: guards the records: the delivery worker updates them from its thread
        self.lock = threading.Lock()

    @classmethod
    def for_tenant(cls, tenant: Tenant, saved: dict[str, Any] | None) -> SubscriptionStore:
        """The tenant extension factory."""
        store = cls(tenant.id)
        if saved:
            store.load_dict(saved)
        return store

    def new_id(self) -> str:
        return str(uuid.uuid4())

    def live(self, now: dt.datetime) -> list[Subscription]:
        """Subscriptions that have not expired; expired ones are removed (Graph deletes them)."""
        for sub_id in [s.id for s in list(self.subscriptions.values()) if s.expiration <= now]:
            self.subscriptions.pop(sub_id, None)
        return list(self.subscriptions.values())

    def add_record(self, record: DeliveryRecord) -> None:
        with self.lock:
            records = self._records.setdefault(record.subscription_id, [])
            records.append(record)
            del records[: -self.MAX_RECORDS]

    def records(self, subscription_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [record.to_json() for record in self._records.get(subscription_id, [])]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subscriptions": [sub.to_dict() for sub in self.subscriptions.values()],
            "settings": self.settings.to_json(),
        }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        for item in data.get("subscriptions") or ():
            sub = Subscription.from_dict(item)
            self.subscriptions[sub.id] = sub
        try:
            self.settings.update(data.get("settings") or {})
        except ValueError:
            self.settings = DeliverySettings()


def store_of(tenant: Tenant) -> SubscriptionStore:
    """The tenant's subscriptions (its extension)."""
    store = tenant.extensions[EXTENSION]
    assert isinstance(store, SubscriptionStore)
    return store


# ---- encryption -----------------------------------------------------------------------------------


def load_encryption_certificate(value: str) -> x509.Certificate:
    """The base64 DER (or PEM) certificate of ``encryptionCertificate``; ValueError when it is none,
    or when its key is not RSA of 2048 to 4096 bits."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        cert = x509.load_pem_x509_certificate(text.encode())
    else:
        cert = x509.load_der_x509_certificate(base64.b64decode(text, validate=False))
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or not 2048 <= key.key_size <= 4096:
        raise ValueError("the encryption certificate's key must be RSA of 2048 to 4096 bits")
    return cert


def encrypt_resource_data(
    resource_data: Mapping[str, Any], certificate_b64: str, certificate_id: str
) -> dict[str, str]:
    """``encryptedContent`` of one notification item: a fresh AES-256 key per item."""
    cert = load_encryption_certificate(certificate_b64)
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    key = os.urandom(32)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(resource_data).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    data = encryptor.update(plain) + encryptor.finalize()
    # RSA-OAEP with SHA-1, as Graph wraps the key (the docs' Java sample: OAEPWithSHA1AndMGF1Padding)
    oaep = rsa_padding.OAEP(
        mgf=rsa_padding.MGF1(hashes.SHA1()),  # noqa: S303
        algorithm=hashes.SHA1(),  # noqa: S303
        label=None,
    )
    wrapped = public_key.encrypt(key, oaep)
    signature = hmac.new(key, data, hashlib.sha256).digest()
    thumbprint = hashlib.sha1(cert.public_bytes(Encoding.DER), usedforsecurity=False).hexdigest().upper()
    return {
        "data": base64.b64encode(data).decode(),
        "dataSignature": base64.b64encode(signature).decode(),
        "dataKey": base64.b64encode(wrapped).decode(),
        "encryptionCertificateId": certificate_id,
        "encryptionCertificateThumbprint": thumbprint,
    }
