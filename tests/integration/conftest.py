"""The integration world: real stand-ins on real ports, the real bridge app on a real port, a real database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from playground.world import World


async def eventually(check: Callable[[], Any], *, within: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


async def dump_queues(world: World) -> str:
    """The inbox and outbox as a table: printed when a test fails, to show where a message got stuck."""
    lines = []
    engine = create_async_engine(world.database_url)  # the tables themselves, whether or not a bridge is running
    try:
        async with engine.connect() as conn:
            for table in ("inbox", "outbox"):
                rows = await conn.execute(text(f"SELECT id, kind, key, status, attempts, last_error FROM {table}"))
                lines += [f"{table}: {tuple(row)}" for row in rows]
    finally:
        await engine.dispose()
    return "\n".join(lines)


@pytest.fixture
async def world(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[World]:
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
            print(
                "slack:",
                [(m.get("ts"), m.get("thread_ts"), m.get("text", "")[:60]) for m in w.slack.messages(w.cast.channel)],
            )
        await w.stop()
