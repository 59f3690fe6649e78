"""Schema migrations: upgrade to head, and tell whether a database is current."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from storage.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (synchronous; runs its own event loop)."""
    command.upgrade(alembic_config(url), "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as connection:
        return await connection.run_sync(_current)


async def schema_problem(db: Database) -> str | None:
    """None when the schema is current; otherwise what is wrong and how to fix it."""
    current = await current_revision(db)
    head = head_revision()
    if current == head:
        return None
    if current is None:
        return "the database has no Rally Bridge schema yet. Run `rallybridge db upgrade` first."
    return (
        f"the database schema is at revision {current}, this version needs {head}. "
        "Run `rallybridge db upgrade` (back up the database first)."
    )


async def upgrade_async(url: str) -> None:
    """``upgrade`` from inside a running event loop (Alembic's env runs its own loop, so use a thread)."""
    await asyncio.to_thread(upgrade, url)
