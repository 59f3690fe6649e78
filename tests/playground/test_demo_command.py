"""`rallybridge demo` as a newcomer runs it (`make demo`): the script, then the playground URL, in a real process."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, expect

from tests.playground.conftest import Screenshots

RALLYBRIDGE = Path(sys.executable).parent / "rallybridge"

pytestmark = pytest.mark.slow
expect.set_options(timeout=15_000)


async def test_demo_plays_the_study_then_serves_the_playground_until_ctrl_c(
    tmp_path: Path, browser: BrowserContext, screenshots: Screenshots
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}"
    process = await asyncio.create_subprocess_exec(
        str(RALLYBRIDGE),
        *("demo", "--pace", "0", "--database", database, "--playground-port", "0"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    printed: list[str] = []
    try:
        url = None
        async with asyncio.timeout(120):
            while url is None:
                line = (await process.stdout.readline()).decode()
                assert line, "the demo exited before printing the playground's URL:\n" + "".join(printed)
                printed.append(line)
                found = re.search(r"Open (http://127\.0\.0\.1:\d+/)", line)
                url = found.group(1) if found else None
        assert "Demo finished: every outcome above was read back from the stand-ins." in "".join(printed)

        # The page shows what the script did: three threads, eight archived messages (two from participants, two
        # replies, a saved reply and three updates), the counters, the update's summary, and (to Ana, the viewer)
        # the update's preview with the button she clicked.
        page = await browser.new_page()
        await page.goto(url)
        await expect(page.locator("#ready")).to_have_text("bridge ready")
        channel = page.locator("#channel-messages .slack-message:not(.private)")
        for name in ("Jordan L.", "Priya S.", "Sam C."):
            await expect(channel.filter(has_text=name).filter(has_text="Reply in this thread")).to_have_count(1)
        await expect(page.locator("#archive li")).to_have_count(8)
        await expect(page.locator("[data-metric=to_participant]")).to_have_text("6")
        await expect(page.locator("[data-metric=from_participant]")).to_have_text("2")
        await expect(channel.filter(has_text="Study update from Ana Ortiz")).to_contain_text("3 sent")
        preview = page.locator("#channel-messages .private", has_text="Update to 3 participants")
        await expect(preview.locator("button.block-button")).to_have_text(["Confirm: send to 3", "Cancel"])
        await screenshots.take(page, "after-the-script")

        # And it is live: approving Alex in the Rally pane opens Alex's thread in the running demo's Slack.
        await page.locator("#rally-participants tr[data-participant=pa_alex] button.approve").click()
        await expect(channel.filter(has_text="Alex K.")).to_have_count(1)
        await screenshots.take(page, "alex-approved")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        rest, _ = await asyncio.wait_for(process.communicate(), 30)
    output = "".join(printed) + rest.decode()
    assert process.returncode == 0, output
    assert "Playground stopped." in output
    assert "Traceback" not in output


def test_demo_with_nothing_to_do_says_so() -> None:
    done = subprocess.run(
        [str(RALLYBRIDGE), "demo", "--no-script", "--no-playground"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "Nothing to do" in done.stderr
