"""Observability: every metric an operator needs moves with real traffic, and one correlation id follows
each message through every hop of a real `rallybridge serve` process's JSON logs, across retries and a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bridge.logs import CORRELATION_ID, correlation_id_for
from playground.world import World
from storage.models import InboxEvent, OutboxItem
from tests.integration.conftest import eventually
from tests.integration.flows import archived, link_study, participant_writes, root_of, sent_to
from tests.integration.processes import BridgeProcess

PENDING, DELIVERED, FAILED = "hourglass_flowing_sand", "white_check_mark", "x"


# ---- /metrics ---------------------------------------------------------------------------------------------


async def _metrics(world: World) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{world.bridge_url}/metrics") as response:
        assert response.status == 200
        return await response.text()


def _value(metrics: str, name: str, **labels: str) -> float:
    """The sample ``name`` whose labels include ``labels`` (0 when absent: a counter not yet incremented)."""
    for line in metrics.splitlines():
        if line.startswith("#") or not line.startswith((name + "{", name + " ")):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_every_operator_metric_moves_with_traffic(world: World) -> None:
    c = world.cast
    before = await _metrics(world)
    for family in (
        "rallybridge_queue_depth",
        "rallybridge_queue_oldest_age_seconds",
        "rallybridge_queue_failed_rows",
        "rallybridge_request_duration_seconds",
    ):
        assert f"# TYPE {family} " in before, family
    assert _value(before, "rallybridge_queue_depth", queue="outbox") == 0

    await link_study(world)
    root_ts = str((await root_of(world, c.jordan))["ts"])
    await participant_writes(world, c.jordan, "the participant writes")
    await eventually(lambda: len(archived(world)) == 1, what="participant message archived")

    # Respondent is down: the reply waits in the outbox, retried; the queue gauges show it.
    world.respondent.outage(503)
    waiting = await world.slack.user_posts(c.channel, c.owner.slack_id, "waits out an outage", thread_ts=root_ts)
    await eventually(lambda: PENDING in world.slack.reactions(c.channel, waiting), what="pending mark")
    await asyncio.sleep(0.3)
    during = await _metrics(world)
    assert _value(during, "rallybridge_queue_depth", queue="outbox") >= 1
    assert _value(during, "rallybridge_queue_oldest_age_seconds", queue="outbox") > 0
    assert _value(during, "rallybridge_retries_total", queue="outbox", kind="respondent.send") >= 1
    world.respondent.heal()
    await eventually(lambda: world.slack.reactions(c.channel, waiting) == {DELIVERED}, within=20, what="delivered")

    # Respondent refuses one for good; Slack delivers another event twice.
    world.respondent.fail_next(1, status=400, path_contains="/messages")
    refused = await world.slack.user_posts(c.channel, c.owner.slack_id, "refused", thread_ts=root_ts, deliveries=2)
    await eventually(lambda: FAILED in world.slack.reactions(c.channel, refused), what="failed mark")

    after = ""
    for _ in range(100):  # the marks and the archive call settle shortly after the reactions appear
        after = await _metrics(world)
        if _value(after, "rallybridge_queue_depth", queue="outbox") == 0:
            break
        await asyncio.sleep(0.1)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert sent_to(world, c.jordan) == ["waits out an outage"]
    assert delta("rallybridge_messages_total", direction="from_participant", platform="slack") == 1
    assert delta("rallybridge_messages_total", direction="to_participant", platform="slack") == 1
    assert delta("rallybridge_effects_total", kind="rally.archive") == 2
    assert delta("rallybridge_retries_total", queue="outbox", kind="respondent.send") >= 1
    assert delta("rallybridge_permanent_failures_total", queue="outbox", kind="respondent.send") == 1
    assert delta("rallybridge_queue_failed_rows", queue="outbox") == 1
    assert _value(after, "rallybridge_queue_depth", queue="outbox") == 0
    assert _value(after, "rallybridge_queue_depth", queue="inbox") == 0
    assert _value(after, "rallybridge_queue_oldest_age_seconds", queue="outbox") == 0
    assert delta("rallybridge_inbound_events_total", kind="respondent.message_created", result="stored") == 1
    assert delta("rallybridge_inbound_events_total", kind="chat.command", result="stored") == 1
    assert delta("rallybridge_inbound_events_total", kind="chat.message", result="stored") >= 2
    assert delta("rallybridge_inbound_events_total", kind="chat.message", result="duplicate") >= 1
    slack_ok = {"route": "/slack/events", "status": "200"}
    assert delta("rallybridge_request_duration_seconds_count", **slack_ok) >= 4  # command + 3 event deliveries
    assert delta("rallybridge_request_duration_seconds_bucket", le="+Inf", **slack_ok) >= 4
    assert delta("rallybridge_request_duration_seconds_sum", **slack_ok) > 0
    webhook_ok = {"route": "/webhooks/respondent", "status": "200"}
    assert delta("rallybridge_request_duration_seconds_count", **webhook_ok) >= 1


# ---- correlation ids in JSON logs -------------------------------------------------------------------------


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every JSON line a process wrote. The harness's ===== markers are not JSON, nor is a line cut off by
    SIGKILL."""
    lines = []
    for raw in text.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            if raw.startswith("{"):
                lines.append(json.loads(raw))
    return lines


async def _rows(database_url: str) -> tuple[list[InboxEvent], list[OutboxItem]]:
    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            inbox = list((await session.scalars(select(InboxEvent).order_by(InboxEvent.id))).all())
            outbox = list((await session.scalars(select(OutboxItem).order_by(OutboxItem.id))).all())
        return inbox, outbox
    finally:
        await engine.dispose()


def _row_lines(lines: list[dict[str, Any]], queue: str, row_id: int) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("queue") == queue and line.get("row") == row_id]


def _assert_one_journey(
    lines: list[dict[str, Any]], outbox: list[OutboxItem], inbox_row: InboxEvent, outbox_keys: list[str]
) -> str:
    """The inbound line, the processing lines and every line of each outbox row in ``outbox_keys`` carry the
    correlation id derived from ``inbox_row``'s key; returns it."""
    cid = correlation_id_for(inbox_row.key)
    stored = [line for line in lines if line["event"] == f"stored inbound {inbox_row.kind}"]
    assert any(line.get(CORRELATION_ID) == cid for line in stored), f"no inbound line with {cid}"
    processing = _row_lines(lines, "inbox", inbox_row.id)
    assert processing and {line.get(CORRELATION_ID) for line in processing} == {cid}
    assert any(line["event"].startswith("inbox row") and "done" in line["event"] for line in processing)
    by_key = {row.key: row for row in outbox}
    for key in outbox_keys:
        row = by_key[key]
        assert row.payload.get(CORRELATION_ID) == cid, key
        hop = _row_lines(lines, "outbox", row.id)
        assert hop, f"no log line for outbox row {key}"
        assert {line.get(CORRELATION_ID) for line in hop} == {cid}, key
        assert any(" done after " in line["event"] for line in hop), key
    return cid


@pytest.mark.slow
async def test_one_correlation_id_follows_each_message_through_every_hop(database_url: str, tmp_path: Path) -> None:
    world = await World.create(database_url, slack_options={"rate_limit": False})
    c = world.cast
    env = {
        **world.env(),
        "RALLYBRIDGE_LOG_FORMAT": "json",
        "RALLYBRIDGE_LOG_LEVEL": "INFO",
        "RALLYBRIDGE_RETRY_BASE_SECONDS": "0.2",
        "RALLYBRIDGE_RETRY_CAP_SECONDS": "1",
    }
    log_path = tmp_path / "bridge.log"
    bridge = BridgeProcess(env, log_path)
    bodies = ["Jordan writes: my PIN is 4711", "Ana asks: what about step two?", "Ana again: still there?"]
    try:
        await bridge.start_healthy()
        await link_study(world)
        root_ts = str((await root_of(world, c.jordan))["ts"])

        # A participant message: webhook -> inbox -> mirror into the thread + archive.
        uid = await participant_writes(world, c.jordan, bodies[0])
        await eventually(lambda: len(archived(world)) == 1, what="participant message archived")

        # A reply that meets one temporary failure: retry, pending mark, delivery, marks settled, archive.
        world.respondent.fail_next(1, status=503, path_contains="/messages")
        first = await world.slack.user_posts(c.channel, c.owner.slack_id, bodies[1], thread_ts=root_ts)
        await eventually(lambda: world.slack.reactions(c.channel, first) == {DELIVERED}, within=20, what="delivered")
        await eventually(lambda: len(archived(world)) == 2, what="reply archived")

        # A reply that is still waiting when the process is killed, and is delivered by the next process.
        world.respondent.outage(503)
        second = await world.slack.user_posts(c.channel, c.owner.slack_id, bodies[2], thread_ts=root_ts)
        await eventually(lambda: PENDING in world.slack.reactions(c.channel, second), within=20, what="pending")
        bridge.kill()
        world.respondent.heal()
        await bridge.start_healthy()
        await eventually(lambda: world.slack.reactions(c.channel, second) == {DELIVERED}, within=30, what="after")
        await eventually(lambda: len(archived(world)) == 3, what="second reply archived")
        await asyncio.sleep(0.5)  # let the last marks' lines be written
    finally:
        bridge.stop()
        await world.stop()

    assert sent_to(world, c.jordan) == bodies[1:]
    log_text = log_path.read_text(errors="replace")
    lines = _json_lines(log_text)
    assert lines, log_text[-5000:]
    inbox, outbox = await _rows(database_url)

    def reply_row(ts: str) -> InboxEvent:
        return next(r for r in inbox if r.kind == "chat.message" and r.payload["ts"] == ts)

    def archived_in_relay_row(ts: str, relay_key: str, cid: str) -> None:
        """A delivered relay archives in its own row (no archive row of its own) under the same id."""
        assert not [r.key for r in outbox if r.kind == "rally.archive" and r.key.endswith(f":{ts}")]
        relay_id = next(r.id for r in outbox if r.key == relay_key)
        follow = [line for line in _row_lines(lines, "outbox", relay_id) if "followed up" in line["event"]]
        assert any("archived True" in line["event"] for line in follow), follow
        assert {line.get(CORRELATION_ID) for line in follow} == {cid}

    def marks(ts: str) -> list[str]:
        wanted = tuple(f"{c.channel}:{ts}:{name}" for name in (PENDING, DELIVERED))
        found = [r.key for r in outbox if r.key.endswith(wanted)]
        assert len(found) == 3, found  # pending on, pending off, delivered on
        return found

    # The participant's message.
    webhook_row = next(r for r in inbox if r.kind == "respondent.message_created")
    _assert_one_journey(lines, outbox, webhook_row, [f"mirror:{uid}", f"archive:respondent:{uid}"])

    # The first reply: every hop, including the retried send and the pending mark put on and taken off.
    row = reply_row(first)
    cid = _assert_one_journey(lines, outbox, row, [f"relay:{row.key}", *marks(first)])
    archived_in_relay_row(first, f"relay:{row.key}", cid)
    relay_id = next(r.id for r in outbox if r.key == f"relay:{row.key}")
    retry_lines = [line for line in _row_lines(lines, "outbox", relay_id) if "will retry" in line["event"]]
    assert retry_lines and all(line[CORRELATION_ID] == cid for line in retry_lines)

    # The second reply: retried in the first process, delivered by the second, under the same id.
    row = reply_row(second)
    relay_key = f"relay:{row.key}"
    cid2 = _assert_one_journey(lines, outbox, row, [relay_key, *marks(second)])
    archived_in_relay_row(second, relay_key, cid2)
    assert cid2 != cid
    relay_id = next(r.id for r in outbox if r.key == relay_key)
    before_kill, after_restart = (_json_lines(part) for part in log_text.split("===== bridge start #2", 1))
    assert any("will retry" in line["event"] for line in _row_lines(before_kill, "outbox", relay_id))
    delivered = [line for line in _row_lines(after_restart, "outbox", relay_id) if " done " in line["event"]]
    assert delivered and delivered[0][CORRELATION_ID] == cid2

    # Nothing at INFO or above carries a message body or a secret.
    secret_names = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "RESPONDENT_API_SECRET", "RESPONDENT_WEBHOOK_KEY")
    secrets = [env[name] for name in (*secret_names, "RALLY_API_TOKEN", "RALLY_WEBHOOK_SECRET")]
    for needle in [*bodies, *secrets]:
        assert needle not in log_text, f"{needle!r} appears in the logs"
    assert {line["level"] for line in lines} <= {"info", "warning", "error", "critical"}
