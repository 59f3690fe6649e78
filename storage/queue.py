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

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

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
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


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


async def claim(
    session: AsyncSession, model: QueueModel, *, owner: str, lease: timedelta, limit: int = 10
) -> list[Claimed]:
    """Lease up to ``limit`` due rows, the head of each lane only."""
    now = utcnow()
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
    query = (
        select(model)
        .where(due, ~unfinished_before)
        .order_by(model.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=model)
    )
    rows: list[Any] = list((await session.execute(query)).scalars().all())
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


async def give_up(session: AsyncSession, model: QueueModel, row_id: int, owner: str, *, error: str) -> bool:
    statement = (
        update(model)
        .where(_held(model, row_id, owner))
        .values(status=FAILED, last_error=error, finished_at=utcnow(), lease_until=None)
    )
    return bool(getattr(await session.execute(statement), "rowcount", 0))
