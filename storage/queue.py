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
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.db import mark_queued
from storage.models import InboxEvent, OutboxItem

QueueModel = type[InboxEvent] | type[OutboxItem]
PENDING, WORKING, DONE, FAILED = "pending", "working", "done", "failed"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Claimed:
    """A leased row, detached from the session that claimed it."""

    id: int
    key: str
    kind: str
    lane: str
    payload: dict[str, Any]
    attempts: int
    needs_verify: bool
    created_at: datetime


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
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_fn(model).values(**values).on_conflict_do_nothing(index_elements=["key"])
    inserted = bool(getattr(await session.execute(statement), "rowcount", 0))
    if inserted:
        mark_queued(session, model.__tablename__)  # the workers of this queue are woken once it commits
    return inserted


async def exists_key(session: AsyncSession, model: QueueModel, key: str) -> bool:
    """Whether a row with ``key`` was ever queued."""
    return (await session.execute(select(model.id).where(model.key == key))).first() is not None


async def waiting_in_lane(session: AsyncSession, model: QueueModel, lane: str) -> bool:
    """Whether an unfinished row of ``lane`` has failed an attempt already (the lane waits out a failure)."""
    query = (
        select(model.id)
        .where(model.lane == lane, model.status.in_((PENDING, WORKING)), model.last_error.is_not(None))
        .limit(1)
    )
    return (await session.execute(query)).first() is not None


async def unfinished_payloads(session: AsyncSession, model: QueueModel, lane: str, *, from_id: int) -> list[Any]:
    """Payloads of the unfinished rows of ``lane`` from row ``from_id`` on, in lane order."""
    query = (
        select(model.payload)
        .where(model.lane == lane, model.id >= from_id, model.status.in_((PENDING, WORKING)))
        .order_by(model.id)
    )
    return list((await session.execute(query)).scalars())


@functools.cache
def _claim_query(model: QueueModel, limit: int) -> Any:
    """The claim statement, built once per queue and limit: building it (an aliased self-join) costs more CPU
    than running it. ``claim_now`` is bound at each execution."""
    now = bindparam("claim_now", type_=model.__table__.c.next_attempt_at.type)
    earlier = aliased(model)
    unfinished_before = exists().where(
        earlier.lane == model.lane,
        earlier.id < model.id,
        earlier.status.in_((PENDING, WORKING)),
    )
    due = or_(
        and_(model.status == PENDING, model.next_attempt_at <= now),
        and_(model.status == WORKING, model.lease_until < now),
    )
    return (
        select(model)
        .where(due, ~unfinished_before)
        .order_by(model.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=model)
    )


async def claim(
    session: AsyncSession, model: QueueModel, *, owner: str, lease: timedelta, limit: int = 10
) -> list[Claimed]:
    """Lease up to ``limit`` due rows, the head of each lane only."""
    now = utcnow()
    rows: list[Any] = list((await session.execute(_claim_query(model, limit), {"claim_now": now})).scalars().all())
    claimed: list[Claimed] = []
    for row in rows:
        expired_lease = row.status == WORKING
        row.needs_verify = row.needs_verify or expired_lease
        row.status = WORKING
        row.attempts += 1
        row.lease_owner = owner
        row.lease_until = now + lease
        claimed.append(
            Claimed(
                id=row.id,
                key=row.key,
                kind=row.kind,
                lane=row.lane,
                payload=dict(row.payload),
                attempts=row.attempts,
                needs_verify=row.needs_verify,
                created_at=row.created_at,
            )
        )
    return claimed


def _held(model: QueueModel, row_id: int, owner: str) -> Any:
    return and_(model.id == row_id, model.status == WORKING, model.lease_owner == owner)


async def finish(
    session: AsyncSession, model: QueueModel, row_id: int, owner: str, result: dict[str, Any] | None = None
) -> bool:
    """Mark done. False when the lease was lost meanwhile (another claimer took over)."""
    statement = (
        update(model)
        .where(_held(model, row_id, owner))
        .values(status=DONE, result=result, finished_at=utcnow(), lease_until=None, last_error=None)
    )
    return bool(getattr(await session.execute(statement), "rowcount", 0))


def backoff(attempts: int, retry_after: float | None, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Seconds to wait: the remote's Retry-After when it gave one, else capped exponential with full jitter."""
    if retry_after is not None:
        return max(0.0, retry_after) + random.uniform(0, 0.25)
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return random.uniform(ceiling / 2, ceiling)


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
    statement = (
        update(model)
        .where(_held(model, row_id, owner))
        .values(
            status=PENDING,
            next_attempt_at=utcnow() + timedelta(seconds=delay),
            lease_until=None,
            last_error=error,
            needs_verify=needs_verify,
        )
    )
    return bool(getattr(await session.execute(statement), "rowcount", 0))


async def defer(session: AsyncSession, model: QueueModel, row_id: int, owner: str, *, delay: float) -> bool:
    """Put a claimed row back untouched until ``delay`` seconds from now (lease holder only).

    For work that was not attempted (a send budget was used up): the claim's attempt is taken back, no error
    is recorded and ``needs_verify`` stays as it was. The row keeps its place at the head of its lane.
    """
    statement = (
        update(model)
        .where(_held(model, row_id, owner))
        .values(
            status=PENDING,
            attempts=model.attempts - 1,
            next_attempt_at=utcnow() + timedelta(seconds=max(0.0, delay)),
            lease_until=None,
        )
    )
    return bool(getattr(await session.execute(statement), "rowcount", 0))


async def give_up(session: AsyncSession, model: QueueModel, row_id: int, owner: str, *, error: str) -> bool:
    statement = (
        update(model)
        .where(_held(model, row_id, owner))
        .values(status=FAILED, last_error=error, finished_at=utcnow(), lease_until=None)
    )
    return bool(getattr(await session.execute(statement), "rowcount", 0))


# --- failed rows, seen and re-queued by people (App Home's Retry: bot/home.py, ``retry <id>``) -----------------


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
