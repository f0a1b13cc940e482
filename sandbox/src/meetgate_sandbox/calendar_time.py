"""Graph's ``dateTimeTimeZone`` (``{"dateTime": "2027-01-04T09:00:00", "timeZone": "..."}``) as Exchange
reads and writes it.

Exchange takes Windows time zone names (``Pacific Standard Time``) and IANA names
(``America/Los_Angeles``); responses give times in UTC unless the request says
``Prefer: outlook.timezone="..."``, with seven fractional digits (``2027-01-04T17:00:00.0000000``).
The sandbox knows every IANA zone and the Windows names of the zones its users live in
(:data:`WINDOWS_ZONES`); any other name is Graph's 400 ``TimeZoneNotSupportedException``.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "WINDOWS_ZONES",
    "TimeInvalid",
    "parse_date_time_zone",
    "preferred_zone",
    "render_date_time_zone",
    "zone_of",
]

#: Windows time zone names → IANA (CLDR's windowsZones "001" territory), for the zones seen most
WINDOWS_ZONES: Final[dict[str, str]] = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Russian Standard Time": "Europe/Moscow",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "E. South America Standard Time": "America/Sao_Paulo",
    "India Standard Time": "Asia/Calcutta",
    "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "Singapore Standard Time": "Asia/Singapore",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Arabian Standard Time": "Asia/Dubai",
    "Israel Standard Time": "Asia/Jerusalem",
}
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?$")
_PREFER_ZONE = re.compile(r'outlook\.timezone\s*=\s*"([^"]+)"', re.IGNORECASE)


class TimeInvalid(ValueError):
    """A time or time zone Exchange would refuse; ``code`` is Graph's error code for it."""

    def __init__(self, message: str, code: str = "ErrorInvalidRequest") -> None:
        super().__init__(message)
        self.code = code


def zone_of(name: str) -> dt.tzinfo:
    """The zone for a Windows or IANA time zone name."""
    iana = WINDOWS_ZONES.get(name, name)
    if iana.upper() == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(iana)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise TimeInvalid(
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.",
            "TimeZoneNotSupportedException",
        ) from None


def parse_date_time_zone(name: str, value: object) -> tuple[dt.datetime, str]:
    """(the moment as an aware UTC datetime, the time zone name as given) of a ``dateTimeTimeZone``."""
    if not isinstance(value, Mapping):
        raise TimeInvalid(f"{name} must be an object with dateTime and timeZone.")
    raw, zone_name = value.get("dateTime"), value.get("timeZone") or "UTC"
    if not isinstance(raw, str) or not isinstance(zone_name, str):
        raise TimeInvalid(f"{name}.dateTime and {name}.timeZone must be strings.")
    text = raw.strip()
    if text.endswith("Z"):
        text = text[:-1]
    if not _LOCAL_TIME.match(text):
        raise TimeInvalid(f"{name}.dateTime '{raw}' is not a date and time such as 2027-01-04T09:00:00.")
    if "." in text:  # Python reads at most six fractional digits; Graph writes seven
        head, fraction = text.split(".")
        text = f"{head}.{fraction[:6]}"
    local = dt.datetime.fromisoformat(text)
    return local.replace(tzinfo=zone_of(zone_name)).astimezone(dt.UTC), zone_name


def render_date_time_zone(moment: dt.datetime, zone_name: str) -> dict[str, Any]:
    """``moment`` as Graph writes it in ``zone_name`` (seven fractional digits)."""
    local = moment.astimezone(zone_of(zone_name)).replace(tzinfo=None)
    return {
        "dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}0",
        "timeZone": zone_name,
    }


def preferred_zone(prefer_header: str | None) -> str:
    """The zone of ``Prefer: outlook.timezone="..."`` (UTC without one); an unknown zone is refused."""
    match = _PREFER_ZONE.search(prefer_header or "")
    if match is None:
        return "UTC"
    zone_of(match.group(1))
    return match.group(1)
