"""Small pieces of the Slack sandbox's state: faults, records, message timestamps (rate limits: ratelimit.py)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
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
