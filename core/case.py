"""A participant's thread as a live case: its state, how long the participant has waited, when to nudge the team.

Pure functions over plain values (standard library only). The bridge keeps the facts on the thread row
(``waiting_since``, owner, last message each way, seen) and asks here what they mean at a moment.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from core.domain import Direction
from core.when import parse_duration, zone_for

SESSION_LENGTH = timedelta(hours=1)  # a session counts as over this long after it started
SOON = timedelta(hours=24)  # a session closer than this makes the participant's wait urgent
MIN_THRESHOLD = timedelta(minutes=1)
MAX_THRESHOLD = timedelta(days=7)
THRESHOLD_EXAMPLES = "30m, 45 min, 1h, 1h30m or 2 hours"


class CaseState(enum.StrEnum):
    NEW = "new"  # nobody has written yet
    WAITING_ON_TEAM = "waiting_on_team"  # the participant wrote last and nobody has answered
    WAITING_ON_PARTICIPANT = "waiting_on_participant"  # the team wrote last
    SESSION_SOON = "session_soon"  # the session is less than 24 h away (and nobody is waiting on the team)
    SESSION_OVER = "session_over"
    OPTED_OUT = "opted_out"


@dataclass(frozen=True)
class NudgePolicy:
    """A study's thresholds (``/rally settings``): ``wait`` counted in working hours of the owner's zone,
    ``soon`` wall-clock when the session is less than :data:`SOON` away."""

    wait: timedelta = timedelta(minutes=30)
    soon: timedelta = timedelta(minutes=10)
    day_start: time = time(9, 0)
    day_end: time = time(18, 0)


def case_state(
    *,
    opted_out: bool,
    waiting_since: datetime | None,
    last_out_at: datetime | None,
    session_starts_at: datetime | None,
    now: datetime,
) -> CaseState:
    """The state of a thread at ``now``; the first that applies of: opted out, waiting on the team, session over,
    session soon, waiting on the participant, new."""
    if opted_out:
        return CaseState.OPTED_OUT
    if waiting_since is not None:
        return CaseState.WAITING_ON_TEAM
    if session_starts_at is not None:
        if now >= session_starts_at + SESSION_LENGTH:
            return CaseState.SESSION_OVER
        if now >= session_starts_at - SOON:
            return CaseState.SESSION_SOON
    if last_out_at is not None:
        return CaseState.WAITING_ON_PARTICIPANT
    return CaseState.NEW


def _utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (a naive one is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _local_to_utc(day: date, clock: time, zone: tzinfo) -> datetime:
    """Wall-clock ``day clock`` in ``zone`` as UTC (a skipped time reads with the offset before the jump, a
    repeated one as the first of the two)."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def working_time_after(
    start: datetime, amount: timedelta, tz: str | None, *, day_start: time, day_end: time
) -> datetime:
    """The moment (UTC) at which ``amount`` of working time has passed since ``start``.

    Working time is Monday to Friday from ``day_start`` to ``day_end`` on the wall clock of ``tz`` (UTC when unknown),
    so a DST change moves the hours with the clock. Counting begins at the first working moment at or after
    ``start``; with ``amount`` 0 that moment is the answer.
    """
    if day_end <= day_start:
        raise ValueError("day_end must be after day_start")
    if amount < timedelta(0):
        raise ValueError("amount must not be negative")
    zone = zone_for(tz)
    start = _utc(start)
    remaining = amount
    day = start.astimezone(zone).date()
    while True:
        if day.weekday() < 5:
            opens, closes = _local_to_utc(day, day_start, zone), _local_to_utc(day, day_end, zone)
            begin = max(start, opens)
            if begin < closes:
                if remaining <= closes - begin:
                    return begin + remaining
                remaining -= closes - begin
        day += timedelta(days=1)


def nudge_due(
    waiting_since: datetime,
    *,
    stage: int,
    policy: NudgePolicy,
    tz: str | None,
    session_starts_at: datetime | None,
    now: datetime,
) -> datetime:
    """When nudge ``stage`` (1: the owner, 2: the thread, after twice the threshold) falls due for a participant
    waiting since ``waiting_since``: ``policy.soon`` on the wall clock when the session is ahead and less than
    :data:`SOON` away at ``now``, else ``policy.wait`` of working time in ``tz``."""
    if session_starts_at is not None and now < session_starts_at and session_starts_at - now < SOON:
        return _utc(waiting_since) + policy.soon * stage
    return working_time_after(
        waiting_since, policy.wait * stage, tz, day_start=policy.day_start, day_end=policy.day_end
    )


def first_response_times(messages: Iterable[tuple[int, str, datetime]]) -> list[timedelta]:
    """How long participants waited for a first answer: ``(thread_id, direction, sent_at)`` messages, read per
    thread in time order. A wait opens at a participant's message (unless one is open) and closes at the team's
    next message; closed waits are returned in the order they closed, open ones are left out."""
    threads: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for thread_id, direction, sent_at in messages:
        threads[thread_id].append((_utc(sent_at), direction))
    closed: list[tuple[datetime, timedelta]] = []
    for items in threads.values():
        opened: datetime | None = None
        for sent_at, direction in sorted(items, key=lambda item: item[0]):
            if direction == Direction.FROM_PARTICIPANT and opened is None:
                opened = sent_at
            elif direction == Direction.TO_PARTICIPANT and opened is not None:
                closed.append((sent_at, sent_at - opened))
                opened = None
    closed.sort(key=lambda item: item[0])
    return [length for _, length in closed]


def median(values: Sequence[timedelta]) -> timedelta | None:
    """The median of ``values`` (the mean of the middle two for an even count); None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return ordered[middle - 1] + (ordered[middle] - ordered[middle - 1]) / 2


def parse_threshold(words: str) -> timedelta:
    """A nudge threshold as a researcher types it (``30m``, ``30 min``, ``1h30m``, ``90 minutes``, ``2 hours``).

    Raises ``ValueError`` with a sentence for the researcher for anything else or outside 1 minute .. 7 days."""
    parts = words.split()
    found = parse_duration(parts) if parts else None
    if found is None or found[1] != len(parts):
        raise ValueError(f'"{words.strip()}" is not a length of time I can read. Try {THRESHOLD_EXAMPLES}.')
    length = found[0]
    if not MIN_THRESHOLD <= length <= MAX_THRESHOLD:
        raise ValueError(
            f'"{words.strip()}" is {format_wait(length)}: a threshold must be between 1 minute and 7 days '
            f"(for example {THRESHOLD_EXAMPLES})."
        )
    return length


def format_wait(length: timedelta) -> str:
    """A wait for people, to its two largest units: ``45 min``, ``2 h 5 min``, ``3 d 4 h`` (``0 min`` if shorter)."""
    minutes = max(int(length.total_seconds()) // 60, 0)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"
