"""Two `rallybridge serve` replicas on one PostgreSQL: every event reaches both, every effect happens once, in
order; a replica SIGKILLed in the middle of a delivery leaves its claimed rows to the other after the lease."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from playground.world import World, free_port
from tests.integration.conftest import eventually
from tests.integration.flows import link_study, roots
from tests.integration.processes import (
    BridgeProcess,
    WebhookRecorder,
    deliver_slack_envelope,
    format_rows,
    participant_posts,
    participant_writes,
    queue_rows,
    relayed,
    slack_post,
    unfinished,
    unique_tag,
)

pytestmark = [
    pytest.mark.slow,
    # Replicas share a database only on PostgreSQL: the shared fixture, its PostgreSQL parameter only.
    pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True),
]

PHASE1 = 20  # replies and participant messages while both replicas run
PHASE2 = 10  # replies and participant messages after one replica was killed
LEASE = 5.0


def _pid(owner: str | None) -> int | None:
    """The process id in a lease owner (``host:pid:random``)."""
    if not owner:
        return None
    try:
        return int(owner.rsplit(":", 2)[1])
    except (IndexError, ValueError):
        return None


async def test_two_replicas_exactly_once_and_takeover_after_sigkill(database_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    world = await World.create(database_url, slack_options={"rate_limit": False})
    c = world.cast
    env_a = world.env()
    env_b = {**env_a, "RALLYBRIDGE_PORT": str(free_port())}
    a = BridgeProcess(env_a, tmp_path / "replica-a.log", name="replica-a")
    b = BridgeProcess(env_b, tmp_path / "replica-b.log", name="replica-b")
    replicas = [a, b]
    recorder = WebhookRecorder(world.respondent)
    ok = False
    try:
        await asyncio.gather(a.start_healthy(), b.start_healthy())
        await link_study(world)  # the slash command goes to replica A (Slack's events_url)
        root_ts = str(roots(world, c.jordan)[0]["ts"])
        tag = unique_tag()
        reply_bodies: list[str] = []
        reply_ts: dict[str, str] = {}
        write_bodies: list[str] = []
        write_uid: dict[str, str] = {}

        async def researcher_replies(count: int, targets: list[BridgeProcess]) -> None:
            for _ in range(count):
                n = len(reply_bodies)
                body = f"R{n:02d} {tag} could you tell us more?"
                author = c.owner if n % 2 == 0 else c.teammate
                post = slack_post(world.slack, c.channel, author.slack_id, body, thread_ts=root_ts)
                reply_bodies.append(body)
                reply_ts[body] = post.ts
                # The same envelope (same event_id) to every replica at once, as after a failover retry.
                statuses = await asyncio.gather(
                    *(deliver_slack_envelope(world.slack, post.envelope, f"{r.url}/slack/events") for r in targets)
                )
                assert statuses == [200] * len(targets), statuses

        async def participant_messages(count: int, targets: list[BridgeProcess]) -> None:
            for _ in range(count):
                n = len(write_bodies)
                # Every webhook twice at once; which replica is listed first alternates.
                urls = [f"{r.url}/webhooks/respondent" for r in targets]
                recorder.targets = (urls * 2)[:2] if n % 2 == 0 else list(reversed((urls * 2)[:2]))
                body = f"P{n:02d} {tag} the total was wrong"
                written = await participant_writes(world, c.jordan, body, recorder)
                write_bodies.append(body)
                write_uid[body] = written.uid
                assert written.statuses == [200, 200], written.statuses

        # Phase 1: both replicas get everything, concurrently.
        await asyncio.gather(researcher_replies(PHASE1, replicas), participant_messages(PHASE1, replicas))

        # Phase 2: a send hangs at Respondent; the replica that holds it is SIGKILLed mid-delivery.
        before = len(relayed(world, c.jordan))
        world.respondent.hang_next_send(3.0)
        await researcher_replies(1, replicas)
        await eventually(lambda: len(relayed(world, c.jordan)) > before, within=20, what="a send in flight")
        in_flight_body = relayed(world, c.jordan)[-1]
        rows = await queue_rows(database_url)
        sending = [r for r in rows if r["kind"] == "respondent.send" and r["status"] == "working"]
        assert len(sending) == 1, format_rows(sending)
        victim_pid = _pid(sending[0]["lease_owner"])
        victim = next(r for r in replicas if r.pid == victim_pid)
        survivor = b if victim is a else a
        victim.kill()
        killed_at = time.monotonic()
        rows = await queue_rows(database_url)
        orphaned = [r for r in rows if r["status"] == "working" and _pid(r["lease_owner"]) == victim_pid]
        print(f"killed {victim.name} (pid {victim_pid}) holding {len(orphaned)} rows:\n{format_rows(orphaned)}")
        assert any(r["kind"] == "respondent.send" for r in orphaned)

        # The survivor keeps serving: more replies and participant messages, delivered to it alone.
        await asyncio.gather(researcher_replies(PHASE2, [survivor]), participant_messages(PHASE2, [survivor]))
        total_replies, total_writes = PHASE1 + 1 + PHASE2, PHASE1 + PHASE2
        assert (len(reply_bodies), len(write_bodies)) == (total_replies, total_writes)

        deadline = time.monotonic() + 60
        while True:
            if (
                len(relayed(world, c.jordan)) >= total_replies
                and len(participant_posts(world, root_ts)) >= total_writes
                and len(world.rally.archived(c.study_id)) >= total_replies + total_writes
            ):
                rows = await queue_rows(database_url)
                if not unfinished(rows):
                    break
            if time.monotonic() > deadline:
                rows = await queue_rows(database_url)
                raise AssertionError(
                    f"not settled: relayed {len(relayed(world, c.jordan))}/{total_replies}, mirrored "
                    f"{len(participant_posts(world, root_ts))}/{total_writes}, archived "
                    f"{len(world.rally.archived(c.study_id))}\n{format_rows(unfinished(rows))}"
                )
            await asyncio.sleep(0.25)
        print(f"settled {time.monotonic() - killed_at:.1f}s after the kill")

        # Exactly once, in order, everywhere.
        assert len(roots(world, c.jordan)) == 1
        assert relayed(world, c.jordan) == reply_bodies
        assert participant_posts(world, root_ts) == write_bodies
        archive = world.rally.archived(c.study_id)
        external_ids = [e["externalId"] for e in archive]
        assert len(external_ids) == len(set(external_ids)) == total_replies + total_writes
        assert Counter(e["body"] for e in archive) == Counter(reply_bodies + write_bodies)
        assert set(external_ids) == {f"slack:{world.slack.team_id}:{c.channel}:{reply_ts[x]}" for x in reply_bodies} | {
            f"respondent:{write_uid[x]}" for x in write_bodies
        }

        # The killed replica's claimed rows were finished by the survivor, and only after their lease expired.
        by_id: dict[tuple[str, int], dict[str, Any]] = {(r["table"], r["id"]): r for r in rows}
        for old in orphaned:
            now = by_id[(old["table"], old["id"])]
            assert now["status"] == "done", now
            assert _pid(now["lease_owner"]) == survivor.pid, now
            assert now["finished_at"] >= old["lease_until"], (old, now)
        relay_key = f"relay:slack:msg:{world.slack.team_id}:{c.channel}:{reply_ts[in_flight_body]}"
        relay_row = next(r for r in rows if r["key"] == relay_key)
        assert relay_row["needs_verify"] and relay_row["attempts"] >= 2, relay_row
        # Both replicas did work while both were up (the events really were shared).
        owners = {_pid(r["lease_owner"]) for r in rows}
        assert {a.pids[0], b.pids[0]} <= owners, owners
        print(f"replicas test took {time.monotonic() - started:.1f}s")
        ok = True
    finally:
        for r in replicas:
            r.stop()
        if not ok:
            for r in replicas:
                print(f"--- {r.name} output:\n{r.output()}")
            try:
                print(format_rows(await queue_rows(database_url)))
            except Exception as exc:
                print(f"(could not read the queues: {exc!r})")
        await world.stop()
