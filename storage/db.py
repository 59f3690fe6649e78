"""Engine and transactions for SQLite (embedded default) and PostgreSQL (production, several replicas)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str) -> AsyncEngine:
    """An engine tuned for the bridge.

    SQLite: WAL, a busy timeout, and every transaction opened with ``BEGIN IMMEDIATE`` so that two
    processes on one file queue up instead of failing with a stale snapshot. PostgreSQL: pre-ping, so a
    restarted server is reconnected to by itself.
    """
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30, "isolation_level": None})

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
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Database:
    """The bridge's database: one engine, short transactions, never a network call inside one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sqlite = is_sqlite(url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # One writer at a time per process on SQLite; across processes BEGIN IMMEDIATE queues them.
        self._sqlite_lock = asyncio.Lock() if self.sqlite else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any error."""
        if self._sqlite_lock is not None:
            async with self._sqlite_lock, self._sessions() as session, session.begin():
                yield session
        else:
            async with self._sessions() as session, session.begin():
                yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
