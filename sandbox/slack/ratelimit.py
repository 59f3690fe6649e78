"""``chat.postMessage`` rate limits of the Slack stand-in, and a record of every post it accepted.

Slack documents chat.postMessage as a special tier: about **1 message per second per channel**, short bursts
allowed, and a workspace-wide limit of "several hundred messages per minute"; beyond them it answers HTTP 429
with a ``Retry-After`` header (whole seconds) and ``{"ok": false, "error": "ratelimited"}``. The stand-in models
both as token buckets:

* per channel: 1 post/s, burst 3;
* per workspace: 10 posts/s (600 a minute), burst 30. Slack publishes no exact figure; 600/min is the upper end
  of "several hundred a minute", and the bridge's own pacing defaults to the same (``bot/settings.py``).

A refused post consumes nothing (neither bucket), so a client that retries at ``Retry-After`` is not punished
twice. Limits are on by default (as in Slack); the test worlds switch them off with ``rate_limit=False``.

Every accepted post is recorded (:class:`AcceptedPost`: monotonic time, channel, thread, ts, metadata key), so a
benchmark can check order per thread, count duplicates and losses, and time a drain; ``refused`` counts 429s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def wait(self) -> float:
        """Seconds until one token is available (0 when one is there now). Takes nothing."""
        self._refill()
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate

    def consume(self) -> None:
        """Take one token (call only after ``wait()`` returned 0)."""
        self._tokens -= 1.0

    def take(self) -> int | None:
        """Take one token; None when allowed, else the seconds to wait (Retry-After, at least 1)."""
        wait = self.wait()
        if wait > 0:
            return retry_after_seconds(wait)
        self.consume()
        return None


def retry_after_seconds(wait: float) -> int:
    """Slack's ``Retry-After``: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


class AcceptedPost(NamedTuple):
    """One ``chat.postMessage`` the stand-in accepted."""

    at: float  # monotonic clock of the stand-in
    channel: str
    ts: str
    thread_ts: str | None
    key: str | None  # metadata.event_payload.key, when the post carried one


@dataclass
class RateLimits:
    """chat.postMessage limits: a bucket per channel plus one for the whole workspace; a record of posts."""

    enabled: bool = True
    channel_rate: float = 1.0
    channel_burst: int = 3
    workspace_rate: float = 10.0
    workspace_burst: int = 30
    clock: Callable[[], float] = time.monotonic
    accepted: list[AcceptedPost] = field(default_factory=list)
    refused: int = 0
    _channels: dict[str, TokenBucket] = field(default_factory=dict)
    _workspace: TokenBucket | None = None

    def check(self, channel: str) -> int | None:
        """None when a post to ``channel`` may go now (one token taken from each bucket), else Retry-After."""
        if not self.enabled:
            return None
        if self._workspace is None:
            self._workspace = TokenBucket(self.workspace_rate, self.workspace_burst, self.clock)
        bucket = self._channels.get(channel)
        if bucket is None:
            bucket = self._channels[channel] = TokenBucket(self.channel_rate, self.channel_burst, self.clock)
        wait = max(bucket.wait(), self._workspace.wait())
        if wait > 0:
            self.refused += 1
            return retry_after_seconds(wait)
        bucket.consume()
        self._workspace.consume()
        return None

    def record(self, channel: str, message: dict[str, Any]) -> None:
        """Note an accepted post (``message`` as stored)."""
        metadata = message.get("metadata")
        payload = metadata.get("event_payload") if isinstance(metadata, dict) else None
        key = payload.get("key") if isinstance(payload, dict) else None
        thread_ts = message.get("thread_ts")
        self.accepted.append(
            AcceptedPost(
                self.clock(),
                channel,
                str(message["ts"]),
                str(thread_ts) if thread_ts else None,
                str(key) if key is not None else None,
            )
        )

    def reset(self) -> None:
        """Full buckets again (as after a long quiet spell) and empty records."""
        self._channels.clear()
        self._workspace = None
        self.accepted.clear()
        self.refused = 0
