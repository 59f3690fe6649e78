"""One durable step per relayed message: what a reply costs the database when nothing fails.

A researcher's reply is stored when it is acknowledged (and claimed for the inbox worker in that same transaction),
handled (a read, then one transaction that records the message, queues its relay and claims it for the outbox
worker), and sent: a read, the send, the archive and the delivered mark, then one transaction that records all of
it. No archive row, no mark row, no claim transaction of a worker's own; the reads are single statements outside
any transaction. The thread's live card (``bridge/case.py``) adds one row a reply, claimed with the relay, whose
outcome is one more transaction. Counted on the bridge's own engines with
the workers' polls far apart, so nothing else runs meanwhile; the figures are exact, not timings.
"""

from __future__ import annotations

import collections
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from playground.world import World
from storage.db import AUTOCOMMIT_READ
from tests.integration.conftest import eventually
from tests.integration.flows import archived, link_study, root_of, sent_to

DELIVERED = "white_check_mark"
# Three for the message itself; one for the redraw of its card (claimed with the relay; its outcome: docs/live-case.md).
EXPECTED_TRANSACTIONS = 4


class Tally:
    def __init__(self, engines: list[Engine]) -> None:
        self.transactions = 0
        self.statements: collections.Counter[str] = collections.Counter()
        for engine in engines:
            event.listen(engine, "begin", self._begin)
            event.listen(engine, "before_cursor_execute", self._statement)

    def _begin(self, conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") != "AUTOCOMMIT" and not options.get(AUTOCOMMIT_READ):
            self.transactions += 1  # reads run outside any transaction (storage/reads.py): not counted

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        verb = re.match(r"\s*(\w+)(?:\s+(?:INTO|FROM)?\s*(\w+))?", statement)
        self.statements[" ".join(filter(None, verb.groups())) if verb else statement[:30]] += 1

    def reset(self) -> None:
        self.transactions = 0
        self.statements.clear()


@pytest.fixture
async def slow_polling_world(database_url: str) -> AsyncIterator[World]:
    w = await World.create(database_url, slack_options={"rate_limit": False})
    await w.start_bridge(worker_poll_seconds=30, reconcile_interval_seconds=3600)
    try:
        yield w
    finally:
        await w.stop()


async def test_a_delivered_reply_costs_three_transactions_and_its_card_one(slow_polling_world: World) -> None:
    world = slow_polling_world
    c = world.cast
    await link_study(world)
    root_ts = str((await root_of(world, c.jordan))["ts"])
    # A first reply warms every path (the participant's conversation is opened on the first send).
    first = await world.slack.user_posts(c.channel, c.owner.slack_id, "first, to warm up", thread_ts=root_ts)
    await eventually(lambda: DELIVERED in world.slack.reactions(c.channel, first), what="first delivered")
    await world.quiet()
    assert world.bridge is not None
    db = world.bridge.db
    tally = Tally([e.sync_engine for e in (db.engine, getattr(db, "_urgent_engine", None)) if e is not None])

    ts = await world.slack.user_posts(c.channel, c.owner.slack_id, "Thanks, see you Tuesday!", thread_ts=root_ts)
    await eventually(lambda: DELIVERED in world.slack.reactions(c.channel, ts), what="the reply delivered")
    # Generous: the workers poll 30 s apart here, and a loaded machine once took over 10 s to see the card's row done.
    await world.quiet(timeout=30)

    assert sent_to(world, c.jordan) == ["first, to warm up", "Thanks, see you Tuesday!"]
    assert [e["body"] for e in archived(world)][-1] == "Thanks, see you Tuesday!"
    writes = {verb: n for verb, n in tally.statements.items() if not verb.startswith("SELECT")}
    # Stored and claimed at the ack; the message recorded, its relay queued and claimed, the participant's wait ended
    # (the thread's case) and a redraw of its card queued; the relay's outcome; the redraw's own claim and outcome
    # (the card costs one row a reply, claimed with the relay: docs/live-case.md). The outcome transactions also look
    # for more due rows of
    # their queue (finding none here): one UPDATE each.
    assert writes.get("INSERT inbox") == 1 and writes.get("INSERT outbox") == 2, tally.statements
    assert writes.get("INSERT chat_messages") == 1, tally.statements
    assert writes.get("UPDATE participant_threads") == 2, tally.statements  # the wait ended; the card drawn
    assert writes.get("UPDATE inbox") == 3 and writes.get("UPDATE outbox") == 5, tally.statements
    # Reads: the edge's question, the handler's thread with its link, the thread under its row lock (the case), the
    # relay's thread with its link and its two questions, the redraw's thread with its link; the relay's lane looked
    # at when it is queued (is an earlier relay waiting out a failure?).
    reads = {verb: n for verb, n in tally.statements.items() if verb.startswith("SELECT")}
    assert reads.pop("SELECT", 1) == 1  # the edge's question (on SQLite it runs on the raw cursor: not seen here)
    assert reads == {"SELECT participant_threads": 4, "SELECT outbox": 1}, tally.statements
    assert tally.transactions == EXPECTED_TRANSACTIONS, (tally.transactions, tally.statements)
