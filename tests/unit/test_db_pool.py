"""PostgreSQL connection pools as settings (issue 13): RALLYBRIDGE_DB_POOL_SIZE, RALLYBRIDGE_DB_MAX_OVERFLOW,
RALLYBRIDGE_DB_INBOUND_POOL_SIZE and RALLYBRIDGE_DB_POOL_TIMEOUT_SECONDS; validated, passed to both engines,
reported by check-config; and a small pool only makes the workers wait their turn, never deadlocks them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text

from bot.config_check import database_lines, load_settings
from bot.settings import DEFAULT_PG_CONNECTIONS, Settings
from bridge.services import Services
from bridge.worker import QueueWorker
from core.records import QueuedRow
from core.store import INBOX, OUTBOX, UnitOfWork
from storage import db as storage_db
from storage.db import Database, GroupCommit
from storage.models import InboxEvent, OutboxItem
from storage.uow import SqlStore

PG_URL = "postgresql+asyncpg://nobody@127.0.0.1:1/never-connected"  # engines connect lazily: nothing is opened


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


# --- settings ------------------------------------------------------------------------------------------------


def test_the_defaults_let_five_replicas_share_a_default_postgresql_and_match_the_storage_defaults() -> None:
    s = _settings()
    assert (s.db_pool_size, s.db_max_overflow, s.db_inbound_pool_size) == (10, 5, 3)
    assert s.db_pool_timeout_seconds == 30.0
    assert s.db_connections == 18
    assert 5 * s.db_connections <= DEFAULT_PG_CONNECTIONS - 5  # room left for a migration and psql
    assert (storage_db.POOL_SIZE, storage_db.MAX_OVERFLOW, storage_db.INBOUND_POOL_SIZE) == (10, 5, 3)
    assert s.db_pool_timeout_seconds == storage_db.POOL_TIMEOUT


def test_pool_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RALLYBRIDGE_DB_POOL_SIZE", "4")
    monkeypatch.setenv("RALLYBRIDGE_DB_MAX_OVERFLOW", "0")
    monkeypatch.setenv("RALLYBRIDGE_DB_INBOUND_POOL_SIZE", "1")
    monkeypatch.setenv("RALLYBRIDGE_DB_POOL_TIMEOUT_SECONDS", "2.5")
    s = _settings()
    assert (s.db_pool_size, s.db_max_overflow, s.db_inbound_pool_size, s.db_pool_timeout_seconds) == (4, 0, 1, 2.5)
    assert s.db_connections == 5


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("db_pool_size", 0, "must be at least 1 (connections kept open to PostgreSQL), not 0"),
        ("db_inbound_pool_size", -2, "must be at least 1 (connections kept open to PostgreSQL), not -2"),
        ("db_max_overflow", -1, "must be 0 or more (connections opened beyond the pool in bursts), not -1"),
        ("db_pool_timeout_seconds", 0, "must be more than 0 (seconds to wait for a free connection), not 0"),
    ],
)
def test_invalid_pool_settings_are_refused_with_what_is_wrong(field: str, value: int, says: str) -> None:
    with pytest.raises(ValidationError, match=r"must be") as caught:
        _settings(**{field: value})
    assert says in str(caught.value)


def test_check_config_names_an_invalid_pool_setting_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RALLYBRIDGE_DB_POOL_SIZE", "0")
    monkeypatch.setenv("RALLYBRIDGE_DB_MAX_OVERFLOW", "many")
    settings, problems = load_settings()
    assert settings is None
    named = {line.split(":", 1)[0]: line for line in problems}
    assert "must be at least 1" in named["RALLYBRIDGE_DB_POOL_SIZE"]
    assert "RALLYBRIDGE_DB_MAX_OVERFLOW" in named


# --- check-config ---------------------------------------------------------------------------------------------


def test_check_config_reports_connections_per_replica_and_how_many_replicas_fit() -> None:
    [line] = database_lines(_settings(database_url=PG_URL))
    assert "up to 18 connections per replica" in line
    assert "RALLYBRIDGE_DB_POOL_SIZE 10 + RALLYBRIDGE_DB_MAX_OVERFLOW 5 + RALLYBRIDGE_DB_INBOUND_POOL_SIZE 3" in line
    assert "takes 5 such replicas" in line


def test_check_config_warns_when_a_second_replica_or_even_one_would_not_fit() -> None:
    lines = database_lines(_settings(database_url=PG_URL, db_pool_size=40, db_max_overflow=10))
    assert "up to 53 connections per replica" in lines[0] and "takes 1 such replica." in lines[0]
    assert lines[1].startswith("Warning: 53 connections per replica: a second replica would not fit")
    lines = database_lines(_settings(database_url=PG_URL, db_pool_size=80, db_max_overflow=20))
    assert lines[1].startswith("Warning: 103 connections per replica: more than PostgreSQL allows")
    assert "max_connections" in lines[1]


def test_check_config_warns_about_inbound_connections_that_are_never_used() -> None:
    lines = database_lines(_settings(database_url=PG_URL, db_inbound_pool_size=6))
    assert lines[-1] == (
        "Warning: RALLYBRIDGE_DB_INBOUND_POOL_SIZE 6: inbound writes use at most 3 connections at once; "
        "the rest stay unused."
    )


def test_on_sqlite_the_pool_settings_are_said_to_be_ignored_when_given() -> None:
    assert database_lines(_settings()) == []
    [line] = database_lines(_settings(db_pool_size=2, db_max_overflow=0))
    assert line == (
        "Database: SQLite; RALLYBRIDGE_DB_MAX_OVERFLOW, RALLYBRIDGE_DB_POOL_SIZE apply to PostgreSQL only and are "
        "ignored."
    )


# --- the engines ----------------------------------------------------------------------------------------------


async def test_both_engines_get_the_configured_pools() -> None:
    db = Database(PG_URL, pool_size=4, max_overflow=2, inbound_pool_size=1, pool_timeout=5)
    try:
        pool: Any = db.engine.pool
        assert (pool.size(), pool._max_overflow, pool._timeout) == (4, 2, 5)
        assert db._urgent_engine is not None
        urgent: Any = db._urgent_engine.pool
        assert (urgent.size(), urgent._max_overflow, urgent._timeout) == (1, 0, 5)
    finally:
        await db.dispose()


async def test_the_defaults_open_at_most_18_connections() -> None:
    db = Database(PG_URL)
    try:
        pool: Any = db.engine.pool
        assert db._urgent_engine is not None
        urgent: Any = db._urgent_engine.pool
        assert pool.size() + pool._max_overflow + urgent.size() + urgent._max_overflow == 18
    finally:
        await db.dispose()


async def test_the_bridge_passes_its_settings_to_the_database() -> None:
    from bot.app import build_bridge

    settings = _settings(
        database_url=PG_URL,
        slack_bot_token="xoxb-1",
        slack_signing_secret="s",
        respondent_api_key="k",
        respondent_api_secret="s",
        respondent_webhook_key="w",
        rally_api_token="t",
        db_pool_size=3,
        db_max_overflow=1,
        db_inbound_pool_size=2,
        db_pool_timeout_seconds=7,
    )
    bridge = build_bridge(settings)
    try:
        pool: Any = bridge.db.engine.pool
        assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 1, 7)
        assert bridge.db._urgent_engine is not None
        assert bridge.db._urgent_engine.pool.size() == 2  # type: ignore[attr-defined]
    finally:
        for closer in bridge.closers:
            close = getattr(closer, "close", None)
            if close is not None:
                await close()
        await bridge.db.dispose()


async def test_inbound_group_writes_never_outnumber_the_inbound_connections(sqlite_url: str) -> None:
    async def write(_session: Any, items: Sequence[int]) -> list[int]:
        return list(items)

    small = Database(PG_URL, inbound_pool_size=1)
    default = Database(PG_URL)
    lite = Database(sqlite_url, pool_size=1, max_overflow=0, inbound_pool_size=1)  # SQLite: ignored
    try:
        assert GroupCommit(small, write, urgent=True).writers == 1
        assert GroupCommit(small, write).writers == 3  # the workers' pool: waiting there is only a queue
        assert GroupCommit(default, write, urgent=True).writers == 3
        assert GroupCommit(lite, write, urgent=True).writers == 1 and lite._urgent_engine is None
        async with lite.transaction() as session:  # works as ever
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        for db in (small, default, lite):
            await db.dispose()


# --- an exhausted pool ---------------------------------------------------------------------------------------


async def test_an_exhausted_pool_makes_a_transaction_wait_then_fail_after_the_timeout(postgres_url: str) -> None:
    """What happens when every connection is in use: the next transaction waits for one to come back, in turn;
    after RALLYBRIDGE_DB_POOL_TIMEOUT_SECONDS it fails with sqlalchemy's TimeoutError (the workers log it and
    retry the row; an inbound request gets an error and its sender redelivers)."""
    db = Database(postgres_url, pool_size=1, max_overflow=0, pool_timeout=0.3)
    try:
        held = asyncio.Event()
        release = asyncio.Event()

        async def hold() -> None:
            async with db.transaction() as session:
                await session.execute(text("SELECT 1"))
                held.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await held.wait()
        started = time.monotonic()
        with pytest.raises(sa_exc.TimeoutError):
            async with db.transaction() as session:
                await session.execute(text("SELECT 1"))
        assert 0.25 <= time.monotonic() - started < 5
        waiting = asyncio.create_task(_count(db))  # waits for the one connection ...
        await asyncio.sleep(0.1)
        assert not waiting.done()
        release.set()  # ... and gets it as soon as it comes back
        await holder
        assert await waiting == 0
    finally:
        await db.dispose()


async def _count(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(OutboxItem))).scalar_one())


# --- the workers on a small pool --------------------------------------------------------------------------------

ROWS, LANES = 240, 40


async def test_workers_with_many_rows_in_flight_drain_through_a_pool_of_two_without_deadlock(
    postgres_url: str,
) -> None:
    """The outbox worker keeps 50 rows in flight and the inbox worker 20, and every row here takes a connection for
    its own read (as the handlers do), its outcome (group commit, up to 3 transactions at once per worker) and the
    claims. With 2 connections and no overflow they all queue for the pool, and everything is done, in lane order,
    well within the pool timeout: no transaction waits for another while it holds a connection."""
    db = Database(postgres_url, pool_size=2, max_overflow=0, inbound_pool_size=1, pool_timeout=10)
    services = Services(store=SqlStore(db), chats={}, respondent=None, rally=None)  # type: ignore[arg-type]
    done: dict[str, list[tuple[str, int]]] = {INBOX: [], OUTBOX: []}
    all_done = asyncio.Event()

    def runner(queue: str) -> Any:
        async def run(_services: Services, row: QueuedRow) -> Any:
            async with services.store.transaction() as uow:  # a read of its own, as a handler makes
                assert await (uow.inbox if queue == INBOX else uow.outbox).exists(row.key)
            await asyncio.sleep(0.001)

            async def apply(_uow: UnitOfWork) -> None:
                done[queue].append((row.lane, int(row.key.split(":")[1])))
                if sum(map(len, done.values())) == 2 * ROWS:
                    all_done.set()

            return apply

        return run

    options: dict[str, Any] = {"lease": timedelta(seconds=30), "poll": 0.05}
    workers = [
        QueueWorker(services, OUTBOX, runner(OUTBOX), None, batch=50, **options),
        QueueWorker(services, INBOX, runner(INBOX), None, batch=20, **options),
    ]
    try:
        async with services.store.transaction() as uow:
            for n in range(ROWS):
                await uow.outbox.add(key=f"row:{n}", kind="test", lane=f"lane{n % LANES}", payload={})
                await uow.inbox.add(key=f"event:{n}", kind="test", lane=f"lane{n % LANES}", payload={})
        stop = asyncio.Event()
        loops = [asyncio.create_task(w.forever(stop)) for w in workers]
        with contextlib.suppress(TimeoutError):  # counted below
            await asyncio.wait_for(all_done.wait(), timeout=60)
        stop.set()
        services.wakeup.set()
        await asyncio.wait_for(asyncio.gather(*loops), timeout=15)
        for queue, rows in done.items():
            assert len(rows) == ROWS, f"{queue}: {len(rows)} of {ROWS} rows done"
            for lane in {lane for lane, _ in rows}:
                numbers = [n for other, n in rows if other == lane]
                assert numbers == sorted(numbers), (queue, lane)
        for model in (InboxEvent, OutboxItem):
            async with db.transaction() as session:
                query = select(model.status, func.count()).group_by(model.status)
                assert {status: count for status, count in (await session.execute(query)).all()} == {"done": ROWS}
        pool: Any = db.engine.pool
        assert pool.checkedout() == 0 and pool.size() == 2
    finally:
        await db.dispose()
