"""The inbox and the outbox share one mechanism: keyed rows, ordered lanes, leases.

- ``enqueue`` inserts a row unless its key exists (a duplicate is a no-op, reported as False).
- ``claim`` leases due rows. A row is due when it is pending and its time has come, or when it is
  being worked on under a lease that has expired (its claimer died: the outcome of that attempt is
  unknown, so the row is marked ``needs_verify``). A row is never claimed while an earlier row of its
  lane is unfinished, which keeps per-thread and per-conversation order. On PostgreSQL the claim uses
  ``FOR UPDATE SKIP LOCKED`` so that replicas never take the same row; on SQLite one writer at a time
  does the same.
- ``finish`` / ``retry_later`` / ``give_up`` record the outcome, but only for the lease holder.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    exists,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.records import QueuedRow
from storage.db import dialect_of, mark_queued
from storage.models import InboxEvent, OutboxItem

QueueModel = type[InboxEvent] | type[OutboxItem]
PENDING, WORKING, DONE, FAILED = "pending", "working", "done", "failed"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _table(model: QueueModel) -> Table:
    return cast(Table, model.__table__)


async def enqueue(
    session: AsyncSession,
    model: QueueModel,
    *,
    key: str,
    kind: str,
    lane: str,
    payload: dict[str, Any],
    not_before: datetime | None = None,
) -> bool:
    """Insert a row unless one with ``key`` exists. True when inserted."""
    now = utcnow()
    values = {
        "key": key,
        "kind": kind,
        "lane": lane,
        "payload": payload,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "needs_verify": False,
        "created_at": now,
    }
    result = await session.execute(_enqueue_statement(model, dialect_of(session)), values)
    inserted = bool(getattr(result, "rowcount", 0))
    if inserted:
        mark_queued(session, model.__tablename__)  # the workers of this queue are woken once it commits
    return inserted


@functools.cache
def _enqueue_statement(model: QueueModel, dialect: str) -> Any:
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_fn(_table(model)).on_conflict_do_nothing(index_elements=["key"])


async def exists_key(session: AsyncSession, model: QueueModel, key: str) -> bool:
    """Whether a row with ``key`` was ever queued."""
    t = _table(model)
    return (await session.execute(select(t.c.id).where(t.c.key == key))).first() is not None


async def waiting_in_lane(session: AsyncSession, model: QueueModel, lane: str) -> bool:
    """Whether an unfinished row of ``lane`` has failed an attempt already (the lane waits out a failure)."""
    t = _table(model)
    query = (
        select(t.c.id).where(t.c.lane == lane, t.c.status.in_((PENDING, WORKING)), t.c.last_error.is_not(None)).limit(1)
    )
    return (await session.execute(query)).first() is not None


async def lane_busy(session: AsyncSession, model: QueueModel, lane: str) -> bool:
    """Whether ``lane`` has an unfinished row (pending or working)."""
    t = _table(model)
    query = select(t.c.id).where(t.c.lane == lane, t.c.status.in_((PENDING, WORKING))).limit(1)
    return (await session.execute(query)).first() is not None


async def unfinished_payloads(session: AsyncSession, model: QueueModel, lane: str, *, from_id: int) -> list[Any]:
    """Payloads of the unfinished rows of ``lane`` from row ``from_id`` on, in lane order."""
    t = _table(model)
    query = (
        select(t.c.payload)
        .where(t.c.lane == lane, t.c.id >= from_id, t.c.status.in_((PENDING, WORKING)))
        .order_by(t.c.id)
    )
    return list((await session.execute(query)).scalars())


def _constant(value: str) -> Any:
    """A status written into the SQL text, not bound: PostgreSQL caches a generic plan for a prepared statement
    after five runs, and with the statuses as parameters that plan cannot use the partial index of unfinished rows
    (``WHERE status IN ('pending', 'working')``, migration 0005). It then read the whole table for every claim:
    p99 8 ms with 2,000 rows due on a 22,000-row outbox, growing with the table (docs/performance.md)."""
    return literal_column(f"'{value}'", String)


# The claim reads a lane's unfinished rows as the lane index's entries from (lane, 'pending') on: that needs
# unfinished statuses to sort from PENDING on and finished ones before it (``_claim_statement``).
if not max(DONE, FAILED) < PENDING < WORKING:
    raise RuntimeError("queue statuses must sort: done and failed < pending < working")


@functools.cache
def _claim_statement(model: QueueModel, limit: int, dialect: str) -> Any:
    """The claim, one statement built once per queue, limit and dialect (building it costs more CPU than running it).

    ``UPDATE ... WHERE id IN (the due lane heads, locked, SKIP LOCKED) RETURNING ...``: choosing, locking and
    leasing in one round trip, on SQLAlchemy Core (no ORM objects to load, track and flush). SET expressions see
    the row as it was, so a row taken over from an expired lease (status still ``working``) gets ``needs_verify``.
    ``claim_now``, ``lease_until`` and ``owner`` are bound at each execution; the statuses and the limit are in the
    SQL text (:func:`_constant`).
    """
    t = _table(model)
    now = bindparam("claim_now", type_=t.c.next_attempt_at.type)
    pending, working = _constant(PENDING), _constant(WORKING)
    candidate, earlier = t.alias("candidate"), t.alias("earlier")
    # "Not finished" as NOT IN (done, failed), the same rows as IN (pending, working): written so, it does not
    # match the partial index of unfinished rows, and the probe for an earlier row goes through the lane index.
    # Matching it, PostgreSQL with statistics taken before a backlog (the index "empty") scanned the whole index
    # for every candidate: 2,000 due rows, 7 ms a claim; through the lane index 0.7 ms (docs/performance.md).
    # NOT IN is no bound of that index, though: alone, the probe fetched every earlier row of the lane from the
    # table, finished ones included (a lane with 5,000 done rows: 20 candidates, 100,000 rows, 110-150 ms a claim).
    # So the lane index is also read from (lane, 'pending') on only (the module's status order): on PostgreSQL as
    # the row comparison (lane, status) >= (lane, 'pending'), which no other index can take (a plain status bound
    # drew PostgreSQL, with statistics from before a backlog, onto the ix_*_due index and every unfinished row);
    # SQLite takes the plain bound through the lane index, and no row comparison as a bound.
    lane_from_pending = (
        tuple_(earlier.c.lane, earlier.c.status) >= tuple_(candidate.c.lane, pending)
        if dialect == "postgresql"
        else earlier.c.status >= pending
    )
    unfinished_before = exists().where(
        earlier.c.lane == candidate.c.lane,
        lane_from_pending,
        earlier.c.id < candidate.c.id,
        earlier.c.status.not_in((_constant(DONE), _constant(FAILED))),
    )
    due = or_(
        and_(candidate.c.status == pending, candidate.c.next_attempt_at <= now),
        and_(candidate.c.status == working, candidate.c.lease_until < now),
    )
    heads = (
        select(candidate.c.id)
        .where(due, ~unfinished_before)
        .order_by(candidate.c.id)
        .limit(literal_column(str(int(limit)), Integer))
        .with_for_update(skip_locked=True, of=candidate)
    )
    return (
        update(t)
        .where(t.c.id.in_(heads))
        .values(
            status=WORKING,
            attempts=t.c.attempts + 1,
            needs_verify=case((t.c.status == working, true()), else_=t.c.needs_verify),
            lease_owner=bindparam("owner", type_=t.c.lease_owner.type),
            lease_until=bindparam("lease_until", type_=t.c.lease_until.type),
        )
        .returning(t.c.id, t.c.key, t.c.kind, t.c.lane, t.c.payload, t.c.attempts, t.c.needs_verify, t.c.created_at)
    )


async def claim(
    session: AsyncSession, model: QueueModel, *, owner: str, lease: timedelta, limit: int = 10
) -> list[QueuedRow]:
    """Lease up to ``limit`` due rows, the head of each lane only, in id order."""
    now = utcnow()
    params = {"claim_now": now, "lease_until": now + lease, "owner": owner}
    rows = (await session.execute(_claim_statement(model, limit, dialect_of(session)), params)).all()
    return sorted(
        (
            QueuedRow(
                id=row.id,
                key=row.key,
                kind=row.kind,
                lane=row.lane,
                payload=dict(row.payload),
                attempts=row.attempts,
                needs_verify=bool(row.needs_verify),
                created_at=row.created_at,
            )
            for row in rows
        ),
        key=lambda claimed: claimed.id,
    )


def _held(t: Table, row_id: int, owner: str) -> Any:
    return and_(t.c.id == row_id, t.c.status == WORKING, t.c.lease_owner == owner)


async def _update_held(session: AsyncSession, model: QueueModel, row_id: int, owner: str, **values: Any) -> bool:
    """Update the row if ``owner`` still holds its lease (Core: nothing loaded); True when it did."""
    t = _table(model)
    result = await session.execute(update(t).where(_held(t, row_id, owner)).values(**values))
    return bool(getattr(result, "rowcount", 0))


async def finish(
    session: AsyncSession, model: QueueModel, row_id: int, owner: str, result: dict[str, Any] | None = None
) -> bool:
    """Mark done. False when the lease was lost meanwhile (another claimer took over)."""
    return await _update_held(
        session,
        model,
        row_id,
        owner,
        status=DONE,
        result=result,
        finished_at=utcnow(),
        lease_until=None,
        last_error=None,
    )


async def retry_later(
    session: AsyncSession,
    model: QueueModel,
    row_id: int,
    owner: str,
    *,
    error: str,
    delay: float,
    needs_verify: bool = False,
) -> bool:
    values = _pending_again(delay, last_error=error, needs_verify=needs_verify)
    return await _update_held(session, model, row_id, owner, **values)


async def defer(session: AsyncSession, model: QueueModel, row_id: int, owner: str, *, delay: float) -> bool:
    """Put a claimed row back untouched until ``delay`` seconds from now (lease holder only).

    For work that was not attempted (a send budget was used up): the claim's attempt is taken back, no error
    is recorded and ``needs_verify`` stays as it was. The row keeps its place at the head of its lane.
    """
    values = _pending_again(delay, attempts=_table(model).c.attempts - 1)
    return await _update_held(session, model, row_id, owner, **values)


def _pending_again(delay: float, **values: Any) -> dict[str, Any]:
    """Back to pending, due ``delay`` seconds from now, lease released (plus ``values``)."""
    due = utcnow() + timedelta(seconds=max(0.0, delay))
    return {"status": PENDING, "next_attempt_at": due, "lease_until": None, **values}


async def give_up(session: AsyncSession, model: QueueModel, row_id: int, owner: str, *, error: str) -> bool:
    return await _update_held(
        session, model, row_id, owner, status=FAILED, last_error=error, finished_at=utcnow(), lease_until=None
    )


# --- failed rows, seen and re-queued by people (App Home's Retry: bridge/home.py, ``retry <id>``) -----------------


async def failed_in_lanes(session: AsyncSession, model: QueueModel, kind: str, lanes: list[str]) -> list[Any]:
    """Rows of ``kind`` in ``lanes`` that gave up (status ``failed``), newest first (uses ``ix_outbox_lane``)."""
    rows: list[Any] = []
    for start in range(0, len(lanes), 500):
        query = select(model).where(
            model.lane.in_(lanes[start : start + 500]), model.status == FAILED, model.kind == kind
        )
        rows.extend((await session.execute(query)).scalars())
    return sorted(rows, key=lambda row: row.id, reverse=True)


async def working_in_lane(session: AsyncSession, model: QueueModel, lane: str) -> bool:
    """Whether a row of ``lane`` is being worked on right now (claimed, lease held)."""
    query = select(model.id).where(model.lane == lane, model.status == WORKING).limit(1)
    return (await session.execute(query)).first() is not None


async def requeue_failed(session: AsyncSession, model: QueueModel, row_id: int, *, payload: dict[str, Any]) -> bool:
    """Put a row that gave up back in its lane, the very same row (same key): True when this call did it.

    Conditional on the row still being ``failed``, so two people retrying at once re-queue it once. Attempts and
    the error are reset; ``needs_verify`` is kept, so an attempt that may have taken effect is still checked at the
    target first. ``created_at`` is when the row was queued: with ``needs_verify`` it stays (verification looks for
    what was sent since then), else it becomes now, which starts a fresh give-up period.
    """
    now = utcnow()
    statement = (
        update(model)
        .where(model.id == row_id, model.status == FAILED)
        .values(
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            lease_owner=None,
            last_error=None,
            result=None,
            finished_at=None,
            payload=payload,
            created_at=case((model.needs_verify.is_(True), model.created_at), else_=now),
        )
    )
    requeued = bool(getattr(await session.execute(statement), "rowcount", 0))
    if requeued:
        mark_queued(session, model.__tablename__)  # wake this queue's workers once it commits, not at the next poll
    return requeued
