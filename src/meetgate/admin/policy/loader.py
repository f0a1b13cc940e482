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

YAML has the same keys. Relative CSV paths are relative to the policy file.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from meetgate.admin.policy.model import DesiredPolicy, OrganizerSources, PolicyError, tag_identity

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
POLICY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_CSV_COLUMNS = ("userprincipalname", "upn", "id", "objectid", "user", "email", "mail")


def is_guid(value: str) -> bool:
    return bool(GUID.match(value))


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


def parse_desired_state(data: Any, path: Path, default_identity: str | None = None) -> DesiredPolicy:
    """Validate an already parsed policy file (a mapping); ``default_identity`` fills a missing identity."""
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: the policy file must be a mapping with [policy] and [organizers]")
    unknown = set(data) - {"policy", "organizers", "warnings"}
    if unknown:
        raise PolicyError(
            f"{path}: unknown section(s) {', '.join(sorted(unknown))}",
            "the file has [policy], [organizers] and optional [warnings]; see docs/policy.md",
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
    return DesiredPolicy(
        identity=identity,
        app_ids=app_ids,
        description=description,
        organizers=OrganizerSources(
            users=_strings(org.get("users"), f"{path}: [organizers] users"),
            csv_files=csv_files,
            groups=groups,
        ),
        growth_warning_percent=float(growth_pct),
        growth_warning_min_users=growth_min,
        source=path,
    )


def load_desired_state(path: Path, default_identity: str | None = None) -> DesiredPolicy:
    """Read a ``.toml``, ``.yaml`` or ``.yml`` policy file."""
    if not path.is_file():
        raise PolicyError(
            f"policy file {path} does not exist", "write one (see docs/policy.md) or pass --file"
        )
    text = path.read_text(encoding="utf-8")
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
    return parse_desired_state(data, path, default_identity)


def read_organizer_csv(path: Path) -> list[str]:
    """UPNs or ids from a CSV: a known header column, else the first column of every row."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = [row for row in csv.reader(fh) if row and any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(c) for c in _CSV_COLUMNS if c in header), None)
    body: Iterable[list[str]] = rows[1:] if column is not None else rows
    index = column or 0
    return [row[index].strip() for row in body if len(row) > index and row[index].strip()]
