"""Benchmark 4: scale. Hot-path lookups, memory and start-up of ``rallybridge serve`` on a large database.

    .venv/bin/python -m bench.scale [--quick] [--sizes 1000,10000,100000] [--databases sqlite,postgres]

One database per backend grows through the sizes (``bench/seed.py``: per participant a thread and 10 archived
messages, with their done inbox and outbox rows; 100,000 participants are 1,000,000 messages and 3,000,000
queue rows). At each size:

- **lookups**: the functions the pipeline calls on its hot path (``storage/repo.py``, ``storage/queue.py``), each
  in its own transaction as the pipeline runs them, on random seeded keys after a warm-up; p50 and p99 in
  milliseconds. The claims run with none due (the idle poll), 200 due outbox rows in 100 lanes, and 2,000 in
  1,000 lanes (a backlog after an outage); their transactions are rolled back, so every claim sees the same rows.
  Each rolled-back claim leaves a dead version of the rows it leased, and the due rows are deleted after their
  figure: on PostgreSQL the outbox is vacuumed then (what autovacuum does in production), so that no figure
  reads the dead rows of the figures and runs before it (docs/performance.md, "the claim at 1,000 participants").
  ``--explain`` prints, for each claim with rows due, ``EXPLAIN (ANALYZE, BUFFERS)`` of the claim as the measured
  session plans it (its prepared statement: PostgreSQL's cached plan) before and after its measured claims, with
  the outbox's live and dead row counts.
- **plans**: every SQL statement those functions issue, through ``EXPLAIN`` (PostgreSQL) / ``EXPLAIN QUERY PLAN``
  (SQLite): the indexes it uses, and any full scan of a table.
- **serve**: start-up (process start to ``/healthz`` 200), resident memory once healthy, and resident memory
  after traffic (participants writing on Respondent, researchers replying in Slack, on seeded threads, through
  the stand-ins over real HTTP: every message relayed or mirrored and archived).

Figures are medians of ``--runs`` runs. A report, never an assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import delete, event, func, select

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common, seed  # noqa: E402
from bench.seed import SeededThread  # noqa: E402
from playground.world import World  # noqa: E402
from storage import queue, reminders, repo  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import ChatMessage, InboxEvent, OutboxItem  # noqa: E402

BACKLOG = 2000  # due outbox rows (in half as many lanes) for the "under load" and "backlog" claims
TARGETS = "p99 <= 5 ms, memory < 250 MB, start-up < 2 s"


class _Rollback(Exception):
    """Leave a measured transaction without committing (claims lease rows)."""


Lookup = Callable[[Any, SeededThread], Awaitable[Any]]


async def _claim(session: Any, model: Any) -> None:
    await queue.claim(session, model, owner="bench", lease=timedelta(seconds=60), limit=20)
    await session.flush()  # the lease UPDATEs, as the worker's commit would send them
    raise _Rollback


@dataclass(frozen=True)
class HotLookup:
    name: str
    where: str  # who calls it on the hot path
    run: Lookup
    due_rows: int = 0  # measured with this many due outbox rows present (two per lane)


LOOKUPS: list[HotLookup] = [
    HotLookup(
        "thread by Slack root",
        "a reply in a thread (intake)",
        lambda s, t: repo.thread_by_ts(s, "slack", t.channel, t.thread_ts),
    ),
    HotLookup(
        "thread by participant",
        "Rally webhook, reconcile",
        lambda s, t: repo.thread_for_participant(s, t.study_id, t.participant_id),
    ),
    HotLookup(
        "threads by Respondent user",
        "a participant's message (ingest)",
        lambda s, t: repo.threads_for_respondent_user(s, t.project_id, t.respondent_user_id),
    ),
    HotLookup(
        "message ids known (20)",
        "a participant's message (ingest), relay verification",
        lambda s, t: repo.known_respondent_uids(
            s, [t.respondent_uid(n) for n in range(seed.MESSAGES)] + [f"x{uuid.uuid4().hex}" for _ in range(10)]
        ),
    ),
    HotLookup(
        "message by Slack ts",
        "an edit or delete in Slack",
        lambda s, t: repo.message_by_platform_ts(s, "slack", t.channel, t.message_ts(1)),
    ),
    HotLookup("link of study", "every intake handler", lambda s, t: repo.link_for_study(s, t.study_id)),
    HotLookup("thread by id", "every thread effect", lambda s, t: repo.thread_by_id(s, t.index + 1)),
    HotLookup(
        "lane waiting (relay)",
        "a researcher's reply (pending mark)",
        lambda s, t: queue.waiting_in_lane(s, OutboxItem, f"relay:{t.index + 1}"),
    ),
    HotLookup(
        "effect key exists",
        "a relay settling (pending mark)",
        lambda s, t: queue.exists_key(s, OutboxItem, f"archive:respondent:{t.respondent_uid(2)}"),
    ),
    HotLookup(
        "threads of study",
        "every reconcile (Rally side)",
        lambda s, t: repo.threads_of_study(s, t.study_id),
    ),
    HotLookup(
        "users with threads in project",
        "every reconcile (Respondent side)",
        lambda s, t: repo.respondent_users_with_threads(s, t.project_id),
    ),
    HotLookup(
        "last message each way",
        "/rally status",
        lambda s, t: reminders.last_message(s, t.index + 1, "FROM_PARTICIPANT"),
    ),
    HotLookup("outbox claim, idle", "the outbox worker's poll", lambda s, t: _claim(s, OutboxItem)),
    HotLookup("outbox claim, 200 due", "the outbox worker under load", lambda s, t: _claim(s, OutboxItem), 200),
    HotLookup(
        f"outbox claim, {BACKLOG:,} due",
        "the outbox worker after an outage",
        lambda s, t: _claim(s, OutboxItem),
        BACKLOG,
    ),
    HotLookup("inbox claim, idle", "the inbox worker's poll", lambda s, t: _claim(s, InboxEvent)),
]


# --- lookups ---------------------------------------------------------------------------------------------


async def run_once(db: Database, lookup: HotLookup, thread: SeededThread) -> float:
    start = time.perf_counter()
    try:
        async with db.transaction() as session:
            await lookup.run(session, thread)
    except _Rollback:
        pass
    return time.perf_counter() - start


async def add_due_rows(db: Database, rows: int) -> None:
    async with db.transaction() as session:
        for n in range(rows):
            await queue.enqueue(
                session,
                OutboxItem,
                key=f"bench:due:{n}",
                kind="chat.notice",
                lane=f"bench:lane:{n % (rows // 2)}",
                payload={"platform": "slack", "channel": "C0BENCH", "text": "due"},
            )


async def remove_due_rows(db: Database) -> None:
    """Delete the due rows, and on PostgreSQL vacuum the outbox: the next figure (or run) queues its due rows in the
    same lanes, and without a vacuum its claims would read every version the rolled-back claims left there."""
    async with db.transaction() as session:
        await session.execute(delete(OutboxItem).where(OutboxItem.key.startswith("bench:due:")))
    if not db.sqlite:
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM outbox")


async def measure_lookups(
    db: Database, participants: int, samples: int, *, explain: bool = False
) -> dict[str, dict[str, float]]:
    """p50 / p99 (ms) of every hot lookup on ``samples`` random seeded participants, after a warm-up."""
    threads = seed.sample(participants, samples, seed=participants)
    warm = seed.sample(participants, min(200, samples), seed=participants + 1)
    figures: dict[str, dict[str, float]] = {}
    for lookup in LOOKUPS:
        if lookup.due_rows:
            await add_due_rows(db, lookup.due_rows)
        show = explain and lookup.due_rows and not db.sqlite
        try:
            if show:
                print(await explain_claim(db, f"{lookup.name}, {participants:,} participants, before its claims"))
            for t in warm:
                await run_once(db, lookup, t)
            times = sorted([await run_once(db, lookup, t) for t in threads])
            if show:
                print(
                    await explain_claim(
                        db, f"{lookup.name}, {participants:,} participants, after {len(times) + len(warm)} claims"
                    )
                )
        finally:
            if lookup.due_rows:
                await remove_due_rows(db)
        figures[lookup.name] = {
            "p50": common.percentile(times, 50) * 1000,
            "p99": common.percentile(times, 99) * 1000,
        }
    return figures


# --- plans -----------------------------------------------------------------------------------------------


async def capture(db: Database, lookup: HotLookup, thread: SeededThread) -> list[tuple[str, Any]]:
    """The SELECT statements (with their parameters) that one run of ``lookup`` sends to the database."""
    seen: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", listen)
    try:
        await run_once(db, lookup, thread)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", listen)
    return seen


async def explain(db: Database, statement: str, parameters: Any) -> list[str]:
    prefix = "EXPLAIN QUERY PLAN " if db.sqlite else "EXPLAIN "
    async with db.engine.connect() as conn:
        rows = await conn.exec_driver_sql(prefix + statement, parameters)
        return [str(row[-1]) for row in rows]


async def explain_claim(db: Database, title: str) -> str:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of one outbox claim (rolled back) as the measured claims run it, and the
    outbox's row counts (PostgreSQL only).

    The measured claims run through a prepared statement on a pooled connection (asyncpg's cache), and after five
    runs PostgreSQL may keep a generic plan for it: a new ``EXPLAIN`` of the same SQL would be planned afresh and
    can show another plan. So the claim is explained as ``EXECUTE`` of that prepared statement when the pooled
    connection has it (``pg_prepared_statements``), with the parameters the claim binds.
    """
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        stats = await raw.fetchrow("SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'outbox'")
        prepared = await raw.fetchrow(
            "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE 'UPDATE outbox SET status=%' AND statement LIKE '%LIMIT 20 FOR UPDATE%'"
        )
        now = queue.utcnow()
        lease = (now + timedelta(seconds=60)).isoformat()
        if prepared is not None:
            how = (
                f"prepared statement {prepared['name']}: {prepared['generic_plans']} generic and "
                f"{prepared['custom_plans']} custom plans so far"
            )
            # The claim's parameters in its SQL's order: status, attempts + 1, lease_until, owner, claim_now.
            values = f"'working', 1, '{lease}'::timestamptz, 'bench', '{now.isoformat()}'::timestamptz"
            sql = f"EXECUTE {prepared['name']}({values})"
            args: tuple[Any, ...] = ()
        else:
            how = "no prepared statement on this connection: planned afresh"
            statement = queue._claim_statement(OutboxItem, 20, "postgresql")
            sql = str(statement.compile(dialect=conn.dialect))
            args = ("working", 1, now + timedelta(seconds=60), "bench", now)
        transaction = raw.transaction()
        await transaction.start()
        try:
            plan = [row[0] for row in await raw.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)]
        finally:
            await transaction.rollback()
    counts = f"outbox rows: {stats['n_live_tup']:,} live, {stats['n_dead_tup']:,} dead" if stats else ""
    return "\n".join([f"--- {title} ({how}; {counts})", *plan])


def verdict(plan: list[str], sqlite: bool) -> tuple[list[str], list[str]]:
    """(indexes used, tables read in full) from a plan."""
    indexes: list[str] = []
    scans: list[str] = []
    for line in plan:
        words = line.replace("(", " ").replace(")", " ").split()
        if sqlite:
            if "USING" in words and ("INDEX" in words or "PRIMARY" in words):
                name = words[words.index("INDEX") + 1] if "INDEX" in words else "primary key"
                indexes.append(name)
            elif words[:1] == ["SCAN"] and "CONSTANT" not in words:
                scans.append(words[1])
        else:
            if "Index" in line and " using " in line:
                indexes.append(line.split(" using ", 1)[1].split()[0])
            elif "Bitmap Index Scan on" in line:
                indexes.append(line.split("Bitmap Index Scan on", 1)[1].split()[0])
            elif "Seq Scan on" in line:
                scans.append(line.split("Seq Scan on", 1)[1].split()[0])
    return sorted(set(indexes)), sorted(set(scans))


async def check_plans(db: Database, participants: int) -> list[tuple[str, str, str]]:
    """For every hot lookup: the indexes its statements use and any full table scan."""
    thread = seed.sample(participants, 1, seed=3)[0]
    rows = []
    for lookup in LOOKUPS:
        if lookup.due_rows:
            continue  # the same statements as the idle claim
        indexes: set[str] = set()
        scans: set[str] = set()
        for statement, parameters in await capture(db, lookup, thread):
            used, full = verdict(await explain(db, statement, parameters), db.sqlite)
            indexes.update(used)
            scans.update(full)
        rows.append((lookup.name, ", ".join(sorted(indexes)) or "-", ", ".join(sorted(scans)) or "none"))
    return rows


# --- serve -----------------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve_env() -> dict[str, str]:
    # No periodic reconcile during the measurement: the stand-ins know only the studies the traffic touches.
    return {"RALLYBRIDGE_LOG_LEVEL": "WARNING", "RALLYBRIDGE_RECONCILE_SECONDS": "10000000"}


async def startup_seconds(world: World, workdir: Path) -> float:
    """Process start to the first ``/healthz`` 200 (polled every 10 ms), then stop the process."""
    env = {**os.environ, **world.env(), **serve_env()}
    log = (workdir / "startup.log").open("w")
    start = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        str(common.RALLYBRIDGE), "serve", env=env, stdout=log, stderr=log, cwd=str(workdir)
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                if process.returncode is not None:
                    raise common.BenchError(f"serve exited with {process.returncode}; see {workdir / 'startup.log'}")
                try:
                    async with http.get(f"{world.bridge_url}/healthz") as response:
                        if response.status == 200:
                            return time.perf_counter() - start
                except aiohttp.ClientError:
                    pass
                if time.perf_counter() - start > 60:
                    raise common.BenchError("serve did not become healthy within 60 s")
                await asyncio.sleep(0.01)
    finally:
        process.terminate()
        await process.wait()
        log.close()


def prepare_traffic(world: World, threads: Sequence[SeededThread]) -> None:
    """Make the seeded threads' studies, people and conversations known to the stand-ins."""
    c = world.cast
    for t in threads:
        if t.channel not in world.slack.channels:
            world.slack.add_channel(t.channel, f"study-{t.study}")
        if t.study_id not in world.rally.studies:
            world.rally.add_study(t.study_id, f"Scale study {t.study}", respondent_project_id=t.project_id)
            world.rally.add_team_member(t.study_id, "usr_ana", c.owner.email, c.owner.name, role="OWNER")
        world.rally.add_participant(
            t.study_id,
            t.participant_id,
            f"P{t.index}",
            "Lee",
            email=t.email,
            respondent_user_id=t.respondent_user_id,
            approval_status="APPROVED",
        )
        if t.conversation_uid not in world.respondent.conversations:
            world.respondent.add_conversation(t.project_id, t.respondent_user_id, uid=t.conversation_uid)


async def traffic(world: World, db: Database, threads: Sequence[SeededThread]) -> float:
    """Each thread: the participant writes (Respondent webhook), a researcher replies (Slack event). Waits until
    every message is mirrored or relayed, and archived; returns the seconds that took."""
    c = world.cast
    archived_before = sum(len(world.rally.archived(t)) for t in {t.study_id for t in threads})
    start = time.perf_counter()
    for t in threads:
        await world.respondent.participant_writes(t.project_id, t.respondent_user_id, f"scale {t.index}")
        await world.slack.user_posts(t.channel, c.owner.slack_id, f"thanks {t.index}", thread_ts=t.thread_ts)
    expected = archived_before + 2 * len(threads)
    deadline = time.perf_counter() + 300
    while sum(len(world.rally.archived(s)) for s in {t.study_id for t in threads}) < expected:
        if time.perf_counter() > deadline:
            raise common.BenchError("traffic was not archived within 300 s")
        await asyncio.sleep(0.1)
    sent = sum(len(world.respondent.messages_to(t.respondent_user_id)) for t in threads)
    if sent < len(threads):
        raise common.BenchError(f"{sent} of {len(threads)} replies reached Respondent")
    return time.perf_counter() - start


async def measure_serve(world: World, db: Database, workdir: Path, participants: int, runs: int, n: int) -> dict:
    starts = [await startup_seconds(world, workdir) for _ in range(runs)]
    threads = seed.sample(participants, n, seed=participants + 2)
    prepare_traffic(world, threads)
    async with common.start_serve(world, serve_env(), log_path=workdir / "serve.log") as serve:
        await asyncio.sleep(1.0)
        healthy = rss_mb(serve.pid)
        took = await traffic(world, db, threads)
        await asyncio.sleep(1.0)
        after = rss_mb(serve.pid)
    return {"startup_s": statistics.median(starts), "rss_healthy": healthy, "rss_traffic": after, "traffic_s": took}


# --- the run ---------------------------------------------------------------------------------------------


async def run_backend(
    backend: str, sizes: list[int], runs: int, samples: int, traffic_threads: int, *, explain: bool = False
) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"rb-bench-scale-{backend}-"))
    results: dict[int, dict[str, Any]] = {}
    async with common.fresh_database(backend, workdir) as url:
        world = await World.create(url, slack_options={"rate_limit": False})
        try:
            for size in sizes:
                grown = await seed.grow(url, size)
                print(f"{backend}: {size} participants seeded ({grown['seconds']:.0f} s)", flush=True)
                db = Database(url)
                try:
                    counts = await row_counts(db)
                    runs_figures = [await measure_lookups(db, size, samples, explain=explain) for _ in range(runs)]
                    lookups = {
                        name: {q: statistics.median(r[name][q] for r in runs_figures) for q in ("p50", "p99")}
                        for name in runs_figures[0]
                    }
                    plans = await check_plans(db, size)
                    serve = await measure_serve(world, db, workdir, size, runs, traffic_threads)
                finally:
                    await db.dispose()
                results[size] = {"lookups": lookups, "plans": plans, "serve": serve, "rows": counts}
                print(f"{backend}: {size} measured", flush=True)
        finally:
            await world.stop()
    return results


async def row_counts(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        return {
            model.__tablename__: int((await conn.execute(select(func.count()).select_from(model))).scalar_one())
            for model in (ChatMessage, InboxEvent, OutboxItem)
        }


def report(results: dict[str, dict[int, dict[str, Any]]], minutes: float, runs: int) -> str:
    parts = ["## 4. Scale\n"]
    sizes = sorted({size for per in results.values() for size in per})
    lookup_names = [lookup.name for lookup in LOOKUPS]
    headers = ["lookup (p50 / p99 ms)", *(f"{b} {s:,}" for b in results for s in sizes if s in results[b])]
    rows = []
    for name in lookup_names:
        row: list[str] = [name]
        for per in results.values():
            for size in sizes:
                if size in per:
                    f = per[size]["lookups"][name]
                    row.append(f"{f['p50']:.2f} / {f['p99']:.2f}")
        rows.append(row)
    parts.append(common.markdown_table(headers, rows))
    serve_rows = []
    for backend, per in results.items():
        for size in sizes:
            if size not in per:
                continue
            s, counts = per[size]["serve"], per[size]["rows"]
            serve_rows.append(
                (
                    backend,
                    f"{size:,}",
                    f"{counts['chat_messages']:,}",
                    f"{counts['inbox'] + counts['outbox']:,}",
                    f"{s['startup_s']:.2f}",
                    f"{s['rss_healthy']:.0f}",
                    f"{s['rss_traffic']:.0f}",
                )
            )
    parts.append(
        "\n"
        + common.markdown_table(
            [
                "database",
                "participants",
                "messages",
                "queue rows",
                "start-up s",
                "RSS healthy MB",
                "RSS after traffic MB",
            ],
            serve_rows,
        )
    )
    plan_rows = []
    for backend, per in results.items():
        largest = max(per)
        for name, indexes, scans in per[largest]["plans"]:
            plan_rows.append((backend, name, indexes, scans))
    parts.append(
        "\nPlans at the largest size (`EXPLAIN` on PostgreSQL, `EXPLAIN QUERY PLAN` on SQLite):\n\n"
        + common.markdown_table(["database", "lookup", "indexes used", "tables read in full"], plan_rows)
    )
    parts.append(
        f"\nTargets: {TARGETS}, flat from 1,000 to 100,000 participants. Each lookup runs in its own transaction, as "
        f"the pipeline runs it; medians of {runs} runs. Whole run {minutes:.0f} min.\n"
    )
    parts.append(NOTES)
    return "\n".join(parts)


NOTES = """Notes:

- Seeding (`bench/seed.py`): per participant a thread and 10 messages (5 each way) with one done inbox row and two
  done outbox rows per message, 200 participants per linked study; COPY on PostgreSQL (then `ANALYZE`, as
  autovacuum would), executemany on SQLite, never the ORM row by row.
- Every lookup reads through an index at every size (the plans above); what moves a p99 between sizes is the
  shared machine, not the data. A p99 includes the transaction around the lookup (`BEGIN IMMEDIATE` and the
  process's single-writer lock on SQLite; a connection check-out on PostgreSQL).
- The claims: migration 0005 indexes the queues' unfinished rows in id order, and the claim is one
  `UPDATE ... WHERE id IN (due lane heads ... FOR UPDATE SKIP LOCKED) RETURNING` (`storage/queue.py`). Its statuses
  and limit are written into the SQL, so the generic plan PostgreSQL caches for a prepared statement can still use
  that partial index; the probe for an earlier unfinished row of the same lane goes through the lane index however
  stale the statistics (taken while nothing was pending, they made PostgreSQL scan every unfinished row for each
  candidate: 2,000 due, 6.7 ms a claim, now about 1.5 ms outside this benchmark), from `(lane, 'pending')` on, so a
  lane's finished rows are never read. Here every claim is rolled back and leaves a dead version of the 20 rows it
  leased, and each figure's due rows are deleted before the next figure queues new ones in the same lanes: the
  outbox is vacuumed in between on PostgreSQL, as autovacuum does in production (without it, the 1,000-participant
  claims grew from figure to figure: docs/performance.md, "The claim at 1,000 participants").
- Start-up is the Python imports (`python -X importtime -c 'import bot.app'`), not the database: SQLAlchemy,
  aiohttp, Slack's SDKs, pydantic and alembic. The Bot Framework SDK is imported only when Teams is configured, and
  Rally's webhooks are verified with `standardwebhooks` (what `svix.webhooks` wraps) without loading svix's API
  client (1.23 -> 0.83 s, median of 5). Resident memory is the same libraries; neither grows with the data.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_arguments(parser, runs=3, quick_runs=1)
    parser.add_argument("--sizes", default=None, help="participants, comma-separated (default 1000,10000,100000)")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of the outbox claim before and after each claim figure (PostgreSQL)",
    )
    args = common.parse_args(parser)
    sizes = sorted(int(s) for s in (args.sizes or ("1000,10000" if args.quick else "1000,10000,100000")).split(","))
    samples = 300 if args.quick else 1000
    traffic_threads = 20 if args.quick else 100
    began = time.monotonic()
    results = {
        backend: asyncio.run(run_backend(backend, sizes, args.runs, samples, traffic_threads, explain=args.explain))
        for backend in args.databases
    }
    section = report(results, (time.monotonic() - began) / 60, args.runs)
    print(section)
    if not args.no_write:
        common.write_section("scale", section, doc=args.doc)


if __name__ == "__main__":
    main()
