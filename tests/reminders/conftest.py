"""Reminder tests: the integration world (stand-ins, real app, both databases) plus a controllable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core import clock
from playground.world import World
from tests.integration.conftest import dump_queues, eventually
from tests.integration.conftest import pytest_runtest_makereport as pytest_runtest_makereport
from tests.integration.flows import link_study, root_of

__all__ = ["FakeClock", "eventually"]


class FakeClock:
    """Real time shifted by ``offset``: moves forward on request, keeps ticking meanwhile."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by

    def set(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    fake = FakeClock()
    clock.set_clock(fake)
    try:
        yield fake
    finally:
        clock.set_clock(None)


@pytest.fixture
async def world(database_url: str, request: pytest.FixtureRequest, fake_clock: FakeClock) -> AsyncIterator[World]:
    w = await World.create(database_url, slack_options={"rate_limit": False})
    await w.start_bridge(
        worker_poll_seconds=0.05, reconcile_interval_seconds=3600, retry_base_seconds=0.2, retry_cap_seconds=2
    )
    try:
        yield w
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(await dump_queues(w))
            print("slack:", [(m.get("thread_ts"), m.get("text", "")[:90]) for m in w.slack.messages(w.cast.channel)])
            print("ephemerals:", [e["text"][:200] for e in w.slack.ephemerals])
        await w.stop()


async def linked(world: World) -> str:
    """Link the study; the root ts of Jordan's thread."""
    await link_study(world)
    return str((await root_of(world, world.cast.jordan))["ts"])


def private_to(world: World, user: str) -> list[str]:
    return [e["text"] for e in world.slack.ephemerals if e["user"] == user]


async def command(world: World, user: str, text: str) -> str:
    """Run ``/rally <text>`` as ``user``; the private answer it got."""
    before = len(private_to(world, user))
    result = await world.slack.run_command(world.cast.channel, user, text)
    assert result.status == 200
    answers: list[str] = await eventually(lambda: private_to(world, user)[before:], what=f"answer to /rally {text}")
    return answers[0]


def thread_texts(world: World, root_ts: str) -> list[str]:
    return [m.get("text", "") for m in world.slack.thread(world.cast.channel, root_ts)]


def channel_texts(world: World) -> list[str]:
    return [m.get("text", "") for m in world.slack.messages(world.cast.channel) if not m.get("thread_ts")]


async def fire_due(world: World) -> int:
    """One tick now (the scheduler's own tick would do the same within a second)."""
    assert world.bridge is not None
    return await world.bridge.queue_due_reminders()


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def any_text(texts: list[str], part: str) -> Any:
    return [t for t in texts if part in unescape(t)]
