"""The playground under a real headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright).

Playwright never downloads a browser here: it launches the system Chromium by path. Without it the browser
tests skip, unless ``RALLYBRIDGE_REQUIRE_BROWSER`` is set (CI sets it), in which case they fail.
Screenshots go to ``artifacts/playground/<test>/`` under the repository; the run's summary prints where.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright

from playground import Playground
from playground.world import World

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "playground"
_written: list[Path] = []


def require_chromium() -> None:
    """Skip (or, with RALLYBRIDGE_REQUIRE_BROWSER set, fail) when Debian's Chromium is not installed."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing (apt-get install -y chromium); the browser tests need Debian's Chromium"
    if os.environ.get("RALLYBRIDGE_REQUIRE_BROWSER"):
        pytest.fail(f"{reason}, and RALLYBRIDGE_REQUIRE_BROWSER is set")
    pytest.skip(reason)


class Screenshots:
    """Numbered screenshots of one test, in ``artifacts/playground/<test>/``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0

    async def take(self, page: Page, name: str) -> Path:
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Screenshots:
    directory = ARTIFACTS / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    _written.append(directory)
    print(f"screenshots: {directory}")
    return Screenshots(directory)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for directory in _written:
        shots = sorted(directory.glob("*.png"))
        if shots:
            terminalreporter.write_line(f"playground screenshots ({len(shots)}): {directory}")


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """Headless Chromium with a fresh profile in a temporary user-data-dir."""
    require_chromium()
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            yield context
        finally:
            await context.close()


@pytest.fixture
async def world(sqlite_url: str) -> AsyncIterator[World]:
    """Stand-ins and the real bridge on real ports, with a short retry backoff so an outage heals quickly."""
    w = await World.create(sqlite_url, slack_options={"rate_limit": False})
    await w.start_bridge(
        worker_poll_seconds=0.05, reconcile_interval_seconds=3600, retry_base_seconds=0.2, retry_cap_seconds=1
    )
    try:
        yield w
    finally:
        await w.stop()


@pytest.fixture
async def playground(world: World) -> AsyncIterator[Playground]:
    served = Playground(world)
    await served.start(0)
    try:
        yield served
    finally:
        await served.stop()
