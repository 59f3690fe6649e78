"""Group commit and the SQLite writer lock (storage/db.py), and their two users: the inbox (bridge/inbox.py), whose
concurrent requests share one INSERT, and the workers (bridge/worker.py), whose outcomes share one
transaction. On SQLite and PostgreSQL where a database is involved."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.inbox import record
from bridge.services import Services
from bridge.worker import LeaseLost, QueueWorker
from core import events as inbound
from core.events import InboundEvent, lane_for
from core.records import QueuedRow
from core.store import OUTBOX, UnitOfWork
from storage import queue
from storage.db import Database, GroupCommit, WriterLock
from storage.models import InboxEvent, OutboxItem
from storage.uow import SqlStore


def _services(db: Database) -> Services:
    return Services(store=SqlStore(db), chats={}, respondent=None, rally=None)  # type: ignore[arg-type]


def _webhook(n: int, conversation: int = 0) -> InboundEvent:
    """A Respondent webhook: always stored (a chat reply in a thread the bridge does not know would be answered
    without being stored: bridge/edge.py)."""
    return inbound.respondent_message_created(
        delivery_uuid=f"d{n}", message_id=f"m{n}", conversation_uid=f"cv{conversation}", project_id="pr"
    )


# --- the writer lock ---------------------------------------------------------------------------------------


async def test_urgent_waiters_take_the_lock_before_earlier_ordinary_ones() -> None:
    lock = WriterLock()
    order: list[str] = []
    await lock.acquire()

    async def take(name: str, urgent: bool) -> None:
        async with lock.held(urgent):
            order.append(name)

    tasks = [asyncio.create_task(take(n, u)) for n, u in [("w1", False), ("w2", False), ("u1", True), ("u2", True)]]
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["u1", "u2", "w1", "w2"]
    assert not lock.locked


async def test_a_cancelled_waiter_does_not_keep_the_lock() -> None:
    lock = WriterLock()
    await lock.acquire()
    waiting = asyncio.create_task(lock.acquire())
    later = asyncio.create_task(lock.acquire(urgent=True))
    await asyncio.sleep(0)
    waiting.cancel()
    lock.release()  # handed to the urgent waiter
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await later
    assert lock.locked
    lock.release()
    assert not lock.locked


# --- group commit ------------------------------------------------------------------------------------------


async def test_submissions_that_arrive_together_share_one_transaction(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    batches: list[list[int]] = []

    async def write(session: AsyncSession, items: Sequence[int]) -> list[int]:
        await session.execute(text("SELECT 1"))
        batches.append(list(items))
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(db, write)
    try:
        assert await asyncio.gather(*(group.submit(i) for i in range(25))) == [i * 10 for i in range(25)]
        assert batches == [list(range(25))]
        assert await group.submit(7) == 70  # a lone item is written at once, alone
        assert batches[-1] == [7]
    finally:
        await db.dispose()


async def test_a_failing_item_fails_only_its_own_submission(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    calls: list[list[int]] = []

    async def write(session: AsyncSession, items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        if 13 in items:
            raise ValueError("13 is refused")
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(db, write)
    try:
        results = await asyncio.gather(*(group.submit(i) for i in (11, 12, 13, 14)), return_exceptions=True)
        assert results[:2] == [11, 12] and results[3] == 14
        assert isinstance(results[2], ValueError)
        assert calls == [[11, 12, 13, 14], [11], [12], [13], [14]]  # the batch, then one by one
    finally:
        await db.dispose()


async def test_the_write_goes_on_when_the_caller_goes_away(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    written: list[int] = []

    async def write(session: AsyncSession, items: Sequence[int]) -> list[None]:
        await asyncio.sleep(0.05)
        written.extend(items)
        return [None] * len(items)

    group: GroupCommit[int, None] = GroupCommit(db, write)
    try:
        caller = asyncio.create_task(group.submit(1))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await group.submit(2)
        assert written == [1, 2]
    finally:
        await db.dispose()


# --- the inbox ---------------------------------------------------------------------------------------------


async def test_concurrent_inbound_events_are_stored_once_each_in_shared_transactions(database_url: str) -> None:
    db = Database(database_url)
    services = _services(db)
    try:
        # 30 requests for 10 events: redeliveries arrive alongside the originals.
        events = [_webhook(n % 10, conversation=n % 10 % 3) for n in range(30)]
        new = await asyncio.gather(*(record(services, e) for e in events))
        assert sum(new) == 10
        assert {e.key for e, fresh in zip(events, new, strict=True) if fresh} == {e.key for e in events}
        assert await asyncio.gather(*(record(services, e) for e in events[:10])) == [False] * 10
        assert db.new_rows("inbox").is_set()  # the inbox worker is woken
        async with db.transaction() as session:
            rows = (await session.execute(select(InboxEvent).order_by(InboxEvent.id))).scalars().all()
        assert len(rows) == 10
        by_key = {e.key: e for e in events}
        for row in rows:
            event = by_key[row.key]
            assert (row.kind, row.lane, row.payload) == (event.kind.value, lane_for(event), event.payload)
            assert (row.status, row.attempts, row.needs_verify) == (queue.PENDING, 0, False)
    finally:
        await db.dispose()


async def test_a_failed_connection_is_rolled_back_before_reuse(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    services = _services(db)
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as session:
                await session.execute(
                    text(
                        "INSERT INTO inbox (key, kind, lane, payload, status, attempts, next_attempt_at, needs_verify, "
                        "created_at) VALUES ('half', 'k', 'l', '{}', 'pending', 0, '2026-01-01', 0, '2026-01-01')"
                    )
                )
                raise RuntimeError("the work failed half way")
        assert await record(services, _webhook(1)) is True  # the pooled connection is usable: not in a transaction
        async with db.transaction() as session:
            assert (await session.execute(select(func.count()).select_from(InboxEvent))).scalar_one() == 1
    finally:
        await db.dispose()


# --- the workers' outcomes ---------------------------------------------------------------------------------


async def test_outcomes_recorded_together_keep_lease_loss_to_its_row_and_claim_what_they_made_due(
    database_url: str,
) -> None:
    db = Database(database_url)
    services = _services(db)

    async def nothing(_services: Services, _row: QueuedRow) -> object:
        raise AssertionError("not run in this test")

    worker = QueueWorker(services, OUTBOX, nothing, None, lease=timedelta(seconds=30), poll=0.1)  # type: ignore[arg-type]
    try:
        async with services.store.transaction() as uow:
            for key in ("a", "b", "c"):
                await uow.outbox.add(key=key, kind="test", lane=key, payload={})
        async with services.store.transaction() as uow:
            rows = await uow.outbox.claim(owner=worker.owner, lease=timedelta(seconds=30), limit=10)
        assert [r.key for r in rows] == ["a", "b", "c"]
        async with db.transaction() as session:  # another worker took "b" over meanwhile
            await session.execute(text("UPDATE outbox SET lease_owner = 'someone-else' WHERE key = 'b'"))

        def follow_up(key: str):  # type: ignore[no-untyped-def]
            async def apply(uow: UnitOfWork) -> None:
                await uow.outbox.add(key=f"after-{key}", kind="test", lane=f"z{key}", payload={})

            return apply

        results = await asyncio.gather(*(worker._commit(r, follow_up(r.key)) for r in rows), return_exceptions=True)
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], LeaseLost)
        async with db.transaction() as session:
            status = dict((await session.execute(select(OutboxItem.key, OutboxItem.status))).all())
        # The follow-ups were claimed in the committing transaction, for this worker to start at once.
        assert status == {"a": "done", "b": "working", "c": "done", "after-a": "working", "after-c": "working"}
        assert sorted(r.key for r in worker._handed) == ["after-a", "after-c"]
    finally:
        await db.dispose()


# --- a restarted PostgreSQL server -------------------------------------------------------------------------


async def test_a_group_write_on_a_connection_the_server_dropped_is_written_again_on_a_fresh_one(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No pre-ping on check-out (storage/db.py): a pooled connection whose server process is gone fails on its
    first statement. The inbox's group write then runs once more on a new connection, so the request is stored
    and answered instead of refused."""
    db = Database(postgres_url)
    try:
        assert await record(_services(db), _webhook(1))  # a pooled urgent connection now exists
        async with db.transaction() as session:  # from another pool: end every other session of this database
            await session.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert await record(_services(db), _webhook(2))
        assert not await record(_services(db), _webhook(2))  # stored once: the retry is a duplicate
        async with db.transaction() as session:
            assert (await session.execute(select(func.count()).select_from(InboxEvent))).scalar_one() == 2
        assert "writing the group again" in caplog.text
    finally:
        await db.dispose()
