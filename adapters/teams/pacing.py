"""Pace sends per bot per Teams thread, and per app, so that the connector's limits are not hit in the first place.

Teams allows, per bot per thread: 7 sends in 1 s, 8 in 2 s, 60 in 30 s, 1800 in 3600 s; and per app per tenant
50 requests a second (Microsoft's "global limit"). Each is a sliding window over the sends Teams received.

:class:`ThreadPacer` keeps, per conversation and for the whole app, the moments its sends *completed*. A send
can only have arrived before its answer came back, and the next one arrives after it starts, so a window
computed from completion times can never count fewer sends than Teams does, however late or unevenly requests
travel (a busy event loop, a token fetch). A send in flight holds its slot: it counts in every window until it
completes; sends into one conversation go one at a time.

A wait longer than ``max_wait`` (for the sends queued ahead in the thread, then for room in the windows) is not
slept through (it would hold an outbox lease and a worker slot): the caller gets :class:`~core.errors.Paced` with
``retry_after``, nothing is sent, and the outbox puts the row back without counting an attempt while other threads
go on. Unbounded, a burst into one thread queued rows on its lock past their lease, and an expired lease means a
second attempt: a duplicate post, since the connector cannot look up what was posted. The pacer is per process:
several replicas sending into one thread can still meet a 429, which the connector client maps to a retry with backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from core.errors import Paced

TEAMS_LIMITS: tuple[tuple[float, int], ...] = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))
APP_LIMIT: tuple[float, int] = (1.0, 50)  # per app per tenant: 50 requests per second
# A paced row comes back this much before its moment, so that claiming it again costs no send time.
EARLY = 0.5
# While every slot of the app's window is in flight, look again after this long.
_IN_FLIGHT_POLL = 0.01


def _window_wait(times: deque[float], window: float, count: int, now: float, in_flight: int) -> float | None:
    """Seconds until one more send fits ``count`` per ``window``; None when only in-flight sends could free room."""
    recent = [t for t in times if now - t < window]
    excess = in_flight + len(recent) - count + 1  # sends that must leave the window first
    if excess <= 0:
        return 0.0
    if excess > len(recent):
        return None
    return recent[excess - 1] + window - now


class ThreadPacer:
    def __init__(
        self,
        limits: tuple[tuple[float, int], ...] = TEAMS_LIMITS,
        *,
        app_limit: tuple[float, int] | None = APP_LIMIT,
        max_wait: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        margin: float = 0.01,
    ) -> None:
        self.limits = limits
        self.app_limit = app_limit
        self.max_wait = max_wait
        self.clock = clock
        self.margin = margin
        self._sent: dict[str, deque[float]] = {}
        self._app_sent: deque[float] = deque()
        self._app_in_flight = 0
        self._locks: dict[str, asyncio.Lock] = {}

    def _prune(self, times: deque[float], longest: float, now: float) -> None:
        while times and now - times[0] >= longest:
            times.popleft()

    def delay(self, conversation: str, now: float | None = None) -> float:
        """Seconds until one more send into ``conversation`` fits every window of the thread (0: it fits now)."""
        now = self.clock() if now is None else now
        sent = self._sent.get(conversation)
        if not sent or not self.limits:
            return 0.0
        self._prune(sent, max(window for window, _ in self.limits), now)
        wait = 0.0
        for window, count in self.limits:
            need = _window_wait(sent, window, count, now, 0)
            if need:  # the send in flight in this conversation is the caller's own: never None here
                wait = max(wait, need + self.margin)
        return wait

    def app_delay(self, now: float | None = None) -> float:
        """Seconds until one more send fits the app's budget (a short poll while its whole window is in flight)."""
        if self.app_limit is None:
            return 0.0
        now = self.clock() if now is None else now
        window, count = self.app_limit
        self._prune(self._app_sent, window, now)
        need = _window_wait(self._app_sent, window, count, now, self._app_in_flight)
        if need is None:
            return _IN_FLIGHT_POLL
        return need + self.margin if need > 0 else 0.0

    @asynccontextmanager
    async def slot(self, conversation: str) -> AsyncIterator[None]:
        """Hold a send slot for ``conversation`` for the duration of the block (the send itself).

        Waits for the sends queued ahead in the thread and for room in the thread's windows and the app's, at
        most ``max_wait`` in all, else raises ``Paced`` without counting anything. The send is counted at the
        moment the block ends.
        """
        started = self.clock()
        lock = self._locks.setdefault(conversation, asyncio.Lock())
        if not await _acquire_within(lock, self.max_wait):
            # Sends ahead in this thread hold it longer than a row may wait (its lease runs meanwhile).
            raise Paced("Teams sends queued ahead in this thread; pacing", retry_after=self.max_wait / 2)
        try:
            now = self.clock()
            wait = max(self.delay(conversation, now), self.app_delay(now))
            if wait > self.max_wait - (now - started):
                raise Paced("Teams send budget used up; pacing", retry_after=max(0.0, wait - EARLY))
            if wait > 0:
                await asyncio.sleep(wait)
            # The thread's own windows are settled (its sends go one at a time); the app's may have been taken
            # by other threads meanwhile.
            while True:
                app_wait = self.app_delay()
                if app_wait <= 0:
                    break
                await asyncio.sleep(app_wait)
            self._app_in_flight += 1
            try:
                yield
            finally:
                self._app_in_flight -= 1
                done = self.clock()
                self._sent.setdefault(conversation, deque()).append(done)
                self._app_sent.append(done)
        finally:
            lock.release()

    async def acquire(self, conversation: str) -> None:
        """Wait for room in ``conversation`` (up to ``max_wait``), then count one send, now."""
        async with self.slot(conversation):
            pass


async def _acquire_within(lock: asyncio.Lock, seconds: float) -> bool:
    """Take ``lock`` if that happens within ``seconds`` (a waiter that timed out never holds it)."""
    try:
        async with asyncio.timeout(seconds):
            await lock.acquire()
    except TimeoutError:
        return False
    return True
