"""Read the policy file (TOML or YAML) and organizer CSV files, validating every field.

TOML::

    [policy]
    identity = "Tag:TeamsMeetingsIntegration"
    app_ids = ["11111111-2222-3333-4444-555555555555"]
    description = "Restricts Teams meeting creation to approved operator accounts"

    [organizers]
    users = ["alice@contoso.com", "7f7c…-object-id"]
    csv = ["approved-organizers.csv"]
    groups = ["<entra group object id>"]

    [warnings]
    growth_percent = 50
    growth_min_users = 10
    mass_revoke_percent = 20
    mass_revoke_min_users = 2

YAML has the same keys. Relative CSV paths are relative to the policy file. Every organizer
reference (``users`` and every CSV row) is checked when the file is read: see
:mod:`meetgate.admin.policy.members`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from meetgate.admin.policy.members import (
    GUID,
    check_reference,
    is_guid,
    read_organizer_csv,
    strip_blanks,
)
from meetgate.admin.policy.model import (
    MASS_REVOKE_MIN_USERS,
    MASS_REVOKE_PERCENT,
    DesiredPolicy,
    OrganizerSources,
    PolicyError,
    tag_identity,
)

__all__ = [
    "GUID",
    "is_guid",
    "load_desired_state",
    "parse_desired_state",
    "read_organizer_csv",
    "read_policy_file",
]

WARNING_KEYS = ("growth_percent", "growth_min_users", "mass_revoke_percent", "mass_revoke_min_users")
POLICY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


def _strings(data: Any, where: str) -> tuple[str, ...]:
    if data is None:
        return ()
    if isinstance(data, str):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise PolicyError(f"{where} must be a list of strings", 'write it as ["a", "b"]')
    return tuple(x.strip() for x in data if x.strip())


def _table(data: Any, key: str, path: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise PolicyError(f"{path}: [{key}] must be a table")
    return value


def _line_of(text: str | None, value: str) -> str:
    """``, line N`` of the first line of ``text`` naming ``value`` (TOML and YAML keep no positions)."""
    if text:
        for number, line in enumerate(text.splitlines(), 1):
            if value in line:
                return f", line {number}"
    return ""


def _users(data: Any, path: Path, text: str | None) -> tuple[str, ...]:
    """The ``[organizers] users`` list, every entry a UPN or an object id."""
    if data is None:
        return ()
    if isinstance(data, str):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise PolicyError(f"{path}: [organizers] users must be a list of strings", 'write it as ["a", "b"]')
    users = []
    for number, raw in enumerate(data, 1):
        value = strip_blanks(raw)
        if value:
            check_reference(value, f"{path}{_line_of(text, value)}: [organizers] users entry {number}")
            users.append(value)
    return tuple(users)


def parse_desired_state(
    data: Any, path: Path, default_identity: str | None = None, *, text: str | None = None
) -> DesiredPolicy:
    """Validate an already parsed policy file (a mapping); ``default_identity`` fills a missing identity.

    ``text`` (the file as read) lets a refusal name the line of a bad organizer reference. Every CSV
    file is read here too, so a members file that cannot be read with certainty is refused at once."""
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: the policy file must be a mapping with [policy] and [organizers]")
    unknown = set(data) - {"policy", "organizers", "warnings", "mailbox_scope"}
    if unknown:
        raise PolicyError(
            f"{path}: unknown section(s) {', '.join(sorted(unknown))}",
            "the file has [policy], [organizers] and optional [warnings] and [mailbox_scope] "
            "(the calendar plane, `meetgate mailbox-scope`); see docs/policy.md",
        )
    policy = _table(data, "policy", path)
    identity = policy.get("identity") or policy.get("name") or default_identity
    if not isinstance(identity, str) or not identity.strip():
        raise PolicyError(
            f"{path}: [policy] identity is missing", 'add identity = "Tag:TeamsMeetingsIntegration"'
        )
    identity = tag_identity(identity)
    if not POLICY_NAME.match(identity[4:]) or identity[4:].lower() == "global":
        raise PolicyError(
            f"{path}: policy identity {identity!r} is not a valid policy name",
            "use letters, digits, space, '.', '_' or '-' (not 'Global'), e.g. Tag:TeamsMeetingsIntegration",
        )
    app_ids = _strings(policy.get("app_ids", policy.get("appIds")), f"{path}: [policy] app_ids")
    if not app_ids:
        raise PolicyError(f"{path}: [policy] app_ids is empty", "list the application (client) id of the app")
    bad = [a for a in app_ids if not is_guid(a)]
    if bad:
        raise PolicyError(
            f"{path}: app ids must be GUIDs: {', '.join(bad)}", "copy the Application (client) ID"
        )
    description = policy.get("description", "")
    if not isinstance(description, str):
        raise PolicyError(f"{path}: [policy] description must be a string")
    org = _table(data, "organizers", path)
    extra = set(org) - {"users", "csv", "groups"}
    if extra:
        raise PolicyError(
            f"{path}: unknown key(s) in [organizers]: {', '.join(sorted(extra))}", "use users, csv, groups"
        )
    base = path.parent
    csv_files = tuple(
        (p if p.is_absolute() else base / p) for p in (Path(s) for s in _strings(org.get("csv"), "csv"))
    )
    for file in csv_files:
        if not file.is_file():
            raise PolicyError(
                f"{path}: CSV file {file} does not exist", "fix the path (relative to the policy file)"
            )
        read_organizer_csv(file)  # refused now (file and line), not later as "unknown users"
    groups = _strings(org.get("groups"), f"{path}: [organizers] groups")
    bad = [g for g in groups if not is_guid(g)]
    if bad:
        raise PolicyError(f"{path}: group ids must be object ids (GUIDs): {', '.join(bad)}")
    warnings = _table(data, "warnings", path)
    growth_pct = warnings.get("growth_percent", 50)
    growth_min = warnings.get("growth_min_users", 10)
    if not isinstance(growth_pct, int | float) or growth_pct < 0:
        raise PolicyError(f"{path}: [warnings] growth_percent must be a non-negative number")
    if not isinstance(growth_min, int) or growth_min < 0:
        raise PolicyError(f"{path}: [warnings] growth_min_users must be a non-negative integer")
    revoke_pct = warnings.get("mass_revoke_percent", MASS_REVOKE_PERCENT)
    revoke_min = warnings.get("mass_revoke_min_users", MASS_REVOKE_MIN_USERS)
    if isinstance(revoke_pct, bool) or not isinstance(revoke_pct, int | float) or not 0 <= revoke_pct <= 100:
        raise PolicyError(
            f"{path}: [warnings] mass_revoke_percent must be a number from 0 to 100",
            f"e.g. mass_revoke_percent = {MASS_REVOKE_PERCENT:g} (revoking every holder always warns)",
        )
    if isinstance(revoke_min, bool) or not isinstance(revoke_min, int) or revoke_min < 1:
        raise PolicyError(
            f"{path}: [warnings] mass_revoke_min_users must be a positive integer",
            f"e.g. mass_revoke_min_users = {MASS_REVOKE_MIN_USERS}",
        )
    unknown_warnings = set(warnings) - set(WARNING_KEYS)
    if unknown_warnings:
        raise PolicyError(
            f"{path}: unknown key(s) in [warnings]: {', '.join(sorted(unknown_warnings))}",
            f"use {', '.join(WARNING_KEYS)}",
        )
    return DesiredPolicy(
        identity=identity,
        app_ids=app_ids,
        description=description,
        organizers=OrganizerSources(
            users=_users(org.get("users"), path, text),
            csv_files=csv_files,
            groups=groups,
        ),
        growth_warning_percent=float(growth_pct),
        growth_warning_min_users=growth_min,
        mass_revoke_percent=float(revoke_pct),
        mass_revoke_min_users=revoke_min,
        source=path,
    )


def read_policy_file(path: Path) -> tuple[Any, str]:
    """The parsed ``.toml``, ``.yaml`` or ``.yml`` policy file and its text (for line numbers)."""
    if not path.is_file():
        raise PolicyError(
            f"policy file {path} does not exist", "write one (see docs/policy.md) or pass --file"
        )
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolicyError(
            f"{path}: the policy file is not UTF-8 text (byte at offset {exc.start}: {exc.reason})",
            "save it as UTF-8",
        ) from None
    except OSError as exc:
        raise PolicyError(f"cannot read the policy file {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path} is not valid TOML: {exc}") from exc
    elif suffix in {".yaml", ".yml"}:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"{path} is not valid YAML: {exc}") from exc
    else:
        raise PolicyError(f"{path}: unknown policy file type {suffix!r}", "use .toml, .yaml or .yml")
    return data, text


def load_desired_state(path: Path, default_identity: str | None = None) -> DesiredPolicy:
    """Read a ``.toml``, ``.yaml`` or ``.yml`` policy file."""
    data, text = read_policy_file(path)
    return parse_desired_state(data, path, default_identity, text=text)
