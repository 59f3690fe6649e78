"""Teams rate limits: bursts keep their order, arrive once, and 429s are honoured."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.integration.conftest import eventually
from tests.integration.flows import participant_writes
from tests.teams.conftest import CHANNEL, TeamsWorld


async def test_the_stand_in_refuses_the_8th_send_within_a_second(tw: TeamsWorld) -> None:
    """The connector stand-in enforces Teams' per-thread limit (7 / 1 s) as the real service does."""
    root_id = await tw.link()
    conversation = f"{CHANNEL};messageid={root_id}"
    url = f"{tw.teams.service_url}/v3/conversations/{conversation}/activities"
    token = tw.teams.connector.tokens and next(iter(tw.teams.connector.tokens))
    tw.teams.connector.sends.clear()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        statuses = []
        for n in range(8):
            async with session.post(url, json={"type": "message", "text": f"n{n}"}) as resp:
                statuses.append(resp.status)
    assert statuses == [201] * 7 + [429]


async def test_a_burst_of_50_mirrored_and_relayed_messages_is_paced_in_order_and_once(tw: TeamsWorld) -> None:
    root_id = await tw.link()
    c = tw.study
    tw.teams.connector.rate_limited.clear()
    # 25 participant messages (mirrored into the chain) and 25 replies (relayed; each acknowledged in the chain).
    writes = [participant_writes(tw.world, c.jordan, f"from jordan {n}") for n in range(25)]
    await asyncio.gather(*writes[:5])
    for n in range(25):
        await tw.teams.posts(CHANNEL, tw.cast.owner, f"to jordan {n}", root=root_id)
    await asyncio.gather(*writes[5:])

    def mirrored() -> list[str]:
        return [r for r in tw.replies(root_id) if "(participant)" in r]

    def acks() -> list[str]:
        return [r for r in tw.replies(root_id) if r.startswith("✓")]

    await eventually(lambda: len(mirrored()) == 25 and len(acks()) == 25, within=40, what="50 posts in the chain")
    await tw.quiet()
    assert [m.rsplit(" ", 1)[-1] for m in mirrored()] == [str(n) for n in range(25)]
    assert tw.sent_to_jordan() == [f"to jordan {n}" for n in range(25)]
    assert len(tw.replies(root_id)) == 50
    # Paced under Teams' limits: the stand-in never had to refuse a send into the chain.
    assert tw.teams.connector.rate_limited == []


async def test_429_412_502_504_are_retried_and_nothing_is_lost_or_reordered(tw: TeamsWorld) -> None:
    root_id = await tw.link()
    c = tw.study
    assert tw.world.bridge is not None
    # Switch the bridge's pacing off so the stand-in's own limit answers 429 on the 8th send within a second.
    tw.world.bridge.services.chats["teams"].connector.pacer.limits = ()  # type: ignore[attr-defined]
    connector = tw.teams.connector
    connector.rate_limit_next(1, retry_after=0.5, path_contains="/activities")
    for status in (412, 502, 504):
        connector.fail_next(1, status=status, path_contains="/activities")
    for n in range(20):
        await participant_writes(tw.world, c.jordan, f"burst {n}")
    await eventually(lambda: len(tw.replies(root_id)) == 20, within=40, what="20 mirrored")
    await tw.quiet()
    assert [r.rsplit(" ", 1)[-1] for r in tw.replies(root_id)] == [str(n) for n in range(20)]
    statuses = [r.status for r in connector.request_log if "/activities" in r.path]
    assert {429, 412, 502, 504} <= set(statuses)
    assert connector.rate_limited, "the stand-in's own per-thread limit was reached"
