"""The integration world: real stand-ins on real ports, the real bridge app on a real port, a real database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sandbox.world import World


async def eventually(check: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    w = await World.create(database_url, slack_options={"rate_limit": False})
    await w.start_bridge(worker_poll_seconds=0.05, reconcile_interval_seconds=3600)
    try:
        yield w
    finally:
        await w.stop()
