"""Links checked before they leave: a reply whose link answers 404, or looks cut off, is held and its author told
privately with Send anyway and Cancel; a healthy link goes out as usual; the study's scheduling links are trusted
without a check. The link server is a real local HTTP server the bridge is allowed to reach (an allowlist setting:
the checker never calls private or loopback addresses otherwise, see tests/adapters/test_link_checker.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from playground.world import World
from tests.composed.conftest import FakeClock, linked, unescape
from tests.integration.conftest import eventually
from tests.integration.flows import sent_to

DELIVERED = "white_check_mark"


@pytest.fixture
async def links() -> AsyncIterator[str]:
    """A local site: ``/ok`` answers 200, anything else 404."""

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/ok", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _checking(world: World, host: str) -> None:
    await world.stop_bridge()
    await world.start_bridge(
        worker_poll_seconds=0.05,
        reconcile_interval_seconds=3600,
        retry_base_seconds=0.2,
        retry_cap_seconds=2,
        link_check="on",
        link_check_allow=host,
    )


def _privates(world: World, user: str) -> list[dict[str, Any]]:
    return [e for e in world.slack.ephemerals if e["user"] == user]


async def test_a_broken_link_holds_the_reply_until_send_anyway(world: World, fake_clock: FakeClock, links: str) -> None:
    c = world.cast
    await _checking(world, links)
    root_ts = await linked(world)
    broken = f"http://{links}/missing"
    ts = await world.slack.user_posts(c.channel, c.owner.slack_id, f"Directions: {broken}", thread_ts=root_ts)
    held = await eventually(lambda: _privates(world, c.owner.slack_id), what="the hold")
    said = unescape(held[-1]["text"])
    assert "I held your message back" in said and f"{broken}: answered 404 Not Found" in said
    await world.quiet()
    assert sent_to(world, c.jordan) == []

    for _ in range(2):  # a double click sends once
        await world.slack.click(c.channel, c.owner.slack_id, "Send anyway", ephemeral=held[-1])
    await eventually(lambda: sent_to(world, c.jordan) == [f"Directions: {broken}"], what="sent anyway")
    await eventually(lambda: DELIVERED in world.slack.reactions(c.channel, ts), what="the reply marked delivered")
    await world.quiet()
    assert sent_to(world, c.jordan) == [f"Directions: {broken}"]
    answers = [unescape(e["text"]) for e in _privates(world, c.owner.slack_id)]
    assert "Sent as it was written." in answers and "That message was already sent or cancelled." in answers


async def test_healthy_trusted_and_cut_off_links(world: World, fake_clock: FakeClock, links: str) -> None:
    c = world.cast
    await _checking(world, links)
    root_ts = await linked(world)
    await world.slack.user_posts(c.channel, c.owner.slack_id, f"Info: http://{links}/ok", thread_ts=root_ts)
    await eventually(lambda: sent_to(world, c.jordan) == [f"Info: http://{links}/ok"], what="a healthy link sent")
    # The study's scheduling link is trusted: never checked (it is not on the allowlist, and offline besides).
    scheduling = "https://app.rallyuxr.com/schedule/pa_jordan"
    await world.slack.user_posts(c.channel, c.owner.slack_id, f"Book here: {scheduling}", thread_ts=root_ts)
    await eventually(lambda: len(sent_to(world, c.jordan)) == 2, what="the scheduling link sent")
    # A link that looks cut off is held without calling anyone.
    await world.slack.user_posts(c.channel, c.owner.slack_id, "See https://example.com/guide...", thread_ts=root_ts)
    held = await eventually(lambda: _privates(world, c.owner.slack_id), what="the hold")
    assert "looks cut off" in unescape(held[-1]["text"])
    await world.slack.click(c.channel, c.owner.slack_id, "Cancel", ephemeral=held[-1])
    await eventually(
        lambda: any("Cancelled: nothing was sent." in e["text"] for e in _privates(world, c.owner.slack_id)),
        what="cancelled",
    )
    await world.quiet()
    assert len(sent_to(world, c.jordan)) == 2


async def test_a_saved_reply_with_a_broken_link_is_held_too(world: World, fake_clock: FakeClock, links: str) -> None:
    c = world.cast
    await _checking(world, links)
    root_ts = await linked(world)
    result = await world.slack.run_command(c.channel, c.owner.slack_id, f"reply add map The map: http://{links}/gone")
    assert result.status == 200
    await eventually(lambda: _privates(world, c.owner.slack_id), what="saved")
    await world.slack.run_command(c.channel, c.owner.slack_id, "reply Jordan map")
    held = await eventually(
        lambda: [e for e in _privates(world, c.owner.slack_id) if "held your message" in e["text"]], what="the hold"
    )
    await world.slack.click(c.channel, c.owner.slack_id, "Send anyway", ephemeral=held[0])
    await eventually(lambda: sent_to(world, c.jordan) == [f"The map: http://{links}/gone"], what="sent anyway")
    await eventually(
        lambda: [
            t
            for t in (unescape(m.get("text", "")) for m in world.slack.thread(c.channel, root_ts))
            if "sent the saved reply “map”" in t
        ],
        what="the thread shows what was sent",
    )
