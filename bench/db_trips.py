"""Durable steps per relayed message: transactions and SQL statements the bridge runs for one researcher reply.

    .venv/bin/python -m bench.db_trips                       # SQLite, 60 replies over three threads
    .venv/bin/python -m bench.db_trips --database postgres --messages 100

Counts are exact (SQLAlchemy engine events in this process), not timings: they do not depend on how busy the
machine is, so a change to the delivery model can be compared at once. The bridge runs in this process on a real
port against the sandbox stand-ins; each reply is a signed Slack event sent one at a time and waited for (its ✅),
after a warm-up, so the figures are per message with nothing grouped. A report, never a test assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench import common
from playground.world import World
from storage.db import AUTOCOMMIT_READ

DELIVERED = "white_check_mark"


class Counter:
    def __init__(self) -> None:
        self.transactions = 0
        self.statements: collections.Counter[str] = collections.Counter()
        self.on = False

    def install(self, engines: list[Engine]) -> None:
        """Count on the bridge's own engines only (not on the test world's reads of the tables)."""
        for engine in engines:
            event.listen(engine, "begin", self._begin)
            event.listen(engine, "before_cursor_execute", self._statement)

    def _begin(self, conn: Any) -> None:
        options = conn.get_execution_options()
        autocommit = options.get("isolation_level") == "AUTOCOMMIT" or options.get(AUTOCOMMIT_READ)
        if self.on and not autocommit:  # reads outside any transaction are statements, not transactions
            self.transactions += 1

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.on:
            self.statements[_shape(statement)] += 1


def _shape(statement: str) -> str:
    text = re.sub(r"\s+", " ", statement).strip()
    match = re.match(r"(SELECT .*? FROM \w+|INSERT INTO \w+|UPDATE \w+|DELETE FROM \w+|\w+)", text, re.IGNORECASE)
    return match.group(1)[:80] if match else text[:80]


async def _reply(world: World, http: Any, thread_ts: str, text: str) -> str:
    c = world.cast
    ts = world.slack.new_ts()
    world.slack.store_message(c.channel, {"type": "message", "user": c.owner.slack_id, "text": text, "ts": ts})
    world.slack.find_message(c.channel, ts)["thread_ts"] = thread_ts  # type: ignore[index]
    body, headers = common.signed_thread_reply(world, c.owner.slack_id, thread_ts, text, ts=ts)
    async with http.post(f"{world.bridge_url}/slack/events", data=body, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise common.BenchError(f"the bridge answered {response.status}")
    return ts


async def run(backend: str, messages: int) -> tuple[Counter, int]:
    counter = Counter()
    with tempfile.TemporaryDirectory() as workdir:
        async with common.fresh_database(backend, Path(workdir)) as url:
            world = await World.create(url, slack_options={"rate_limit": False})
            try:
                bridge = await world.start_bridge()
                engines = [bridge.db.engine, getattr(bridge.db, "_urgent_engine", None)]
                counter.install([e.sync_engine for e in engines if e is not None])
                roots = await common.link_study(world, approve_all=True)
                c = world.cast
                threads = [roots[w.participant_id] for w in (c.jordan, c.priya, c.sam)]
                async with common.unlimited_session() as http:
                    for i in range(messages + 6):
                        if i == 6:  # after the warm-up (first use of each path)
                            await world.quiet()
                            counter.on = True
                        ts = await _reply(world, http, threads[i % 3], f"Probe {i}, thanks!")
                        await common.eventually(
                            lambda ts=ts: DELIVERED in world.slack.reactions.get((c.channel, ts), set()),
                            within=30,
                            what="the reply delivered",
                        )
                        await world.quiet()
                counter.on = False
            finally:
                await world.stop()
    return counter, messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--messages", type=int, default=60)
    args = parser.parse_args()
    counter, n = asyncio.run(run(args.database, args.messages))
    total = sum(counter.statements.values())
    print(f"{args.database}: {counter.transactions / n:.2f} transactions and {total / n:.2f} statements per message")
    for shape, count in counter.statements.most_common():
        print(f"  {count / n:6.2f}  {shape}")


if __name__ == "__main__":
    main()
