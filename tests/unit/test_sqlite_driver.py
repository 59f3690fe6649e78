"""storage/sqlite_driver.py: SQLAlchemy's aiosqlite adapter with one trip to aiosqlite's thread per statement.
What SQLAlchemy reads from a cursor (rows, rowcount, lastrowid, RETURNING, errors) must be what aiosqlite gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.db import create_engine

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("name", String, unique=True))


@pytest.fixture
async def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.sqlite3'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_rows_rowcount_lastrowid_and_returning_come_back(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as connection:
        inserted = await connection.execute(insert(things).values(name="a"))
        assert inserted.inserted_primary_key == (1,)  # lastrowid
        many = await connection.execute(insert(things), [{"name": "b"}, {"name": "c"}])  # executemany
        assert many.rowcount == 2
        changed = await connection.execute(update(things).where(things.c.id > 1).values(name=things.c.name + "!"))
        assert changed.rowcount == 2
        returned = await connection.execute(
            update(things).where(things.c.id == 1).values(name="z").returning(things.c.id, things.c.name)
        )
        assert returned.all() == [(1, "z")]
        rows = (await connection.execute(select(things.c.name).order_by(things.c.id))).scalars().all()
        assert rows == ["z", "b!", "c!"]
        assert (await connection.execute(select(things).where(things.c.id == 99))).first() is None


async def test_errors_are_sqlalchemys_and_the_connection_stays_usable(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as connection:
        await connection.execute(insert(things).values(name="a"))
        await connection.commit()
        with pytest.raises(IntegrityError):
            await connection.execute(insert(things).values(name="a"))
        await connection.rollback()
        with pytest.raises(OperationalError, match="no such table"):
            await connection.execute(text("SELECT * FROM nowhere"))
        await connection.rollback()
        assert (await connection.execute(select(things.c.name))).scalars().all() == ["a"]


async def test_one_trip_to_the_driver_thread_per_statement(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import aiosqlite

    trips = 0
    original = aiosqlite.Connection._execute

    async def counting(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal trips
        trips += 1
        return await original(self, fn, *args, **kwargs)

    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))  # connection set up before counting
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
        await connection.execute(select(things.c.id).where(things.c.name == "x"))
        assert trips == 1  # SQLAlchemy's own adapter makes four: cursor, execute, fetchall, close
        await connection.execute(insert(things).values(name="y"))
        assert trips == 2
