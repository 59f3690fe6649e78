"""The keyed, laned, leased queue under the inbox and the outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bridge.worker import backoff
from core.records import QueuedRow
from storage import queue
from storage.db import Database
from storage.models import OutboxItem

LEASE = timedelta(seconds=30)


async def _add(db: Database, key: str, lane: str) -> bool:
    async with db.transaction() as session:
        return await queue.enqueue(session, OutboxItem, key=key, kind="test", lane=lane, payload={"k": key})


async def _claim(db: Database, owner: str = "w1", lease: timedelta = LEASE, limit: int = 10) -> list[QueuedRow]:
    async with db.transaction() as session:
        return await queue.claim(session, OutboxItem, owner=owner, lease=lease, limit=limit)


async def _finish(db: Database, row: QueuedRow, owner: str = "w1") -> bool:
    async with db.transaction() as session:
        return await queue.finish(session, OutboxItem, row.id, owner)


async def test_a_key_is_queued_once(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert await _add(db, "k1", "a") is True
        assert await _add(db, "k1", "a") is False
        assert [r.key for r in await _claim(db)] == ["k1"]
    finally:
        await db.dispose()


async def test_one_lane_is_worked_strictly_in_order_and_lanes_in_parallel(database_url: str) -> None:
    db = Database(database_url)
    try:
        for key, lane in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("a3", "a")]:
            await _add(db, key, lane)
        first = await _claim(db)
        assert sorted(r.key for r in first) == ["a1", "b1"]
        assert await _claim(db) == []  # a2 waits for a1 even though a1 is only leased
        await _finish(db, next(r for r in first if r.key == "a1"))
        assert [r.key for r in await _claim(db)] == ["a2"]
    finally:
        await db.dispose()


async def test_a_retried_row_keeps_its_lane_waiting(database_url: str) -> None:
    db = Database(database_url)
    try:
        await _add(db, "a1", "a")
        await _add(db, "a2", "a")
        [row] = await _claim(db)
        async with db.transaction() as session:
            await queue.retry_later(session, OutboxItem, row.id, "w1", error="503", delay=60)
        assert await _claim(db) == []
    finally:
        await db.dispose()


async def test_an_expired_lease_is_taken_over_and_marked_for_verification(database_url: str) -> None:
    db = Database(database_url)
    try:
        await _add(db, "k", "a")
        [dead] = await _claim(db, owner="dead", lease=timedelta(seconds=-1))
        assert dead.needs_verify is False
        [taken] = await _claim(db, owner="alive")
        assert taken.id == dead.id and taken.needs_verify is True and taken.attempts == 2
        assert await _finish(db, dead, owner="dead") is False  # the dead claimer's late answer is ignored
        assert await _finish(db, taken, owner="alive") is True
    finally:
        await db.dispose()


async def test_concurrent_claimers_never_take_the_same_row(database_url: str) -> None:
    dbs = [Database(database_url) for _ in range(4)]
    try:
        for n in range(60):
            await _add(dbs[0], f"k{n}", f"lane{n}")
        claimed: list[str] = []

        async def drain(db: Database, owner: str) -> None:
            while rows := await _claim(db, owner=owner, limit=5):
                claimed.extend(r.key for r in rows)
                for row in rows:
                    await _finish(db, row, owner=owner)

        await asyncio.gather(*(drain(db, f"w{i}") for i, db in enumerate(dbs)))
        assert sorted(claimed) == sorted(f"k{n}" for n in range(60))
    finally:
        for db in dbs:
            await db.dispose()


def test_backoff_honours_retry_after_and_grows_with_jitter_under_a_cap() -> None:
    assert 7 <= backoff(1, 7) <= 7.25
    delays = [backoff(n, None, base=1, cap=30) for n in range(1, 12)]
    assert delays[0] <= 1 and all(d <= 30 for d in delays) and max(delays) >= 15


def test_the_claims_statuses_and_limit_are_in_its_sql_so_a_cached_generic_plan_can_use_the_partial_index() -> None:
    """PostgreSQL plans a prepared statement generically after five runs; a partial index
    (``WHERE status IN ('pending', 'working')``) is only usable when the statuses are constants of the SQL text.
    With them bound, the claim read the whole outbox each time (docs/performance.md, scale)."""
    from sqlalchemy.dialects import postgresql

    compiled = queue._claim_statement(OutboxItem, 20, "postgresql").compile(dialect=postgresql.dialect())
    sql = str(compiled)
    assert "earlier.status NOT IN ('done', 'failed')" in sql  # through the lane index, whatever the statistics
    # ... and of the lane index only the unfinished part: finished rows of the lane are never fetched.
    assert "(earlier.lane, earlier.status) >= (candidate.lane, 'pending')" in sql
    assert "candidate.status = 'pending'" in sql and "candidate.status = 'working'" in sql
    assert "LIMIT 20 FOR UPDATE OF candidate SKIP LOCKED" in sql
    bound = {name for name in compiled.params if name not in {"status", "attempts_1"}}  # the SET values
    assert bound == {"claim_now", "lease_until", "owner"}


def test_on_sqlite_the_claim_bounds_the_lane_probe_with_a_plain_status() -> None:
    """SQLite takes no row comparison as an index bound: there the probe is ``status >= 'pending'`` in the lane."""
    from sqlalchemy.dialects import sqlite

    sql = str(queue._claim_statement(OutboxItem, 20, "sqlite").compile(dialect=sqlite.dialect()))
    assert "earlier.lane = candidate.lane AND earlier.status >= 'pending' AND earlier.id < candidate.id" in sql
    assert "(earlier.lane, earlier.status)" not in sql


async def test_finished_rows_of_a_lane_never_hold_back_its_next_row(database_url: str) -> None:
    """The claim reads a lane's unfinished rows only (from 'pending' on in the lane index): done and failed rows
    before the next one are passed over, an unfinished one still holds it back."""
    db = Database(database_url)
    try:
        for n in range(5):
            await _add(db, f"a{n}", "a")
        first = await _claim(db)
        assert [r.key for r in first] == ["a0"]
        await _finish(db, first[0])
        [second] = await _claim(db)
        async with db.transaction() as session:
            await queue.give_up(session, OutboxItem, second.id, "w1", error="refused")
        [third] = await _claim(db)
        assert third.key == "a2"
        assert await _claim(db) == []  # a3 waits behind a2, leased
        async with db.transaction() as session:
            await queue.retry_later(session, OutboxItem, third.id, "w1", error="503", delay=0)
        assert [r.key for r in await _claim(db)] == ["a2"]  # pending again and due: a2 before a3, never a3
    finally:
        await db.dispose()
