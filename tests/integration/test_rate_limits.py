"""Rate limits end to end: the Slack stand-in refuses as Slack does, and the bridge drains a backlog under its
limits with nothing lost, nothing posted twice, order kept per thread and hardly a 429. Counts, never times."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update

from playground.world import Candidate, World
from sandbox.slack import SlackSandbox
from storage import queue
from storage.db import Database
from storage.models import OutboxItem
from tests.integration.conftest import eventually
from tests.integration.flows import link_study, participant_writes

# Slack's per-channel limit as the stand-in models it, and a small workspace budget so that it binds too.
LIMITS = {"channel_rate": 1.0, "channel_burst": 3, "workspace_rate": 3.0, "workspace_burst": 4}
SECOND = Candidate("pa_lee", "Lee", "Park", "lee@example.net", "6960391fbd5465b2dd6bd6f1")
SECOND_PROJECT = "69603934cd7d6158385a2f0f"
SECOND_CHANNEL = "C0SECOND"


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def key(k: str) -> dict[str, Any]:
    return {"event_type": "rallybridge_post", "event_payload": {"key": k}}


async def test_the_slack_stand_in_answers_429_retry_after_and_ratelimited_beyond_its_limits() -> None:
    clock = Clock()  # the stand-in's buckets run on this clock: nothing here waits
    box = SlackSandbox(clock=clock, channel_rate=1.0, channel_burst=3, workspace_rate=2.0, workspace_burst=5)
    for channel in ("C1", "C2", "C3"):
        box.add_channel(channel, channel.lower())
    await box.start()
    client = AsyncWebClient(token=box.token, base_url=f"{box.base_url}/api/", retry_handlers=[])
    try:
        for n in range(3):
            await client.chat_postMessage(channel="C1", text=f"one {n}", metadata=key(f"k{n}"))
        with pytest.raises(SlackApiError) as channel_limit:
            await client.chat_postMessage(channel="C1", text="one 3", metadata=key("k3"))
        refused = channel_limit.value.response
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        assert refused.data == {"ok": False, "error": "ratelimited"}
        # The workspace's burst of 5: two more fit in another channel, then a third channel is refused.
        for n in range(2):
            await client.chat_postMessage(channel="C2", text=f"two {n}", thread_ts=None, metadata=key(f"t{n}"))
        with pytest.raises(SlackApiError) as workspace_limit:
            await client.chat_postMessage(channel="C3", text="three")
        assert workspace_limit.value.response.status_code == 429
        assert workspace_limit.value.response.headers["Retry-After"] == "1"  # whole seconds, at least 1
        # Refused posts took no budget: half a second later (2/s) exactly one more fits.
        clock.now += 0.5
        await client.chat_postMessage(channel="C3", text="three again", metadata=key("c3"))
        with pytest.raises(SlackApiError):
            await client.chat_postMessage(channel="C3", text="and again")
    finally:
        await box.stop()
    assert box.rate_limits.refused == 3
    assert [(p.channel, p.key) for p in box.rate_limits.accepted] == [
        ("C1", "k0"),
        ("C1", "k1"),
        ("C1", "k2"),
        ("C2", "t0"),
        ("C2", "t1"),
        ("C3", "c3"),
    ]
    assert [m["text"] for m in box.messages("C1")] == ["one 0", "one 1", "one 2"]  # nothing refused was stored
    assert [c.http_status for c in box.request_log if c.method == "chat.postMessage"].count(429) == 3


@pytest.fixture
async def limited(database_url: str) -> AsyncIterator[World]:
    """The world with the Slack stand-in enforcing LIMITS; the bridge paces to them (World.env says how)."""
    world = await World.create(database_url, slack_options=dict(LIMITS))
    c = world.cast
    world.slack.add_channel(SECOND_CHANNEL, "second-study")
    world.rally.add_study("st_second", "Second study", respondent_project_id=SECOND_PROJECT)
    world.rally.add_team_member("st_second", "usr_ana", c.owner.email, c.owner.name, role="OWNER")
    world.rally.add_participant(
        "st_second",
        SECOND.participant_id,
        SECOND.first_name,
        SECOND.last_name,
        email=SECOND.email,
        respondent_user_id=SECOND.respondent_user_id,
        approval_status="APPROVED",
    )
    try:
        yield world
    finally:
        await world.stop()


async def start(world: World, **overrides: Any) -> None:
    await world.start_bridge(
        worker_poll_seconds=0.05,
        reconcile_interval_seconds=3600,
        retry_base_seconds=0.2,
        retry_cap_seconds=2,
        **overrides,
    )


def thread_replies(world: World, channel: str, name: str) -> list[str]:
    """The participant-message texts in ``name``'s thread, in posting order."""
    roots = [m for m in world.slack.messages(channel) if name in m.get("text", "") and "Reply in" in m.get("text", "")]
    if not roots:
        return []
    return [m["text"].rsplit("\n", 1)[-1] for m in world.slack.thread(channel, roots[0]["ts"])]


async def three_threads(world: World) -> dict[str, Candidate]:
    c = world.cast
    await link_study(world)
    for who in (c.priya, c.sam):
        await world.rally.approve(c.study_id, who.participant_id)
    names = {f"{w.first_name} {w.last_name[0]}.": w for w in (c.jordan, c.priya, c.sam)}
    await eventually(
        lambda: all(
            any(n in m.get("text", "") and "Reply in" in m.get("text", "") for m in world.slack.messages(c.channel))
            for n in names
        ),
        within=20,
        what="three thread roots",
    )
    return names


@pytest.mark.parametrize("pacing", [True, False], ids=["paced", "unpaced"])
async def test_a_backlog_drains_under_slack_limits_once_and_in_order(limited: World, pacing: bool) -> None:
    """Paced, the bridge meets hardly a 429; unpaced (the stand-in is the only brake) it meets many and still loses
    nothing, because 429 + Retry-After is a retry; either way every message appears once, in its thread's order."""
    off = {"RALLYBRIDGE_SLACK_CHANNEL_RATE": "0", "RALLYBRIDGE_SLACK_POSTS_PER_MINUTE": "0"}
    await start(limited, **({} if pacing else off))
    names = await three_threads(limited)
    limited.slack.rate_limits.reset()  # full budgets; count only the drain's posts and refusals
    for n in range(5):  # 15 messages in one channel arrive far faster than 1 post a second
        for who in names.values():
            await participant_writes(limited, who, f"{who.first_name} says {n}")
    channel = limited.cast.channel
    await eventually(
        lambda: all(len(thread_replies(limited, channel, name)) >= 5 for name in names),
        within=90,
        what="15 messages mirrored",
    )
    await limited.quiet(timeout=30, wait_scheduled=True)  # a post made twice, or deferred, would show up by now
    for name, who in names.items():
        assert thread_replies(limited, channel, name) == [f"{who.first_name} says {n}" for n in range(5)]
    keys = [p.key for p in limited.slack.rate_limits.accepted]
    assert len(keys) == 15 and len(set(keys)) == 15
    if pacing:
        assert limited.slack.rate_limits.refused <= 2
    else:
        assert limited.slack.rate_limits.refused >= 3


async def test_a_channel_out_of_budget_does_not_hold_back_another(limited: World) -> None:
    c = limited.cast
    await start(limited)
    await link_study(limited)
    result = await limited.slack.run_command(SECOND_CHANNEL, c.owner.slack_id, "link st_second")
    assert result.status == 200
    await eventually(lambda: thread_replies(limited, SECOND_CHANNEL, "Lee P.") == [], what="Lee's thread")
    await eventually(
        lambda: any("Lee P." in m.get("text", "") for m in limited.slack.messages(SECOND_CHANNEL)), what="Lee's root"
    )
    limited.slack.rate_limits.reset()
    for n in range(8):  # Jordan's channel: 3 at once, then one a second
        await participant_writes(limited, c.jordan, f"jordan {n}")
    await limited.respondent.participant_writes(
        SECOND_PROJECT, SECOND.respondent_user_id, "lee 0", first_name=SECOND.first_name, last_name=SECOND.last_name
    )
    await eventually(
        lambda: (
            len(thread_replies(limited, c.channel, "Jordan L.")) == 8
            and thread_replies(limited, SECOND_CHANNEL, "Lee P.") == ["lee 0"]
        ),
        within=60,
        what="both threads mirrored",
    )
    order = [p.channel for p in limited.slack.rate_limits.accepted]
    # Lee's post did not queue behind Jordan's: it went while Jordan's channel still waited for budget.
    assert order.index(SECOND_CHANNEL) < max(i for i, ch in enumerate(order) if ch == c.channel)
    assert order.count(c.channel) == 8 and order.count(SECOND_CHANNEL) == 1
    assert limited.slack.rate_limits.refused == 0
    assert thread_replies(limited, c.channel, "Jordan L.") == [f"jordan {n}" for n in range(8)]


async def test_a_paced_row_goes_back_untouched_and_keeps_its_lane_waiting(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            for n in range(2):
                await queue.enqueue(
                    session, OutboxItem, key=f"post:{n}", kind="chat.mirror", lane="thread:1", payload={}
                )
        lease = timedelta(seconds=30)
        async with db.transaction() as session:
            [row] = await queue.claim(session, OutboxItem, owner="w1", lease=lease)
        assert (row.key, row.attempts) == ("post:0", 1)
        async with db.transaction() as session:
            assert await queue.defer(session, OutboxItem, row.id, "w1", delay=30)
            assert not await queue.defer(session, OutboxItem, row.id, "w2", delay=30)  # only the lease holder
        async with db.transaction() as session:
            stored = await session.get(OutboxItem, row.id)
            assert stored is not None
            assert (stored.status, stored.attempts, stored.last_error, stored.needs_verify) == (
                "pending",
                0,
                None,
                False,
            )
            # Not due for 30 s, and the next row of its lane waits behind it: order is kept.
            assert await queue.claim(session, OutboxItem, owner="w1", lease=lease) == []
        async with db.transaction() as session:  # its moment comes
            await session.execute(
                update(OutboxItem).where(OutboxItem.id == row.id).values(next_attempt_at=queue.utcnow())
            )
        async with db.transaction() as session:
            [again] = await queue.claim(session, OutboxItem, owner="w1", lease=lease)
        assert (again.key, again.attempts) == ("post:0", 1)
    finally:
        await db.dispose()
