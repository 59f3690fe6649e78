"""Two `rallybridge serve` processes on one PostgreSQL: every reminder fires exactly once; reminders that came
due while every process was down fire after the restart, with a note."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from playground.world import World, free_port
from storage import reminders as store
from storage.db import Database
from storage.models import InboxEvent, ParticipantThread
from tests.factories import reminder
from tests.integration.conftest import eventually
from tests.integration.flows import archived, link_study, root_of, sent_to
from tests.integration.processes import BridgeProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True),
]

COUNT = 30


async def _schedule(db: Database, bodies: list[str], due_at: datetime) -> None:
    """Rows as `/rally remind` makes them (the owner scheduled them), due at ``due_at``."""
    async with db.transaction() as session:
        thread = (await session.execute(select(ParticipantThread))).scalars().one()
        for index, body in enumerate(bodies):
            session.add(
                reminder(
                    thread,
                    source_key=f"test:{body}",
                    due_at=due_at + timedelta(milliseconds=10 * index),
                    body=body,
                    spec="in 2s",
                    tz="Europe/Berlin",
                )
            )


async def _statuses(db: Database) -> Counter[str]:
    async with db.transaction() as session:
        return Counter((await session.execute(select(store.Reminder.status))).scalars())


async def test_two_processes_fire_each_reminder_once_and_a_restart_fires_what_came_due(
    database_url: str, tmp_path: Path
) -> None:
    world = await World.create(database_url, slack_options={"rate_limit": False})
    c = world.cast
    env_a = world.env()
    a = BridgeProcess(env_a, tmp_path / "a.log", name="a")
    b = BridgeProcess({**env_a, "RALLYBRIDGE_PORT": str(free_port())}, tmp_path / "b.log", name="b")
    db = Database(database_url)
    try:
        await asyncio.gather(a.start_healthy(), b.start_healthy())
        await link_study(world)
        root_ts = str((await root_of(world, c.jordan))["ts"])
        # Phase 1: both processes tick every second over the same due rows.
        bodies = [f"reminder {n:02d}" for n in range(COUNT)]
        await _schedule(db, bodies, datetime.now(UTC) + timedelta(seconds=2))
        await eventually(lambda: len(sent_to(world, c.jordan)) >= COUNT, within=60, what="all reminders sent")
        await asyncio.sleep(3)  # several more ticks of both processes: nothing fires again
        await world.quiet()  # and whatever a tick queued is done
        assert Counter(sent_to(world, c.jordan)) == Counter(bodies)
        await eventually(lambda: len(archived(world)) >= COUNT, within=30, what="all archived")
        entries = archived(world)
        assert len(entries) == COUNT and {(e["source"], e["author"]["type"]) for e in entries} == {("SCHEDULER", "BOT")}
        assert await _statuses(db) == Counter({"sent": COUNT})
        async with db.transaction() as session:
            events = (await session.execute(select(InboxEvent).where(InboxEvent.kind == "reminder.due"))).scalars()
            owners = Counter(str(e.lease_owner).rsplit(":", 2)[1] for e in events)
        print("reminder events handled per process:", dict(owners))
        assert sum(owners.values()) == COUNT

        # Phase 2: every process dies; three reminders come due meanwhile; one process comes back.
        a.kill()
        b.kill()
        late = [f"late {n}" for n in range(3)]
        await _schedule(db, late, datetime.now(UTC) - timedelta(minutes=10))
        await a.start_healthy()
        await eventually(lambda: len(sent_to(world, c.jordan)) >= COUNT + 3, within=30, what="late reminders")
        assert Counter(sent_to(world, c.jordan)[COUNT:]) == Counter(late)
        await eventually(
            lambda: (
                len([m for m in world.slack.thread(c.channel, root_ts) if "Sent late by 10m" in m.get("text", "")]) == 3
            ),
            what="three late notes",
        )
    finally:
        for process in (a, b):
            process.stop()
        await db.dispose()
        await world.stop()
