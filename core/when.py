"""``<when>`` and ``<duration>`` as researchers type them: a small explicit grammar, fully tested.

    when     := "in" duration
              | duration "before" ["the"] "session"
              | [day] ["at"] clock [zone]
    day      := "today" | "tomorrow" | weekday | YYYY-MM-DD       (weekday: mon, monday, tue, tues, ...)
    clock    := H[:MM] ("am"|"pm") | H[:MM] " " ("am"|"pm") | HH:MM | "noon" | "midnight"
    zone     := "UTC" | "GMT" | "Z" | an IANA name such as Europe/Berlin
    duration := (N unit)+ | N unit ...                           (2h, 1h30m, 90 min, 2 days, an hour)
    noshow   := ("no-show" | "noshow" | "no show") ["follow-up" | "followup"]   (not a moment: see parse_noshow)

Wall-clock forms are read in the researcher's time zone unless a zone is given. ``in`` adds real elapsed
time (``in 1d`` is 24 hours even across a DST change); ``tomorrow 9am`` is 9:00 on the wall clock. A weekday
is its next occurrence still ahead (today if the time has not passed yet). A local time that does not exist
(clocks jump forward) is refused; one that occurs twice (clocks fall back) is the first of the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_UNITS = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 604800),
}
_UNIT_RE = "|".join(sorted(_UNITS, key=len, reverse=True))
_COMPACT_PART = re.compile(rf"(\d+)({_UNIT_RE})")
_COMPACT = re.compile(rf"(?:\d+(?:{_UNIT_RE}))+")
_WEEKDAYS = {
    **dict.fromkeys(("mon", "monday"), 0),
    **dict.fromkeys(("tue", "tues", "tuesday"), 1),
    **dict.fromkeys(("wed", "weds", "wednesday"), 2),
    **dict.fromkeys(("thu", "thur", "thurs", "thursday"), 3),
    **dict.fromkeys(("fri", "friday"), 4),
    **dict.fromkeys(("sat", "saturday"), 5),
    **dict.fromkeys(("sun", "sunday"), 6),
}
_CLOCK_12 = re.compile(r"(\d{1,2})(?::(\d{2}))?(am|pm)")
_CLOCK_24 = re.compile(r"(\d{1,2}):(\d{2})")
_HOUR = re.compile(r"(\d{1,2})(?::(\d{2}))?")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
MAX_AHEAD = timedelta(days=366)

EXAMPLES = "in 2h, tomorrow 9am, fri 14:30, 2026-12-01 10:00, 1h before session"


class WhenError(ValueError):
    """``<when>`` could not be understood or is not usable; the message says why, for people."""


@dataclass(frozen=True)
class When:
    at: datetime  # UTC
    spec: str  # the words that said when, as typed
    consumed: int  # how many words they were


def zone_for(name: str | None) -> ZoneInfo:
    """The researcher's zone (Slack ``tz``); UTC when unknown or not a zone this machine knows."""
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_duration(words: list[str], start: int = 0) -> tuple[timedelta, int] | None:
    """A duration at ``words[start:]``: (length, words used), or None when there is none there."""
    seconds, i = 0, start
    while i < len(words):
        word = words[i].lower().rstrip(",")
        if _COMPACT.fullmatch(word):
            seconds += sum(int(n) * _UNITS[u] for n, u in _COMPACT_PART.findall(word))
            i += 1
        elif (word.isdigit() or word in ("a", "an")) and i + 1 < len(words) and words[i + 1].lower() in _UNITS:
            seconds += (1 if word in ("a", "an") else int(word)) * _UNITS[words[i + 1].lower()]
            i += 2
        elif word == "and" and i > start and i + 1 < len(words) and parse_duration(words, i + 1) is not None:
            i += 1
        else:
            break
    if i == start:
        return None
    return timedelta(seconds=seconds), i - start


def parse_noshow(words: list[str]) -> int:
    """How many of ``words`` say ``no-show`` (``noshow``, ``no show``, each optionally followed by ``follow-up``);
    0 when they do not start with it. Not a moment: the no-show follow-up is due a fixed time after the session
    starts (``bridge/reminders/session_defaults.py``), so only the words are read here."""
    lower = [w.lower() for w in words[:3]]
    if lower[:1] in (["no-show"], ["noshow"]):
        used = 1
    elif lower[:2] == ["no", "show"]:
        used = 2
    else:
        return 0
    return used + 1 if lower[used : used + 1] in (["follow-up"], ["followup"]) else used


def parse_when(
    words: list[str], *, now: datetime, tz: str | None, session_starts_at: datetime | None = None, strict: bool = True
) -> When:
    """The moment ``words`` start with. Raises WhenError with a sentence for the researcher.

    ``strict`` False checks only the words (for a form, before the researcher's zone and the session time are
    known): a moment in the past, too far ahead or before an unknown session is not refused, and ``at`` is then
    only approximate. The command itself always parses strictly.
    """
    if not words:
        raise WhenError(f"Say when, for example: {EXAMPLES}.")
    zone = zone_for(tz)
    lower = [w.lower() for w in words]
    if lower[0] == "in":
        found = parse_duration(words, 1)
        if found is None or found[0] <= timedelta(0):
            raise WhenError(f'"in" needs a duration such as 2h, 30m or 1d (you wrote "{" ".join(words[:2])}").')
        return _checked(now + found[0], words, 1 + found[1], now, strict=strict)
    found = parse_duration(words)
    if found is not None:
        return _before_session(words, found, now, session_starts_at, strict)
    return _wall_clock(words, lower, zone, now, strict)


def _before_session(
    words: list[str], found: tuple[timedelta, int], now: datetime, session_starts_at: datetime | None, strict: bool
) -> When:
    length, used = found
    rest = [w.lower() for w in words[used : used + 3]]
    if rest[:1] != ["before"]:
        raise WhenError(f'Say "in {" ".join(words[:used])}" or "{" ".join(words[:used])} before session".')
    tail = 2 if rest[1:2] == ["session"] else 3 if rest[1:3] == ["the", "session"] else 0
    if not tail:
        raise WhenError('Only "before session" is understood after a duration (e.g. "1h before session").')
    if session_starts_at is None:
        if not strict:
            return When(at=now, spec=" ".join(words[: used + tail]), consumed=used + tail)
        raise WhenError("Rally has no session time for this participant, so there is nothing to count back from.")
    return _checked(session_starts_at - length, words, used + tail, now, session=True, strict=strict)


def _wall_clock(words: list[str], lower: list[str], zone: ZoneInfo, now: datetime, strict: bool) -> When:
    i, offset = 0, 0
    day: date | None = None
    weekday: int | None = None
    if lower[0] in ("today", "tomorrow"):
        offset, i = (0 if lower[0] == "today" else 1), 1
    elif lower[0] in _WEEKDAYS:
        weekday, i = _WEEKDAYS[lower[0]], 1
    elif (match := _ISO_DATE.fullmatch(lower[0])) is not None:
        try:
            day = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError as exc:
            raise WhenError(f'"{words[0]}" is not a date on the calendar.') from exc
        i = 1
    if i < len(lower) and lower[i] == "at":
        i += 1
    clock, used = _clock(lower, i)
    if clock is None:
        if i == 0:
            raise WhenError(f'I can\'t read "{" ".join(words[:3])}" as a time. Try: {EXAMPLES}.')
        raise WhenError(f'Add a time after "{" ".join(words[:i])}", e.g. "{words[0]} 9am" or "{words[0]} 14:30".')
    i += used
    if i < len(words) and (explicit := _zone(words[i])) is not None:
        zone, i = explicit, i + 1
    local_today = now.astimezone(zone).date()
    if offset or lower[0] == "today":
        day = local_today + timedelta(days=offset)
    if weekday is not None:
        ahead = (weekday - local_today.weekday()) % 7
        day = local_today + timedelta(days=ahead)
        if _local(day, clock, zone, words) <= now:
            day += timedelta(days=7)
    if day is None:
        day = local_today
    at = _local(day, clock, zone, words)
    if strict and at <= now and lower[0] not in ("today", "tomorrow") and not _ISO_DATE.fullmatch(lower[0]):
        raise WhenError(f'{" ".join(words[:i])} has already passed today; say "tomorrow {" ".join(words[:i])}".')
    return _checked(at, words, i, now, strict=strict)


def _clock(lower: list[str], i: int) -> tuple[time | None, int]:
    if i >= len(lower):
        return None, 0
    word = lower[i]
    if word == "noon":
        return time(12, 0), 1
    if word == "midnight":
        return time(0, 0), 1
    if (m := _CLOCK_12.fullmatch(word)) is not None:
        return _twelve(int(m[1]), int(m[2] or 0), m[3]), 1
    if (m := _HOUR.fullmatch(word)) is not None and i + 1 < len(lower) and lower[i + 1] in ("am", "pm"):
        return _twelve(int(m[1]), int(m[2] or 0), lower[i + 1]), 2
    if (m := _CLOCK_24.fullmatch(word)) is not None:
        hour, minute = int(m[1]), int(m[2])
        if hour > 23 or minute > 59:
            raise WhenError(f'"{word}" is not a time of day.')
        return time(hour, minute), 1
    if _HOUR.fullmatch(word):
        raise WhenError(
            f'Is "{word}" morning or evening? Write {word}am, {word}pm or {int(word.split(":")[0]):02d}:00.'
        )
    return None, 0


def _twelve(hour: int, minute: int, half: str) -> time:
    if not 1 <= hour <= 12 or minute > 59:
        raise WhenError(f"{hour}:{minute:02d}{half} is not a time of day.")
    return time(hour % 12 + (12 if half == "pm" else 0), minute)


def _zone(word: str) -> ZoneInfo | None:
    if word.lower() in ("utc", "gmt", "z"):
        return ZoneInfo("UTC")
    if "/" not in word:
        return None
    try:
        return ZoneInfo(word)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _local(day: date, clock: time, zone: ZoneInfo, words: list[str]) -> datetime:
    """Wall-clock ``day clock`` in ``zone`` as UTC; refuses a time skipped by a DST change."""
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise WhenError(
            f"{clock:%H:%M} does not exist on {day:%a %d %b %Y} in {zone.key}: the clocks jump forward then. "
            "Pick another time."
        )
    return first.astimezone(UTC)


def _checked(
    at: datetime, words: list[str], used: int, now: datetime, *, session: bool = False, strict: bool = True
) -> When:
    at = at.astimezone(UTC)
    if not strict:
        return When(at=at, spec=" ".join(words[:used]), consumed=used)
    if at <= now:
        what = "That is before now" if not session else "That moment before the session has already passed"
        raise WhenError(f"{what} ({format_moment(at, 'UTC')}). Pick a time in the future.")
    if at - now > MAX_AHEAD:
        raise WhenError("That is more than a year away; pick a nearer time.")
    return When(at=at, spec=" ".join(words[:used]), consumed=used)


def format_moment(at: datetime, tz: str | None) -> str:
    """``Tue 1 Dec 2026, 10:00 CET (Europe/Berlin) = Tue 1 Dec 2026, 09:00 UTC``: exact in both zones."""
    zone = zone_for(tz)
    utc = at.astimezone(UTC)
    utc_text = f"{utc:%a} {utc.day} {utc:%b %Y, %H:%M} UTC"
    if zone.key == "UTC":
        return utc_text
    local = at.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M %Z} ({zone.key}) = {utc_text}"


def format_duration(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    parts = []
    for name, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{name}")
            seconds %= size
    return "".join(parts) or "0m"
