"""Retention: finished inbox and outbox rows are deleted once they are older than ``RALLYBRIDGE_RETENTION_DAYS``.

**What goes.** A row whose ``status`` is ``done``, or ``failed`` for good, and whose ``finished_at`` is older than
the retention, with its payload (the message text it carried). **What stays**, however old: unfinished rows
(``pending``, ``working``: their ``finished_at`` is NULL); failed rows of the ``keep_failed`` kinds, i.e. the relays
that gave up, which ``retry <id>`` and the home's Retry re-queue as the very same row for as long as it exists (once
retried and done it ages like any other row); and every other table: message mappings (``chat_messages``), threads,
links, reminders are never pruned.

**Why the retention covers redeliveries.** A done inbox row's key is what turns a redelivered event into a no-op
(``storage.queue.enqueue``). The longest any source redelivers (each platform's documentation):

- Slack Events API: three retries, the last about 5 minutes after the event (same ``event_id``); slash commands
  and interactivity are not retried; Socket Mode re-sends an unacknowledged envelope within seconds.
- Respondent webhooks: undocumented; reportedly up to five retries ten minutes apart (under an hour).
- Rally webhooks (Svix, docs.svix.com/retries): immediately, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
  10 h: the last attempt about 27.6 hours after the first.

So an automatic duplicate arrives within about 28 hours of the original, and the retention is at least two days
(``bot/settings.py`` refuses less), counted from when the row *finished*, which is after it first arrived. Outbox
keys dedupe effects queued by transactions that run at the same time (seconds apart), and a relay's pending mark
until the relay settles, which is within a day (``bridge.worker.GIVE_UP_AFTER``).

A duplicate after the retention (someone replaying an old Rally webhook from Svix's dashboard, a Respondent webhook,
which carries no timestamp, sent again) is stored as a new row, and what it would repeat is still absorbed by what
is never pruned: a participant's message already mirrored is known by its Respondent id, a researcher's reply by
its post id (``chat_messages``), a thread exists once per participant, a Rally status change is re-read from Rally.
What such a late duplicate can repeat is a private answer (a refusal, a command's reply).

**How.** ``DELETE ... WHERE id IN (SELECT id ... LIMIT batch)``, each batch its own short transaction, at most
``max_batches`` per queue a call, so one tick never holds SQLite's single writer for long (acknowledgements wait
for no more than one batch) and a large first clean-up spreads over many ticks. The rows are found through the
partial index of finished rows by ``finished_at`` (migration 0006). On PostgreSQL the chosen rows are locked with
``SKIP LOCKED``, so replicas pruning at the same moment share the work instead of waiting for each other.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Table, and_, bindparam, delete, literal_column, not_, select, text

from storage.db import Database
from storage.models import InboxEvent, OutboxItem
from storage.queue import FAILED, PENDING, WORKING, QueueModel, utcnow

_CUSTOM_PLAN = text("SET LOCAL plan_cache_mode = force_custom_plan")
BATCH = 500  # rows a statement
MAX_BATCHES = 10  # statements per queue a call: 5,000 rows a queue a tick by default
QUEUES: dict[str, QueueModel] = {"inbox": InboxEvent, "outbox": OutboxItem}


@functools.cache
def _prune_statement(model: QueueModel, batch: int, keep_failed: frozenset[str]) -> Any:
    """Delete up to ``batch`` finished rows older than ``:cutoff``; built once per queue, batch and kept kinds.

    Statuses, kinds and the limit are written into the SQL (like the claim's, ``storage.queue._constant``), so a
    generic plan of a prepared statement on PostgreSQL still sees them; only the cutoff is bound.
    """
    t = cast(Table, model.__table__)
    # Done or failed, written as "not unfinished": the same rows (only finish and give_up set finished_at), but not a
    # condition SQLite can search ``ix_<queue>_due`` with, which it preferred over the finished rows' index and so
    # read every done row to find none old (164 ms on 150,000 rows instead of well under 1 ms).
    finished = t.c.status.not_in((literal_column(f"'{PENDING}'"), literal_column(f"'{WORKING}'")))
    old = and_(t.c.finished_at.is_not(None), t.c.finished_at < bindparam("cutoff", type_=t.c.finished_at.type))
    conditions = [old, finished]
    if keep_failed:
        kinds: list[Any] = [literal_column("'" + kind.replace("'", "''") + "'") for kind in sorted(keep_failed)]
        conditions.append(not_(and_(t.c.status == literal_column(f"'{FAILED}'"), t.c.kind.in_(kinds))))
    chosen = (
        select(t.c.id)
        .where(*conditions)
        .order_by(t.c.finished_at)  # oldest first, and through the index whatever the plan's estimate of the cutoff
        .limit(literal_column(str(int(batch)), Integer))
        .with_for_update(skip_locked=True)  # PostgreSQL only; SQLite has one writer anyway
    )
    return delete(t).where(t.c.id.in_(chosen.scalar_subquery()))


async def prune_batch(
    db: Database, model: QueueModel, *, cutoff: datetime, batch: int = BATCH, keep_failed: Collection[str] = ()
) -> int:
    """Delete up to ``batch`` rows of ``model`` that finished before ``cutoff``, in one transaction; how many."""
    statement = _prune_statement(model, batch, frozenset(keep_failed))
    async with db.transaction() as session:
        if not db.sqlite:
            # Planned for this cutoff every time. A pooled connection otherwise keeps the generic plan PostgreSQL
            # made while the queue was small (a scan of the whole table and a sort) and runs it as the table grows:
            # measured at 40-130 ms a batch on 300,000 rows, 2-7 ms planned for the cutoff (docs/performance.md).
            await session.execute(_CUSTOM_PLAN)
        result = await session.execute(statement, {"cutoff": cutoff})
    return int(getattr(result, "rowcount", 0) or 0)


async def prune(
    db: Database,
    *,
    older_than: timedelta,
    keep_failed: Collection[str] = (),
    now: datetime | None = None,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> dict[str, int]:
    """Delete finished rows of both queues that finished more than ``older_than`` before ``now`` (the system clock,
    as ``finished_at`` is written): up to ``max_batches`` batches of ``batch`` rows per queue. Rows deleted, by
    queue. A queue whose last batch came back full has more to delete: the next call goes on."""
    cutoff = (now or utcnow()) - older_than
    pruned: dict[str, int] = {}
    for name, model in QUEUES.items():
        total = 0
        for _ in range(max_batches):
            deleted = await prune_batch(db, model, cutoff=cutoff, batch=batch, keep_failed=keep_failed)
            total += deleted
            if deleted < batch:
                break
            await asyncio.sleep(0)  # let whatever waits for the database go between two batches
        pruned[name] = total
    return pruned
