"""What an operator watches: /metrics moves with the traffic, /readyz says whether the schema is current."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from playground.world import World
from storage.db import create_engine
from tests.integration.conftest import eventually
from tests.integration.flows import archived, link_study, participant_writes, root_of, sent_to


async def _get(world: World, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{world.bridge_url}{path}") as response:
        return response.status, await response.text()


def _value(metrics: str, name: str, **labels: str) -> float:
    for line in metrics.splitlines():
        named = line.startswith((name + "{", name + " "))
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_messages_both_ways_and_show_the_queues(world: World) -> None:
    c = world.cast
    await link_study(world)
    root = await root_of(world, c.jordan)
    await participant_writes(world, c.jordan, "hello team")
    await world.slack.user_posts(c.channel, c.owner.slack_id, "hello Jordan", thread_ts=root["ts"])
    await eventually(lambda: sent_to(world, c.jordan) and len(archived(world)) == 2, what="both ways done")
    status, metrics = await _get(world, "/metrics")
    assert status == 200
    assert _value(metrics, "rallybridge_messages_total", direction="to_participant", platform="slack") == 1
    assert _value(metrics, "rallybridge_messages_total", direction="from_participant", platform="slack") == 1
    assert re.search(r'rallybridge_queue_depth\{queue="outbox"\} \d', metrics)
    assert 'rallybridge_request_duration_seconds_count{route="/slack/events",status="200"}' in metrics


async def test_retries_and_permanent_failures_are_counted(world: World) -> None:
    c = world.cast
    await link_study(world)
    root = await root_of(world, c.jordan)
    world.respondent.fail_next(1, status=503, path_contains="/messages")
    await world.slack.user_posts(c.channel, c.owner.slack_id, "retried once", thread_ts=root["ts"])
    await eventually(lambda: sent_to(world, c.jordan), what="delivery after one retry")
    world.respondent.fail_next(1, status=400, path_contains="/messages")
    await world.slack.user_posts(c.channel, c.owner.slack_id, "refused", thread_ts=root["ts"])

    metrics = ""
    for _ in range(100):
        metrics = (await _get(world, "/metrics"))[1]
        if _value(metrics, "rallybridge_permanent_failures_total", queue="outbox", kind="respondent.send") == 1:
            break
        await asyncio.sleep(0.1)
    assert _value(metrics, "rallybridge_retries_total", queue="outbox", kind="respondent.send") >= 1
    assert _value(metrics, "rallybridge_permanent_failures_total", queue="outbox", kind="respondent.send") == 1


async def test_readyz_reports_the_database_and_schema(world: World) -> None:
    status, body = await _get(world, "/readyz")
    assert status == 200 and '"ready": true' in body
    assert world.bridge is not None
    db = world.bridge.db  # what readiness checks: an empty database in its place
    working, db.engine = db.engine, create_engine("sqlite+aiosqlite:///:memory:")
    try:
        status, body = await _get(world, "/readyz")
    finally:
        await db.engine.dispose()
        db.engine = working
    assert status == 503 and "rallybridge db upgrade" in body
