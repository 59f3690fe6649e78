"""2. Outages: Respondent answers 503 for a while, Rally's archive fails 20% of calls, Slack answers 429 bursts with
Retry-After. Everything arrives after recovery; replies show pending (hourglass) and then delivered; a permanent
failure (a 400 from Respondent) is shown in the thread with its reason and the reply is marked failed."""

from __future__ import annotations

import asyncio
import time

from adapters.slack.platform import EMOJI
from core.domain import Mark
from reliability.harness import Stage, Suite, unfinished, wait_until
from reliability.report import Row
from storage.migrate import upgrade_async
from tests.integration.processes import slack_post

# How the bridge's marks show in Slack: reactions on the researchers' replies.
PENDING_REACTION, DELIVERED_REACTION, FAILED_REACTION = EMOJI[Mark.PENDING], EMOJI[Mark.DELIVERED], EMOJI[Mark.FAILED]


async def run(suite: Suite, row: Row) -> None:
    rng = suite.rng("outages")
    n_people = suite.size(4, 10)
    outage_seconds = suite.size(8, 120)
    per_phase = suite.size(8, 40)
    url = f"sqlite+aiosqlite:///{suite.workdir / 'outages.sqlite3'}"
    await upgrade_async(url)
    async with Stage(suite, "outages", url, participants=n_people) as stage:
        w = stage.world
        channel = w.cast.channel
        w.rally.archive_failure_rate(0.2, seed=rng.randrange(1 << 30))
        bursts = 0

        async def traffic(count: int, prefix: str) -> list[str]:
            nonlocal bursts
            reply_ts: list[str] = []
            for i in range(count):
                who = rng.choice(stage.people)
                if i % 3 == 0:
                    w.slack.rate_limit_next(rng.randint(2, 5), retry_after=1, method="chat.postMessage")
                    bursts += 1
                if i % 2 == 0:
                    body = f"{prefix}R{i:03d} {stage.tag} could you show me where you clicked?"
                    await stage.reply(who, body)
                    reply_ts.append(stage.reply_ts[body])
                else:
                    await stage.write(who, f"{prefix}P{i:03d} {stage.tag} here it is")
            return reply_ts

        await traffic(per_phase, "a")
        w.respondent.outage(503)
        outage_started = time.monotonic()
        during = await traffic(per_phase, "b")

        def marked(ts: str, name: str) -> bool:
            return name in w.slack.reactions(channel, ts)

        # Researchers see that their replies wait: every reply written during the outage gets the pending mark.
        await wait_until(lambda: all(marked(ts, PENDING_REACTION) for ts in during), within=30)
        pending_shown = sum(marked(ts, PENDING_REACTION) for ts in during)
        delivered_early = sum(marked(ts, DELIVERED_REACTION) for ts in during)
        await asyncio.sleep(max(0.0, outage_seconds - (time.monotonic() - outage_started)))
        w.respondent.heal()
        outage_took = time.monotonic() - outage_started
        await traffic(per_phase, "c")

        all_replies = [
            ts for who in stage.people for ts in (stage.reply_ts[b] for b in stage.expected_replies[who.participant_id])
        ]

        def all_delivered() -> bool:
            return all(marked(ts, DELIVERED_REACTION) and not marked(ts, PENDING_REACTION) for ts in all_replies)

        rows = await stage.settle(suite.size(90, 240), extra=all_delivered)
        row.counts = stage.tally()

        # A permanent refusal: Respondent answers 400 to one reply.
        who = stage.people[0]
        w.respondent.fail_next(1, 400, path_contains="/messages")
        refused = slack_post(
            w.slack, channel, w.cast.owner.slack_id, f"x {stage.tag} this one is refused", thread_ts=who.root_ts
        )
        await stage.deliver_envelope(refused.envelope)
        notice = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            texts = [m.get("text", "") for m in w.slack.thread(channel, who.root_ts) if m.get("bot_id")]
            notice = next((t for t in texts if "Not delivered" in t), "")
            if notice and marked(refused.ts, FAILED_REACTION):
                break
            await asyncio.sleep(0.2)
        archived_refused = any("this one is refused" in b for b in stage.archived(who))
        sent_refused = any("this one is refused" in b for b in stage.relayed(who))

        replies, writes = stage.total()
        row.load = f"{replies} replies + {writes} participant messages, {n_people} participants, SQLite"
        row.faults = (
            f"Respondent 503 for {outage_took:.0f} s; Rally archive 20% random 503 ({w.rally.archive_attempts} calls); "
            f"{bursts} Slack 429 bursts (Retry-After 1 s); one Respondent 400"
        )
        row.check(
            f"every reply written during the outage showed pending ({pending_shown}/{len(during)}) "
            f"and none was marked delivered early ({delivered_early})",
            pending_shown == len(during) and delivered_early == 0,
        )
        row.check("after recovery every reply is marked delivered and no pending mark is left", all_delivered())
        order_ok = True
        for ts in during:
            events = [(name, op) for (ch, t, name, op) in w.slack.reaction_events if ch == channel and t == ts]
            order_ok &= events == [
                (PENDING_REACTION, "add"),
                (PENDING_REACTION, "remove"),
                (DELIVERED_REACTION, "add"),
            ]
        row.check("marks on each waiting reply went: pending added, pending removed, delivered added", order_ok)
        row.check(
            "the permanent failure is shown in the thread with its reason, marked failed, never sent or archived",
            "Respondent 400" in notice
            and marked(refused.ts, FAILED_REACTION)
            and not sent_refused
            and not archived_refused,
        )
        row.notes.append(f"notice shown: “{notice[:160]}”")
        left = unfinished(rows)
        row.check(f"no inbox/outbox row left pending, working or failed ({len(left)} left)", not left)
        if left:
            row.notes.append("left: " + "; ".join(left[:5]))
