"""The one clock of the reminder logic. Pure functions take ``now``; the entry points read it from here,
so tests (and the demo) can move time without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def _system() -> datetime:
    return datetime.now(UTC)


_clock: Clock = _system


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _clock().astimezone(UTC)


def set_clock(clock: Clock | None) -> None:
    """Use ``clock`` from now on; None restores the system clock."""
    global _clock
    _clock = clock or _system
