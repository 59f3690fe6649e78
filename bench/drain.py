"""Benchmark 2: drain efficiency under Slack's and Teams' rate limits.

    .venv/bin/python -m bench.drain [--quick] [--runs N] [--databases sqlite,postgres] [--scenarios slack,teams]

A backlog of participant messages waits in the outbox; then the real ``rallybridge serve`` drains it into the
stand-ins, which enforce the platforms' limits and answer 429 (+ ``Retry-After`` on Slack) beyond them:

- **slack**: 2,000 messages over 100 threads in 20 channels (20 studies of 5 participants). The Slack stand-in
  allows 1 ``chat.postMessage`` per second per channel (burst 3) and 600 a minute per workspace (burst 30).
- **teams**: the same backlog into Teams reply chains. The connector stand-in allows per thread 7 sends / 1 s,
  8 / 2 s, 60 / 30 s, 1,800 / 3,600 s, and per app 50 a second.
- **teams-thread**: 500 messages over 5 threads (100 per thread), so that Teams' per-thread windows bind.

``--quick`` uses smaller backlogs (240 / 24 / 6 channels: per-channel-bound on Slack; 500 / 25 / 5 and 80 / 2 / 2
on Teams).

Each run, on a fresh database: (1) ``serve`` starts, a researcher links every study (``/rally link`` on Slack,
``@Rally Bridge link`` on Teams) and every thread root is posted; ``serve`` stops. (2) The participants write
their messages on Respondent, round-robin over the threads; one ``MESSAGES.CREATED`` webhook per conversation
reaches the real bridge app running with its inbox worker only, which turns them into the waiting posts (and
archive calls) in the outbox. (3) The stand-in's limits are reset to full budgets; a new ``serve`` starts and
drains. The stand-in records when it accepted each post.

**Efficiency** = the theoretical minimum drain time under the limits / the measured time, both from the first
post to the last. Minimum on Slack: the larger of (N per channel - 3) / 1 s and (N - 30) / 10 s; on Teams: the
earliest moment the last send can fit every sliding window (thread windows for each thread, the app window for
all), sending greedily. Also counted: messages lost (never posted), duplicated (posted twice), order violations
(a message posted after a later one of its thread), the 429s the stand-in answered, and the retries the bridge
recorded. Figures are medians of ``--runs`` runs; a report, never an assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from bench import common
from bot.app import build_bridge
from core.store import INBOX
from playground.world import World
from sandbox.slack.ratelimit import RateLimits
from sandbox.teams import TeamsPerson, TeamsSandbox
from sandbox.teams.connector import APP_LIMIT, TEAMS_LIMITS
from storage.db import Database
from storage.models import OutboxItem

BODY = re.compile(r"drain t(\d+) m(\d+)")
OWNER_TEAMS = TeamsPerson("29:ana", "Ana Ortiz", "ana@example.com")
# Production defaults for the drain itself (the sandbox world polls faster); no reconcile during a run.
SERVE_ENV = {
    "RALLYBRIDGE_POLL_SECONDS": "0.5",
    "RALLYBRIDGE_LEASE_SECONDS": "60",
    "RALLYBRIDGE_RECONCILE_SECONDS": "3600",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    platform: str  # "slack" | "teams"
    messages: int
    threads: int
    channels: int

    @property
    def per_thread(self) -> int:
        return self.messages // self.threads

    @property
    def per_channel(self) -> int:
        return self.threads // self.channels

    def describe(self) -> str:
        return f"{self.messages:,} messages / {self.threads} threads / {self.channels} channels"


FULL = (
    Scenario("slack", "slack", 2000, 100, 20),
    Scenario("teams", "teams", 2000, 100, 20),
    Scenario("teams-thread", "teams", 500, 5, 5),
)
QUICK = (
    Scenario("slack", "slack", 240, 24, 6),
    Scenario("teams", "teams", 500, 25, 5),
    Scenario("teams-thread", "teams", 80, 2, 2),
)


@dataclass(frozen=True)
class ThreadSpec:
    index: int
    channel: str
    study_id: str
    project_id: str
    respondent_user_id: str

    @property
    def first_name(self) -> str:
        return f"P{self.index:03d}"


# --- theoretical minimum ------------------------------------------------------------------------------------


def slack_minimum(per_channel: Sequence[int], limits: RateLimits) -> float:
    """Token buckets full at the first post: (N - burst) / rate per channel, and the same for the workspace."""
    channel = max((max(0, n - limits.channel_burst) / limits.channel_rate for n in per_channel), default=0.0)
    workspace = max(0, sum(per_channel) - limits.workspace_burst) / limits.workspace_rate
    return max(channel, workspace)


def window_minimum(n: int, limits: Sequence[tuple[float, int]]) -> float:
    """When the last of ``n`` sends can go at the earliest (the first at 0), under sliding-window limits.

    Greedy is optimal: send k waits for send k - count to leave every window (a send exactly ``window`` later
    is allowed, as the stand-in counts earlier sends with ``now - t < window``).
    """
    times: list[float] = []
    for k in range(n):
        t = times[-1] if times else 0.0
        for window, count in limits:
            if k >= count:
                t = max(t, times[k - count] + window)
        times.append(t)
    return times[-1] if times else 0.0


def teams_minimum(per_thread: Sequence[int]) -> float:
    thread = max((window_minimum(n, TEAMS_LIMITS) for n in per_thread), default=0.0)
    return max(thread, window_minimum(sum(per_thread), [APP_LIMIT]))


# --- the world -----------------------------------------------------------------------------------------------


def seed(world: World, scenario: Scenario, teams: TeamsSandbox | None) -> list[ThreadSpec]:
    """``channels`` studies (one per channel), each with ``per_channel`` approved participants."""
    owner = world.cast.owner
    threads: list[ThreadSpec] = []
    for c in range(scenario.channels):
        if teams is not None:
            channel = f"19:drain-{c:03d}@thread.tacv2"
            teams.connector.add_channel(channel, f"Drain study {c}")
        else:
            channel = f"C0DRAIN{c:03d}"
            world.slack.add_channel(channel, f"drain-{c:03d}")
        study_id, project_id = f"st_drain_{c:03d}", f"{0x6A0000000000000000000000 + c:024x}"
        world.rally.add_study(study_id, f"Drain study {c}", respondent_project_id=project_id)
        world.rally.add_team_member(study_id, owner.rally_id or "usr_ana", owner.email, owner.name, role="OWNER")
        for k in range(scenario.per_channel):
            t = c * scenario.per_channel + k
            spec = ThreadSpec(t, channel, study_id, project_id, f"{0x6B0000000000000000000000 + t:024x}")
            world.rally.add_participant(
                study_id,
                f"pa_drain_{t:03d}",
                spec.first_name,
                "Drain",
                email=f"p{t:03d}@example.net",
                respondent_user_id=spec.respondent_user_id,
                approval_status="APPROVED",
                scheduling_url=f"https://app.rallyuxr.com/schedule/pa_drain_{t:03d}",
            )
            threads.append(spec)
    if teams is not None:
        teams.connector.add_member(OWNER_TEAMS.user_id, OWNER_TEAMS.name, email=OWNER_TEAMS.email)
    return threads


def slack_roots(world: World, channel: str) -> int:
    return sum(
        1
        for m in world.slack.messages(channel)
        if "Reply in this thread" in m.get("text", "") and m.get("thread_ts") in (None, m["ts"])
    )


def teams_roots(teams: TeamsSandbox, channel: str) -> int:
    return sum(1 for a in teams.connector.roots(channel) if a.get("attachments"))


async def link_all(world: World, teams: TeamsSandbox | None, scenario: Scenario, threads: list[ThreadSpec]) -> None:
    """Phase 1: a researcher links every study; wait for every thread root."""
    channels = sorted({(t.channel, t.study_id) for t in threads})
    for channel, study_id in channels:
        if teams is not None:
            await teams.command(channel, OWNER_TEAMS, f"link {study_id}")
        else:
            result = await world.slack.run_command(channel, world.cast.owner.slack_id, f"link {study_id}")
            if result.status != 200:
                raise common.BenchError(f"/rally link {study_id} answered {result.status}")

    def all_roots() -> bool:
        counted = (teams_roots(teams, ch) if teams is not None else slack_roots(world, ch) for ch, _ in channels)
        return all(n >= scenario.per_channel for n in counted)

    await common.eventually(all_roots, within=120 + scenario.threads, what="every thread root")


async def outbox_settled(db: Database) -> bool:
    async with db.transaction() as session:
        unfinished = (OutboxItem.status.in_(("pending", "working")),)
        count = (await session.execute(select(func.count()).select_from(OutboxItem).where(*unfinished))).scalar_one()
    return int(count) == 0


async def fill_backlog(world: World, scenario: Scenario, threads: list[ThreadSpec], env: dict[str, str]) -> None:
    """Phase 2: participants write; the bridge app with its inbox worker only queues the posts in the outbox."""
    respondent = world.respondent
    webhook_url = respondent.webhook_url
    respondent.webhook_url = None  # written while the bridge is down: no webhook yet
    for m in range(scenario.per_thread - 1):
        for spec in threads:
            await respondent.participant_writes(
                spec.project_id,
                spec.respondent_user_id,
                f"drain t{spec.index:03d} m{m:04d}",
                first_name=spec.first_name,
                last_name="Drain",
            )
    respondent.webhook_url = webhook_url
    bridge = build_bridge(world.settings(**env))
    bridge.workers = [w for w in bridge.workers if w.name == INBOX]
    runner = web.AppRunner(bridge.web_app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", world.bridge_port).start()
        # The last message of each thread, round-robin over the channels: its webhook makes the bridge read the
        # whole conversation, so each thread's messages are queued together.
        last = scenario.per_thread - 1
        for spec in sorted(threads, key=lambda t: (t.index % scenario.per_channel, t.index)):
            await respondent.participant_writes(
                spec.project_id,
                spec.respondent_user_id,
                f"drain t{spec.index:03d} m{last:04d}",
                first_name=spec.first_name,
                last_name="Drain",
            )
        db = bridge.db

        async def queued() -> int:
            async with db.transaction() as session:
                query = select(func.count()).select_from(OutboxItem).where(OutboxItem.kind == "chat.mirror")
                return int((await session.execute(query)).scalar_one())

        deadline = time.monotonic() + 120 + scenario.messages / 20
        while await queued() < scenario.messages:
            if time.monotonic() > deadline:
                raise common.BenchError(f"only {await queued()} of {scenario.messages} posts were queued")
            await asyncio.sleep(0.2)
    finally:
        await runner.cleanup()


# --- what was posted ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    at: float
    thread: int
    message: int
    where: str  # the Slack thread ts / the Teams conversation


def slack_posted(world: World) -> list[Posted]:
    found: list[Posted] = []
    for post in world.slack.rate_limits.accepted:
        message = world.slack.find_message(post.channel, post.ts)
        match = BODY.search(str((message or {}).get("text", "")))
        if match:
            found.append(Posted(post.at, int(match[1]), int(match[2]), f"{post.channel}/{post.thread_ts}"))
    return found


def teams_posted(teams: TeamsSandbox) -> list[Posted]:
    texts: dict[tuple[str, str], str] = {}
    found: list[Posted] = []
    for send in list(teams.connector.accepted):
        if (send.conversation, send.activity_id) not in texts:
            for activity in teams.connector.conversations.get(send.conversation, []):
                texts[(send.conversation, str(activity.get("id")))] = str(activity.get("text", ""))
        match = BODY.search(texts.get((send.conversation, send.activity_id), ""))
        if match:
            found.append(Posted(send.at, int(match[1]), int(match[2]), send.conversation))
    return found


def check(posted: list[Posted], scenario: Scenario) -> dict[str, float]:
    """Lost, duplicated, order violations (per thread: a message posted after a later one of its thread)."""
    seen: set[tuple[int, int]] = set()
    duplicated = 0
    last: dict[int, int] = {}
    order_violations = 0
    places: dict[int, set[str]] = {}
    for post in sorted(posted, key=lambda p: p.at):
        key = (post.thread, post.message)
        if key in seen:
            duplicated += 1
            continue
        seen.add(key)
        if post.message < last.get(post.thread, -1):
            order_violations += 1
        last[post.thread] = max(last.get(post.thread, -1), post.message)
        places.setdefault(post.thread, set()).add(post.where)
    misplaced = sum(len(p) - 1 for p in places.values())  # a thread's messages in more than one thread
    return {
        "lost": float(scenario.messages - len(seen)),
        "duplicated": float(duplicated),
        "order_violations": float(order_violations + misplaced),
    }


async def outbox_retries(url: str) -> float:
    """``rallybridge_retries_total`` of the outbox, from the bridge's /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("rallybridge_retries_total{") and 'queue="outbox"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- one run -------------------------------------------------------------------------------------------------


async def one_run(backend: str, scenario: Scenario) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix=f"rb-drain-{backend}-"))
    try:
        async with common.fresh_database(backend, workdir) as url:
            world = await World.create(url, slack_options={"rate_limit": True})
            teams = await TeamsSandbox.create(world.bridge_url) if scenario.platform == "teams" else None
            try:
                return await _run(world, teams, scenario, workdir)
            finally:
                await world.stop()
                if teams is not None:
                    await teams.stop()
    finally:
        if os.environ.get("RALLYBRIDGE_BENCH_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)


async def _run(world: World, teams: TeamsSandbox | None, scenario: Scenario, workdir: Path) -> dict[str, float]:
    env = {**SERVE_ENV, **(teams.settings() if teams is not None else {})}
    threads = seed(world, scenario, teams)
    async with common.start_serve(world, env, log_path=workdir / "serve-link.log") as serve:
        await link_all(world, teams, scenario, threads)
        db = Database(world.database_url)  # the link's notices and roots all sent: the outbox is empty
        try:
            deadline = time.monotonic() + 60
            while not await outbox_settled(db):
                if time.monotonic() > deadline:
                    raise common.BenchError(f"the outbox did not settle after linking; see {serve.log_path}")
                await asyncio.sleep(0.2)
        finally:
            await db.dispose()
    await fill_backlog(world, scenario, threads, env)

    if teams is not None:
        teams.connector.reset_limits()
        minimum = teams_minimum([scenario.per_thread] * scenario.threads)
    else:
        world.slack.rate_limits.reset()
        per_channel = [scenario.per_channel * scenario.per_thread] * scenario.channels
        minimum = slack_minimum(per_channel, world.slack.rate_limits)

    def posted() -> list[Posted]:
        return teams_posted(teams) if teams is not None else slack_posted(world)

    spawned = time.monotonic()
    async with common.start_serve(world, env, log_path=workdir / "serve-drain.log") as serve:
        deadline = time.monotonic() + minimum * 3 + 120
        while True:  # every message posted, or give up (and report what is missing)
            if len({(p.thread, p.message) for p in posted()}) >= scenario.messages or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # anything posted twice shows up now
        retries = await outbox_retries(serve.url)
        cpu = serve.cpu_seconds()
    found = posted()
    times = sorted(p.at for p in found)
    measured = times[-1] - times[0] if len(times) > 1 else float("nan")
    refused = len(teams.connector.rate_limited) if teams is not None else world.slack.rate_limits.refused
    return {
        "minimum_s": minimum,
        "measured_s": measured,
        "efficiency": minimum / measured if measured and measured == measured else float("nan"),
        "first_post_s": (times[0] - spawned) if times else float("nan"),
        "http_429": float(refused),
        "retries": retries,
        "serve_cpu_s": cpu,
        **check(found, scenario),
    }


# --- main ----------------------------------------------------------------------------------------------------


def scenarios_from(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = [s.name for s in FULL]
    if not names or any(n not in known for n in names):
        raise argparse.ArgumentTypeError(f"scenarios must be among {', '.join(known)}; got {text!r}")
    return names


HEADERS = [
    "scenario",
    "database",
    "backlog",
    "minimum s",
    "measured s",
    "efficiency",
    "lost",
    "duplicated",
    "order violations",
    "429s",
    "retries",
    "serve start to first post s",
    "serve CPU s",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_arguments(parser)
    parser.add_argument(
        "--scenarios", type=scenarios_from, default=[s.name for s in FULL], help="slack, teams, teams-thread"
    )
    args = common.parse_args(parser)
    # The in-process bridge that fills the backlog runs a scheduler whose skipped ticks would only be noise here.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    chosen = [s for s in (QUICK if args.quick else FULL) if s.name in args.scenarios]
    started = time.monotonic()
    rows: list[list[Any]] = []
    for scenario in chosen:
        for backend in args.databases:
            runs = []
            for n in range(args.runs):
                print(f"{scenario.name} on {backend}: run {n + 1} of {args.runs} ({scenario.describe()})", flush=True)
                runs.append(asyncio.run(one_run(backend, scenario)))
                print("  " + ", ".join(f"{k}={v:.3g}" for k, v in runs[-1].items()), flush=True)
            f = common.median_of(runs)
            rows.append(
                [
                    scenario.name,
                    backend,
                    scenario.describe(),
                    f["minimum_s"],
                    f["measured_s"],
                    f"{f['efficiency']:.3f}",
                    int(max(r["lost"] for r in runs)),
                    int(max(r["duplicated"] for r in runs)),
                    int(max(r["order_violations"] for r in runs)),
                    f["http_429"],
                    f["retries"],
                    f["first_post_s"],
                    f["serve_cpu_s"],
                ]
            )
    title = f"Drain efficiency (median of {args.runs} run(s); lost / duplicated / order: worst run)"
    table = common.print_table(title, HEADERS, rows)
    print(f"took {time.monotonic() - started:.0f} s", flush=True)
    if not args.no_write:
        common.write_section("drain", SECTION.format(runs=args.runs, table=table), doc=args.doc)


SECTION = """## 2. Drain efficiency under rate limits

A backlog waits in the outbox (participants wrote while the bridge was down); a fresh `rallybridge serve` drains
it into stand-ins that enforce the platforms' limits and answer 429 beyond them. Slack stand-in:
`chat.postMessage` 1/s per channel (burst 3) and 600/min per workspace (burst 30), 429 + `Retry-After`.
Teams stand-in: per thread 7/1 s, 8/2 s, 60/30 s, 1,800/3,600 s, and 50/s per app. **Efficiency** = the
theoretical minimum drain time under those limits / the measured time (first post to last). Target: 0.9 or
better, nothing lost or duplicated, order kept per thread. Median of {runs} run(s) per row; lost, duplicated and
order violations are the worst run; 429s are what the stand-in refused, retries what the bridge recorded. Serve
CPU s is the bridge process's CPU time from its start to the end of the drain: when it nears the measured time,
the bridge was short of CPU (a shared machine), not held back by pacing.

{table}

How the bridge meets the limits: `adapters/slack/pacing.py` keeps a token bucket per channel and one for the
workspace (the same rates and bursts as Slack's, configurable with `RALLYBRIDGE_SLACK_CHANNEL_RATE`,
`RALLYBRIDGE_SLACK_CHANNEL_BURST`, `RALLYBRIDGE_SLACK_POSTS_PER_MINUTE`, `RALLYBRIDGE_SLACK_WORKSPACE_BURST`) and
reserves each post's moment in advance; `adapters/teams/pacing.py` counts each Teams send in every window from
the moment its answer came back (never earlier than Teams counted it: no 429 however unevenly requests travel;
the price is that each window slot is held one send latency L longer, so an app-bound drain runs at about
50 / (1 + L) sends a second: L is milliseconds on a quiet machine, more on a loaded one, and Teams' own latency in
production). A post that would wait more than a moment
raises `Paced` before anything is sent: the outbox worker puts the row back (no attempt counted, no error) and
meanwhile claims lanes whose channel or thread has budget; it keeps up to 50 outbox rows in flight and claims more
as each finishes, so one waiting channel never holds back the others. A 429 holds back only its channel for its
`Retry-After`. Pacing is per process: several replicas each pace to the full budget, so together they can exceed
it and meet 429s, which are retried per channel (set the per-minute budget to the workspace's share per replica
to avoid that).
"""


if __name__ == "__main__":
    main()
