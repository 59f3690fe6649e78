"""1. Crashes: messages both ways over many participants; SIGKILL at random moments (two of them while a
Respondent send and a Slack post are in flight), restart each time; zero lost, zero duplicated, order kept."""

from __future__ import annotations

import asyncio
import time

from reliability.harness import Stage, Suite, Who, unfinished
from reliability.report import Row


def batches(actions: list[tuple[str, Who]], limit: int = 8) -> list[list[int]]:
    """Consecutive actions in groups run concurrently; never two for one participant in a group (order)."""
    out: list[list[int]] = []
    current: list[int] = []
    seen: set[str] = set()
    for index, (_kind, who) in enumerate(actions):
        if who.participant_id in seen or len(current) >= limit:
            out.append(current)
            current, seen = [], set()
        current.append(index)
        seen.add(who.participant_id)
    if current:
        out.append(current)
    return out


async def run(suite: Suite, row: Row) -> None:
    rng = suite.rng("crashes")
    n_people = suite.size(10, 50)
    n_messages = suite.size(120, 1000)
    n_kills = suite.size(4, 12)
    url = f"sqlite+aiosqlite:///{suite.workdir / 'crashes.sqlite3'}"
    from storage.migrate import upgrade_async

    await upgrade_async(url)
    row.load = f"{n_messages} messages both ways, {n_people} participants, SQLite"
    async with Stage(suite, "crashes", url, participants=n_people) as stage:
        bridge = stage.processes[0]
        actions = [("reply" if i % 2 == 0 else "write", rng.choice(stage.people)) for i in range(n_messages)]
        rng.shuffle(actions)
        groups = batches(actions)
        kill_after = set(rng.sample(range(2, len(groups) - 1), n_kills - 2))
        free = [g for g in range(2, len(groups) - 1) if g not in kill_after]
        hang_send_at = rng.choice([g for g in free if any(actions[i][0] == "reply" for i in groups[g])])
        hang_post_at = rng.choice(
            [g for g in free if g != hang_send_at and any(actions[i][0] == "write" for i in groups[g])]
        )
        row.faults = f"{n_kills} SIGKILLs at seeded moments (1 mid Respondent send, 1 mid Slack post), restart each"
        row.notes.append(f"kills after groups {sorted(kill_after)}; in flight at {hang_send_at} and {hang_post_at}")
        counter = {"reply": 0, "write": 0}

        async def perform(index: int) -> None:
            kind, who = actions[index]
            counter[kind] += 1
            n = counter[kind]
            if kind == "reply":
                await stage.reply(who, f"R{n:04d} {stage.tag} {who.first_name}, what did you think of step {index}?")
            else:
                await stage.write(who, f"P{n:04d} {stage.tag} step {index} confused me")

        def down() -> bool:
            return bridge.proc is None or bridge.proc.poll() is not None

        async def restart() -> None:
            await bridge.start_healthy()
            await stage.redeliver()

        kills = 0
        down_for = 0
        started = time.monotonic()
        for g, group in enumerate(groups):
            if (g in kill_after or g in (hang_send_at, hang_post_at)) and down():  # every kill hits a live bridge
                await restart()
            before_sent = sum(len(stage.relayed(w)) for w in stage.people)
            before_posts = len([m for m in stage.world.slack.messages(stage.world.cast.channel) if m.get("bot_id")])
            if g == hang_send_at:
                stage.world.respondent.hang_next_send(3.0)
            if g == hang_post_at:
                stage.world.slack.hang_next(3.0, method="chat.postMessage")
            await asyncio.gather(*(perform(i) for i in group))
            if g in (hang_send_at, hang_post_at):
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    sent = sum(len(stage.relayed(w)) for w in stage.people)
                    posts = len([m for m in stage.world.slack.messages(stage.world.cast.channel) if m.get("bot_id")])
                    if (g == hang_send_at and sent > before_sent) or (g == hang_post_at and posts > before_posts):
                        break
                    await asyncio.sleep(0.02)
                bridge.kill()
                kills += 1
                down_for = rng.randint(0, 1)
                continue
            if g in kill_after:
                await asyncio.sleep(rng.uniform(0.0, 0.4))
                bridge.kill()
                kills += 1
                down_for = rng.randint(0, 2)
                continue
            if down():
                if down_for > 0:
                    down_for -= 1
                    continue
                await restart()
        if down():
            await restart()
        rows = await stage.settle(suite.size(120, 400))
        replies, writes = stage.total()
        row.load = f"{replies} replies + {writes} participant messages, {n_people} participants, SQLite"
        row.counts = stage.tally()
        row.check(
            f"bridge SIGKILLed {kills} times and restarted each time", kills == n_kills and bridge.starts == kills + 1
        )
        left = unfinished(rows)
        row.check(f"no inbox/outbox row left pending, working or failed ({len(left)} left)", not left)
        row.notes.append(f"settled {time.monotonic() - started:.0f} s after the first message; {bridge.starts} starts")
        if left:
            row.notes.append("left: " + "; ".join(left[:5]))
