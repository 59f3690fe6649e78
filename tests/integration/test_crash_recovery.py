"""Crash recovery of a real `rallybridge serve` process: SIGKILL at random moments (and twice in the middle of a
delivery), restart on the same port, and still every message arrives exactly once, in order, and is archived once.

Seeded: the seed is printed; set RALLYBRIDGE_CRASH_SEED to replay one run.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from playground.world import World
from tests.integration.conftest import eventually
from tests.integration.flows import link_study, root_of
from tests.integration.processes import (
    BridgeProcess,
    RespondentWrite,
    SlackPost,
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

pytestmark = pytest.mark.slow

N_REPLIES = 30
M_WRITES = 30
RANDOM_KILLS = 3


def _seed() -> int:
    given = os.environ.get("RALLYBRIDGE_CRASH_SEED")
    return int(given) if given else random.SystemRandom().randrange(1_000_000)


def _bot_posts(world: World) -> list[dict[str, Any]]:
    return [m for m in world.slack.messages(world.cast.channel) if m.get("bot_id")]


async def _settled(world: World, database_url: str, root_ts: str, within: float) -> list[dict[str, Any]]:
    """Poll until every message has arrived everywhere and no queue row is unfinished; returns the rows."""
    c = world.cast
    deadline = time.monotonic() + within
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if (
            len(relayed(world, c.jordan)) >= N_REPLIES
            and len(participant_posts(world, root_ts)) >= M_WRITES
            and len(world.rally.archived(c.study_id)) >= N_REPLIES + M_WRITES
        ):
            rows = await queue_rows(database_url)
            if not unfinished(rows):
                return rows
        await asyncio.sleep(0.25)
    rows = await queue_rows(database_url)
    raise AssertionError(
        f"not settled after {within}s: relayed {len(relayed(world, c.jordan))}/{N_REPLIES}, "
        f"mirrored {len(participant_posts(world, root_ts))}/{M_WRITES}, "
        f"archived {len(world.rally.archived(c.study_id))}/{N_REPLIES + M_WRITES}\n"
        f"unfinished rows:\n{format_rows(unfinished(rows))}"
    )


async def test_sigkill_at_random_moments_loses_and_duplicates_nothing(database_url: str, tmp_path: Path) -> None:
    seed = _seed()
    print(f"crash-recovery seed: {seed} (RALLYBRIDGE_CRASH_SEED={seed} replays it)")
    rng = random.Random(seed)
    started = time.monotonic()

    world = await World.create(database_url, slack_options={"rate_limit": False})
    c = world.cast
    bridge = BridgeProcess(world.env(), tmp_path / "bridge.log")
    recorder = WebhookRecorder(world.respondent)
    events_url = f"{world.bridge_url}/slack/events"
    ok = False
    try:
        await bridge.start_healthy()
        await link_study(world)
        root_ts = str((await root_of(world, c.jordan))["ts"])

        # The script: replies and participant messages interleaved, kills at seeded moments.
        actions = ["reply"] * N_REPLIES + ["write"] * M_WRITES
        rng.shuffle(actions)
        candidates = list(range(3, len(actions) - 1))
        kill_points = set(rng.sample(candidates, RANDOM_KILLS))
        hang_send_at = rng.choice([i for i in candidates if actions[i] == "reply" and i not in kill_points])
        hang_post_at = rng.choice([i for i in candidates if actions[i] == "write" and i not in kill_points])
        print(
            f"kills after actions {sorted(kill_points)}; Respondent send in flight at {hang_send_at}; "
            f"Slack post in flight at {hang_post_at}"
        )

        tag = unique_tag()
        reply_bodies: list[str] = []
        reply_ts: dict[str, str] = {}
        write_bodies: list[str] = []
        write_uid: dict[str, str] = {}
        pending_slack: list[SlackPost] = []
        pending_respondent: list[RespondentWrite] = []
        down_budget = 0  # actions left to perform while the bridge is down
        in_flight: dict[str, str] = {}  # what was in flight at a deterministic kill

        async def perform(index: int) -> None:
            if actions[index] == "reply":
                body = f"R{len(reply_bodies):02d} {tag} what did you think of step {index}?"
                author = c.owner if len(reply_bodies) % 2 == 0 else c.teammate
                post = slack_post(world.slack, c.channel, author.slack_id, body, thread_ts=root_ts)
                reply_bodies.append(body)
                reply_ts[body] = post.ts
                status = await deliver_slack_envelope(world.slack, post.envelope, events_url)
                if status is None or not 200 <= status < 300:
                    pending_slack.append(post)
            else:
                body = f"P{len(write_bodies):02d} {tag} the coupon field at step {index} confused me"
                written = await participant_writes(world, c.jordan, body, recorder)
                write_bodies.append(body)
                write_uid[body] = written.uid
                if not written.delivered:
                    pending_respondent.append(written)

        async def restart() -> None:
            await bridge.start_healthy()
            # What Slack and Respondent gave up on while the bridge was down: delivered again, same event.
            for post in pending_slack:
                status = await deliver_slack_envelope(world.slack, post.envelope, events_url)
                assert status == 200, f"redelivery of {post.ts} answered {status}"
            for written in pending_respondent:
                statuses = await recorder.deliver(written.event)
                assert statuses == [200], f"redelivery of {written.uid} answered {statuses}"
            pending_slack.clear()
            pending_respondent.clear()

        def down() -> bool:
            return bridge.proc is None or bridge.proc.poll() is not None

        for index in range(len(actions)):
            if (index in kill_points or index in (hang_send_at, hang_post_at)) and down():
                await restart()
                down_budget = 0
            if index == hang_send_at:
                before = len(relayed(world, c.jordan))
                world.respondent.hang_next_send(3.0)
                await perform(index)
                # The send has reached Respondent (the message is recorded) but has not been answered yet.
                await eventually(lambda b=before: len(relayed(world, c.jordan)) > b, within=20, what="hung send")
                bridge.kill()
                in_flight["relay"] = relayed(world, c.jordan)[-1]
                down_budget = rng.randint(0, 2)
            elif index == hang_post_at:
                before = len(_bot_posts(world))
                world.slack.hang_next(3.0, method="chat.postMessage")
                await perform(index)
                await eventually(lambda b=before: len(_bot_posts(world)) > b, within=20, what="hung Slack post")
                bridge.kill()
                in_flight["mirror"] = _bot_posts(world)[-1]["text"].split("\n", 1)[-1]
                down_budget = rng.randint(0, 2)
            else:
                await perform(index)
                if index in kill_points:
                    await asyncio.sleep(rng.uniform(0.0, 0.4))  # the backlog is being worked on meanwhile
                    bridge.kill()
                    down_budget = rng.randint(0, 2)
                    continue
            if down():
                if down_budget > 0:
                    down_budget -= 1
                    continue
                await restart()
        if down():
            await restart()
        assert bridge.starts == 1 + RANDOM_KILLS + 2

        rows = await _settled(world, database_url, root_ts, within=90)

        # Researcher replies: each reached the participant exactly once, in the order they were posted.
        assert relayed(world, c.jordan) == reply_bodies
        # Participant messages: each in the Slack thread exactly once, in the order they were written.
        assert participant_posts(world, root_ts) == write_bodies
        # The archive: each message once, by externalId and by body.
        archive = world.rally.archived(c.study_id)
        external_ids = [e["externalId"] for e in archive]
        assert len(external_ids) == len(set(external_ids)) == N_REPLIES + M_WRITES
        assert Counter(e["body"] for e in archive) == Counter(reply_bodies + write_bodies)
        assert set(external_ids) == {f"slack:{world.slack.team_id}:{c.channel}:{reply_ts[b]}" for b in reply_bodies} | {
            f"respondent:{write_uid[b]}" for b in write_bodies
        }
        # Nothing is left pending, working or failed in the inbox or outbox.
        assert unfinished(rows) == []

        # The two in-flight effects were taken over after their lease expired and verified, not repeated.
        by_key = {r["key"]: r for r in rows}
        relay_row = by_key[f"relay:slack:msg:{world.slack.team_id}:{c.channel}:{reply_ts[in_flight['relay']]}"]
        assert relay_row["attempts"] >= 2 and relay_row["needs_verify"], relay_row
        mirror_row = by_key[f"mirror:{write_uid[in_flight['mirror']]}"]
        assert mirror_row["attempts"] >= 2 and mirror_row["needs_verify"], mirror_row
        print(f"settled after {time.monotonic() - started:.1f}s with {bridge.starts} starts")
        ok = True
    finally:
        bridge.stop()
        if not ok:
            print(f"seed {seed}; bridge output:\n{bridge.output()}")
            try:
                print(format_rows(await queue_rows(database_url)))
            except Exception as exc:
                print(f"(could not read the queues: {exc!r})")
        await world.stop()


async def test_burst_written_while_the_bridge_is_down_is_mirrored_in_writing_order(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sandbox.respondent as respondent_module

    world = await World.create(database_url, slack_options={"rate_limit": False})
    c = world.cast
    world.respondent.webhook_retries = 0
    bridge = BridgeProcess(world.env(), tmp_path / "bridge.log")
    recorder = WebhookRecorder(world.respondent)
    ok = False
    try:
        await bridge.start_healthy()
        await link_study(world)
        root_ts = str((await root_of(world, c.jordan))["ts"])
        world.respondent.add_conversation(
            c.project_id, c.jordan.respondent_user_id, first_name="Jordan", last_name="Lee"
        )
        bridge.kill()
        # Jordan sends three quick messages while the bridge is down. Respondent stamps messages in milliseconds,
        # so a burst can share one stamp; its ids (ObjectIds, made on several hosts) say nothing about order.
        stamp = respondent_module._now()
        ids = iter(["f" * 24, "e" * 24, "d" * 24])
        monkeypatch.setattr(respondent_module, "_now", lambda: stamp)
        monkeypatch.setattr(respondent_module, "_object_id", lambda: next(ids))
        bodies = ["wait", "I meant Tuesday", "not Wednesday"]
        writes = [await participant_writes(world, c.jordan, body, recorder) for body in bodies]
        monkeypatch.undo()
        assert not any(w.delivered for w in writes)
        await bridge.start_healthy()
        for written in writes:  # Respondent retries its webhooks once the bridge answers again
            assert await recorder.deliver(written.event) == [200]
        await eventually(lambda: len(participant_posts(world, root_ts)) >= 3, within=20, what="the burst mirrored")
        ok = True
        assert participant_posts(world, root_ts) == bodies
    finally:
        bridge.stop()
        if not ok:
            print(f"bridge output:\n{bridge.output()}")
        await world.stop()


async def test_sigterm_stops_serve_cleanly(database_url: str, tmp_path: Path) -> None:
    """SIGTERM (systemd, Docker, Kubernetes) stops `serve` like Ctrl-C: exit 0, background work shut down."""
    world = await World.create(database_url)
    bridge = BridgeProcess(world.env(), tmp_path / "bridge.log")
    try:
        await bridge.start_healthy()
        assert bridge.proc is not None
        bridge.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(bridge.proc.wait, 20)
        assert code == 0, bridge.output()
        assert "stopping (signal received)" in bridge.output()
    finally:
        bridge.kill()
        await world.stop()
