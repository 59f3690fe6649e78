"""Behaviour 3 of the live case: nobody answered. The owner gets a direct message once the participant has waited
the study's threshold (working hours 09:00-18:00 in the owner's zone; 10 min when the session is under 24 h away),
the thread gets a note mentioning the owner at twice it; one nudge per stage per wait, exactly once across replicas,
none once someone has replied; ``/rally settings`` sets the thresholds and refuses what is not a duration."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import select

from bridge import nudges
from bridge.services import Services
from core.case import NudgePolicy, nudge_due
from core.records import Thread
from playground.world import World
from storage.db import Database
from storage.models import OutboxItem
from storage.uow import SqlStore
from tests.cases.conftest import FakeClock, command, linked, thread_texts, unescape
from tests.factories import participant_thread, study_link
from tests.integration.conftest import eventually
from tests.integration.flows import participant_writes, sent_to

BERLIN = "Europe/Berlin"  # the zone of everyone in the world's Slack workspace


async def _thread(world: World) -> Thread:
    assert world.bridge is not None
    async with world.bridge.services.store.transaction() as uow:
        thread = await uow.threads.for_participant(world.cast.study_id, world.cast.jordan.participant_id)
    assert thread is not None
    return thread


async def _waiting(world: World) -> Thread:
    async def check() -> Thread | None:
        thread = await _thread(world)
        return thread if thread.waiting_since is not None else None

    deadline = asyncio.get_running_loop().time() + 10
    while (found := await check()) is None:
        assert asyncio.get_running_loop().time() < deadline, "the participant never started waiting"
        await asyncio.sleep(0.05)
    return found


async def _tick(world: World) -> int:
    assert world.bridge is not None
    queued = await world.bridge.queue_nudges()
    await world.quiet()
    return queued


def _dms(world: World, user: str) -> list[str]:
    return [unescape(str(m.get("text", ""))) for m in world.slack.direct_messages(user)]


async def test_owner_is_messaged_then_the_thread_is_told_and_a_reply_stops_it(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    await world.rally.move_session(c.study_id, c.jordan.participant_id, None)  # no session: working hours count
    root_ts = await linked(world)
    assert (await world.slack.run_command(c.channel, c.owner.slack_id, "assign Jordan")).status == 200
    await participant_writes(world, c.jordan, "Hi, is the study still on?")
    thread = await _waiting(world)
    assert thread.waiting_since is not None
    first = nudge_due(
        thread.waiting_since, stage=1, policy=NudgePolicy(), tz=BERLIN, session_starts_at=None, now=thread.waiting_since
    )
    second = nudge_due(
        thread.waiting_since, stage=2, policy=NudgePolicy(), tz=BERLIN, session_starts_at=None, now=thread.waiting_since
    )

    fake_clock.set(first - timedelta(minutes=1))
    assert await _tick(world) == 0 and _dms(world, c.owner.slack_id) == []

    fake_clock.set(first + timedelta(seconds=1))
    assert await _tick(world) == 1
    dms = await eventually(lambda: _dms(world, c.owner.slack_id), what="the owner's direct message")
    assert len(dms) == 1 and "Jordan L. (Checkout redesign interviews) has waited" in dms[0]
    assert await _tick(world) == 0  # once per stage

    fake_clock.set(second + timedelta(seconds=1))
    assert await _tick(world) == 1
    note = await eventually(
        lambda: [t for t in thread_texts(world, root_ts) if "nobody has replied yet" in t], what="the note"
    )
    assert note[0].startswith(f"<@{c.owner.slack_id}> Jordan L. has waited")  # a real mention of the owner
    assert await _tick(world) == 0 and len(_dms(world, c.owner.slack_id)) == 1

    # Someone replies: the wait is over, nothing more; a new wait has nudges of its own.
    await world.slack.user_posts(c.channel, c.teammate.slack_id, "Yes! See you Monday.", thread_ts=root_ts)
    await eventually(lambda: sent_to(world, c.jordan), what="the reply relayed")
    assert (await _thread(world)).waiting_since is None
    fake_clock.advance(timedelta(days=3))
    assert await _tick(world) == 0


async def test_a_reply_before_the_nudge_leaves_cancels_it(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    await world.rally.move_session(c.study_id, c.jordan.participant_id, None)
    root_ts = await linked(world)
    await participant_writes(world, c.jordan, "Hello?")
    thread = await _waiting(world)
    assert thread.waiting_since is not None
    first = nudge_due(
        thread.waiting_since, stage=1, policy=NudgePolicy(), tz=BERLIN, session_starts_at=None, now=thread.waiting_since
    )
    await world.stop_bridge()  # the nudge is queued, then someone answers before it leaves
    fake_clock.set(first + timedelta(seconds=1))
    await world.start_bridge(worker_poll_seconds=0.05, reconcile_interval_seconds=3600)
    await world.slack.user_posts(c.channel, c.owner.slack_id, "Hello Jordan!", thread_ts=root_ts)
    await eventually(lambda: sent_to(world, c.jordan), what="the reply relayed")
    await world.quiet()
    assert await _tick(world) == 0
    assert _dms(world, c.owner.slack_id) == []  # no owner: the linker (Ana) would have been told


async def test_a_session_less_than_a_day_away_makes_it_ten_minutes(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    await world.rally.move_session(c.study_id, c.jordan.participant_id, soon.isoformat().replace("+00:00", "Z"))
    await linked(world)
    await participant_writes(world, c.jordan, "Running late, where do I park?")
    thread = await _waiting(world)
    assert thread.waiting_since is not None
    fake_clock.set(thread.waiting_since + timedelta(minutes=9))
    assert await _tick(world) == 0
    fake_clock.set(thread.waiting_since + timedelta(minutes=10, seconds=1))
    assert await _tick(world) == 1
    # Nobody owns the thread: the person who linked the study (Ana) is told.
    assert len(await eventually(lambda: _dms(world, c.owner.slack_id), what="the linker's message")) == 1


async def test_settings_set_thresholds_and_refuse_what_is_not_a_duration(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    await linked(world)
    said = unescape(await command(world, c.owner.slack_id, "settings wait=soonish"))
    assert "soonish" in said and "wait=30m" in said
    said = unescape(await command(world, c.owner.slack_id, "settings"))
    assert "after 30 min" in said and "the defaults" in said
    said = unescape(await command(world, c.owner.slack_id, "settings wait=2h soon=5m"))
    assert "after 2 h" in said and "5 min" in said and "set for this study" in said
    said = unescape(await command(world, c.no_access.slack_id, "settings wait=1m"))
    assert "external-panel access" in said
    assert world.bridge is not None
    async with world.bridge.services.store.transaction() as uow:
        link = await uow.links.for_study(c.study_id)
    assert link is not None and (link.nudge_wait_minutes, link.nudge_soon_minutes) == (120, 5)


async def test_concurrent_ticks_on_replicas_queue_each_nudge_once(database_url: str) -> None:
    dbs = [Database(database_url) for _ in range(4)]
    since = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # a Wednesday morning
    try:
        async with dbs[0].transaction() as session:
            link = study_link(linked_at=since, linked_by="U0ANA")
            thread = participant_thread(
                link,
                created_at=since,
                waiting_since=since,
                last_in_at=since,
                owner_user_id="U0ANA",
                owner_name="Ana Ortiz",
                owner_tz="UTC",
            )
            session.add_all([link, thread])
        now = since + timedelta(hours=2)  # both stages are due

        def services(db: Database) -> Services:
            none = cast(Any, None)
            return Services(store=SqlStore(db), chats={}, respondent=none, rally=none)

        counts = await asyncio.gather(*(nudges.tick(services(db), now=now) for db in dbs for _ in range(3)))
        assert sum(counts) == 2
        async with dbs[0].transaction() as session:
            keys = sorted((await session.execute(select(OutboxItem.key))).scalars())
        assert keys == [f"nudge:{thread.id}:{since.isoformat()}:1", f"nudge:{thread.id}:{since.isoformat()}:2"]
    finally:
        for db in dbs:
            await db.dispose()
