"""The core's unit of work (``core.store``) on SQLAlchemy: one session, one transaction, repositories over it.

Rows leave as the core's records (``core.records``), never as ORM objects; changes go through statements, so
nothing above this package builds or mutates ORM rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.records import QueuedRow
from core.store import Composed, Links, Messages, Queue, Reminders, Threads
from storage import queue
from storage.composed import SqlComposed
from storage.db import Database, GroupCommit, mark_queued, unmark_queued, was_queued
from storage.mapping import maybe, queued_record
from storage.models import InboxEvent, OutboxItem
from storage.queue import QueueModel, utcnow
from storage.reads import SqlReads, open_reads
from storage.repositories import SqlLinks, SqlMessages, SqlReminders, SqlThreads

T = TypeVar("T")
R = TypeVar("R")


class SqlQueue:
    """One of the two queues (``storage.queue``) inside this unit of work's transaction."""

    def __init__(self, session: AsyncSession, model: QueueModel) -> None:
        self.session = session
        self.model = model

    async def add(self, *, key: str, kind: str, lane: str, payload: dict[str, Any]) -> bool:
        return await queue.enqueue(self.session, self.model, key=key, kind=kind, lane=lane, payload=payload)

    async def add_many(self, rows: Sequence[tuple[str, str, str, dict[str, Any]]]) -> set[str]:
        now = utcnow()
        values = [
            {
                "key": key,
                "kind": kind,
                "lane": lane,
                "payload": payload,
                "status": queue.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "needs_verify": False,
                "created_at": now,
            }
            for key, kind, lane, payload in rows
        ]
        table = cast(Table, self.model.__table__)
        connection = await self.session.connection()
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        statement = insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)
        stored = set((await connection.execute(statement, values)).scalars())
        if stored:
            mark_queued(self.session, self.model.__tablename__)  # its worker is woken when this commits
        return stored

    async def with_key_prefix(self, prefix: str) -> list[QueuedRow]:
        """The unique index on ``key`` serves the range (``LIKE 'prefix%'`` with the wildcards escaped)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        model = self.model
        query = select(model).where(model.key.like(f"{escaped}%", escape="\\")).order_by(model.id)
        return [queued_record(row) for row in (await self.session.execute(query)).scalars()]

    async def exists(self, key: str) -> bool:
        return await queue.exists_key(self.session, self.model, key)

    async def get(self, row_id: int) -> QueuedRow | None:
        return maybe(queued_record, await self.session.get(self.model, row_id))

    async def waiting_in_lane(self, lane: str) -> bool:
        return await queue.waiting_in_lane(self.session, self.model, lane)

    async def working_in_lane(self, lane: str) -> bool:
        return await queue.working_in_lane(self.session, self.model, lane)

    async def lane_busy(self, lane: str) -> bool:
        return await queue.lane_busy(self.session, self.model, lane)

    async def unfinished_payloads(self, lane: str, *, from_id: int) -> list[dict[str, Any]]:
        return await queue.unfinished_payloads(self.session, self.model, lane, from_id=from_id)

    async def failed_in_lanes(self, kind: str, lanes: list[str]) -> list[QueuedRow]:
        return [queued_record(row) for row in await queue.failed_in_lanes(self.session, self.model, kind, lanes)]

    async def requeue_failed(self, row_id: int, *, payload: dict[str, Any]) -> bool:
        return await queue.requeue_failed(self.session, self.model, row_id, payload=payload)

    async def claim(self, *, owner: str, lease: timedelta, limit: int) -> list[QueuedRow]:
        return await queue.claim(self.session, self.model, owner=owner, lease=lease, limit=limit)

    async def finish(self, row_id: int, owner: str) -> bool:
        return await queue.finish(self.session, self.model, row_id, owner)

    async def retry_later(self, row_id: int, owner: str, *, error: str, delay: float, needs_verify: bool) -> bool:
        return await queue.retry_later(
            self.session, self.model, row_id, owner, error=error, delay=delay, needs_verify=needs_verify
        )

    async def defer(self, row_id: int, owner: str, *, delay: float) -> bool:
        return await queue.defer(self.session, self.model, row_id, owner, delay=delay)

    async def give_up(self, row_id: int, owner: str, *, error: str) -> bool:
        return await queue.give_up(self.session, self.model, row_id, owner, error=error)

    def nothing_more_due(self) -> None:
        unmark_queued(self.session, self.model.__tablename__)

    def queued_here(self) -> bool:
        return was_queued(self.session, self.model.__tablename__)


class SqlUnitOfWork:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # Typed as the core's protocols: a UnitOfWork's attributes are mutable, so their types must match exactly.
        self.links: Links = SqlLinks(session)
        self.threads: Threads = SqlThreads(session)
        self.messages: Messages = SqlMessages(session)
        self.reminders: Reminders = SqlReminders(session)
        self.composed: Composed = SqlComposed(session)
        self.inbox: Queue = SqlQueue(session, InboxEvent)
        self.outbox: Queue = SqlQueue(session, OutboxItem)


class SqlStore:
    """``core.store.Store`` on a :class:`storage.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[SqlUnitOfWork]:
        async with self.db.transaction(urgent=urgent) as session:
            yield SqlUnitOfWork(session)

    def group_writer(
        self, write: Callable[[Any, Sequence[T]], Awaitable[Sequence[R]]], *, urgent: bool = False
    ) -> GroupCommit[T, R]:
        async def in_session(session: AsyncSession, items: Sequence[T]) -> Sequence[R]:
            return await write(SqlUnitOfWork(session), items)

        return GroupCommit(self.db, in_session, urgent=urgent)

    def new_rows(self, queue_name: str) -> Any:
        return self.db.new_rows(queue_name)

    def read(self) -> AbstractAsyncContextManager[SqlReads]:
        """Reads outside any transaction: no writer lock, no wait behind the group commit (storage/reads.py)."""
        return open_reads(self.db)
