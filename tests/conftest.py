"""Databases for the tests: a fresh SQLite file, and a fresh schema in the PostgreSQL given by
RALLYBRIDGE_TEST_POSTGRES_URL (CI sets it and RALLYBRIDGE_REQUIRE_POSTGRES=1, so a skip fails the run)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.migrate import upgrade

POSTGRES_URL = os.environ.get("RALLYBRIDGE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("RALLYBRIDGE_REQUIRE_POSTGRES") == "1"


def _postgres_available() -> str | None:
    try:
        import asyncio

        import asyncpg

        async def probe() -> None:
            conn = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"), timeout=3)
            await conn.close()

        asyncio.run(probe())
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}"


_PG_PROBLEM: str | None = None
_PG_CHECKED = False


def postgres_problem() -> str | None:
    global _PG_PROBLEM, _PG_CHECKED
    if not _PG_CHECKED:
        _PG_PROBLEM, _PG_CHECKED = _postgres_available(), True
    return _PG_PROBLEM


def _fresh_postgres_database() -> tuple[str, str]:
    """A new database per test (dropped afterwards): tests and subprocesses can share it freely."""
    import asyncio

    import asyncpg

    name = f"rb_test_{uuid.uuid4().hex[:12]}"
    admin = POSTGRES_URL.replace("postgresql+asyncpg", "postgresql")

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    base = POSTGRES_URL.rsplit("/", 1)[0]
    return f"{base}/{name}", name


def _drop_postgres_database(name: str) -> None:
    import asyncio

    import asyncpg

    admin = POSTGRES_URL.replace("postgresql+asyncpg", "postgresql")

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    asyncio.run(drop())


def _migrated_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'bridge.sqlite3'}"
        upgrade(url)
        yield url
        return
    problem = postgres_problem()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(problem)
        pytest.skip(problem)
    url, name = _fresh_postgres_database()
    upgrade(url)
    try:
        yield url
    finally:
        _drop_postgres_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database on each backend."""
    yield from _migrated_database(request.param, tmp_path)


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty PostgreSQL database, for what only PostgreSQL has (a server that can go away)."""
    yield from _migrated_database(request.param, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bridge.sqlite3'}"
    upgrade(url)
    return url
