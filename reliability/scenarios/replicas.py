"""4. Two replicas, one dies: two ``serve`` processes on one PostgreSQL share the traffic; the one holding a
Respondent send in flight is SIGKILLed; the other finishes its claimed rows once their lease has expired."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from reliability import pg
from reliability.harness import Stage, Suite, unfinished, wait_until
from reliability.report import Row
from storage.migrate import upgrade_async
from tests.integration.processes import BridgeProcess, queue_rows

LEASE = 5.0


def _pid(owner: str | None) -> int | None:
    try:
        return int(owner.rsplit(":", 2)[1]) if owner else None
    except (IndexError, ValueError):
        return None


async def run(suite: Suite, row: Row) -> None:
    problem = await pg.shared_problem()
    if problem:
        row.not_run = problem
        return
    rng = suite.rng("replicas")
    n_people, per_phase = suite.size(5, 20), suite.size(20, 150)
    url, name = await pg.fresh_database()
    try:
        await upgrade_async(url)
        env = {"RALLYBRIDGE_LEASE_SECONDS": str(LEASE)}
        async with Stage(suite, "replicas", url, participants=n_people, replicas=2, env=env) as stage:
            a, b = stage.processes
            lanes = 4
            mine = {i: stage.people[i::lanes] for i in range(lanes)}

            async def traffic(count: int, targets: list[BridgeProcess], prefix: str) -> None:
                async def lane(index: int) -> None:
                    for k in range(count // lanes):
                        who = rng.choice(mine[index])
                        target = [rng.choice(targets)]  # the load balancer picks one replica per request
                        if rng.random() < 0.5:
                            body = f"{prefix}R{index}-{k:03d} {stage.tag} and after that?"
                            await stage.reply(who, body, urls=stage.urls("/slack/events", target))
                        else:
                            body = f"{prefix}P{index}-{k:03d} {stage.tag} then I gave up"
                            await stage.write(who, body, urls=stage.urls("/webhooks/respondent", target))

                await asyncio.gather(*(lane(i) for i in range(lanes)))

            await traffic(per_phase, [a, b], "a")
            # A send hangs at Respondent; the replica that holds it dies.
            sent_before = sum(len(stage.relayed(w)) for w in stage.people)
            stage.world.respondent.hang_next_send(LEASE + 5)
            who = stage.people[0]
            await stage.reply(who, f"in-flight {stage.tag} are you still there?", urls=stage.urls("/slack/events", [a]))
            await wait_until(
                lambda: sum(len(stage.relayed(w)) for w in stage.people) > sent_before, within=20, step=0.02
            )
            rows = await queue_rows(url)
            sending = [r for r in rows if r["kind"] == "respondent.send" and r["status"] == "working"]
            victim_pid = _pid(sending[0]["lease_owner"]) if sending else None
            victim = next((p for p in (a, b) if p.pid == victim_pid), a)
            survivor = b if victim is a else a
            victim.kill()
            orphaned = [
                r for r in await queue_rows(url) if r["status"] == "working" and _pid(r["lease_owner"]) == victim_pid
            ]
            killed_at = time.monotonic()
            await traffic(per_phase // 2, [survivor], "b")
            rows = await stage.settle(suite.size(90, 240))
            settled_after = time.monotonic() - killed_at
            row.counts = stage.tally()
            replies, writes = stage.total()
            row.load = (
                f"{replies} replies + {writes} participant messages, {n_people} participants, 2 replicas, PostgreSQL"
            )
            row.faults = (
                f"SIGKILL of the replica holding a Respondent send in flight ({len(orphaned)} rows leased, "
                f"lease {LEASE:g} s)"
            )
            by_id: dict[tuple[str, int], dict[str, Any]] = {(r["table"], r["id"]): r for r in rows}
            taken_over = [by_id[(o["table"], o["id"])] for o in orphaned]
            row.check(
                "a Respondent send was in flight in the killed replica",
                any(o["kind"] == "respondent.send" for o in orphaned),
            )
            row.check(
                "every row the dead replica held was finished by the survivor, after its lease expired",
                bool(taken_over)
                and all(
                    t["status"] == "done"
                    and _pid(t["lease_owner"]) == survivor.pid
                    and t["finished_at"] >= o["lease_until"]
                    for t, o in zip(taken_over, orphaned, strict=True)
                ),
            )
            relay = next((t for t in taken_over if t["kind"] == "respondent.send"), None)
            row.check(
                "the in-flight send was verified at Respondent, not repeated", bool(relay and relay["needs_verify"])
            )
            owners = {_pid(r["lease_owner"]) for r in rows}
            row.check("both replicas did work before the kill", {a.pids[0], b.pids[0]} <= owners)
            left = unfinished(rows)
            row.check(f"no inbox/outbox row left pending, working or failed ({len(left)} left)", not left)
            row.notes.append(
                f"settled {settled_after:.0f} s after the kill; {stage.redelivered} deliveries had to be retried later"
            )
            if left:
                row.notes.append("left: " + "; ".join(left[:5]))
    finally:
        await pg.drop_database(name)
