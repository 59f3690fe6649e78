"""core/case.py: a thread's state, working time, when to nudge, first-response times, thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from core.case import (
    SESSION_LENGTH,
    SOON,
    CaseState,
    NudgePolicy,
    case_state,
    first_response_times,
    format_wait,
    median,
    nudge_due,
    parse_threshold,
    working_time_after,
)
from core.domain import Direction

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # a Wednesday
NINE, SIX = time(9, 0), time(18, 0)
IN, OUT = Direction.FROM_PARTICIPANT.value, Direction.TO_PARTICIPANT.value


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def state(
    *,
    opted_out: bool = False,
    waiting_since: datetime | None = None,
    last_out_at: datetime | None = None,
    session: datetime | None = None,
    now: datetime = NOW,
) -> CaseState:
    return case_state(
        opted_out=opted_out, waiting_since=waiting_since, last_out_at=last_out_at, session_starts_at=session, now=now
    )


def work(start: datetime, amount: timedelta, tz: str | None) -> datetime:
    return working_time_after(start, amount, tz, day_start=NINE, day_end=SIX)


# ---- states ---------------------------------------------------------------------------------------------


def test_a_thread_nobody_wrote_in_is_new() -> None:
    assert state() is CaseState.NEW


def test_opted_out_wins_over_everything() -> None:
    assert state(opted_out=True, waiting_since=NOW, last_out_at=NOW, session=NOW) is CaseState.OPTED_OUT


def test_waiting_on_the_team_wins_over_the_session() -> None:
    assert state(waiting_since=NOW, session=NOW - timedelta(days=2)) is CaseState.WAITING_ON_TEAM
    assert state(waiting_since=NOW, session=NOW + timedelta(hours=2)) is CaseState.WAITING_ON_TEAM


def test_session_over_from_one_session_length_after_the_start() -> None:
    session = NOW - SESSION_LENGTH
    assert state(session=session, last_out_at=NOW) is CaseState.SESSION_OVER
    assert state(session=session + timedelta(seconds=1), last_out_at=NOW) is CaseState.SESSION_SOON


def test_session_soon_from_24_hours_before_until_over() -> None:
    assert state(session=NOW + SOON) is CaseState.SESSION_SOON
    assert state(session=NOW + SOON + timedelta(seconds=1)) is CaseState.NEW
    assert state(session=NOW - timedelta(minutes=30), last_out_at=NOW) is CaseState.SESSION_SOON


def test_waiting_on_the_participant_after_the_team_wrote() -> None:
    assert state(last_out_at=NOW, session=NOW + timedelta(days=3)) is CaseState.WAITING_ON_PARTICIPANT


# ---- working time ---------------------------------------------------------------------------------------


def test_working_time_within_one_day() -> None:
    assert work(utc(2026, 3, 4, 10, 0), timedelta(minutes=30), None) == utc(2026, 3, 4, 10, 30)


def test_working_time_carries_over_the_night() -> None:
    assert work(utc(2026, 3, 4, 17, 45), timedelta(minutes=30), None) == utc(2026, 3, 5, 9, 15)


def test_working_time_ending_exactly_at_closing_is_closing() -> None:
    assert work(utc(2026, 3, 4, 17, 30), timedelta(minutes=30), None) == utc(2026, 3, 4, 18, 0)


def test_working_time_skips_the_weekend() -> None:
    friday = utc(2026, 3, 6, 17, 0)
    assert work(friday, timedelta(hours=2), None) == utc(2026, 3, 9, 10, 0)


def test_start_outside_hours_counts_from_the_next_opening() -> None:
    assert work(utc(2026, 3, 4, 6, 0), timedelta(minutes=30), None) == utc(2026, 3, 4, 9, 30)
    assert work(utc(2026, 3, 4, 20, 0), timedelta(minutes=30), None) == utc(2026, 3, 5, 9, 30)
    assert work(utc(2026, 3, 7, 11, 0), timedelta(minutes=30), None) == utc(2026, 3, 9, 9, 30)  # Saturday


def test_zero_working_time_is_the_first_working_moment() -> None:
    assert work(utc(2026, 3, 4, 10, 0), timedelta(0), None) == utc(2026, 3, 4, 10, 0)
    assert work(utc(2026, 3, 4, 18, 0), timedelta(0), None) == utc(2026, 3, 5, 9, 0)


def test_working_time_spans_several_days() -> None:
    assert work(utc(2026, 3, 4, 9, 0), timedelta(hours=27), None) == utc(2026, 3, 6, 18, 0)


def test_working_time_uses_the_local_wall_clock() -> None:
    # 07:30 UTC is 08:30 in Berlin (CET, UTC+1): work starts at 09:00 local = 08:00 UTC.
    assert work(utc(2026, 3, 4, 7, 30), timedelta(minutes=30), "Europe/Berlin") == utc(2026, 3, 4, 8, 30)


def test_working_time_across_the_autumn_change_in_berlin() -> None:
    # Fri 23 Oct 17:30 CEST (UTC+2); the clocks go back on Sun 25 Oct; Mon 26 Oct 09:00 is CET (UTC+1) = 08:00 UTC.
    friday = utc(2026, 10, 23, 15, 30)
    assert work(friday, timedelta(hours=1), "Europe/Berlin") == utc(2026, 10, 26, 8, 30)


def test_working_time_across_the_autumn_change_in_new_york() -> None:
    # Fri 30 Oct 17:00 EDT (UTC-4); Mon 2 Nov 09:00 EST (UTC-5) = 14:00 UTC.
    friday = utc(2026, 10, 30, 21, 0)
    assert work(friday, timedelta(hours=2), "America/New_York") == utc(2026, 11, 2, 15, 0)


def test_unknown_zone_counts_in_utc() -> None:
    assert work(utc(2026, 3, 4, 17, 45), timedelta(minutes=30), "Mars/Olympus") == utc(2026, 3, 5, 9, 15)


def test_working_time_answers_in_utc_for_any_aware_start() -> None:
    start = datetime(2026, 3, 4, 10, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=5, minutes=30)))
    got = work(start, timedelta(minutes=5), None)
    assert got == utc(2026, 3, 4, 10, 5) and got.utcoffset() == timedelta(0)


def test_working_time_refuses_an_empty_working_day() -> None:
    with pytest.raises(ValueError):
        working_time_after(NOW, timedelta(hours=1), None, day_start=SIX, day_end=NINE)


# ---- nudges ---------------------------------------------------------------------------------------------


def test_nudges_count_working_time_when_no_session_is_near() -> None:
    policy = NudgePolicy(wait=timedelta(minutes=30))
    waiting = utc(2026, 3, 6, 17, 45)  # Friday
    first = nudge_due(waiting, stage=1, policy=policy, tz=None, session_starts_at=None, now=waiting)
    second = nudge_due(waiting, stage=2, policy=policy, tz=None, session_starts_at=None, now=waiting)
    assert first == utc(2026, 3, 9, 9, 15)
    assert second == utc(2026, 3, 9, 9, 45)


def test_nudges_use_the_wall_clock_when_the_session_is_less_than_a_day_away() -> None:
    policy = NudgePolicy(wait=timedelta(minutes=30), soon=timedelta(minutes=10))
    waiting = utc(2026, 3, 7, 22, 0)  # Saturday night: no working time at all
    session = waiting + timedelta(hours=12)
    assert nudge_due(waiting, stage=1, policy=policy, tz=None, session_starts_at=session, now=waiting) == utc(
        2026, 3, 7, 22, 10
    )
    assert nudge_due(waiting, stage=2, policy=policy, tz=None, session_starts_at=session, now=waiting) == utc(
        2026, 3, 7, 22, 20
    )


def test_a_session_far_ahead_or_past_does_not_hurry_the_nudge() -> None:
    policy = NudgePolicy()
    waiting = utc(2026, 3, 7, 22, 0)
    for session in (waiting + SOON, waiting - timedelta(minutes=5)):
        due = nudge_due(waiting, stage=1, policy=policy, tz=None, session_starts_at=session, now=waiting)
        assert due == utc(2026, 3, 9, 9, 30)


# ---- first responses ------------------------------------------------------------------------------------


def test_first_response_periods_per_thread() -> None:
    t0 = utc(2026, 3, 4, 9, 0)
    messages = [
        (1, IN, t0),
        (2, IN, t0 + timedelta(minutes=1)),
        (1, IN, t0 + timedelta(minutes=5)),  # still the same wait
        (1, OUT, t0 + timedelta(minutes=20)),  # closes thread 1 after 20 min
        (2, OUT, t0 + timedelta(minutes=61)),  # closes thread 2 after 60 min
        (1, OUT, t0 + timedelta(minutes=30)),  # no wait open: nothing
        (1, IN, t0 + timedelta(minutes=40)),
        (1, OUT, t0 + timedelta(minutes=50)),  # 10 min
        (3, OUT, t0),  # the team wrote first: nothing
        (3, IN, t0 + timedelta(minutes=2)),  # open: not counted
    ]
    assert first_response_times(reversed(messages)) == [
        timedelta(minutes=20),
        timedelta(minutes=10),
        timedelta(minutes=60),
    ]


def test_no_messages_no_periods() -> None:
    assert first_response_times([]) == []


def test_median() -> None:
    assert median([]) is None
    assert median([timedelta(minutes=m) for m in (30, 10, 20)]) == timedelta(minutes=20)
    assert median([timedelta(minutes=m) for m in (40, 10, 20, 30)]) == timedelta(minutes=25)


# ---- thresholds -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("30 min", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(minutes=90)),
        ("90 minutes", timedelta(minutes=90)),
        ("2 hours", timedelta(hours=2)),
        (" 1 Hour ", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("1m", timedelta(minutes=1)),
    ],
)
def test_thresholds_as_researchers_type_them(words: str, expected: timedelta) -> None:
    assert parse_threshold(words) == expected


@pytest.mark.parametrize("words", ["", "soon", "30", "30 parsecs", "1h please", "half an hour", "-5m"])
def test_unreadable_thresholds_say_what_was_typed_and_give_examples(words: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_threshold(words)
    assert f'"{words.strip()}"' in str(err.value) and "1h30m" in str(err.value)


@pytest.mark.parametrize("words", ["0m", "8d", "2 weeks"])
def test_thresholds_outside_a_minute_to_a_week_are_refused(words: str) -> None:
    with pytest.raises(ValueError, match="between 1 minute and 7 days"):
        parse_threshold(words)


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (timedelta(seconds=20), "0 min"),
        (timedelta(minutes=45), "45 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(hours=2, minutes=5, seconds=59), "2 h 5 min"),
        (timedelta(days=3, hours=4, minutes=10), "3 d 4 h"),
        (timedelta(days=1), "1 d"),
    ],
)
def test_format_wait(length: timedelta, expected: str) -> None:
    assert format_wait(length) == expected
