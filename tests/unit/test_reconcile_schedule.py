"""The reconcile schedule: every study once per interval, spread over it, the same on every replica."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from bridge import reconcile_schedule as schedule

STUDIES = [f"st_{n:04d}" for n in range(500)]


def ticks(interval: float, start: float, cycles: int) -> list[tuple[float, float]]:
    step = schedule.tick_seconds(interval)
    edges = [start + n * step for n in range(int(cycles * interval / step) + 1)]
    return list(itertools.pairwise(edges))


def test_each_study_is_due_exactly_once_per_interval_over_consecutive_ticks() -> None:
    interval = 300.0
    start = 1_795_000_000.0
    seen: Counter[tuple[str, int]] = Counter()
    for since, now in ticks(interval, start, cycles=3):
        seen.update(schedule.due_between(STUDIES, interval, since, now))
    assert set(seen.values()) == {1}  # no study twice in one cycle
    per_study = Counter(study for study, _ in seen)
    assert set(per_study.values()) == {3}  # three intervals: three reconciles of every study


def test_a_cycle_is_spread_over_the_interval_not_queued_at_once() -> None:
    interval = 300.0
    counts = [len(schedule.due_between(STUDIES, interval, since, now)) for since, now in ticks(interval, 0.0, 1)]
    mean = len(STUDIES) / len(counts)
    assert len(counts) == 60 and sum(counts) == len(STUDIES)
    assert max(counts) <= 3 * mean  # no tick queues more than a few times its share


@given(st.text(min_size=1, max_size=40), st.floats(min_value=1, max_value=86_400))
def test_offsets_are_stable_and_inside_the_interval(study_id: str, interval: float) -> None:
    offset = schedule.offset(study_id, interval)
    assert 0 <= offset < interval
    assert schedule.offset(study_id, interval) == offset


@given(st.floats(min_value=1_700_000_000, max_value=1_900_000_000), st.floats(min_value=1, max_value=3_600))
def test_the_current_cycle_is_the_latest_due_time_and_replicas_agree_on_its_number(now: float, interval: float) -> None:
    k, due = schedule.current_cycle("st_checkout", interval, now)
    assert now - interval < due <= now
    # Another replica asking a moment later (before the next due time) gets the same cycle: the same inbox key.
    assert schedule.current_cycle("st_checkout", interval, min(now + interval / 2, due + interval * 0.999))[0] == k


def test_a_window_longer_than_an_interval_queues_each_study_once() -> None:
    due = schedule.due_between(STUDIES, 60.0, 0.0, 1_000.0)  # after a stall of many intervals
    assert len(due) == len(STUDIES) and len({s for s, _ in due}) == len(STUDIES)


def test_ticks_are_between_one_and_ten_seconds() -> None:
    assert schedule.tick_seconds(300) == 5
    assert schedule.tick_seconds(0.5) == 1
    assert schedule.tick_seconds(3600) == 10
