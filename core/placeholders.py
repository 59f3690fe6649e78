"""Placeholders in saved replies and study-wide updates: ``{first_name}``, ``{session_time}``, ``{scheduling_link}``,
``{study}``, ``{researcher}``. A message is filled for one participant or refused: an unknown placeholder, or one
with nothing to fill it for that participant (no session booked, no scheduling link), never reaches anyone as
literal braces."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

NAMES = ("first_name", "session_time", "scheduling_link", "study", "researcher")
_PLACEHOLDER = re.compile(r"\{([^{}\s]{0,40})\}")


@dataclass(frozen=True)
class Unfillable(ValueError):
    """What stops a message from being filled: placeholders nobody knows, and those with no value here."""

    unknown: tuple[str, ...] = ()
    empty: tuple[str, ...] = ()

    def __str__(self) -> str:
        parts = []
        if self.unknown:
            parts.append("unknown " + ", ".join("{" + n + "}" for n in self.unknown))
        if self.empty:
            parts.append("nothing to fill " + ", ".join("{" + n + "}" for n in self.empty))
        return "; ".join(parts)


def unknown_in(template: str) -> tuple[str, ...]:
    """The placeholders of ``template`` that are not one of :data:`NAMES`, in order, once each."""
    found = [m.group(1) for m in _PLACEHOLDER.finditer(template)]
    return tuple(dict.fromkeys(name for name in found if name not in NAMES))


def fill(template: str, values: Mapping[str, str | None]) -> str:
    """``template`` with each placeholder replaced by its value; :class:`Unfillable` when one cannot be."""
    unknown = unknown_in(template)
    used = dict.fromkeys(m.group(1) for m in _PLACEHOLDER.finditer(template))
    empty = tuple(name for name in used if name in NAMES and not (values.get(name) or "").strip())
    if unknown or empty:
        raise Unfillable(unknown, empty)
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
