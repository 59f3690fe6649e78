"""Benchmark 5: what reconciliation costs in API calls, against a real ``rallybridge serve``.

    .venv/bin/python -m bench.reconcile [--quick] [--sizes 100,250,500] [--interval 30] [--databases sqlite]

For each number of linked studies, on each database: Rally and Respondent stand-ins hold that many studies (each
with participants, some approved, and conversations in which the approved ones already wrote); a researcher
links every study with ``/rally link`` through the Slack stand-in; then ``serve`` runs its reconcile on a short
interval (``RALLYBRIDGE_RECONCILE_SECONDS``) and the stand-ins count every request by endpoint. Reported:

- the calls of linking (per study), including the catch-up reads that follow new threads;
- calls per reconcile cycle: the first full cycle after linking, an idle cycle (nothing changed), and a cycle
  in which ``k`` webhooks were lost (``k`` participants wrote and ``k`` were approved while the bridge heard
  nothing); whether those were caught, and how long after the change;
- the peak request rate per API (the most requests in any one second) during a cycle and during linking.

A cycle is, for every study, the span from one of its periodic reconciles to the next (the stand-ins log every
request with its time and study); calls are counts, the same every run; rates and delays are the medians of
``--runs`` runs. ``--section``/``--title`` write the figures elsewhere on the page (e.g. measured on older code).
A report, never an assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from playground.world import World  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import ChatMessage, InboxEvent, OutboxItem, ParticipantThread  # noqa: E402

PARTICIPANTS = 4  # per study; the first APPROVED of them are approved before linking
APPROVED = 2
MESSAGES = 2  # each approved participant wrote this many messages before the study was linked
RALLY, RESPONDENT = "Rally", "Respondent"
ARCHIVE = "POST /studies/{sid}/participants/{pid}/chat-messages"


@dataclass
class Seeded:
    """The studies put into the stand-ins: study id -> (project id, [(participant id, Respondent user id)])."""

    studies: dict[str, tuple[str, list[tuple[str, str]]]] = field(default_factory=dict)


def seed(world: World, n: int) -> Seeded:
    """``n`` Respondent-recruited studies, the cast's owner on each team, participants and their early messages."""
    c = world.cast
    seeded = Seeded()
    webhook_url = world.respondent.webhook_url
    world.respondent.webhook_url = None  # written before the link: nobody is listening yet
    try:
        for i in range(n):
            study_id, project_id = f"st_b{i:04d}", f"{i + 1:024x}"
            world.rally.add_study(study_id, f"Bench study {i}", respondent_project_id=project_id)
            world.rally.add_team_member(study_id, "usr_ana", c.owner.email, c.owner.name, role="OWNER")
            people: list[tuple[str, str]] = []
            for j in range(PARTICIPANTS):
                participant_id, user_id = f"pa_{i}_{j}", f"{i + 1:012x}{j + 1:012x}"
                first = f"P{i}n{j}"
                world.rally.add_participant(
                    study_id,
                    participant_id,
                    first,
                    "Lee",
                    email=f"p{i}n{j}@example.net",
                    respondent_user_id=user_id,
                    approval_status="APPROVED" if j < APPROVED else "PENDING",
                )
                people.append((participant_id, user_id))
                if j < APPROVED:
                    for m in range(MESSAGES):
                        _write(world, project_id, user_id, f"early {i}/{j}/{m}", first)
            seeded.studies[study_id] = (project_id, people)
    finally:
        world.respondent.webhook_url = webhook_url
    return seeded


def _write(world: World, project_id: str, user_id: str, body: str, first_name: str) -> str:
    """The participant writes ``body`` in their conversation (no webhook: the caller has switched them off)."""
    respondent = world.respondent
    respondent.users.setdefault(user_id, {"firstName": first_name, "lastName": "Lee"})
    conv = respondent.conversation_with(project_id, user_id)
    if conv is None:
        conv = respondent._new_conversation(project_id, [user_id], None)
    return str(respondent._append(conv, respondent._person(user_id), body)["uid"])


ARCHIVE = "POST /studies/{sid}/participants/{pid}/chat-messages"  # an effect (R4), not a read: counted apart


def reads(world: World, seeded: Seeded) -> list[tuple[float, str, str]]:
    """Every read so far, both APIs, as (time, "Rally"/"Respondent", study id). Rally archive calls are left out:
    they are the effect of mirrored messages, not the cost of looking."""
    project_study = {project: study for study, (project, _) in seeded.studies.items()}
    rally = [(t, RALLY, sid) for t, endpoint, sid in world.rally.call_log if endpoint != ARCHIVE]
    respondent = [(t, RESPONDENT, project_study.get(p, "")) for t, _, p in world.respondent.call_log]
    return sorted(rally + respondent)


def peak_per_second(calls: Iterable[tuple[float, str, str]], api: str, start: float, end: float) -> int:
    """The most ``api`` requests that arrived in any one-second bucket of [start, end)."""
    buckets = collections.Counter(int(t - start) for t, which, _ in calls if which == api and start <= t < end)
    return max(buckets.values(), default=0)


async def unfinished(db: Database) -> int:
    async with db.engine.connect() as conn:
        total = 0
        for model in (InboxEvent, OutboxItem):
            query = select(func.count()).where(model.status.in_(("pending", "working")))
            total += int((await conn.execute(query)).scalar_one())
        return total


async def count_rows(db: Database, query: Any) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def wait_quiet(db: Database, *, settle: float = 1.0, within: float = 1800.0) -> None:
    """Until no inbox or outbox row is unfinished for ``settle`` seconds."""
    deadline = time.monotonic() + within
    quiet_since: float | None = None
    while True:
        if await unfinished(db) == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return
        else:
            quiet_since = None
        if time.monotonic() > deadline:
            raise common.BenchError("the bridge did not finish its work")
        await asyncio.sleep(0.2)


async def periodic_reconciles(db: Database) -> dict[str, list[float]]:
    """Study id -> the times (epoch seconds) its periodic reconciles were queued, oldest first (catch-up reads that
    follow new threads are not periodic: they count in the cycle during which they happen)."""
    query = select(InboxEvent.key, InboxEvent.created_at).where(InboxEvent.kind == "reconcile.study")
    found: dict[str, list[float]] = collections.defaultdict(list)
    async with db.engine.connect() as conn:
        for key, created in await conn.execute(query):
            _, study_id, cycle = key.split(":", 2)
            if cycle.isdigit():
                found[study_id].append(created.timestamp())
    return {study: sorted(times) for study, times in found.items()}


def cycle_cost(calls: list[tuple[float, str, str]], starts: dict[str, list[float]], after: float) -> dict[str, float]:
    """Per API, the reads of one cycle: for every study, those from its first periodic reconcile queued after
    ``after`` up to its next one. ``studies`` says how many studies had both (the cycle is complete if all)."""
    windows: dict[str, tuple[float, float]] = {}
    for study, times in starts.items():
        later = [t for t in times if t > after]
        if len(later) >= 2:
            windows[study] = (later[0], later[1])
    cost = {RALLY: 0.0, RESPONDENT: 0.0}
    for t, api, study in calls:
        window = windows.get(study)
        if window is not None and window[0] <= t < window[1]:
            cost[api] += 1
    return {"rally": cost[RALLY], "respondent": cost[RESPONDENT], "studies": len(windows)}


async def lose_webhooks(world: World, seeded: Seeded, k: int) -> tuple[list[str], list[str]]:
    """``k`` participants write and ``k`` pending participants are approved, with every webhook lost."""
    ids = list(seeded.studies)
    chosen = ids[:: max(1, len(ids) // k)][:k]
    uids, approved = [], []
    respondent_url, rally_url = world.respondent.webhook_url, world.rally.webhook_url
    world.respondent.webhook_url = world.rally.webhook_url = None
    try:
        for n, study_id in enumerate(chosen):
            project_id, people = seeded.studies[study_id]
            participant_id, user_id = people[0]
            uids.append(_write(world, project_id, user_id, f"lost webhook {n}", participant_id))
            pending_id = people[APPROVED][0]
            await world.rally.approve(study_id, pending_id)
            approved.append(pending_id)
    finally:
        world.respondent.webhook_url, world.rally.webhook_url = respondent_url, rally_url
    return uids, approved


async def caught(db: Database, uids: list[str], approved: list[str]) -> bool:
    mirrored = await count_rows(
        db,
        select(func.count())
        .select_from(ChatMessage)
        .where(ChatMessage.respondent_uid.in_(uids), ChatMessage.platform_ts.is_not(None)),
    )
    opened = await count_rows(
        db,
        select(func.count())
        .select_from(ParticipantThread)
        .where(ParticipantThread.participant_id.in_(approved), ParticipantThread.thread_ts.is_not(None)),
    )
    return mirrored == len(uids) and opened == len(approved)


async def one_run(backend: str, studies: int, interval: float, *, list_messages: bool) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix=f"rb-bench-reconcile-{backend}-"))
    quiet_env = {"RALLYBRIDGE_LOG_LEVEL": "WARNING"}
    async with common.fresh_database(backend, workdir) as url:
        world = await World.create(url, slack_options={"rate_limit": False})
        world.respondent.list_embeds_messages = list_messages
        db = Database(url)
        try:
            seeded = seed(world, studies)
            # Linking, with the periodic reconcile out of the way (an interval of a day).
            async with common.start_serve(
                world, {**quiet_env, "RALLYBRIDGE_RECONCILE_SECONDS": "86400"}, log_path=workdir / "link.log"
            ):
                figures = await link_all(world, db, seeded)
            # Then the same bridge, reconciling every ``interval``.
            env = {**quiet_env, "RALLYBRIDGE_RECONCILE_SECONDS": str(interval)}
            async with common.start_serve(world, env, log_path=workdir / "serve.log"):
                figures.update(await cycles(world, db, seeded, interval))
        finally:
            await db.dispose()
            await world.stop()
    return figures


async def link_all(world: World, db: Database, seeded: Seeded) -> dict[str, float]:
    """``/rally link`` of every study, as a researcher types them, until every thread and early message is there."""
    c = world.cast
    studies = len(seeded.studies)
    start = time.time()
    for study_id in seeded.studies:
        result = await world.slack.run_command(c.channel, c.owner.slack_id, f"link {study_id}")
        if result.status != 200:
            raise common.BenchError(f"/rally link answered {result.status}")
    await wait_quiet(db)
    end = time.time()
    expected = studies * APPROVED * MESSAGES
    mirrored = await count_rows(
        db, select(func.count()).select_from(ChatMessage).where(ChatMessage.platform_ts.is_not(None))
    )
    if mirrored != expected:
        raise common.BenchError(f"{mirrored} of {expected} early messages reached their threads after linking")
    calls = [call for call in reads(world, seeded) if start <= call[0] < end]
    return {
        "link_rally": sum(1 for _, api, _ in calls if api == RALLY) / studies,
        "link_respondent": sum(1 for _, api, _ in calls if api == RESPONDENT) / studies,
        "link_respondent_peak": peak_per_second(calls, RESPONDENT, start, end),
        "link_seconds": end - start,
    }


async def cycles(world: World, db: Database, seeded: Seeded, interval: float) -> dict[str, float]:
    """Two quiet cycles (the first after start-up, then an idle one), then ``k`` lost webhooks and the cycle that
    follows them: their reads, how fast the losses were caught, and the peak request rates."""
    studies = len(seeded.studies)
    started = time.time()
    await asyncio.sleep(3 * interval + 2)  # every study: reconciles 1, 2 and 3 queued (cycles 1 and 2 complete)
    k = max(1, studies // 10)
    uids, approved = await lose_webhooks(world, seeded, k)
    changed_at = time.time()
    delay = float("nan")
    while time.time() < changed_at + 2 * interval + 5:
        if math.isnan(delay) and await caught(db, uids, approved):
            delay = time.time() - changed_at
        await asyncio.sleep(0.25)
    if math.isnan(delay):
        raise common.BenchError(f"{k} lost webhooks were not caught within two intervals")
    await wait_quiet(db)
    calls, starts = reads(world, seeded), await periodic_reconciles(db)
    first = cycle_cost(calls, starts, started)
    idle = cycle_cost(calls, {s: t[1:] for s, t in starts.items()}, started)
    changed = cycle_cost(calls, starts, changed_at)
    for name, cost in (("first", first), ("idle", idle), ("changed", changed)):
        if cost["studies"] != studies:
            raise common.BenchError(f"{name} cycle: {cost['studies']:.0f} of {studies} studies observed")
    steady = (started + interval, started + 3 * interval)
    figures = {
        f"{name}_{key}": value
        for name, cost in (("first", first), ("idle", idle), ("changed", changed))
        for key, value in cost.items()
    }
    figures.update(
        k=k,
        caught_s=delay,
        rally_peak=peak_per_second(calls, RALLY, *steady),
        respondent_peak=peak_per_second(calls, RESPONDENT, *steady),
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_arguments(parser, runs=1, quick_runs=1)
    parser.add_argument("--sizes", default=None, help="linked studies per run, comma-separated (default 100,250,500)")
    parser.add_argument("--interval", type=float, default=None, help="reconcile interval in seconds (default 30)")
    parser.add_argument(
        "--list-without-messages",
        action="store_true",
        help="the Respondent stand-in lists conversations without their messages (an undocumented variant)",
    )
    parser.add_argument("--section", default=None, help="the section of the page to write (default reconcile)")
    parser.add_argument("--title", default="", help="added to the section's heading (e.g. which code was measured)")
    parser.add_argument(
        "--no-notes", action="store_true", help="the table and how it was measured, without the notes on the design"
    )
    args = common.parse_args(parser)
    sizes = [int(s) for s in (args.sizes or ("50,200" if args.quick else "100,250,500")).split(",")]
    interval = args.interval or (20.0 if args.quick else 30.0)
    list_messages = not args.list_without_messages
    began = time.monotonic()
    results: dict[tuple[str, int], dict[str, float]] = {}
    for backend in args.databases:
        for size in sizes:
            runs = []
            for run in range(args.runs):
                print(f"{backend}: {size} studies, run {run + 1}/{args.runs}", flush=True)
                runs.append(asyncio.run(one_run(backend, size, interval, list_messages=list_messages)))
            results[(backend, size)] = common.median_of(runs)
    minutes = (time.monotonic() - began) / 60
    title = args.title or ("" if list_messages else "Respondent lists conversations without their messages")
    section = report(results, interval, minutes, args.runs, title=title, notes=not args.no_notes)
    print(section)
    if not args.no_write:
        name = args.section or ("reconcile" if list_messages else "reconcile_no_messages")
        common.write_section(name, section, doc=args.doc)


DEFAULT_INTERVAL = 300.0  # RALLYBRIDGE_RECONCILE_SECONDS


def report(
    results: dict[tuple[str, int], dict[str, float]],
    interval: float,
    minutes: float,
    runs: int,
    *,
    title: str = "",
    notes: bool = True,
) -> str:
    rows = []
    for (backend, size), f in results.items():
        rows.append(
            (
                backend,
                size,
                f"{f['link_rally']:.1f} / {f['link_respondent']:.1f}",
                f"{f['first_rally']:.0f} / {f['first_respondent']:.0f}",
                f"{f['idle_rally']:.0f} / {f['idle_respondent']:.0f}",
                f"{f['changed_rally']:.0f} / {f['changed_respondent']:.0f} (k={f['k']:.0f})",
                f"{f['rally_peak']:.0f} / {f['respondent_peak']:.0f}",
                f"{f['link_respondent_peak']:.0f}",
                f"{f['caught_s']:.1f} s",
            )
        )
    headers = [
        "database",
        "studies",
        "linking, reads per study (Rally / Respondent)",
        "first cycle",
        "idle cycle",
        "cycle after k lost webhooks + k lost approvals",
        "peak req/s in a cycle (Rally / Respondent)",
        "peak Respondent req/s linking",
        "losses caught after",
    ]
    table = common.markdown_table(headers, rows)
    largest = max(results, key=lambda key: key[1])
    f = results[largest]
    per_api = max(f["idle_rally"], f["idle_respondent"]) / DEFAULT_INTERVAL
    heading = "## 5. Reconciliation cost" + (f" ({title})" if title else "")
    measured = f"""{heading}

{table}

Reads only: Rally archive calls (the effect of a caught message) are not counted. A cycle is, for every study, the
span from one periodic reconcile to its next; the losses are one message written and one participant approved,
with their webhooks dropped, in each of k studies. Interval {interval:.0f} s; {PARTICIPANTS}
participants per study ({APPROVED} approved before linking, {MESSAGES} messages each). Calls are counts (the same
every run); rates and delays are medians of {runs} run(s). Whole run {minutes:.0f} min.
"""
    if not notes:
        return measured
    return (
        measured
        + f"""
What a reconcile reads, per linked study: Rally's participant search (all pages of 100, `endCursor` ->
`startCursor`) and Respondent's conversation list of the study's project (all pages of 50). The lists are compared
with what the bridge stored, in one query each: only missing threads are opened and only conversations with a
participant message not yet mirrored are ingested. A conversation is read on its own only when the list does not
carry all its messages (`messages` absent, fewer than `messagesCount`, or without its `latestMessage`) and its latest
message is not one the bridge mirrored. An idle cycle therefore costs sum(ceil(participants/100) +
ceil(conversations/50)) reads: 2 per study of up to 100 participants and 50 conversations, growing with studies and
with pages, not with messages. Neither API documents a `since`/updated-after filter, an ETag or a sort order for
these lists (`respondent.md` 2-3, `rally.md` 2-3.4), so a whole list is the least that shows a lost webhook; the
bridge reads nothing more. Linking a study reads it (study, team, user, participants) and then the project's
conversations once for all the threads it opened.

Each study is reconciled at its own moment of the interval (a stable hash of its id; `bridge/reconcile_schedule.py`),
the tick looking every interval/60 (1-10 s), so a cycle never reads every study at once and replicas share each
study's cycle key. Rate limits: neither Respondent nor Rally documents any (both marked UNDOCUMENTED in the API
contracts the adapters follow). The budget the bridge keeps to: on average 2 x studies / interval requests to each API
(at the default {DEFAULT_INTERVAL:.0f} s and {largest[1]} studies: {per_api:.1f} req/s each), in bursts of one tick's
studies; a 429 is honoured through `Retry-After` (the reconcile row waits and retries).
"""
    )


if __name__ == "__main__":
    main()
