"""``<when>`` as researchers type it, with a fixed clock, across time zones and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.when import WhenError, format_duration, format_moment, parse_duration, parse_when


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def at(text: str, now: datetime, tz: str | None, session: datetime | None = None) -> datetime:
    return parse_when(text.split(), now=now, tz=tz, session_starts_at=session).at


def refused(text: str, now: datetime, tz: str | None = "UTC", session: datetime | None = None) -> str:
    with pytest.raises(WhenError) as info:
        parse_when(text.split(), now=now, tz=tz, session_starts_at=session)
    return str(info.value)


# Sat 31 Oct 2026, 10:00 in New York (EDT, UTC-4); New York falls back at 02:00 on Sun 1 Nov.
NY_NOW = utc(2026, 10, 31, 14, 0)
# Sat 24 Oct 2026, 12:00 in Berlin (CEST, UTC+2); Berlin falls back at 03:00 on Sun 25 Oct.
BERLIN_NOW = utc(2026, 10, 24, 10, 0)
# Wed 25 Nov 2026, 15:00 UTC.
WED = utc(2026, 11, 25, 15, 0)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("in 2h", timedelta(hours=2)),
        ("in 30m", timedelta(minutes=30)),
        ("in 1h30m", timedelta(hours=1, minutes=30)),
        ("in 90 minutes", timedelta(minutes=90)),
        ("in 2 hours and 15 mins", timedelta(hours=2, minutes=15)),
        ("in an hour", timedelta(hours=1)),
        ("in 3 days", timedelta(days=3)),
        ("in 1w", timedelta(weeks=1)),
        ("IN 2H", timedelta(hours=2)),
    ],
)
@pytest.mark.parametrize("tz", ["America/New_York", "Europe/Berlin", "Asia/Tokyo", None])
def test_in_duration_is_real_elapsed_time_in_any_zone(text: str, delta: timedelta, tz: str | None) -> None:
    assert at(text, NY_NOW, tz) == NY_NOW + delta


def test_in_one_day_across_the_fall_back_is_24_hours_but_tomorrow_keeps_the_wall_clock() -> None:
    # 10:00 EDT Saturday; Sunday 10:00 EST is 25 hours later.
    assert at("in 1d", NY_NOW, "America/New_York") == utc(2026, 11, 1, 14, 0)  # 09:00 EST
    assert at("tomorrow 10am", NY_NOW, "America/New_York") == utc(2026, 11, 1, 15, 0)
    assert at("tomorrow 9am", BERLIN_NOW, "Europe/Berlin") == utc(2026, 10, 25, 8, 0)  # 09:00 CET
    assert at("tomorrow 9am", BERLIN_NOW, "America/New_York") == utc(2026, 10, 25, 13, 0)  # 09:00 EDT


def test_a_time_that_happens_twice_at_the_fall_back_is_the_first_one() -> None:
    assert at("2026-11-01 01:30", NY_NOW, "America/New_York") == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert at("sun 02:30", BERLIN_NOW, "Europe/Berlin") == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert "EDT" in format_moment(utc(2026, 11, 1, 5, 30), "America/New_York")


def test_a_time_skipped_by_the_spring_forward_is_refused_clearly() -> None:
    march = utc(2026, 3, 1, 12, 0)
    assert "does not exist" in refused("2026-03-08 02:30", march, "America/New_York")
    assert "does not exist" in refused("2026-03-29 2:30am", march, "Europe/Berlin")
    assert at("2026-03-08 03:30", march, "America/New_York") == utc(2026, 3, 8, 7, 30)  # 03:30 EDT


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("tomorrow 9am", "Europe/Berlin", utc(2026, 11, 26, 8, 0)),
        ("tomorrow at 9 am", "Europe/Berlin", utc(2026, 11, 26, 8, 0)),
        ("tomorrow 9:15pm", "Asia/Tokyo", utc(2026, 11, 27, 12, 15)),  # already Thursday in Tokyo
        ("tomorrow noon", "UTC", utc(2026, 11, 26, 12, 0)),
        ("today 17:00", "UTC", utc(2026, 11, 25, 17, 0)),
        ("fri 14:30", "Europe/Berlin", utc(2026, 11, 27, 13, 30)),
        ("friday at 2:30pm", "America/New_York", utc(2026, 11, 27, 19, 30)),
        ("wed 16:00", "UTC", utc(2026, 11, 25, 16, 0)),  # today, still ahead
        ("wed 14:00", "UTC", utc(2026, 12, 2, 14, 0)),  # today has passed: next week
        ("mon 9am", "Asia/Tokyo", utc(2026, 11, 30, 0, 0)),
        ("2026-12-01 10:00", "Europe/Berlin", utc(2026, 12, 1, 9, 0)),
        ("2026-12-01 10:00", "America/New_York", utc(2026, 12, 1, 15, 0)),
        ("2026-12-01 10:00", None, utc(2026, 12, 1, 10, 0)),
        ("2026-12-01 10:00", "Not/AZone", utc(2026, 12, 1, 10, 0)),
        ("2026-12-01 10:00 UTC", "Europe/Berlin", utc(2026, 12, 1, 10, 0)),
        ("2026-12-01 10:00 America/New_York", "Europe/Berlin", utc(2026, 12, 1, 15, 0)),
        ("tomorrow 9am UTC", "Asia/Tokyo", utc(2026, 11, 26, 9, 0)),
        ("17:00", "UTC", utc(2026, 11, 25, 17, 0)),
        ("at 5pm", "UTC", utc(2026, 11, 25, 17, 0)),
    ],
)
def test_wall_clock_forms_in_the_researchers_zone(text: str, tz: str | None, expected: datetime) -> None:
    assert at(text, WED, tz) == expected


def test_tomorrow_is_the_researchers_tomorrow_not_utcs() -> None:
    # 23:30 UTC Wednesday is already Thursday 08:30 in Tokyo: "tomorrow" there is Friday.
    late = utc(2026, 11, 25, 23, 30)
    assert at("tomorrow 9am", late, "Asia/Tokyo") == utc(2026, 11, 27, 0, 0)
    assert at("tomorrow 9am", late, "America/New_York") == utc(2026, 11, 26, 14, 0)


@pytest.mark.parametrize("tz", ["America/New_York", "Europe/Berlin", "Asia/Tokyo"])
def test_before_session_counts_back_from_the_participants_session(tz: str) -> None:
    session = utc(2026, 11, 27, 16, 0)
    assert at("1h before session", WED, tz, session) == utc(2026, 11, 27, 15, 0)
    assert at("30 minutes before the session", WED, tz, session) == utc(2026, 11, 27, 15, 30)
    assert at("1d before session", WED, tz, session) == utc(2026, 11, 26, 16, 0)


def test_before_session_needs_a_session_in_the_future() -> None:
    assert "no session time" in refused("1h before session", WED)
    assert "already passed" in refused("1h before session", WED, session=WED + timedelta(minutes=30))
    assert "before session" in refused("2h after session", WED, session=WED + timedelta(days=1))


def words(text: str) -> list[str]:
    return text.split()


def test_words_after_when_are_left_for_the_message() -> None:
    when = parse_when(words("tomorrow at 9 am see you then!"), now=WED, tz="UTC")
    assert (when.consumed, when.spec) == (4, "tomorrow at 9 am")
    when = parse_when(words("in 2h don't forget"), now=WED, tz="UTC")
    assert (when.consumed, when.spec) == (2, "in 2h")
    when = parse_when(words("2026-12-01 10:00 Europe/Berlin hello"), now=WED, tz="UTC")
    assert when.consumed == 3
    when = parse_when(words("1h before session Hi Jordan"), now=WED, tz="UTC", session_starts_at=WED + timedelta(1))
    assert when.consumed == 3


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Say when"),
        ("tomorrow", "Add a time"),
        ("fri", "Add a time"),
        ("tomorrow 9", "morning or evening"),
        ("tomorrow 25:00", "not a time"),
        ("tomorrow 13pm", "not a time"),
        ("2026-02-30 10:00", "not a date"),
        ("yesterday 9am", "can't read"),
        ("soon", "can't read"),
        ("in", '"in" needs a duration'),
        ("in soon", '"in" needs a duration'),
        ("in 0m", '"in" needs a duration'),
        ("2026-01-01 10:00", "before now"),
        ("today 9am", "before now"),
        ("14:00", "already passed today"),
        ("in 400d", "more than a year"),
    ],
)
def test_what_cannot_be_used_is_refused_with_a_reason(text: str, says: str) -> None:
    assert says in refused(text, WED)


def test_durations() -> None:
    assert parse_duration(["2h", "message"]) == (timedelta(hours=2), 1)
    assert parse_duration(["1", "day", "and", "2", "hours", "x"]) == (timedelta(days=1, hours=2), 5)
    assert parse_duration(["hello"]) is None
    assert parse_duration(["2", "apples"]) is None
    assert format_duration(timedelta(days=1, hours=2, minutes=5)) == "1d2h5m"
    assert format_duration(timedelta(seconds=30)) == "0m"


def test_the_confirmation_names_both_zones_exactly() -> None:
    moment = utc(2026, 12, 1, 9, 0)
    assert (
        format_moment(moment, "Europe/Berlin")
        == "Tue 1 Dec 2026, 10:00 CET (Europe/Berlin) = Tue 1 Dec 2026, 09:00 UTC"
    )
    assert format_moment(moment, None) == "Tue 1 Dec 2026, 09:00 UTC"
    assert format_moment(utc(2026, 12, 1, 2, 0), "America/New_York").startswith("Mon 30 Nov 2026, 21:00 EST")
