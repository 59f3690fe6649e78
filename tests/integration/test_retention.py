"""Retention (``storage/retention.py``, ticked by ``bot/app.py``): finished queue rows older than
RALLYBRIDGE_RETENTION_DAYS are deleted, a bounded number of small batches at a time; unfinished rows, recent rows
and failed relays (which Retry can still send) stay; a redelivered event is still absorbed, within the retention by
its inbox row, after it by the message mapping. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import event, func, insert, select, update

from bot.app import build_bridge
from bot.settings import MIN_RETENTION_DAYS, Settings
from playground.world import World
from storage import queue, retention
from storage.db import Database
from storage.models import ChatMessage, InboxEvent, OutboxItem, ParticipantThread
from storage.queue import QueueModel, utcnow
from tests.integration.flows import archived, link_study, participant_writes, replies, root_of

DAY = timedelta(days=1)
RELAY = "respondent.send"  # bridge.outbox.Effect.RELAY: the kind ``retry <id>`` re-queues
RETENTION = timedelta(days=30)


async def _row(db: Database, model: QueueModel, key: str, *, kind: str = "test", **values: Any) -> None:
    """A queued row, then set to ``values`` (status, finished_at, ...) as the worker would have left it."""
    async with db.transaction() as session:
        await queue.enqueue(session, model, key=key, kind=kind, lane=f"lane:{key}", payload={"body": "secret"})
        if values:
            await session.execute(update(model).where(model.key == key).values(**values))


async def _keys(db: Database, model: QueueModel) -> set[str]:
    async with db.transaction() as session:
        return set((await session.execute(select(model.key))).scalars())


async def test_old_finished_rows_are_deleted_and_everything_else_stays(database_url: str) -> None:
    db = Database(database_url)
    now = utcnow()
    old, recent = now - RETENTION - DAY, now - RETENTION + DAY
    try:
        for model in (InboxEvent, OutboxItem):
            await _row(db, model, "done-old", status="done", finished_at=old)
            await _row(db, model, "failed-old", kind="chat.notice", status="failed", finished_at=old)
            await _row(db, model, "done-recent", status="done", finished_at=recent)
            await _row(db, model, "pending-old", created_at=old - DAY, next_attempt_at=old)
            await _row(db, model, "working-old", status="working", created_at=old - DAY, lease_until=now + DAY)
        # A relay that gave up long ago: Retry can still send it, so it stays.
        await _row(db, OutboxItem, "relay-failed-old", kind=RELAY, status="failed", finished_at=old - 300 * DAY)
        await _row(db, OutboxItem, "relay-done-old", kind=RELAY, status="done", finished_at=old)

        pruned = await retention.prune(db, older_than=RETENTION, keep_failed={RELAY})

        assert pruned == {"inbox": 2, "outbox": 3}
        kept = {"done-recent", "pending-old", "working-old"}
        assert await _keys(db, InboxEvent) == kept
        assert await _keys(db, OutboxItem) == kept | {"relay-failed-old"}
        assert await retention.prune(db, older_than=RETENTION, keep_failed={RELAY}) == {"inbox": 0, "outbox": 0}
    finally:
        await db.dispose()


async def test_a_failed_relay_stays_until_it_is_retried_then_ages_like_any_row(database_url: str) -> None:
    db = Database(database_url)
    try:
        await _row(db, OutboxItem, "relay", kind=RELAY, status="failed", finished_at=utcnow() - 90 * DAY)
        assert await retention.prune(db, older_than=RETENTION, keep_failed={RELAY}) == {"inbox": 0, "outbox": 0}
        async with db.transaction() as session:  # retry <id>: the very same row, pending again
            [row_id] = (await session.execute(select(OutboxItem.id))).scalars()
            assert await queue.requeue_failed(session, OutboxItem, row_id, payload={"retries": 1})
        async with db.transaction() as session:
            [claimed] = await queue.claim(session, OutboxItem, owner="w", lease=timedelta(seconds=60))
            assert await queue.finish(session, OutboxItem, claimed.id, "w")
        later = utcnow() + RETENTION - DAY
        assert await retention.prune(db, older_than=RETENTION, now=later, keep_failed={RELAY}) == {
            "inbox": 0,
            "outbox": 0,
        }
        later = utcnow() + RETENTION + DAY
        assert await retention.prune(db, older_than=RETENTION, now=later, keep_failed={RELAY}) == {
            "inbox": 0,
            "outbox": 1,
        }
    finally:
        await db.dispose()


async def test_one_call_deletes_at_most_max_batches_of_batch_rows_a_queue(database_url: str) -> None:
    db = Database(database_url)
    old = utcnow() - RETENTION - DAY
    rows = [
        {
            "key": f"k{n}",
            "kind": "test",
            "lane": f"lane:{n % 7}",
            "payload": {"body": "secret"},
            "status": "done",
            "attempts": 1,
            "next_attempt_at": old,
            "needs_verify": False,
            "created_at": old,
            "finished_at": old + timedelta(seconds=n),
        }
        for n in range(1250)
    ]
    deletes: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(1)

    try:
        async with db.transaction() as session:
            await session.execute(insert(OutboxItem), rows)
        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        assert await retention.prune(db, older_than=RETENTION, batch=100, max_batches=3) == {"inbox": 0, "outbox": 300}
        assert len(deletes) == 1 + 3  # inbox: one batch found nothing; outbox: three full batches, then the tick ends
        assert await _keys(db, OutboxItem) == {f"k{n}" for n in range(300, 1250)}  # the oldest went first
        assert await retention.prune(db, batch=500, max_batches=2, older_than=RETENTION) == {"inbox": 0, "outbox": 950}
        assert await _keys(db, OutboxItem) == set()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        await db.dispose()


# --- in the running bridge ----------------------------------------------------------------------------------


async def _finished_ago(world: World, age: timedelta) -> None:
    """Every finished row of both queues as if it had finished ``age`` ago."""
    db = Database(world.database_url)
    try:
        async with db.transaction() as session:
            for model in (InboxEvent, OutboxItem):
                finished = model.finished_at.is_not(None)
                await session.execute(update(model).where(finished).values(finished_at=utcnow() - age))
    finally:
        await db.dispose()


async def _count(world: World, model: Any, *where: Any) -> int:
    db = Database(world.database_url)
    try:
        async with db.transaction() as session:
            return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())
    finally:
        await db.dispose()


async def _webhook_key(world: World) -> str:
    db = Database(world.database_url)
    try:
        async with db.transaction() as session:
            query = select(InboxEvent.key).where(InboxEvent.kind == "respondent.message_created")
            return str((await session.execute(query)).scalar_one())
    finally:
        await db.dispose()


def _sample(world: World, name: str, **labels: str) -> float:
    assert world.bridge is not None
    return world.bridge.services.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_redelivered_webhook_is_absorbed_within_the_retention_and_by_the_message_mapping_after_it(
    world: World,
) -> None:
    c = world.cast
    assert world.bridge is not None and world.bridge.scheduler is not None
    world.bridge.scheduler.pause_job("retention")  # only the prunes this test runs
    await link_study(world)
    root = await root_of(world, c.jordan)
    uid = await participant_writes(world, c.jordan, "hello from Jordan")
    await world.quiet()
    assert len(replies(world, root)) == 1 and len(archived(world)) == 1
    key = await _webhook_key(world)
    conversation = world.respondent.conversation_with(c.project_id, c.jordan.respondent_user_id)
    assert conversation is not None
    resource = {"id": uid, "type": "messages", "conversationUid": conversation["uid"], "projectId": c.project_id}
    redelivery = {
        "event": "MESSAGES.CREATED",
        "uuid": key.rsplit(":", 1)[1],
        "created": datetime.now(UTC).isoformat(),
        "payload": {"resource": resource},
    }
    kind = "respondent.message_created"
    messages, threads = await _count(world, ChatMessage), await _count(world, ParticipantThread)
    duplicates = _sample(world, "rallybridge_inbound_events_total", kind=kind, result="duplicate")
    stored = _sample(world, "rallybridge_inbound_events_total", kind=kind, result="stored")

    # A day before the retention ends: nothing goes, and the redelivery is a duplicate of the stored row.
    await _finished_ago(world, RETENTION - DAY)
    assert await world.bridge.prune_finished_rows() == 0
    assert await world.respondent.send_webhook(redelivery) == 200
    assert _sample(world, "rallybridge_inbound_events_total", kind=kind, result="duplicate") == duplicates + 1
    assert await _count(world, InboxEvent, InboxEvent.key == key) == 1

    # A day after: the finished rows are gone (the payloads with them), the mappings are not.
    await _finished_ago(world, RETENTION + DAY)
    pruned = await world.bridge.prune_finished_rows()
    for model in (InboxEvent, OutboxItem):
        assert await _count(world, model, model.finished_at.is_not(None)) == 0
    inbox, outbox = (_sample(world, "rallybridge_pruned_rows_total", queue=q) for q in ("inbox", "outbox"))
    assert inbox > 0 and outbox > 0 and inbox + outbox == pruned
    assert (await _count(world, ChatMessage), await _count(world, ParticipantThread)) == (messages, threads)

    # A redelivery this late is stored again, and the message mapping keeps it from being mirrored twice.
    assert await world.respondent.send_webhook(redelivery) == 200
    assert _sample(world, "rallybridge_inbound_events_total", kind=kind, result="stored") == stored + 1
    await world.quiet()
    assert await _count(world, InboxEvent, InboxEvent.key == key, InboxEvent.status == "done") == 1
    assert len(replies(world, root)) == 1 and len(archived(world)) == 1


async def test_a_prune_tick_with_the_database_down_logs_a_warning_and_the_next_goes_on(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    down = (
        "sqlite+aiosqlite:////nonexistent/directory/bridge.sqlite3"
        if world.database_url.startswith("sqlite")
        else "postgresql+asyncpg://postgres@127.0.0.1:9/test"  # nothing listens on the discard port
    )
    bridge = build_bridge(world.settings(database_url=down))
    try:
        with caplog.at_level(logging.WARNING, logger="bot.app"):
            assert await bridge.prune_finished_rows() == 0
        assert any("could not prune finished queue rows" in r.getMessage() for r in caplog.records)
    finally:
        for closer in bridge.closers:
            close = getattr(closer, "close", None)
            if close is not None:
                await close()
        await bridge.db.dispose()
    assert world.bridge is not None
    assert await world.bridge.prune_finished_rows() == 0  # the running bridge's database is up: nothing old yet


# --- the setting --------------------------------------------------------------------------------------------


def test_a_retention_shorter_than_the_longest_redelivery_is_refused() -> None:
    assert Settings(_env_file=None).retention_days == 30
    assert Settings(_env_file=None, RALLYBRIDGE_RETENTION_DAYS="2").retention_days == MIN_RETENTION_DAYS
    for too_short in ("1", "0", "-5"):
        with pytest.raises(ValidationError) as refused:
            Settings(_env_file=None, RALLYBRIDGE_RETENTION_DAYS=too_short)
        message = str(refused.value)
        assert "RALLYBRIDGE_RETENTION_DAYS" in message and "at least 2 (days)" in message
        assert "redelivered for up to about 28 hours" in message
