"""Pace ``chat.postMessage`` so that Slack's limits are met without being hit.

Slack allows about 1 post per second per channel (short bursts allowed) and "several hundred" posts a minute
per workspace, and answers 429 + ``Retry-After`` beyond. :class:`SlackPacer` keeps one budget per channel and
one for the workspace, each a token bucket (GCRA form: a *theoretical arrival time* per bucket), and hands out
send times in advance:

* a post whose budget allows it within ``horizon`` seconds reserves that moment in both buckets, waits for it
  and goes (a reservation never waits long, so an outbox lease is never at risk);
* a post that would wait longer raises :class:`~core.errors.Paced` with ``retry_after`` and nothing is sent:
  the outbox puts the row back without counting an attempt and meanwhile sends into channels with budget;
* after a 429, :meth:`SlackPacer.rate_limited` blocks only that channel until its ``Retry-After``.

Each bucket mirrors Slack's (same rate, same burst) and a post is sent at or after its reserved moment. While
Slack's bucket is below its cap, a post that arrives late costs no budget; but when it is full (a channel that
was quiet), refill only starts when the first post *arrives*, so a late first post (a new connection) would
make the next ones early. Reservations therefore keep ``slack`` (0.25 s) of the burst in hand: a channel's
schedule shifts by that much once when it turns busy, and a steady drain runs at the limit without 429s. With a
burst of 1 the slack is added to every interval instead. Budgets are per process;
several replicas posting into one channel share Slack's budget, so each then meets the odd 429, which is
honoured per channel (see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from core.errors import Paced

# Slack: 1 post per second per channel with a short burst; "several hundred per minute" per workspace.
CHANNEL_RATE = 1.0
CHANNEL_BURST = 3
WORKSPACE_PER_MINUTE = 600.0
WORKSPACE_BURST = 30
# A paced row comes back this much before its moment, so that claiming it again costs no send time.
EARLY = 0.5


class Budget:
    """A token bucket of ``rate`` per second and ``burst``, as a generic cell rate algorithm; starts full.

    ``slack``: seconds of lateness (of a post's arrival after its reserved moment) the schedule tolerates.
    """

    def __init__(self, rate: float, burst: int, slack: float = 0.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a send budget needs rate > 0 and burst >= 1")
        self.interval = 1.0 / rate
        tolerance = (burst - 1) * self.interval
        if burst == 1:
            self.interval += slack
        self.tolerance = max(0.0, tolerance - slack)
        self._tat = -math.inf  # theoretical arrival time of the next post

    def earliest(self, now: float) -> float:
        """The first moment from ``now`` at which one more post fits."""
        return max(now, self._tat - self.tolerance)

    def take(self, at: float) -> None:
        """Count one post sent at ``at`` (not before ``earliest``)."""
        self._tat = max(self._tat, at) + self.interval


class SlackPacer:
    def __init__(
        self,
        *,
        channel_rate: float = CHANNEL_RATE,
        channel_burst: int = CHANNEL_BURST,
        workspace_rate: float = WORKSPACE_PER_MINUTE / 60.0,
        workspace_burst: int = WORKSPACE_BURST,
        horizon: float = 1.0,
        slack: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Rates in posts per second; 0 switches that level off."""
        self.channel_rate = channel_rate
        self.channel_burst = channel_burst
        self.horizon = horizon
        self.slack = slack
        self.clock = clock
        self._workspace = Budget(workspace_rate, workspace_burst, slack) if workspace_rate > 0 else None
        self._channels: dict[str, Budget] = {}
        self._blocked: dict[str, float] = {}  # channel -> monotonic time until which Slack said wait

    def _channel(self, channel: str) -> Budget | None:
        if self.channel_rate <= 0:
            return None
        budget = self._channels.get(channel)
        if budget is None:
            budget = self._channels[channel] = Budget(self.channel_rate, self.channel_burst, self.slack)
        return budget

    def earliest(self, channel: str, now: float | None = None) -> float:
        """The first moment at which a post into ``channel`` fits every budget."""
        now = self.clock() if now is None else now
        start = max(now, self._blocked.get(channel, now))
        for budget in (self._channel(channel), self._workspace):
            if budget is not None:
                start = max(start, budget.earliest(now))
        return start

    def delay(self, channel: str, now: float | None = None) -> float:
        """Seconds until a post into ``channel`` fits (0 when it fits now)."""
        now = self.clock() if now is None else now
        return self.earliest(channel, now) - now

    def reserve(self, channel: str) -> float:
        """Reserve the next send moment for ``channel`` and return the seconds to wait for it.

        Raises ``Paced`` (reserving nothing) when that is further away than ``horizon``.
        """
        now = self.clock()
        start = self.earliest(channel, now)
        wait = start - now
        if wait > self.horizon:
            # Back a little before the moment comes (claiming it again takes time), to reserve it then.
            raise Paced("Slack post budget used up; pacing", retry_after=max(0.0, wait - min(EARLY, self.horizon)))
        budget = self._channel(channel)
        if budget is not None:
            budget.take(start)
        if self._workspace is not None:
            self._workspace.take(start)
        return wait

    async def acquire(self, channel: str) -> None:
        """Wait for the reserved moment (at most ``horizon``), or raise ``Paced``."""
        wait = self.reserve(channel)
        if wait > 0:
            await asyncio.sleep(wait)

    def rate_limited(self, channel: str, retry_after: float) -> None:
        """Slack answered 429: nothing more into ``channel`` until ``retry_after`` seconds from now."""
        until = self.clock() + max(0.0, retry_after)
        self._blocked[channel] = max(self._blocked.get(channel, until), until)
        if len(self._blocked) > 1000:  # forget blocks long past
            now = self.clock()
            self._blocked = {c: t for c, t in self._blocked.items() if t > now}
