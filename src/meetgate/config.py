"""Settings: profiles in ``meetgate.toml`` plus ``MEETGATE_*`` environment variables.

A profile names one tenant and one app. The file looks like::

    default_profile = "contoso"

    [profiles.contoso]
    tenant_id = "..."
    client_id = "..."
    private_key_path = "keys/TeamsMeetingsIntegration.key.pem"
    certificate_path = "keys/TeamsMeetingsIntegration.pem"

Every key can be overridden by ``MEETGATE_<KEY>`` (``MEETGATE_TENANT_ID``...). The active profile is
``--profile``, else ``MEETGATE_PROFILE``, else ``default_profile``, else ``default``. The file is
``--config``, else ``MEETGATE_CONFIG``, else ``./meetgate.toml``.

Secrets never live in this file: the private key is a file (mode 0600), its passphrase and any client
secret come from environment variables whose *names* the profile holds.

Nothing is read at import time; call :func:`load_profile`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meetgate.errors import MeetgateError

DEFAULT_CONFIG_FILE = "meetgate.toml"
ENV_PREFIX = "MEETGATE_"


class ConfigError(MeetgateError, ValueError):
    """The configuration is missing, unreadable or invalid; the message says which key and what to do."""


@dataclass(frozen=True)
class Profile:
    """One tenant + one app, as meetgate uses it. Field docs double as the settings reference."""

    name: str = "default"
    #: Directory (tenant) id, a GUID, or the tenant's verified domain.
    tenant_id: str | None = None
    #: Application (client) id of the app registration meetgate acts as.
    client_id: str | None = None
    #: PEM private key of the app's certificate (mode 0600).
    private_key_path: Path | None = None
    #: PEM public certificate that belongs to the private key.
    certificate_path: Path | None = None
    #: PKCS#12 file with key and certificate, instead of the two PEM files.
    pfx_path: Path | None = None
    #: Name of the environment variable that holds the key or PFX passphrase.
    passphrase_env: str = "MEETGATE_KEY_PASSPHRASE"
    #: Name of the environment variable that holds a client secret (certificates are recommended).
    client_secret_env: str = "MEETGATE_CLIENT_SECRET"
    #: Entra authority host (sovereign clouds and the sandbox differ).
    authority_url: str = "https://login.microsoftonline.com"
    #: Microsoft Graph base URL, without the version segment.
    graph_url: str = "https://graph.microsoft.com"
    #: OAuth scope requested for Graph tokens.
    graph_scope: str = "https://graph.microsoft.com/.default"
    #: Extra CA bundle to trust (the sandbox's CA); the system store is used otherwise.
    ca_bundle: Path | None = None
    #: Application access policy identity.
    policy_name: str = "Tag:TeamsMeetingsIntegration"
    #: Desired-state policy file (approved organizers).
    policy_file: Path | None = None
    #: The tenant's primary .onmicrosoft.com domain (Connect-ExchangeOnline -Organization).
    exchange_organization: str | None = None
    #: Application registration display name used by `setup app`.
    app_display_name: str = "Teams Meetings Integration"
    #: Object id of the application (written by `setup app`).
    application_object_id: str | None = None
    #: Object id of the app's service principal (written by `setup app`).
    service_principal_id: str | None = None
    #: SQLAlchemy URL of the store (SQLite file by default, PostgreSQL for several replicas).
    store_url: str = "sqlite:///.meetgate/meetgate.db"
    #: Redis URL for shared rate limits and token cache; in-process when unset.
    redis_url: str | None = None
    #: HTTP timeout for Graph and token calls, seconds.
    timeout_seconds: float = 30.0
    #: Meeting artifacts the app reads: any of attendance, transcripts, recordings (default none);
    #: `setup app` requests the permission of each kind listed, and only those.
    artifacts: tuple[str, ...] = ()
    # --- the gateway (`meetgate serve`; a flag of serve overrides; unset: the gateway's default) ---
    #: Requests per minute for consumers without a rate of their own (gateway default 600).
    gateway_default_consumer_rate_per_minute: int | None = None
    #: Requests per minute per organizer over all consumers; 0: no limit (default 300).
    gateway_organizer_rate_per_minute: int | None = None
    #: Meetings per organizer per UTC day over all consumers; 0: no limit (default 2000).
    gateway_organizer_daily_quota: int | None = None
    #: Client-side limit of Graph calls per second over all replicas; 0: off (default 300).
    gateway_graph_rate_per_second: float | None = None
    #: Graph calls allowed at once before that limit spaces them (default 300).
    gateway_graph_burst: int | None = None
    #: Longest a request waits for Graph before it gets 503 + Retry-After, seconds (default 10).
    gateway_graph_max_wait_seconds: float | None = None
    #: Prefix of the gateway's Redis keys (default ``meetgate:``).
    gateway_redis_prefix: str | None = None
    #: Take the client IP from X-Forwarded-For, right-most untrusted entry (default false).
    gateway_trust_forwarded_for: bool | None = None
    #: Trusted proxies for that: comma-separated IP addresses or CIDR networks (default 127.0.0.1).
    gateway_forwarded_allow_ips: str | None = None
    #: Allow webhook URLs http://127.0.0.1 and http://localhost (development; default false).
    gateway_webhook_allow_local_http: bool | None = None
    #: Allow webhook targets at private and link-local addresses (default false: refused).
    gateway_webhook_allow_private: bool | None = None
    #: Meeting artifacts as webhook events from Graph: off, push (subscriptions) or poll (default off).
    gateway_notifications: str | None = None
    #: The gateway's public base URL Graph posts change notifications to (push).
    gateway_notification_url: str | None = None
    #: Folder of the notifications' encryption certificate (default: beside an SQLite store).
    gateway_notification_key_dir: Path | None = None
    #: Seconds between subscription upkeep or polling rounds (default 60).
    gateway_notification_interval_seconds: float | None = None
    #: Extra keys found in the file that this version does not know (kept to warn, never used).
    unknown_keys: tuple[str, ...] = field(default=(), compare=False)
    #: Why the file gave this profile nothing (no file, or no such profile in it); "" when it did.
    not_found: str = field(default="", compare=False, repr=False)

    def passphrase(self, environ: Mapping[str, str] | None = None) -> bytes | None:
        env = os.environ if environ is None else environ
        value = env.get(self.passphrase_env)
        return value.encode() if value else None

    def client_secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if environ is None else environ
        return env.get(self.client_secret_env) or None

    def require(self, *keys: str) -> None:
        """Raise :class:`ConfigError` naming every missing key among ``keys``."""
        missing = [key for key in keys if getattr(self, key) in (None, "")]
        if missing:
            hints = ", ".join(f"{key} (or {ENV_PREFIX}{key.upper()})" for key in missing)
            if self.not_found:
                # most likely a typo in --config, $MEETGATE_CONFIG or $MEETGATE_PROFILE: say so first
                raise ConfigError(
                    f"profile '{self.name}' is missing {hints}: {self.not_found}; check the settings "
                    "file and profile name, or run `meetgate setup app` to create it"
                )
            raise ConfigError(
                f"profile '{self.name}' is missing {hints}; run `meetgate setup app` or edit meetgate.toml"
            )


def _keys_of_type(name: str) -> set[str]:
    """The profile's keys whose declared type names ``name`` (``Path``, ``int``, ``float``, ``bool``)."""
    return {f.name for f in dataclasses.fields(Profile) if name in str(f.type).replace("|", " ").split()}


_PATH_KEYS = _keys_of_type("Path")
_BOOL_KEYS = _keys_of_type("bool")
#: numbers and the kind each must be; 0 is allowed (for the gateway's limits: "no limit") unless positive
_NUMBER_KEYS: dict[str, type[int] | type[float]] = {
    **dict.fromkeys(_keys_of_type("int"), int),
    **dict.fromkeys(_keys_of_type("float"), float),
}
_POSITIVE_KEYS = {"timeout_seconds"}
#: the gateway's settings a profile may set: profile key -> GatewaySettings field
GATEWAY_KEYS = {
    f.name: f.name.removeprefix("gateway_")
    for f in dataclasses.fields(Profile)
    if f.name.startswith("gateway_")
}
SETTING_KEYS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Profile) if f.name not in {"name", "unknown_keys", "not_found"}
)


def config_path(explicit: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(explicit or env.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_CONFIG_FILE)


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def _artifact_kinds(value: Any) -> tuple[str, ...]:
    """A TOML array of kinds, or (from the environment) a comma-separated list."""
    from meetgate.graph.artifact_models import ARTIFACT_KINDS

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f'artifacts must be a list such as ["attendance"], got {value!r}')
    kinds = [item.strip().lower() for item in items if item.strip()]
    unknown = [kind for kind in kinds if kind not in ARTIFACT_KINDS]
    if unknown:
        raise ConfigError(
            f"artifacts: unknown kind(s) {', '.join(map(repr, unknown))}; use {', '.join(ARTIFACT_KINDS)}"
        )
    return tuple(kind for kind in ARTIFACT_KINDS if kind in kinds)


def _coerce(key: str, value: Any, base: Path) -> Any:
    if key == "artifacts":
        return _artifact_kinds(value)
    if value is None or value == "":
        return None
    if key in _PATH_KEYS:
        path = Path(str(value)).expanduser()
        return path if path.is_absolute() else (base / path)
    if key in _NUMBER_KEYS:
        return _number(key, value, _NUMBER_KEYS[key], positive=key in _POSITIVE_KEYS)
    if key in _BOOL_KEYS:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.strip().lower() in {"true", "1", "yes"}
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {value!r}")
    if key == "tenant_id":
        from meetgate.graph.identifiers import tenant_problem

        problem = tenant_problem(value)
        if problem:
            raise ConfigError(f"tenant_id {problem}")
    if (
        key.endswith("_url")
        and value
        and not value.startswith(("https://", "http://", "sqlite", "postgresql", "redis"))
    ):
        raise ConfigError(f"{key} must be a URL, got {value!r}")
    return value


def _number(key: str, value: Any, kind: type[int] | type[float], *, positive: bool) -> int | float:
    """A number of ``kind`` (TOML number, or the text of an environment variable), 0 or more —
    more than 0 when ``positive``."""
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    what = "a whole number" if kind is int else "a number"
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be {what}, got {value!r}") from None
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{key} must be {what}, got {value!r}")
    if positive and number <= 0:
        raise ConfigError(f"{key} must be positive, got {value!r}")
    if number < 0:
        raise ConfigError(f"{key} must be 0 or more, got {value!r}")
    return number


def _line_of(path: Path, profile: str, key: str) -> int | None:
    """The line of ``key`` in ``[profiles.<profile>]`` of the file, for error messages (best effort)."""
    import re

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    header = re.compile(r"^\s*\[\s*profiles\s*\.\s*(\"?)" + re.escape(profile) + r"\1\s*\]\s*(#.*)?$")
    assignment = re.compile(r"^\s*(\"?)" + re.escape(key) + r"\1\s*=")
    inside = False
    for number, text in enumerate(lines, start=1):
        if text.lstrip().startswith("["):
            inside = bool(header.match(text))
        elif inside and assignment.match(text):
            return number
    return None


def load_profile(
    config: str | Path | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Profile:
    """Read the active profile, with ``MEETGATE_<KEY>`` overrides applied."""
    env = os.environ if environ is None else environ
    path = config_path(config, env)
    data = read_config_file(path)
    name = profile or env.get(f"{ENV_PREFIX}PROFILE") or data.get("default_profile") or "default"
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: [profiles] must be a table of profiles")
    section = profiles.get(name, {})
    if profile and profiles and name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"profile '{name}' is not in {path} (profiles: {known})")
    not_found = ""
    if not path.exists():
        not_found = f"there is no settings file {path}"
    elif name not in profiles:
        not_found = f"{path} has no profile '{name}' (profiles: {', '.join(sorted(profiles)) or 'none'})"
    base = path.parent.resolve()
    values: dict[str, Any] = {}
    unknown = tuple(sorted(k for k in section if k not in SETTING_KEYS))
    for key in SETTING_KEYS:
        raw = section.get(key)
        env_value = env.get(f"{ENV_PREFIX}{key.upper()}")
        try:
            if env_value is not None:
                values[key] = _coerce(key, env_value, Path.cwd())
            elif raw is not None:
                values[key] = _coerce(key, raw, base)
        except ConfigError as exc:  # say where the bad value came from
            if env_value is not None:
                where = f"{ENV_PREFIX}{key.upper()}"
            else:
                line = _line_of(path, name, key)
                where = f"{path} [profiles.{name}]" + (f" line {line}" if line else "")
            raise ConfigError(f"{where}: {exc}") from None
    values = {k: v for k, v in values.items() if v is not None}
    return Profile(name=name, unknown_keys=unknown, not_found=not_found, **values)


def save_profile_values(path: Path, profile: str, values: Mapping[str, Any]) -> None:
    """Merge ``values`` into ``[profiles.<profile>]`` of the file, creating it when missing.

    The file is edited in place: comments, key order, blank lines and quoting of everything not
    named in ``values`` stay as they were; a changed key keeps its place and its end-of-line
    comment; a new key goes at the end of the profile's table; ``None`` removes a key. The new text
    is written to a temporary file and renamed over the old one, so a crash leaves either version.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    for key in values:
        if key not in SETTING_KEYS:
            raise ConfigError(f"unknown setting {key!r}")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}; fix it, then run the command again") from exc
    profiles = document.get("profiles")
    if profiles is None:
        profiles = tomlkit.table(is_super_table=True)
        document["profiles"] = profiles
    elif not isinstance(profiles, MutableMapping):
        raise ConfigError(f"{path}: [profiles] must be a table of profiles")
    section = profiles.get(profile)
    if section is None:
        section = tomlkit.table()
        profiles[profile] = section
    elif not isinstance(section, MutableMapping):
        raise ConfigError(f"{path}: [profiles.{profile}] must be a table of settings")
    for key, value in values.items():
        if value is None:
            if key in section:
                del section[key]
        elif key in section:
            section[key] = str(value) if isinstance(value, Path) else value  # keeps its place and comment
        else:
            _append_setting(section, key, str(value) if isinstance(value, Path) else value)
    if "default_profile" not in document:
        _set_default_profile(document, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(tomlkit.dumps(document), encoding="utf-8")
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o777)
    tmp.replace(path)


def _append_setting(section: Any, key: str, value: Any) -> None:
    """Add a key after the table's last key, not after the comments and blank lines that follow it
    (in a TOML file those belong to the next table, e.g. ``# the reader profile`` above
    ``[profiles.reader]``)."""
    import tomlkit.items

    if not isinstance(section, tomlkit.items.Table):
        section[key] = value
        return
    body = section.value.body
    last = max((i for i, (name, _) in enumerate(body) if name is not None), default=-1)
    if last == len(body) - 1:
        section[key] = value
    else:
        section.value._insert_at(last + 1, key, value)


def _set_default_profile(document: Any, profile: str) -> None:
    """Add ``default_profile`` above the first table, and above the comment lines that introduce it."""
    import tomlkit
    import tomlkit.items

    body = document.body
    first_table = next((i for i, (name, _) in enumerate(body) if name is not None), len(body))
    at = first_table
    while at > 0 and isinstance(body[at - 1][1], tomlkit.items.Comment):
        at -= 1
    if at == len(body):
        document["default_profile"] = profile
        return
    item = tomlkit.item(profile)
    item.trivia.trail = "\n\n"  # a blank line between it and what follows
    document._insert_at(at, "default_profile", item)
