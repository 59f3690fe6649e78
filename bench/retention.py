"""Benchmark 4b: a month and more of traffic at scale, with and without retention (``storage/retention.py``).

    .venv/bin/python -m bench.retention [--quick] [--participants 100000] [--days 45] [--databases sqlite,postgres]

Per backend, two fresh databases receive the same simulated traffic, one simulated hour at a time: the queue rows a
bridge leaves behind when ``--participants`` participants exchange 10 messages a month (as ``bench/seed.py`` seeds a
month: per message one inbox row and two outbox rows, done a second after they were queued; one relay in a thousand
failed for good, which retention keeps for Retry). At 100,000 participants that is 100,000 queue rows a day.

- **pruned**: after each simulated hour, the retention tick runs in simulated time (``retention.prune`` with ``now``
  at the end of the hour, ``RALLYBRIDGE_RETENTION_DAYS`` = ``--retention-days``), as many ticks as it takes until one
  deletes less than a tick's bound (the minute ticks of that hour after those find nothing; what such an empty
  tick costs is measured at the end).
- **kept**: no pruning, as before retention existed.

At a few days of the simulation (``--checkpoints``): the rows in each queue, the queues' size on disk, and the
claims' p50 / p99 in milliseconds (each claim in its own transaction, rolled back, as in ``bench/scale.py``): idle,
and with 200 rows due in 100 lanes that have a history (participants' archive and Respondent lanes). Figures are a
report, never an assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common, seed  # noqa: E402
from bench.seed import SeededThread  # noqa: E402
from storage import queue, retention  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import InboxEvent, OutboxItem  # noqa: E402
from storage.queue import QueueModel, utcnow  # noqa: E402

MESSAGES_PER_MONTH = 10  # per participant (bench/seed.py: 10 archived messages each)
SLICE = timedelta(hours=1)  # traffic is added, and pruned, one simulated hour at a time
FAILED_EVERY = 1000  # one relay in this many fails for good (kept by retention for Retry)
RELAY = "respondent.send"
BODY = "Thanks for your time yesterday! Could you tell us a bit more about how you plan your week? " * 2
DUE = 200  # rows due (two per lane) for the "200 due" claims
TICK_BOUND = retention.BATCH * retention.MAX_BATCHES  # rows a tick deletes at most, per queue


class _Rollback(Exception):
    """Leave a measured claim's transaction without committing."""


@dataclass
class Checkpoint:
    day: int
    rows: dict[str, int]  # queue -> rows
    finished: int  # done or failed rows, both queues
    size_mb: float  # the queues (tables and indexes) on PostgreSQL; the used pages of the file on SQLite
    file_mb: float  # SQLite: the file (freed pages are reused, not returned); PostgreSQL: nan
    claims: dict[str, dict[str, float]]  # claim -> p50 / p99 ms


@dataclass
class Variant:
    checkpoints: list[Checkpoint] = field(default_factory=list)
    tick_seconds: list[float] = field(default_factory=list)  # every tick that deleted something
    tick_rows: list[int] = field(default_factory=list)
    batch_seconds: list[float] = field(default_factory=list)  # each batch: one transaction holding the writer
    empty_tick_seconds: list[float] = field(default_factory=list)
    maintenance: dict[str, int] = field(default_factory=dict)  # autovacuum's work, emulated: what ran how often
    seconds: float = 0.0


# --- traffic ---------------------------------------------------------------------------------------------


def _message(g: int, participants: int, at: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The inbox row and the two outbox rows message ``g`` left (round-robin over participants), done at ``at``."""
    p, n = g % participants, g // participants
    t = SeededThread(p)
    uid = t.respondent_uid(n)
    if n % 2 == 0:  # the participant wrote on Respondent: mirrored into the thread
        inbox = seed._queue_row(
            f"respondent:webhook:{uid}",
            "respondent.message_created",
            f"respondent:{t.conversation_uid}",
            {"message_id": uid, "conversation_uid": t.conversation_uid, "project_id": t.project_id},
            at,
        )
        effect = seed._queue_row(
            f"mirror:{uid}", "chat.mirror", f"thread:{p + 1}", {"thread_id": p + 1, "body": BODY}, at
        )
    else:  # a researcher replied in the thread: relayed to Respondent
        ts = t.message_ts(n)
        inbox = seed._queue_row(
            f"slack:msg:{seed.WORKSPACE}:{t.channel}:{ts}",
            "chat.message",
            f"slack:{t.channel}:{t.thread_ts}",
            {"platform": "slack", "channel": t.channel, "ts": ts, "thread_ts": t.thread_ts, "text": BODY},
            at,
        )
        effect = seed._queue_row(
            f"relay:slack:msg:{seed.WORKSPACE}:{t.channel}:{ts}",
            RELAY,
            f"relay:{p + 1}",
            {"thread_id": p + 1, "body": BODY},
            at,
        )
        if g % FAILED_EVERY == 0:
            effect.update(status="failed", last_error="Respondent refused it (simulated)")
    archive = seed._queue_row(
        f"archive:respondent:{uid}", "rally.archive", f"archive:{p + 1}", {"thread_id": p + 1, "body": BODY}, at
    )
    done = at + timedelta(seconds=1)
    for row in (inbox, effect, archive):
        row["finished_at"] = done
    return inbox, [effect, archive]


async def add_hour(db: Database, participants: int, hour: int, start: datetime) -> None:
    """The rows of simulated hour ``hour`` (messages spread evenly over it)."""
    per_hour = participants * MESSAGES_PER_MONTH / (30 * 24)
    first, end = round(hour * per_hour), round((hour + 1) * per_hour)
    inbox: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    slice_start = start + hour * SLICE
    for g in range(first, end):
        at = slice_start + SLICE * ((g - first) / max(1, end - first))
        row, effects = _message(g, participants, at)
        inbox.append(row)
        outbox += effects
    async with db.engine.begin() as conn:
        await seed._insert(conn, InboxEvent, iter(inbox))
        await seed._insert(conn, OutboxItem, iter(outbox))


@contextlib.contextmanager
def timed_batches(into: list[float]) -> Iterator[None]:
    """Time every ``retention.prune_batch`` (one transaction each) that ``retention.prune`` runs meanwhile."""
    original = retention.prune_batch

    async def timed(*args: Any, **kwargs: Any) -> int:
        began = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - began)

    retention.prune_batch = timed
    try:
        yield
    finally:
        retention.prune_batch = original


async def prune_hour(db: Database, variant: Variant, now: datetime, retention_days: int) -> None:
    """The retention ticks of one simulated hour that find something to delete."""
    while True:
        batches: list[float] = []
        began = time.perf_counter()
        with timed_batches(batches):
            pruned = await retention.prune(db, older_than=timedelta(days=retention_days), keep_failed={RELAY}, now=now)
        took = time.perf_counter() - began
        total = sum(pruned.values())
        if total:
            variant.tick_seconds.append(took)
            variant.tick_rows.append(total)
            variant.batch_seconds += batches
        if max(pruned.values()) < TICK_BOUND:
            return


# The thresholds of PostgreSQL's autovacuum (its defaults): a table is vacuumed once its dead rows, or the rows
# inserted since its last vacuum, pass these, and analyzed once the rows changed since its last analyze do.
AUTOVACUUM = {"vacuum": (50, 0.2), "insert": (1000, 0.2), "analyze": (50, 0.1)}


async def autovacuum(db: Database, counts: dict[str, int]) -> None:
    """What autovacuum would have done by now (PostgreSQL): VACUUM / ANALYZE each queue past its thresholds.

    The simulation passes a month in minutes and autovacuum runs on the wall clock, once a minute at most: left to
    itself it would see a month of changes a few times, and the tables would be planned with statistics taken when
    they were a fraction of their size. Checked after every simulated hour, with the counters autovacuum reads.
    """
    if db.sqlite:
        return
    query = text(
        "SELECT relname, n_live_tup, n_dead_tup, n_ins_since_vacuum, n_mod_since_analyze FROM pg_stat_user_tables "
        "WHERE relname IN ('inbox', 'outbox')"
    )
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for name, live, dead, inserted, modified in (await conn.execute(query)).all():
            vacuum = dead > _threshold("vacuum", live) or inserted > _threshold("insert", live)
            analyze = modified > _threshold("analyze", live)
            if vacuum or analyze:
                what = "VACUUM ANALYZE" if vacuum and analyze else "VACUUM" if vacuum else "ANALYZE"
                await conn.execute(text(f"{what} {name}"))
                counts[what.lower()] = counts.get(what.lower(), 0) + 1


def _threshold(kind: str, live: int) -> float:
    base, scale = AUTOVACUUM[kind]
    return base + scale * live


# --- measurements ----------------------------------------------------------------------------------------


async def _claim_once(db: Database, model: QueueModel) -> float:
    began = time.perf_counter()
    try:
        async with db.transaction() as session:
            await queue.claim(session, model, owner="bench", lease=timedelta(seconds=60), limit=20)
            await session.flush()
            raise _Rollback
    except _Rollback:
        pass
    return time.perf_counter() - began


def _due_lane(model: QueueModel, participant: int) -> str:
    t = SeededThread(participant)
    return f"archive:{participant + 1}" if model is OutboxItem else f"respondent:{t.conversation_uid}"


async def _add_due(db: Database, model: QueueModel, participants: int) -> None:
    lanes = [s.index for s in seed.sample(participants, DUE // 2, seed=11)]
    async with db.transaction() as session:
        for n in range(DUE):
            await queue.enqueue(
                session,
                model,
                key=f"bench:due:{n}",
                kind="rally.archive" if model is OutboxItem else "respondent.message_created",
                lane=_due_lane(model, lanes[n % len(lanes)]),
                payload={"body": "due"},
            )


async def _remove_due(db: Database, model: QueueModel) -> None:
    async with db.transaction() as session:
        await session.execute(delete(model).where(model.key.startswith("bench:due:")))


async def measure_claims(db: Database, participants: int, samples: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for name, model in (("outbox", OutboxItem), ("inbox", InboxEvent)):
        for due in (0, DUE):
            if due:
                await _add_due(db, model, participants)
            try:
                for _ in range(min(50, samples)):  # warm-up
                    await _claim_once(db, model)
                times = sorted([await _claim_once(db, model) for _ in range(samples)])
            finally:
                if due:
                    await _remove_due(db, model)
            label = f"{name} claim, {'idle' if not due else f'{due} due'}"
            figures[label] = {"p50": common.percentile(times, 50) * 1000, "p99": common.percentile(times, 99) * 1000}
    return figures


async def sizes(db: Database) -> tuple[float, float]:
    """(queues MB, file MB): PostgreSQL's total relation sizes; SQLite's used pages and its file."""
    async with db.engine.connect() as conn:
        if not db.sqlite:
            total = (
                await conn.execute(text("SELECT pg_total_relation_size('inbox') + pg_total_relation_size('outbox')"))
            ).scalar_one()
            return int(total) / 2**20, float("nan")
        pages = (await conn.execute(text("PRAGMA page_count"))).scalar_one()
        free = (await conn.execute(text("PRAGMA freelist_count"))).scalar_one()
        size = (await conn.execute(text("PRAGMA page_size"))).scalar_one()
        return (pages - free) * size / 2**20, pages * size / 2**20


async def checkpoint(db: Database, day: int, participants: int, samples: int) -> Checkpoint:
    rows: dict[str, int] = {}
    finished = 0
    async with db.engine.connect() as conn:
        for model in (InboxEvent, OutboxItem):
            name = model.__tablename__
            rows[name] = int((await conn.execute(select(func.count()).select_from(model))).scalar_one())
            query = select(func.count()).select_from(model).where(model.finished_at.is_not(None))
            finished += int((await conn.execute(query)).scalar_one())
    size_mb, file_mb = await sizes(db)
    claims = await measure_claims(db, participants, samples)
    return Checkpoint(day, rows, finished, size_mb, file_mb, claims)


# --- the run ---------------------------------------------------------------------------------------------


async def run_variant(
    backend: str, prune: bool, participants: int, days: int, retention_days: int, marks: Sequence[int], samples: int
) -> Variant:
    variant = Variant()
    workdir = Path(tempfile.mkdtemp(prefix=f"rb-bench-retention-{backend}-"))
    began = time.perf_counter()
    async with common.fresh_database(backend, workdir) as url:
        db = Database(url)
        start = utcnow() - timedelta(days=days)  # the simulation ends now
        try:
            for hour in range(days * 24):
                await add_hour(db, participants, hour, start)
                if prune:
                    await prune_hour(db, variant, start + (hour + 1) * SLICE, retention_days)
                await autovacuum(db, variant.maintenance)
                if (hour + 1) % 24 == 0 and (hour + 1) // 24 in marks:
                    day = (hour + 1) // 24
                    variant.checkpoints.append(await checkpoint(db, day, participants, samples))
                    c = variant.checkpoints[-1]
                    print(
                        f"{backend} {'pruned' if prune else 'kept'} day {day}: {c.rows} rows, {c.size_mb:.0f} MB, "
                        + ", ".join(f"{k} {v['p50']:.2f}/{v['p99']:.2f}" for k, v in c.claims.items()),
                        flush=True,
                    )
            if prune:  # the other ticks of an hour: nothing old left to delete
                now = start + days * 24 * SLICE
                for _ in range(samples):
                    t0 = time.perf_counter()
                    await retention.prune(db, older_than=timedelta(days=retention_days), keep_failed={RELAY}, now=now)
                    variant.empty_tick_seconds.append(time.perf_counter() - t0)
        finally:
            await db.dispose()
    shutil.rmtree(workdir, ignore_errors=True)  # the SQLite file of the kept run is gigabytes at 100,000
    variant.seconds = time.perf_counter() - began
    return variant


def _ms(values: Sequence[float], q: float) -> float:
    return common.percentile(sorted(values), q) * 1000 if values else float("nan")


def report(results: dict[str, dict[str, Variant]], args: argparse.Namespace, minutes: float) -> str:
    parts = [
        "## 4b. Retention: a month and more at scale\n",
        f"{args.participants:,} participants, 10 messages each a month (3 queue rows a message: "
        f"{args.participants:,} queue rows a day), {args.days} simulated days, "
        f"`RALLYBRIDGE_RETENTION_DAYS={args.retention_days}`; *pruned* ran the retention ticks in simulated time, "
        "*kept* never deleted anything. Claims p50 / p99 in ms, each in its own transaction (rolled back), "
        f"{args.samples} per figure; *200 due*: 200 rows due in 100 lanes with a history.\n",
    ]
    claim_names = list(next(iter(next(iter(results.values())).values())).checkpoints[0].claims)
    headers = ["database", "retention", "day", "inbox rows", "outbox rows", "finished rows", "queues MB", *claim_names]
    rows = []
    for backend, variants in results.items():
        for label, variant in variants.items():
            for c in variant.checkpoints:
                size = f"{c.size_mb:,.0f}" + (f" (file {c.file_mb:,.0f})" if c.file_mb == c.file_mb else "")
                rows.append(
                    [
                        backend,
                        label,
                        str(c.day),
                        f"{c.rows['inbox']:,}",
                        f"{c.rows['outbox']:,}",
                        f"{c.finished:,}",
                        size,
                        *(f"{c.claims[n]['p50']:.2f} / {c.claims[n]['p99']:.2f}" for n in claim_names),
                    ]
                )
    parts.append(common.markdown_table(headers, rows))
    tick_rows = []
    for backend, variants in results.items():
        pruned = variants["pruned"]
        tick_rows.append(
            [
                backend,
                f"{len(pruned.tick_seconds):,}",
                f"{max(pruned.tick_rows, default=0):,}",
                f"{_ms(pruned.tick_seconds, 50):.1f} / {_ms(pruned.tick_seconds, 99):.1f} / "
                f"{max(pruned.tick_seconds, default=float('nan')) * 1000:.1f}",
                f"{_ms(pruned.batch_seconds, 50):.1f} / {_ms(pruned.batch_seconds, 99):.1f} / "
                f"{max(pruned.batch_seconds, default=float('nan')) * 1000:.1f}",
                f"{_ms(pruned.empty_tick_seconds, 50):.2f} / {_ms(pruned.empty_tick_seconds, 99):.2f}",
                f"{pruned.seconds / 60:.1f} / {variants['kept'].seconds / 60:.1f}",
            ]
        )
    parts.append(
        "\nThe retention ticks (pruned runs): a tick deletes at most "
        f"{retention.MAX_BATCHES} batches of {retention.BATCH} rows per queue, each batch its own transaction.\n\n"
        + common.markdown_table(
            [
                "database",
                "ticks that deleted",
                "most rows in one tick",
                "tick ms p50 / p99 / max",
                "batch (transaction) ms p50 / p99 / max",
                "empty tick ms p50 / p99",
                "run min pruned / kept",
            ],
            tick_rows,
        )
    )
    for backend, variants in results.items():
        if backend == "postgres":
            done = ", ".join(
                f"{label}: " + (", ".join(f"{k} {v}" for k, v in sorted(variant.maintenance.items())) or "none")
                for label, variant in variants.items()
            )
            parts.append(f"\nAutovacuum's work, emulated in simulated time (postgres, per queue table): {done}.")
    parts.append(f"\nWhole run {minutes:.1f} min.\n")
    parts.append(NOTES)
    return "\n".join(parts)


NOTES = """Notes:

- Only the queues are filled (the claims and the retention read nothing else); the rows have the keys, lanes and
  payload shapes the pipeline writes (`bench/seed.py`), with a 180-character message text in each payload.
- Time is simulated: rows are written with the `finished_at` of their simulated hour, and the retention runs with
  `now` at the end of each hour. A month passes in minutes while PostgreSQL's autovacuum runs on the wall clock, so
  after every simulated hour the benchmark does what autovacuum would have done by then, with its default
  thresholds (`VACUUM` past 20% dead or inserted rows, `ANALYZE` past 10% changed rows; counts above). Without
  that, the queues were planned with statistics taken when they were a fraction of their size, and in a run at
  10,000 participants the claims grew from 0.6 to 6-11 ms p50 by day 35, with or without pruning: an artifact of
  the compressed time, not what a month of real time does. PostgreSQL's queues grow past the retention's row count
  until a vacuum makes the deleted rows' space reusable (at 20% dead rows), then stay there. SQLite reuses the
  pages freed by the deletes at once; its file does not shrink (`VACUUM` would).
- The retention's `DELETE` is planned for each cutoff on PostgreSQL (`SET LOCAL plan_cache_mode =
  force_custom_plan`, `storage/retention.py`): the generic plan a pooled connection cached while the queue was
  small (a scan of the whole table and a sort) made a batch take 40-130 ms on 300,000 rows instead of 2-7 ms.
- *kept* grows without bound (the rows and the message text in them); the claims stay flat in both, because they
  read the partial index of unfinished rows (migration 0005) and each lane's few unfinished rows. What retention
  keeps flat is the table, the disk and what a backup holds, and the failed relays kept for Retry are a small share.
  The p99 outliers (up to tens of ms) come and go between checkpoints in both variants: other work on the shared
  machine (load average 3-5 on 2 cores during the run), not the tables' size.
- A tick here deletes a simulated hour's rows at once (the most rows in one tick); the bridge ticks every minute,
  so a real tick deletes a sixtieth of that, in one or two batches per queue. The batch is what holds SQLite's
  writer: acknowledgements wait for one batch at most, never for a whole tick.
"""


def default_marks(days: int, retention_days: int) -> list[int]:
    marks = {1, days, retention_days, retention_days + 1, *range(10, days + 1, 10)}
    return sorted(m for m in marks if 1 <= m <= days)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_arguments(parser, runs=1, quick_runs=1)
    parser.add_argument("--participants", type=int, default=None, help="default 100000 (10000 with --quick)")
    parser.add_argument("--days", type=int, default=None, help="simulated days (default 45; 35 with --quick)")
    parser.add_argument("--retention-days", type=int, default=30, help="RALLYBRIDGE_RETENTION_DAYS (default 30)")
    parser.add_argument("--checkpoints", default=None, help="days to measure at, comma-separated (default: a few)")
    parser.add_argument("--samples", type=int, default=None, help="claims per figure (default 500; 200 with --quick)")
    args = common.parse_args(parser)
    args.participants = args.participants or (10_000 if args.quick else 100_000)
    args.days = args.days or (35 if args.quick else 45)
    args.samples = args.samples or (200 if args.quick else 500)
    marks = (
        sorted(int(d) for d in args.checkpoints.split(","))
        if args.checkpoints
        else default_marks(args.days, args.retention_days)
    )
    began = time.monotonic()
    results: dict[str, dict[str, Variant]] = {}
    for backend in args.databases:
        results[backend] = {}
        for label, prune in (("pruned", True), ("kept", False)):
            results[backend][label] = asyncio.run(
                run_variant(backend, prune, args.participants, args.days, args.retention_days, marks, args.samples)
            )
    section = report(results, args, (time.monotonic() - began) / 60)
    print(section)
    if not args.no_write:
        common.write_section("retention", section, doc=args.doc)


if __name__ == "__main__":
    main()
