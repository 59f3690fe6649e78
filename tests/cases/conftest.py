"""The thread as a live case: the integration world (stand-ins, the real app, both databases) with a controllable
clock, as the reminder tests have it."""

from __future__ import annotations

from playground.world import World
from tests.reminders.conftest import (  # noqa: F401 (fixtures)
    FakeClock,
    command,
    fake_clock,
    linked,
    private_to,
    thread_texts,
    unescape,
    world,
)
from tests.reminders.conftest import pytest_runtest_makereport as pytest_runtest_makereport

__all__ = ["FakeClock", "card_of", "command", "linked", "private_to", "thread_texts", "unescape"]


def card_of(w: World, root_ts: str) -> str:
    """The root card's text as Slack holds it now (the fallback text carries every status line)."""
    root = next(m for m in w.slack.messages(w.cast.channel) if m["ts"] == root_ts)
    return unescape(str(root.get("text", "")))
