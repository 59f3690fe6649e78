"""The tick on both databases: concurrent tickers (two engines, as two processes would have) queue each due
row once; rows not yet due stay; cancel and send race on a conditional update."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import select

from bridge.reminders.firing import enqueue_due
from bridge.services import Services
from storage import reminders as store
from storage.db import Database
from storage.models import InboxEvent
from storage.uow import SqlStore
from tests.factories import participant_thread, reminder, study_link

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _services(db: Database) -> Services:
    none = cast(Any, None)
    return Services(store=SqlStore(db), chats={}, respondent=none, rally=none)


async def _seed(db: Database, count: int) -> None:
    async with db.transaction() as session:
        link = study_link(linked_at=NOW)
        thread = participant_thread(link, created_at=NOW)
        session.add_all([link, thread])
        await session.flush()
        for n in range(count):  # row n is due n minutes after NOW
            session.add(
                reminder(thread, due_at=NOW + timedelta(minutes=n), body=f"r{n}", created_at=NOW - timedelta(hours=1))
            )


async def test_concurrent_ticks_queue_each_due_row_once(database_url: str) -> None:
    dbs = [Database(database_url) for _ in range(4)]
    try:
        await _seed(dbs[0], 20)
        at = NOW + timedelta(minutes=9, seconds=30)  # rows 0..9 are due
        counts = await asyncio.gather(*(enqueue_due(_services(db), at) for db in dbs for _ in range(3)))
        assert sum(counts) == 10
        assert await enqueue_due(_services(dbs[0]), at) == 0
        async with dbs[0].transaction() as session:
            keys = sorted((await session.execute(select(InboxEvent.key))).scalars())
            statuses = [r.status for r in (await session.execute(select(store.Reminder))).scalars()]
        assert keys == sorted(f"reminder:{n}" for n in range(1, 11))
        assert statuses.count(store.QUEUED) == 10 and statuses.count(store.PENDING) == 10
    finally:
        for db in dbs:
            await db.dispose()


async def test_cancel_and_send_race_has_one_winner(database_url: str) -> None:
    db = Database(database_url)
    try:
        await _seed(db, 1)
        await enqueue_due(_services(db), NOW + timedelta(seconds=1))

        async def move(to: str) -> bool:
            async with db.transaction() as session:
                return await store.transition(session, 1, to=to, allowed_from=store.OPEN, now=NOW)

        results = await asyncio.gather(move(store.SENT), move(store.CANCELLED))
        assert sorted(results) == [False, True]
    finally:
        await db.dispose()
