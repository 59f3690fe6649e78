"""Issue 13: in a busy channel, messages that concern no participant thread are answered 200 and leave no inbox row
(bridge/edge.py); everything a handler may act on is still stored first and handled as before. Through the real app
on SQLite and PostgreSQL, signed Slack events from the stand-in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from playground.world import World
from storage.models import InboxEvent, OutboxItem, ParticipantThread
from tests.integration.conftest import eventually
from tests.integration.flows import link_study, root_of, sent_to


def _private(world: World, user: str) -> list[str]:
    return [e["text"] for e in world.slack.ephemerals if e["user"] == user]


async def _inbox(world: World, **where: Any) -> list[InboxEvent]:
    assert world.bridge is not None
    query = select(InboxEvent).order_by(InboxEvent.id)
    if "ts" in where:
        query = query.where(InboxEvent.key.like(f"%:{where['ts']}"))
    if "kind" in where:
        query = query.where(InboxEvent.kind == where["kind"])
    async with world.bridge.db.transaction() as session:
        return list((await session.execute(query)).scalars())


def _ignored(world: World, kind: str = "chat.message") -> float:
    assert world.bridge is not None
    registry = world.bridge.services.metrics.registry
    return registry.get_sample_value("rallybridge_inbound_events_total", {"kind": kind, "result": "ignored"}) or 0.0


def _last_status(world: World) -> int | None:
    return world.slack.event_deliveries[-1].status


async def _root_recorded(world: World) -> str:
    """Jordan's thread root, once its id is recorded (the root shows in Slack a moment before)."""
    assert world.bridge is not None
    await link_study(world)
    root_ts = str((await root_of(world, world.cast.jordan))["ts"])

    async def recorded() -> bool:
        async with world.bridge.db.transaction() as session:  # type: ignore[union-attr]
            query = select(func.count()).where(ParticipantThread.thread_ts == root_ts)
            return bool((await session.execute(query)).scalar_one())

    for _ in range(200):
        if await recorded():
            return root_ts
        await world.quiet()
    raise AssertionError("the root's id was never recorded")


async def test_top_level_messages_and_other_threads_are_answered_and_not_stored(world: World) -> None:
    c = world.cast
    root_ts = await _root_recorded(world)
    await world.quiet()
    stored_before = len(await _inbox(world))

    lunch = await world.slack.user_posts(c.channel, c.owner.slack_id, "lunch anyone?")  # top-level, linked channel
    assert _last_status(world) == 200
    await world.slack.user_posts(c.channel, c.teammate.slack_id, "yes!", thread_ts=lunch)  # a thread of people
    assert _last_status(world) == 200
    elsewhere = await world.slack.user_posts("C0OTHER", c.owner.slack_id, "hi all")  # a channel linked to nothing
    await world.slack.user_posts("C0OTHER", c.teammate.slack_id, "hello", thread_ts=elsewhere)
    await world.slack.user_edits(c.channel, c.owner.slack_id, lunch, "lunch anyone? 12:30")
    await world.slack.user_deletes("C0OTHER", elsewhere)
    assert {d.status for d in world.slack.event_deliveries[-6:]} == {200}

    assert len(await _inbox(world)) == stored_before  # not one row
    assert _ignored(world) == 4 and _ignored(world, "chat.message_changed") == 2

    # The participant's thread is as before: a reply there is stored and relayed.
    ts = await world.slack.user_posts(c.channel, c.owner.slack_id, "See you Tuesday", thread_ts=root_ts)
    assert [r.kind for r in await _inbox(world, ts=ts)] == ["chat.message"]
    assert await eventually(lambda: sent_to(world, c.jordan), what="relay") == ["See you Tuesday"]
    await world.quiet()
    assert sent_to(world, c.jordan) == ["See you Tuesday"] and _private(world, c.owner.slack_id) == []


async def test_an_edit_in_a_participant_thread_is_stored_and_explained(world: World) -> None:
    c = world.cast
    root_ts = await _root_recorded(world)
    ts = await world.slack.user_posts(c.channel, c.owner.slack_id, "See you Tuesday", thread_ts=root_ts)
    await eventually(lambda: sent_to(world, c.jordan), what="relay")

    await world.slack.user_edits(c.channel, c.owner.slack_id, ts, "See you Wednesday")
    await eventually(lambda: any("Edits can't be relayed" in t for t in _private(world, c.owner.slack_id)))
    assert len(await _inbox(world, kind="chat.message_changed")) == 1
    assert _ignored(world, "chat.message_changed") == 0


async def test_a_reply_while_the_threads_root_is_being_recorded_is_stored_then_relayed(world: World) -> None:
    """The root is in Slack but its id is not recorded yet (its outbox row still being worked on, here by a replica
    that holds the lease): the reply is stored, waits, and is relayed once the root's id is recorded."""
    c = world.cast
    assert world.bridge is not None
    root_ts = await _root_recorded(world)
    await world.quiet()
    root_row = OutboxItem.kind == "chat.root"
    lease = datetime.now(UTC) + timedelta(hours=1)
    async with world.bridge.db.transaction() as session:
        await session.execute(update(ParticipantThread).values(thread_ts=None))
        await session.execute(
            update(OutboxItem)
            .where(root_row)
            .values(status="working", lease_owner="another-replica", lease_until=lease, finished_at=None)
        )

    ts = await world.slack.user_posts(c.channel, c.owner.slack_id, "Thursday then?", thread_ts=root_ts)
    assert _last_status(world) == 200
    assert [r.kind for r in await _inbox(world, ts=ts)] == ["chat.message"]  # stored before the answer
    for _ in range(200):  # the handler looks again later: the thread is still being opened
        (row,) = await _inbox(world, ts=ts)
        if row.last_error and "being opened" in row.last_error:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the reply was not retried: {row.status} {row.last_error}")
    assert sent_to(world, c.jordan) == []

    async with world.bridge.db.transaction() as session:  # the replica records the root and finishes its row
        await session.execute(update(ParticipantThread).values(thread_ts=root_ts))
        await session.execute(
            update(OutboxItem).where(root_row).values(status="done", lease_owner=None, finished_at=datetime.now(UTC))
        )
    assert await eventually(lambda: sent_to(world, c.jordan), what="relay", within=15) == ["Thursday then?"]
    assert _ignored(world) == 0


async def test_a_failed_read_stores_the_event_as_before(world: World) -> None:
    c = world.cast
    assert world.bridge is not None
    root_ts = await _root_recorded(world)
    store = world.bridge.services.store

    def broken() -> Any:
        raise ConnectionResetError("the read failed")

    store.read = broken  # type: ignore[method-assign]
    try:
        lunch = await world.slack.user_posts(c.channel, c.owner.slack_id, "lunch anyone?")
        other = await world.slack.user_posts(c.channel, c.teammate.slack_id, "yes!", thread_ts=lunch)
        reply = await world.slack.user_posts(c.channel, c.owner.slack_id, "See you Tuesday", thread_ts=root_ts)
        assert {d.status for d in world.slack.event_deliveries[-3:]} == {200}
        assert await _inbox(world, ts=lunch) == []  # top-level: no read needed, none made
        assert len(await _inbox(world, ts=other)) == 1  # could not tell: stored, and ignored by its handler
        assert len(await _inbox(world, ts=reply)) == 1
    finally:
        del store.read  # type: ignore[method-assign]  # back: the handlers read too, and retry until it is
    assert await eventually(lambda: sent_to(world, c.jordan), what="relay") == ["See you Tuesday"]
    await world.quiet()
    assert sent_to(world, c.jordan) == ["See you Tuesday"]
