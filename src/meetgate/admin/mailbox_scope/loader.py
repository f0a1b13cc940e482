"""Read the policy file's ``[mailbox_scope]`` section (the calendar plane), validating every field.

TOML, beside the Teams policy's sections::

    [mailbox_scope]
    # organizers: the Teams policy's [organizers] unless users, csv or groups are given here
    users = ["alice@contoso.com"]
    csv = ["calendar-organizers.csv"]
    groups = ["<entra group object id>"]       # expanded transitively, then tagged
    # or: a mail-enabled group whose DIRECT members are in scope (MemberOfGroup)
    group = "<entra group object id>"
    # or: an Entra administrative unit whose user members are in scope (-RecipientAdministrativeUnitScope);
    # the organizers above (or the policy's) are who should be in it: meetgate checks, never changes it
    administrative_unit = "<administrative unit object id>"
    scope_name = "meetgate approved organizers"
    role = "Application Calendars.ReadWrite"  # or "Application Calendars.Read"
    custom_attribute = "CustomAttribute10"     # the tag Set-Mailbox writes when there is no group
    tag = "meetgate-organizer"
    outside = ["bob@contoso.com"]              # must stay out of scope (verify); else picked for you

A refusal names the file, the field and, where it can be found, the line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from meetgate.admin.mailbox_scope.model import (
    DEFAULT_ATTRIBUTE,
    DEFAULT_ROLE,
    DEFAULT_SCOPE_NAME,
    DEFAULT_TAG,
    ROLES,
    DesiredMailboxScope,
    MailboxScopeError,
)
from meetgate.admin.policy.members import check_reference, is_guid, read_organizer_csv, strip_blanks
from meetgate.admin.policy.model import DesiredPolicy, OrganizerSources, PolicyError

SECTION = "mailbox_scope"
KEYS = (
    "users",
    "csv",
    "groups",
    "group",
    "administrative_unit",
    "scope_name",
    "role",
    "custom_attribute",
    "tag",
    "outside",
)
_ATTRIBUTE = re.compile(r"^CustomAttribute([1-9]|1[0-5])$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,127}$")


def _line(text: str | None, *needles: str) -> str:
    """``, line N``: the first line naming every needle (TOML and YAML keep no positions)."""
    if text:
        for number, line in enumerate(text.splitlines(), 1):
            if all(needle in line for needle in needles):
                return f", line {number}"
    return ""


def _where(path: Path, text: str | None, key: str, value: str | None = None) -> str:
    needles = (value,) if value else (key,)
    return f"{path}{_line(text, *needles)}: [{SECTION}] {key}"


def _strings(section: dict[str, Any], key: str, path: Path, text: str | None) -> tuple[str, ...]:
    value = section.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise MailboxScopeError(
            f"{_where(path, text, key)} must be a list of strings", 'write it as ["a", "b"]'
        )
    return tuple(v for v in (strip_blanks(x) for x in value) if v)


def _text(section: dict[str, Any], key: str, default: str, path: Path, text: str | None) -> str:
    value = section.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise MailboxScopeError(f"{_where(path, text, key)} must be a non-empty string")
    return value.strip()


def _references(values: tuple[str, ...], key: str, path: Path, text: str | None) -> tuple[str, ...]:
    for number, value in enumerate(values, 1):
        try:
            check_reference(value, f"{_where(path, text, key, value)} entry {number}")
        except PolicyError as exc:
            raise MailboxScopeError(str(exc), exc.remedy) from None
    return values


def parse_mailbox_scope(
    data: Any, path: Path, policy: DesiredPolicy, *, text: str | None = None
) -> DesiredMailboxScope | None:
    """The ``[mailbox_scope]`` section of an already parsed policy file; None when it has none."""
    if not isinstance(data, dict) or SECTION not in data:
        return None
    section = data[SECTION]
    if not isinstance(section, dict):
        raise MailboxScopeError(f"{path}{_line(text, SECTION)}: [{SECTION}] must be a table")
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        raise MailboxScopeError(
            f"{path}{_line(text, unknown[0])}: unknown key(s) in [{SECTION}]: {', '.join(unknown)}",
            f"use {', '.join(KEYS)} (docs/admin-guide.md, the calendar plane)",
        )
    users = _references(_strings(section, "users", path, text), "users", path, text)
    csv_files = tuple(
        (p if p.is_absolute() else path.parent / p)
        for p in (Path(s) for s in _strings(section, "csv", path, text))
    )
    for file in csv_files:
        if not file.is_file():
            raise MailboxScopeError(
                f"{_where(path, text, 'csv', file.name)}: CSV file {file} does not exist",
                "fix the path (relative to the policy file)",
            )
        try:
            read_organizer_csv(file)
        except PolicyError as exc:
            raise MailboxScopeError(str(exc), exc.remedy) from None
    groups = _strings(section, "groups", path, text)
    for ref in groups:
        if not is_guid(ref):
            raise MailboxScopeError(
                f"{_where(path, text, 'groups', ref)}: {ref!r} is not a group object id (GUID)",
                "copy the group's Object ID from Entra",
            )
    group = section.get("group")
    if group is not None and (not isinstance(group, str) or not is_guid(group.strip())):
        raise MailboxScopeError(
            f"{_where(path, text, 'group')} must be a group object id (GUID)",
            "copy the Object ID of a mail-enabled security group or Microsoft 365 group from Entra",
        )
    unit = section.get("administrative_unit")
    if unit is not None and (not isinstance(unit, str) or not is_guid(unit.strip())):
        raise MailboxScopeError(
            f"{_where(path, text, 'administrative_unit')} must be an administrative unit object id (GUID)",
            "copy the Object ID of the administrative unit from Entra (Identity > Roles & admins > "
            "Admin units)",
        )
    if unit is not None and group is not None:
        raise MailboxScopeError(
            f"{_where(path, text, 'administrative_unit')}: give either group (MemberOfGroup) or "
            "administrative_unit (-RecipientAdministrativeUnitScope), not both"
        )
    own = bool(users or csv_files or groups)
    if group is not None and own:
        raise MailboxScopeError(
            f"{_where(path, text, 'group')}: give either group (its direct members are in scope) or "
            "users / csv / groups (their mailboxes are tagged), not both"
        )
    scope_name = _text(section, "scope_name", DEFAULT_SCOPE_NAME, path, text)
    if not _NAME.match(scope_name):
        raise MailboxScopeError(
            f"{_where(path, text, 'scope_name')} {scope_name!r} is not a valid scope name",
            "use up to 64 letters, digits, spaces, '.', '_' or '-'",
        )
    role = _text(section, "role", DEFAULT_ROLE, path, text)
    canonical = next((r for r in ROLES if r.lower() == role.lower()), None)
    if canonical is None:
        raise MailboxScopeError(
            f"{_where(path, text, 'role')} {role!r} is not a calendar application role",
            f"use {' or '.join(repr(r) for r in ROLES)}",
        )
    attribute = _text(section, "custom_attribute", DEFAULT_ATTRIBUTE, path, text)
    if not _ATTRIBUTE.match(attribute):
        raise MailboxScopeError(
            f"{_where(path, text, 'custom_attribute')} {attribute!r} is not CustomAttribute1 … CustomAttribute15"
        )
    tag = _text(section, "tag", DEFAULT_TAG, path, text)
    if not _TAG.match(tag):
        raise MailboxScopeError(
            f"{_where(path, text, 'tag')} {tag!r} is not a valid tag",
            "use letters, digits, spaces, '.', '_', '@' or '-' (no quotes)",
        )
    outside = _references(_strings(section, "outside", path, text), "outside", path, text)
    if not policy.app_ids:
        raise MailboxScopeError(f"{path}: [policy] app_ids is empty", "list the application (client) id")
    return DesiredMailboxScope(
        app_id=policy.app_ids[0],
        organizers=OrganizerSources(users=users, csv_files=csv_files, groups=groups)
        if own
        else policy.organizers,
        organizers_from="own" if own or group is not None else "policy",
        group=group.strip().lower() if isinstance(group, str) else None,
        administrative_unit=unit.strip().lower() if isinstance(unit, str) else None,
        scope_name=scope_name,
        role=canonical,
        attribute="CustomAttribute" + _ATTRIBUTE.match(attribute).group(1),  # type: ignore[union-attr]
        tag=tag,
        outside=outside,
        source=path,
    )


def load_mailbox_scope(path: Path, policy: DesiredPolicy) -> DesiredMailboxScope | None:
    """The ``[mailbox_scope]`` of the policy file at ``path`` (None when the file has none)."""
    from meetgate.admin.policy.loader import read_policy_file

    try:
        data, text = read_policy_file(path)
    except PolicyError as exc:
        raise MailboxScopeError(str(exc), exc.remedy) from None
    return parse_mailbox_scope(data, path, policy, text=text)


def is_scoped(path: Path | None) -> bool:
    """Whether the policy file at ``path`` scopes calendar placement (has a ``[mailbox_scope]``)."""
    if path is None or not path.is_file():
        return False
    from meetgate.admin.policy.loader import read_policy_file

    try:
        data, _ = read_policy_file(path)
    except PolicyError:
        return False
    return isinstance(data, dict) and SECTION in data
