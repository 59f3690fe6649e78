"""5. Database restart: a private PostgreSQL cluster (never the shared one) is stopped mid-run and started again.
Requests during the outage get 503, not 2xx, so Slack and the webhooks retry; the bridge reconnects by itself."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from playground.world import free_port
from reliability import pg
from reliability.harness import Stage, Suite, unfinished
from reliability.report import Row
from storage.migrate import upgrade_async


async def run(suite: Suite, row: Row) -> None:
    problem = pg.PrivateCluster.problem()
    if problem:
        row.not_run = f"cannot start a private PostgreSQL cluster here: {problem}"
        return
    rng = suite.rng("dbrestart")
    n_people, per_phase, down_seconds = suite.size(4, 10), suite.size(16, 100), suite.size(4, 20)
    cluster = pg.PrivateCluster(free_port())
    try:
        await cluster.init()
        url, _name = await pg.fresh_database(cluster.admin_url)
        await upgrade_async(url)
        async with Stage(suite, "dbrestart", url, participants=n_people) as stage:
            bridge = stage.processes[0]

            async def traffic(count: int, prefix: str) -> None:
                for k in range(count):
                    who = rng.choice(stage.people)
                    if k % 2 == 0:
                        await stage.reply(who, f"{prefix}R{k:03d} {stage.tag} one more question")
                    else:
                        await stage.write(who, f"{prefix}P{k:03d} {stage.tag} sure, go ahead")

            await traffic(per_phase, "a")
            await cluster.stop("fast")
            # While the database is down: every inbound request must be refused with 503 (the sender retries).
            stage.world.respondent.webhook_retries = 0
            answered: list[int] = []
            before_pending = len(stage.pending_slack) + len(stage.pending_respondent)
            for k in range(per_phase // 2):
                who = rng.choice(stage.people)
                if k % 2 == 0:
                    envelope = stage.post(who, f"bR{k:03d} {stage.tag} during the outage")
                    raw = json.dumps(envelope).encode()
                    headers = {"Content-Type": "application/json", **stage.world.slack.sign(raw)}
                    status, _ = await stage.world.slack.deliver_raw(raw, headers, url=f"{bridge.url}/slack/events")
                    answered.append(status)
                    stage.pending_slack.append(envelope)
                else:
                    await stage.write(who, f"bP{k:03d} {stage.tag} during the outage")
                    answered.append(stage.recorder.last()[1][-1] or 0)
            async with aiohttp.ClientSession() as http, http.get(f"{bridge.url}/healthz") as response:
                health = response.status
            await asyncio.sleep(down_seconds)
            alive_during = bridge.proc is not None and bridge.proc.poll() is None
            await cluster.start()
            stage.world.respondent.webhook_retries = 1
            await stage.redeliver()  # Slack and Respondent retry what got 503
            await traffic(per_phase, "c")
            rows = await stage.settle(suite.size(90, 240))
            row.counts = stage.tally()
            replies, writes = stage.total()
            row.load = f"{replies} replies + {writes} participant messages, {n_people} participants, PostgreSQL"
            row.faults = (
                f"private PostgreSQL stopped (fast shutdown) for about {down_seconds} s mid-run, then restarted"
            )
            row.check(
                f"all {len(answered)} requests during the outage answered 503 ({sorted(set(answered))})",
                bool(answered) and all(s == 503 for s in answered) and before_pending == 0,
            )
            row.check(f"/healthz answered 503 during the outage ({health})", health == 503)
            row.check(
                "the bridge stayed up and reconnected by itself (no restart)", alive_during and bridge.starts == 1
            )
            left = unfinished(rows)
            row.check(f"no inbox/outbox row left pending, working or failed ({len(left)} left)", not left)
            if left:
                row.notes.append("left: " + "; ".join(left[:5]))
    finally:
        await cluster.destroy()
