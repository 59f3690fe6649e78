"""The whole bridge on a PostgreSQL pool of 2 connections, no overflow, and 1 inbound connection (issue 13): three
participants write and researchers reply in their threads, all at once; every message is mirrored, relayed and
archived once, in order, and no transaction ever waited out the pool timeout."""

from __future__ import annotations

import asyncio
import logging

import pytest

from playground.world import Candidate, World
from tests.integration.conftest import dump_queues, eventually
from tests.integration.flows import archived, link_study, participant_writes, replies, root_of, sent_to

pytestmark = [
    pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True),
]

EACH = 6  # messages each way per participant


async def test_a_small_pool_carries_concurrent_traffic_without_deadlock(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    world = await World.create(database_url, slack_options={"rate_limit": False})
    c = world.cast
    people = [c.jordan, c.priya, c.sam]
    try:
        bridge = await world.start_bridge(
            worker_poll_seconds=0.05,
            reconcile_interval_seconds=3600,
            db_pool_size=2,
            db_max_overflow=0,
            db_inbound_pool_size=1,
            db_pool_timeout_seconds=10,
        )
        assert bridge.db.engine.pool.size() == 2  # type: ignore[attr-defined]
        await link_study(world)
        for who in people[1:]:
            await world.rally.approve(c.study_id, who.participant_id)
        roots = {who.first_name: str((await root_of(world, who))["ts"]) for who in people}

        async def participant(who: Candidate) -> None:
            for n in range(EACH):
                await participant_writes(world, who, f"{who.first_name} says {n}")

        async def researcher(who: Candidate) -> None:
            for n in range(EACH):
                author = c.owner if n % 2 == 0 else c.teammate
                body = f"reply {n} to {who.first_name}"
                await world.slack.user_posts(c.channel, author.slack_id, body, thread_ts=roots[who.first_name])

        await asyncio.gather(*(participant(who) for who in people), *(researcher(who) for who in people))

        def everything_through() -> bool:
            return len(archived(world)) == 2 * EACH * len(people) and all(
                len(sent_to(world, who)) == EACH for who in people
            )

        try:
            await eventually(everything_through, within=60, what="every message mirrored, relayed and archived")
        except AssertionError:
            print(await dump_queues(world))
            raise
        await world.quiet(timeout=30)
        for who in people:
            assert sent_to(world, who) == [f"reply {n} to {who.first_name}" for n in range(EACH)]
            mirrored = [m["text"] for m in replies(world, {"ts": roots[who.first_name]}) if "says" in m["text"]]
            assert [t.rsplit(" says ", 1)[1] for t in mirrored] == [str(n) for n in range(EACH)], mirrored
        assert len({(e["direction"], e["body"]) for e in archived(world)}) == 2 * EACH * len(people)
        problems = [r.getMessage() for r in caplog.records if "TimeoutError" in r.getMessage() or r.exc_info]
        assert not problems, problems  # nobody waited out the pool
    finally:
        await world.stop()
