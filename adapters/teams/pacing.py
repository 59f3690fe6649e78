"""Pace sends per bot per Teams thread so that the connector's limits are not hit in the first place.

Teams allows, per bot per thread: 7 sends in 1 s, 8 in 2 s, 60 in 30 s, 1800 in 3600 s. :class:`ThreadPacer`
keeps the send times of each conversation and, before a send, waits until every window has room. A wait longer
than ``max_wait`` is not slept through (it would hold an outbox lease for minutes): the caller gets
:class:`~bot.errors.TemporaryFailure` with ``retry_after`` and the outbox retries the row later.

Send times are taken when a send starts; Teams counts arrivals, so every wait has a ``margin`` (0.25 s) for
the time between the two (token, network). The pacer is per process: several replicas sending into one thread
can still meet a 429, which the connector client maps to a retry with backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from bot.errors import TemporaryFailure

TEAMS_LIMITS: tuple[tuple[float, int], ...] = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))


class ThreadPacer:
    def __init__(
        self,
        limits: tuple[tuple[float, int], ...] = TEAMS_LIMITS,
        *,
        max_wait: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        margin: float = 0.25,
    ) -> None:
        self.limits = limits
        self.max_wait = max_wait
        self.clock = clock
        self.margin = margin
        self._longest = max(window for window, _ in limits)
        self._sent: dict[str, deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def delay(self, conversation: str, now: float | None = None) -> float:
        """Seconds until one more send into ``conversation`` fits every window (0 when it fits now)."""
        now = self.clock() if now is None else now
        sent = self._sent.get(conversation)
        if not sent:
            return 0.0
        while sent and now - sent[0] >= self._longest:
            sent.popleft()
        wait = 0.0
        times = list(sent)
        for window, count in self.limits:
            recent = [t for t in times if now - t < window]
            if len(recent) >= count:
                # The oldest send that must leave the window before one more fits.
                oldest = recent[len(recent) - count]
                wait = max(wait, oldest + window - now + self.margin)
        return wait

    async def acquire(self, conversation: str) -> None:
        """Wait for room in ``conversation`` (up to ``max_wait``), then count one send."""
        lock = self._locks.setdefault(conversation, asyncio.Lock())
        async with lock:
            wait = self.delay(conversation)
            if wait > self.max_wait:
                raise TemporaryFailure("Teams thread send budget used up; pacing", retry_after=wait)
            if wait > 0:
                await asyncio.sleep(wait)
            self._sent.setdefault(conversation, deque()).append(self.clock())
