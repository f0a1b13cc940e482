"""The cells of a bulk row that hold more than one value: attendees (``upn:role``, ``upn:optional``),
meeting options (``lobby=organization;chat=disabled`` or a JSON object) and booleans."""

from __future__ import annotations

import json
from typing import Any

from meetgate.graph.models import (
    Attendee,
    LobbyBypassScope,
    MeetingChatMode,
    OnlineMeetingPresenters,
    OnlineMeetingRole,
)

__all__ = ["OPTIONS", "bool_cell", "parse_attendees", "parse_options"]

#: options: name → (MeetingRequest field, allowed values or None for booleans)
OPTIONS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "lobby": (
        "lobby_bypass_scope",
        tuple(v.value for v in LobbyBypassScope if v.value != "unknownFutureValue"),
    ),
    "presenters": (
        "allowed_presenters",
        tuple(v.value for v in OnlineMeetingPresenters if v.value != "unknownFutureValue"),
    ),
    "chat": (
        "allow_meeting_chat",
        tuple(v.value for v in MeetingChatMode if v.value != "unknownFutureValue"),
    ),
    "dialInBypass": ("dial_in_bypass", None),
    "recordAutomatically": ("record_automatically", None),
    "entryExitAnnounced": ("is_entry_exit_announced", None),
}
_ROLES = tuple(v.value for v in OnlineMeetingRole if v.value != "unknownFutureValue")


def parse_attendees(value: Any) -> list[Attendee]:
    """``a@x.com;b@x.com:presenter;c@y.org:optional`` (or a JSON list of UPNs / attendee objects)."""
    items: list[Any]
    if isinstance(value, list):
        items = value
    else:
        items = [part for part in str(value).replace(",", ";").split(";") if part.strip()]
    attendees: list[Attendee] = []
    for item in items:
        if isinstance(item, dict):
            attendees.append(Attendee.model_validate(item))
            continue
        text = str(item).strip()
        upn, *marks = text.split(":")
        role, optional = "attendee", False
        for raw_mark in marks:
            mark = raw_mark.strip()
            if mark == "optional":
                optional = True
            elif mark in _ROLES:
                role = mark
            else:
                raise ValueError(
                    f"attendee {text!r}: {mark!r} is neither a role ({', '.join(_ROLES)}) nor optional"
                )
        attendees.append(Attendee(upn=upn, role=role, optional=optional))
    return attendees


def bool_cell(value: Any, name: str) -> bool:
    """A cell read as true or false (true/yes/1/on, false/no/0/off); anything else is a ValueError."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError(f"option {name} must be true or false, got {value!r}")


def parse_options(value: Any) -> dict[str, Any]:
    """``lobby=organization;chat=disabled`` or a JSON object → MeetingRequest fields."""
    pairs: dict[str, Any]
    if isinstance(value, dict):
        pairs = dict(value)
    else:
        text = str(value).strip()
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except ValueError:
                raise ValueError("options look like JSON but do not parse") from None
            if not isinstance(loaded, dict):
                raise ValueError("options must be a JSON object")
            pairs = loaded
        else:
            pairs = {}
            for part in text.split(";"):
                if not part.strip():
                    continue
                name, sep, item = part.partition("=")
                if not sep:
                    raise ValueError(f"option {part.strip()!r} must be name=value")
                pairs[name.strip()] = item.strip()
    fields: dict[str, Any] = {}
    by_lower = {name.lower(): name for name in OPTIONS}
    for raw_name, item in pairs.items():
        known = by_lower.get(str(raw_name).lower())
        if known is None:
            raise ValueError(f"unknown option {raw_name!r}; known: {', '.join(OPTIONS)}")
        name = known
        target, allowed = OPTIONS[name]
        if allowed is None:
            fields[target] = bool_cell(item, name)
        else:
            text = str(item).strip()
            match = {v.lower(): v for v in allowed}.get(text.lower())
            if match is None:
                raise ValueError(f"option {name}={text!r}: must be one of {', '.join(allowed)}")
            fields[target] = match
    return fields
