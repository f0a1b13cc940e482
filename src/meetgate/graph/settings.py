"""What the Graph client needs to know: tenant, app, credential, where Entra and Graph live."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from meetgate.graph.credentials import CertificateCredential, ClientSecretCredential
from meetgate.graph.errors import CredentialError

DEFAULT_AUTHORITY_URL = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com"
DEFAULT_GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass(frozen=True)
class GraphSettings:
    """One tenant + one app. The same code runs against the sandbox and the real cloud: only
    ``authority_url``, ``graph_url`` and ``ca_bundle`` differ."""

    tenant_id: str
    client_id: str
    credential: CertificateCredential | ClientSecretCredential = field(repr=False)
    authority_url: str = DEFAULT_AUTHORITY_URL
    graph_url: str = DEFAULT_GRAPH_URL
    graph_scope: str = DEFAULT_GRAPH_SCOPE
    ca_bundle: Path | None = None
    timeout_seconds: float = 30.0
    api_version: str = "v1.0"
    #: Teams application access policy the organizers should hold (used in remedies).
    policy_name: str = "Tag:TeamsMeetingsIntegration"
    #: Try HTTP/2 (used when the server offers it through ALPN).
    http2: bool = True

    def __post_init__(self) -> None:
        for name in ("tenant_id", "client_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise CredentialError(f"{name} is required", remedy=f"Set {name} in the profile.")
        if urlsplit(self.authority_url).scheme != "https":
            raise CredentialError(
                f"authority_url must be an https URL, got {self.authority_url!r}",
                remedy="Entra (and MSAL) only talk over HTTPS; the sandbox serves HTTPS too.",
            )
        if urlsplit(self.graph_url).scheme not in ("https", "http"):
            raise CredentialError(f"graph_url must be an http(s) URL, got {self.graph_url!r}")
        if self.timeout_seconds <= 0:
            raise CredentialError("timeout_seconds must be positive")
        object.__setattr__(self, "authority_url", self.authority_url.rstrip("/"))
        object.__setattr__(self, "graph_url", self.graph_url.rstrip("/"))

    @property
    def authority(self) -> str:
        """MSAL's authority: ``{authority_url}/{tenant_id}``."""
        return f"{self.authority_url}/{self.tenant_id}"

    @property
    def base_url(self) -> str:
        """Graph base URL with the version segment, e.g. ``https://graph.microsoft.com/v1.0``."""
        return f"{self.graph_url}/{self.api_version}"

    @property
    def uses_weak_credential(self) -> bool:
        return bool(self.credential.is_weak)
