"""A moment as the participant reads it on their own clock, for the root cards of both chat platforms."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def in_zone(when: datetime, tz: str | None) -> str | None:
    """``when`` in the zone ``tz``: ``14:00 in America/Chicago``, with the day (``Sat 28 Nov, 02:00 in Asia/Tokyo``)
    when it is another calendar day there than in UTC. None without a zone or for one that is not an IANA name (it
    comes from outside: never an error, just not shown). Plain words: the caller escapes them."""
    if not tz or not tz.strip():
        return None
    try:
        zone = ZoneInfo(tz.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    utc = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    local = utc.astimezone(zone)
    if local.date() == utc.date():
        return f"{local:%H:%M} in {tz.strip()}"
    return f"{local:%a} {local.day} {local:%b, %H:%M} in {tz.strip()}"
