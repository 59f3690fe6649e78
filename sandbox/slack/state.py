"""Small pieces of the Slack sandbox's state: rate limiting, faults, records, message timestamps."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

MAX_TEXT_CHARS = 40_000
MAX_SECTION_CHARS = 3_000


class ApiCall(NamedTuple):
    """One Web API request as the sandbox answered it: ``status`` is ``"ok"`` or Slack's error code."""

    method: str
    status: str
    http_status: int


class Delivery(NamedTuple):
    """One attempt to deliver an event to the bridge (``status`` None: no HTTP answer)."""

    event_id: str
    retry_num: int
    status: int | None


@dataclass
class CommandResult:
    """What the bridge answered to a slash command (its ack) and where it may reply later."""

    status: int
    body: str
    response_url: str
    trigger_id: str

    @property
    def json(self) -> Any:
        """The ack body parsed as JSON, or None when it is not JSON (e.g. empty)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class Fault:
    """A scripted misbehaviour for the next ``remaining`` matching calls."""

    kind: str  # "fail" | "ratelimit" | "hang"
    remaining: int
    method: str | None = None
    status: int = 500
    error: str | None = None
    retry_after: int = 1
    seconds: float = 0.0

    def matches(self, method: str) -> bool:
        """Whether this fault applies to ``method``."""
        return self.remaining > 0 and (self.method is None or self.method == method)


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def take(self) -> int | None:
        """Take one token; None when allowed, else the seconds to wait (Retry-After, at least 1)."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self._tokens) / self.rate))


@dataclass
class RateLimits:
    """chat.postMessage limits: a bucket per channel plus one for the whole workspace."""

    enabled: bool = True
    channel_rate: float = 1.0
    channel_burst: int = 3
    workspace_rate: float = 10.0
    workspace_burst: int = 30
    clock: Callable[[], float] = time.monotonic
    _channels: dict[str, TokenBucket] = field(default_factory=dict)
    _workspace: TokenBucket | None = None

    def check(self, channel: str) -> int | None:
        """None when a post to ``channel`` may go now, else Retry-After seconds."""
        if not self.enabled:
            return None
        if self._workspace is None:
            self._workspace = TokenBucket(self.workspace_rate, self.workspace_burst, self.clock)
        bucket = self._channels.get(channel)
        if bucket is None:
            bucket = self._channels[channel] = TokenBucket(self.channel_rate, self.channel_burst, self.clock)
        wait = bucket.take()
        if wait is not None:
            return wait
        return self._workspace.take()


class ReactionMap(dict[tuple[str, str], set[str]]):
    """Reactions by ``(channel, ts)``; also callable: ``reactions(channel, ts) -> set of names``."""

    def __call__(self, channel: str, ts: str) -> set[str]:
        """The reaction names on one message (empty set when none)."""
        return set(self.get((channel, ts), set()))


class TsClock:
    """Slack-style message timestamps (``"1795626633.000003"``), unique and increasing."""

    def __init__(self) -> None:
        self._sec = 0
        self._seq = 0

    def next(self) -> str:
        """The next timestamp."""
        now = int(time.time())
        if now > self._sec:
            self._sec, self._seq = now, 0
        self._seq += 1
        if self._seq > 999_999:
            self._sec, self._seq = self._sec + 1, 1
        return f"{self._sec}.{self._seq:06d}"
