"""A bulk row's placement: ``standalone`` (an online meeting, ``graph.meetings``) or ``calendar`` (an
Exchange calendar meeting, ``graph.events``), and the columns only a calendar row may fill.

Strict like the rest of the file format: an unknown placement, a recurrence Graph cannot express, a
zone that is not IANA, or a calendar-only column on a standalone row is a problem of that row, naming
the column; nothing is guessed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from meetgate.graph.errors import MeetingRuleError
from meetgate.graph.models import PLACEMENTS, Attendee
from meetgate.graph.recurrence import parse_rrule, zone_of

#: columns only a calendar row may fill
CALENDAR_COLUMNS = ("recurrence", "time_zone")
_PLACEMENT_REMEDY = (
    "Write calendar for an Exchange calendar meeting (invitations, series), standalone (or nothing) "
    "for an online meeting on nobody's calendar."
)


@dataclass
class PlacementCheck:
    """A row's placement, the MeetingRequest fields it adds, and its problems (column, message, remedy)."""

    placement: str = "standalone"
    fields: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str, str, str]] = field(default_factory=list)

    def refuse(self, column: str, message: str, remedy: str) -> None:
        self.problems.append((column, message, remedy))


def check_placement(
    operation: str, data: dict[str, Any], start: dt.datetime | None, attendees: list[Attendee] | None
) -> PlacementCheck:
    """Check the row's ``placement``, ``recurrence`` and ``time_zone`` columns (and optional attendees,
    which only calendar rows may have) for a job of ``operation``; ``start`` is the row's parsed start."""
    result = PlacementCheck()
    raw = data.get("placement")
    if raw is not None:
        text = str(raw).strip().lower()
        if text not in PLACEMENTS:
            result.refuse("placement", f"must be standalone or calendar, got {raw!r}", _PLACEMENT_REMEDY)
            return result
        result.placement = text
    if result.placement == "standalone":
        for name in CALENDAR_COLUMNS:
            if name in data:
                result.refuse(
                    name,
                    "needs placement calendar: a standalone meeting is on nobody's calendar",
                    "Set the row's placement column to calendar, or empty this column.",
                )
        optional = [attendee.upn for attendee in attendees or [] if attendee.optional]
        if optional:
            result.refuse(
                "attendees",
                f"optional attendees ({', '.join(optional)}) need placement calendar",
                "Set the row's placement column to calendar, or drop :optional.",
            )
        return result
    if operation == "cancel":
        for name in CALENDAR_COLUMNS:
            if name in data:
                result.refuse(name, f"a cancel job takes no {name}", f"Remove the {name} column.")
        return result
    if operation == "create":
        result.fields["placement"] = "calendar"
    zone = "UTC"
    if "time_zone" in data:
        try:
            zone_of(str(data["time_zone"]))
        except MeetingRuleError as exc:
            result.refuse("time_zone", str(exc), exc.remedy or "")
        else:
            zone = str(data["time_zone"])
            result.fields["time_zone"] = zone
    if operation == "create" and "start" not in data:
        result.refuse(
            "start",
            "a calendar meeting needs a start",
            "Fill in the start (and end) columns, ISO 8601 with a timezone.",
        )
    if "recurrence" in data:
        rule = str(data["recurrence"])
        if operation != "create":
            result.refuse(
                "recurrence",
                "only create jobs take a recurrence",
                "Remove the recurrence column; change a series with `meetgate meetings update`.",
            )
        elif start is not None:
            try:
                parse_rrule(rule, start=start, time_zone=zone)
            except MeetingRuleError as exc:
                result.refuse("recurrence", str(exc), exc.remedy or "")
            else:
                result.fields["recurrence"] = rule
    return result
