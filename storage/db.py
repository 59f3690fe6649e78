"""Engine and transactions for SQLite (embedded default) and PostgreSQL (production, several replicas)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_

from storage import sqlite_driver

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


# PostgreSQL connections per process (bot/settings.py sets them from RALLYBRIDGE_DB_*; docs/operations.md).
POOL_SIZE, MAX_OVERFLOW, INBOUND_POOL_SIZE, POOL_TIMEOUT = 10, 5, 3, 30.0


# Execution option of a connection that only reads, statement by statement, outside any transaction: on SQLite no
# ``BEGIN IMMEDIATE`` (the connections are in the driver's autocommit mode), on PostgreSQL the AUTOCOMMIT level.
AUTOCOMMIT_READ = "rallybridge_autocommit_read"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def dialect_of(session: AsyncSession) -> str:
    """``postgresql`` or ``sqlite``: which dialect's INSERT ... ON CONFLICT a statement needs."""
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def create_engine(
    url: str, *, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW, pool_timeout: float = POOL_TIMEOUT
) -> AsyncEngine:
    """An engine tuned for the bridge.

    SQLite: WAL, a busy timeout, and every transaction opened with ``BEGIN IMMEDIATE`` so that two
    processes on one file queue up instead of failing with a stale snapshot; the pool settings do not apply (one
    writer at a time anyway). PostgreSQL: no pre-ping (see the end for how a restarted server is handled). The pool
    keeps ``pool_size`` connections open and opens up to ``max_overflow`` more while they are all in use; one opened
    beyond ``pool_size`` is closed when it is returned, so a pool much smaller than the load spends more on
    connecting than on the transactions themselves. With every connection in use a transaction waits (in order)
    for one to come back, at most ``pool_timeout`` seconds, then raises ``sqlalchemy.exc.TimeoutError``.
    """
    if is_sqlite(url):
        # Reset on return is ours (below): SQLAlchemy's default rolls back every returned connection.
        engine = create_async_engine(
            url,
            connect_args={"timeout": 30, "isolation_level": None},
            pool_reset_on_return=None,
            module=sqlite_driver.dbapi(),  # one trip to aiosqlite's thread per statement (storage/sqlite_driver.py)
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            if conn.get_execution_options().get(AUTOCOMMIT_READ):
                return  # a read outside any transaction (storage/reads.py): each statement its own snapshot
            # Straight to aiosqlite: one trip to its thread, where a SQLAlchemy cursor costs three.
            await_(conn.connection.driver_connection.execute("BEGIN IMMEDIATE"))

        @event.listens_for(engine.sync_engine, "reset")
        def _rollback_if_open(dbapi_connection: Any, record: Any, reset_state: Any) -> None:
            # Nearly every connection comes back committed, and on aiosqlite a needless ROLLBACK is one more trip
            # to the driver's thread: roll back only one still inside a transaction (an error, a cancellation).
            if reset_state.terminate_only or not reset_state.asyncio_safe:
                return  # being closed or garbage-collected: SQLAlchemy terminates it
            if record.driver_connection.in_transaction:
                dbapi_connection.rollback()

        return engine
    # No pre-ping: it is one more round trip on every checkout (at 200 acknowledgements a second on this machine,
    # p50 14 -> 4.5 ms and p99 66 -> 42 ms without it; docs/performance.md). A restarted server is still handled:
    # the first statement on a dead connection fails as a disconnect, SQLAlchemy then discards every connection
    # of that pool, and group writes (acknowledgements, outcomes) run once more on a fresh one (GroupCommit).
    return create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)


class Database:
    """The bridge's database: one engine, short transactions, never a network call inside one."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        max_overflow: int = MAX_OVERFLOW,
        inbound_pool_size: int = INBOUND_POOL_SIZE,
        pool_timeout: float = POOL_TIMEOUT,
    ) -> None:
        """On PostgreSQL at most ``pool_size + max_overflow + inbound_pool_size`` connections (ignored on SQLite).

        Nothing in the bridge waits for a connection while it holds one (a transaction opened inside another would
        wait forever for SQLite's writer lock; reads, ``storage/reads.py``, are asked outside transactions), so a
        pool of any size makes transactions wait their turn and cannot deadlock them (tests/unit/test_db_pool.py).
        """
        self.url = url
        self.sqlite = is_sqlite(url)
        self.engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # PostgreSQL: urgent transactions get connections of their own, so that a request being acknowledged
        # never waits for a pooled connection behind the workers' many short transactions. No overflow: its one
        # user, the inbox's group writer, runs at most ``inbound_pool_size`` transactions at once (GroupCommit).
        self.inbound_pool_size = 1 if self.sqlite else inbound_pool_size
        self._urgent_engine = (
            None
            if self.sqlite
            else create_engine(url, pool_size=inbound_pool_size, max_overflow=0, pool_timeout=pool_timeout)
        )
        self._urgent_sessions = (
            async_sessionmaker(self._urgent_engine, expire_on_commit=False) if self._urgent_engine else self._sessions
        )
        # One writer at a time per process on SQLite; across processes BEGIN IMMEDIATE queues them.
        self._sqlite_lock = WriterLock() if self.sqlite else None
        self._new_rows: dict[str, asyncio.Event] = {}

    def new_rows(self, table: str) -> asyncio.Event:
        """Set when a transaction of this process that queued rows into ``table`` has committed (see
        :func:`mark_queued`); whoever waits on it clears it. Other processes' rows are found by polling."""
        return self._new_rows.setdefault(table, asyncio.Event())

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any error.

        ``urgent``: someone is waiting for its answer (an inbound request before it is acknowledged). On SQLite it
        takes the writer lock before every waiting non-urgent transaction; on PostgreSQL it uses a small pool of
        its own connections.
        """
        async with contextlib.AsyncExitStack() as stack:
            if self._sqlite_lock is not None:
                await stack.enter_async_context(self._sqlite_lock.held(urgent))
            session = await stack.enter_async_context((self._urgent_sessions if urgent else self._sessions)())
            async with session.begin():
                yield session
            for table in session.info.pop(QUEUED, ()):  # committed: now the rows can be claimed
                self.new_rows(table).set()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._urgent_engine is not None:
            await self._urgent_engine.dispose()


QUEUED = "rallybridge.queued"  # session.info: tables that got new queue rows in this transaction


def mark_queued(session: AsyncSession, table: str) -> None:
    """Rows were queued into ``table`` in ``session``'s transaction: :meth:`Database.new_rows` fires on commit."""
    session.info.setdefault(QUEUED, set()).add(table)


def was_queued(session: AsyncSession, table: str) -> bool:
    """Whether rows were queued into ``table`` in ``session``'s transaction (and are still to be announced)."""
    return table in session.info.get(QUEUED, set())


def unmark_queued(session: AsyncSession, table: str) -> None:
    """No need to announce ``table`` after all (the committing worker claimed its new rows itself)."""
    session.info.get(QUEUED, set()).discard(table)


class WriterLock:
    """A lock whose urgent waiters are served before the others (each group in arrival order)."""

    def __init__(self) -> None:
        self._locked = False
        self._waiters: tuple[collections.deque[asyncio.Future[None]], collections.deque[asyncio.Future[None]]] = (
            collections.deque(),  # urgent
            collections.deque(),  # the rest
        )

    @property
    def locked(self) -> bool:
        return self._locked

    async def acquire(self, urgent: bool = False) -> None:
        if not self._locked and not any(self._waiters):
            self._locked = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters[0 if urgent else 1]
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # it was handed to us as we were cancelled: pass it on
            else:
                queue.remove(waiter)
            raise

    def release(self) -> None:
        """Hand the lock to the next waiter (urgent first), or unlock."""
        for queue in self._waiters:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # stays locked: ownership passes to the waiter
                    return
        self._locked = False

    @asynccontextmanager
    async def held(self, urgent: bool = False) -> AsyncIterator[None]:
        await self.acquire(urgent)
        try:
            yield
        finally:
            self.release()


class GroupCommit(Generic[T, R]):
    """Group commit: items submitted while a transaction is being written go together into the next one.

    ``submit(item)`` returns once the item is committed, with what ``write`` said for it; so nobody is
    answered before their item is durable, and under load one transaction carries many items instead of one
    each. An idle writer starts at once, so a lone item waits for nothing. ``write(session, items)`` returns
    one result per item, in order. When a batch fails, its items are written one by one, so one bad item fails
    only its own ``submit`` (which raises what ``write`` raised). ``urgent``: see :meth:`Database.transaction`.

    ``writers`` transactions may be in flight at once (default: 1 on SQLite, which has one writer anyway; 3 on
    PostgreSQL, where a commit mostly waits for the server's WAL flush and others can proceed meanwhile; urgent
    ones no more than the inbound pool has connections, so that none waits for a connection).
    """

    def __init__(
        self,
        db: Database,
        write: Callable[[AsyncSession, Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 200,
        urgent: bool = False,
        writers: int | None = None,
    ) -> None:
        self.db = db
        self.write = write
        self.max_batch = max_batch
        self.urgent = urgent
        self.writers = writers or (1 if db.sqlite else min(3, db.inbound_pool_size) if urgent else 3)
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # a caller that went away leaves no "exception never retrieved"
        self._queue.append((item, future))
        if len(self._running) < self.writers:
            writer = asyncio.create_task(self._drain())
            self._running.add(writer)
            writer.add_done_callback(self._running.discard)
        # The write goes on if the caller goes away: the item may be committed, and the next caller sees that.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                log.warning(
                    "group write of %d items failed (%s); writing them one by one", len(batch), type(exc).__name__
                )
                for item, future in batch:
                    try:
                        _settle(future, (await self._write([item]))[0])
                    except Exception as single:
                        _settle(future, single)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)

    async def _write(self, items: list[T]) -> Sequence[R]:
        try:
            results = await self._write_once(items)
        except DBAPIError as exc:
            if _deadlock(exc):
                # PostgreSQL chose this transaction to break a lock cycle (two groups taking thread rows in different
                # orders) and rolled it back whole: run it once more. Safe for the same reason as below.
                log.info("group write met a deadlock; writing the group again")
                return await self._write_once(items)
            if not exc.connection_invalidated:
                raise
            # The server went away under a pooled connection (a restart): the pool has dropped its connections;
            # once more on a fresh one. Safe to repeat: inbox inserts skip stored keys, outcomes need the lease.
            log.warning("database connection lost (%s); writing the group again", type(exc.orig).__name__)
            results = await self._write_once(items)
        if len(results) != len(items):
            raise RuntimeError(f"group write returned {len(results)} results for {len(items)} items")
        return results

    async def _write_once(self, items: list[T]) -> Sequence[R]:
        async with self.db.transaction(urgent=self.urgent) as session:
            return await self.write(session, items)


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _deadlock(exc: DBAPIError) -> bool:
    """Whether PostgreSQL aborted the transaction to break a deadlock (SQLSTATE 40P01)."""
    return getattr(exc.orig, "sqlstate", None) == "40P01" or type(exc.orig).__name__ == "DeadlockDetectedError"
