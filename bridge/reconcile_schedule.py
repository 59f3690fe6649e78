"""When each linked study is reconciled: once per interval, each study at its own moment of it.

A study's reconciles are due at ``k * interval + offset(study)`` (``k`` counting intervals since the epoch), with
the offset a stable hash of the study id spread over the interval. Every replica computes the same due times and
the same cycle number ``k``, so the inbox key ``reconcile:<study>:<k>`` makes each one run once however many
replicas tick; and the studies of a cycle are spread over the whole interval instead of read all at once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

# The tick looks for due studies this many times per interval (at least every 1 s, at most every 10 s).
TICKS_PER_INTERVAL = 60


def tick_seconds(interval: float) -> float:
    """How often the scheduler looks for due studies."""
    return min(10.0, max(1.0, interval / TICKS_PER_INTERVAL))


def offset(study_id: str, interval: float) -> float:
    """The study's moment within each interval, in [0, interval): the same on every replica and every run."""
    fraction = int.from_bytes(hashlib.sha256(study_id.encode()).digest()[:8], "big") / 2**64
    return fraction * interval


def current_cycle(study_id: str, interval: float, now: float) -> tuple[int, float]:
    """``(k, due)``: the study's latest due time at or before ``now`` (epoch seconds) and its cycle number."""
    at = offset(study_id, interval)
    k = math.floor((now - at) / interval)
    if k * interval + at > now:  # float rounding at the edge
        k -= 1
    return k, k * interval + at


def due_between(study_ids: Iterable[str], interval: float, since: float, now: float) -> list[tuple[str, int]]:
    """``(study_id, k)`` for every study with a due time in ``(since, now]``: at most one per study (the latest,
    if the window is longer than an interval, as after a stall)."""
    due: list[tuple[str, int]] = []
    for study_id in study_ids:
        k, at = current_cycle(study_id, interval, now)
        if at > since:
            due.append((study_id, k))
    return due
