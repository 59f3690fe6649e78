"""Reads outside any transaction (``core.store.Reads``): questions someone waits for, asked before anything is written.

On SQLite every SQLAlchemy transaction of the bridge's engine opens with ``BEGIN IMMEDIATE`` (storage/db.py): it
takes the database's writer lock, and in this process it first queues behind ``WriterLock`` with the group commit
and the workers. A read must do neither. So here the statement runs on a pooled connection's DBAPI cursor, outside
any SQLAlchemy transaction: the connections are opened with ``isolation_level=None`` (SQLite's autocommit mode), so
the statement is its own read transaction, one WAL snapshot, and a reader never waits for the writer (nor the writer
for it). On PostgreSQL the connection is put in AUTOCOMMIT: the statement alone, one round trip, no BEGIN or COMMIT.

Each question is one statement, so it reads one committed state, whatever commits meanwhile.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Connection, Select, String, Table, bindparam, exists, literal_column, or_, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import cast as sql_cast

from core.records import Link, Thread
from core.store import RelayContext
from storage.db import AUTOCOMMIT_READ, Database
from storage.mapping import link_record, thread_record
from storage.models import ChatMessage, OutboxItem, ParticipantThread, StudyLink
from storage.queue import PENDING, WORKING


@asynccontextmanager
async def open_reads(db: Database) -> AsyncIterator[SqlReads]:
    """A pooled connection of the bridge's engine, outside any transaction, for the block."""
    async with db.engine.connect() as connection:
        if db.sqlite:
            connection = await connection.execution_options(**{AUTOCOMMIT_READ: True})
        else:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield SqlReads(connection, sqlite=db.sqlite)


class SqlReads:
    def __init__(self, connection: AsyncConnection, *, sqlite: bool) -> None:
        self.connection = connection
        self.sqlite = sqlite

    async def may_concern_a_thread(
        self, platform: str, channel: str, *, root_id: str | None, post_id: str | None, root_lane_prefix: str
    ) -> bool:
        statement = _thread_question(by_root=root_id is not None, by_post=post_id is not None)
        params = {
            "platform": platform,
            "channel": channel,
            "root_id": root_id,
            "post_id": post_id,
            "root_lane_prefix": root_lane_prefix,
        }
        return bool(await self._scalar(statement, params))

    async def relay_context(self, thread_id: int, *, archive_lane: str, pending_mark_key: str) -> RelayContext | None:
        params = {"thread_id": thread_id, "lane": archive_lane, "key": pending_mark_key}
        row = (await self.connection.execute(_relay_question(), params)).first()
        if row is None:
            return None
        thread, link = _thread_and_link(row)
        return RelayContext(thread, link, bool(row.archive_busy), bool(row.pending_shown))

    async def thread_by_root_with_link(
        self, platform: str, channel: str, root_id: str
    ) -> tuple[Thread, Link | None] | None:
        params = {"platform": platform, "channel": channel, "root_id": root_id}
        row = (await self.connection.execute(_root_question(), params)).first()
        return None if row is None else _thread_and_link(row)

    async def _scalar(self, statement: Select[Any], params: dict[str, Any]) -> Any:
        if self.sqlite:
            return await self.connection.run_sync(_scalar_outside_transaction, statement, params)
        return await self.connection.scalar(statement, params)


# --- a thread with its study's link, one statement, ORM-free (these run for every relayed message) ---------------


def _tables() -> tuple[Table, Table, Table]:
    return cast(Table, ParticipantThread.__table__), cast(Table, StudyLink.__table__), cast(Table, OutboxItem.__table__)


def _thread_and_link_select(*extra: Any) -> Select[Any]:
    threads, links, _ = _tables()
    columns = [c.label(f"t_{c.name}") for c in threads.c] + [c.label(f"l_{c.name}") for c in links.c]
    return select(*columns, *extra).select_from(threads.outerjoin(links, links.c.study_id == threads.c.study_id))


@functools.cache
def _relay_question() -> Select[Any]:
    """The thread by id, its link, and the two questions of ``bridge/relay.py`` (index probes: the primary key,
    ``study_links.study_id``, ``ix_outbox_lane`` and the unique key)."""
    threads, _, outbox = _tables()
    busy = exists().where(
        outbox.c.lane == bindparam("lane", type_=String), outbox.c.status.in_((_constant(PENDING), _constant(WORKING)))
    )
    shown = exists().where(outbox.c.key == bindparam("key", type_=String))
    return _thread_and_link_select(busy.label("archive_busy"), shown.label("pending_shown")).where(
        threads.c.id == bindparam("thread_id")
    )


@functools.cache
def _root_question() -> Select[Any]:
    threads, _, _ = _tables()
    return _thread_and_link_select().where(
        threads.c.platform == bindparam("platform", type_=String),
        threads.c.channel == bindparam("channel", type_=String),
        threads.c.thread_ts == bindparam("root_id", type_=String),
    )


def _thread_and_link(row: Any) -> tuple[Thread, Link | None]:
    values = row._mapping
    thread = SimpleNamespace(**{key[2:]: value for key, value in values.items() if key.startswith("t_")})
    link = SimpleNamespace(**{key[2:]: value for key, value in values.items() if key.startswith("l_")})
    return thread_record(thread), (link_record(link) if link.id is not None else None)  # type: ignore[arg-type]


def _constant(value: str) -> Any:
    """A status in the SQL text, not bound (as ``storage.queue`` writes the claim: a generic plan keeps the index)."""
    return literal_column(f"'{value}'", String)


@functools.cache
def _thread_question(*, by_root: bool, by_post: bool) -> Select[Any]:
    """``SELECT EXISTS (a thread of the channel with this root) OR EXISTS (a message of ours with this post id there)
    OR EXISTS (a thread of the channel with no root and an unfinished row in its outbox lane)``, built once.

    Each branch is an index probe: ``uq_thread_platform_ts`` (platform, channel, thread_ts) for the root and for the
    threads without one (``thread_ts IS NULL``), ``uq_message_platform_ts`` for the post, ``ix_outbox_lane`` (lane,
    status, id) for the lane of each thread without a root (normally none: a root is recorded moments after its
    thread is opened).
    """
    threads, messages, outbox = (cast(Table, m.__table__) for m in (ParticipantThread, ChatMessage, OutboxItem))
    platform, channel = bindparam("platform", type_=String), bindparam("channel", type_=String)
    questions = []
    if by_root:
        questions.append(
            exists().where(
                threads.c.platform == platform,
                threads.c.channel == channel,
                threads.c.thread_ts == bindparam("root_id", type_=String),
            )
        )
    if by_post:
        questions.append(
            exists().where(
                messages.c.platform == platform,
                messages.c.channel == channel,
                messages.c.platform_ts == bindparam("post_id", type_=String),
            )
        )
    rootless = threads.alias("rootless")
    lane = bindparam("root_lane_prefix", type_=String) + sql_cast(rootless.c.id, String)
    questions.append(
        exists().where(
            rootless.c.platform == platform,
            rootless.c.channel == channel,
            rootless.c.thread_ts.is_(None),
            exists().where(outbox.c.lane == lane, outbox.c.status.in_((_constant(PENDING), _constant(WORKING)))),
        )
    )
    return select(or_(*questions))


@functools.lru_cache(maxsize=32)
def _compiled(statement: Select[Any], dialect: Dialect) -> SQLCompiler:
    return cast(SQLCompiler, statement.compile(dialect=dialect))


def _scalar_outside_transaction(connection: Connection, statement: Select[Any], params: dict[str, Any]) -> Any:
    """On SQLite: the statement on the DBAPI cursor, so that SQLAlchemy begins no transaction (no BEGIN IMMEDIATE).

    ``storage.sqlite_driver``'s cursor executes and fetches in one trip to aiosqlite's thread; the connection stays
    outside a transaction, so it goes back to the pool as it came (no ROLLBACK needed, none is sent)."""
    compiled = _compiled(statement, connection.dialect)
    values = compiled.construct_params(params)
    cursor = connection.connection.cursor()
    try:
        cursor.execute(compiled.string, tuple(values[name] for name in compiled.positiontup or ()))
        row = cursor.fetchone()
    finally:
        cursor.close()
    return row[0] if row else None
