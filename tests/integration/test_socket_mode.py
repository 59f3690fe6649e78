"""Slack over Socket Mode with a real `rallybridge serve` process: SLACK_APP_TOKEN set, no signing secret, no
public Slack route. The Slack stand-in speaks Socket Mode (sandbox/slack/socket_mode.py): the bridge opens the
websocket, events and ``/rally`` arrive as envelopes, and every ack must come after the event is in the inbox.

Store-before-ack is checked two ways: when the stand-in receives an ack it looks up the event's inbox row (it must
be there), and while an envelope is delivered the test holds ``LOCK TABLE inbox IN EXCLUSIVE MODE`` (reads go on,
inserts wait), so a bridge that acked before storing would ack while the row cannot exist yet. Both fail such a
bridge deterministically instead of depending on a race.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from playground.world import World
from sandbox.slack.socket_mode import SocketEnvelope
from tests.integration.conftest import eventually
from tests.integration.flows import root_of
from tests.integration.processes import BridgeProcess, format_rows, queue_rows, relayed, unfinished, unique_tag

pytestmark = pytest.mark.slow

T = TypeVar("T")
LOCK_SECONDS = 1.0


def inbox_key(envelope: SocketEnvelope) -> str:
    """The inbox key the bridge stores this envelope under (core/events.py)."""
    payload = envelope.payload
    if envelope.type == "slash_commands":
        return f"slack:command:{payload['trigger_id']}"
    event = payload["event"]
    return f"slack:msg:{payload['team_id']}:{event['channel']}:{event['ts']}"


@dataclass
class AckAudit:
    """Looks up the inbox row at the moment each ack reaches the stand-in."""

    engine: AsyncEngine
    seen: list[tuple[str, bool, float]] = field(default_factory=list)  # (inbox key, row existed, ack time)

    async def on_ack(self, envelope: SocketEnvelope, ack: dict[str, Any]) -> None:
        at = time.time()
        key = inbox_key(envelope)
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT id FROM inbox WHERE key = :key"), {"key": key})).first()
        self.seen.append((key, row is not None, at))

    def acks_for(self, envelope: SocketEnvelope) -> list[tuple[bool, float]]:
        key = inbox_key(envelope)
        return [(found, at) for k, found, at in self.seen if k == key]

    async def under_lock(self, deliver: Callable[[], Awaitable[T]]) -> tuple[T, float]:
        """Run ``deliver`` while inserts into the inbox wait for LOCK_SECONDS; returns its result and the time
        the lock was released."""
        locked = asyncio.Event()
        released: list[float] = []

        async def hold() -> None:
            async with self.engine.connect() as conn, conn.begin():
                await conn.execute(text("LOCK TABLE inbox IN EXCLUSIVE MODE"))
                locked.set()
                await asyncio.sleep(LOCK_SECONDS)
                released.append(time.time())

        holder = asyncio.create_task(hold())
        await asyncio.wait_for(locked.wait(), 10)
        try:
            result = await deliver()
        finally:
            await holder
        return result, released[0]


@dataclass
class SocketBridge:
    world: World
    bridge: BridgeProcess
    audit: AckAudit


@pytest.fixture
async def socket_bridge(postgres_url: str, tmp_path: Path) -> AsyncIterator[SocketBridge]:
    world = await World.create(postgres_url, slack_options={"rate_limit": False, "socket_mode": True})
    env = {k: v for k, v in world.env().items() if k != "SLACK_SIGNING_SECRET"}
    env["SLACK_APP_TOKEN"] = world.slack.app_token
    bridge = BridgeProcess(env, tmp_path / "bridge.log")
    engine = create_async_engine(postgres_url)
    audit = AckAudit(engine)
    world.slack.on_ack = audit.on_ack
    try:
        await bridge.start_healthy()
        await world.slack.wait_for_socket(within=20)
        yield SocketBridge(world, bridge, audit)
    finally:
        bridge.stop()
        with contextlib.suppress(Exception):
            rows = await queue_rows(postgres_url)
            if unfinished(rows):
                print(format_rows(unfinished(rows)))
        print(bridge.output(8000))
        await engine.dispose()
        await world.stop()


def assert_stored_before_ack(audit: AckAudit, envelope: SocketEnvelope, released: float | None = None) -> None:
    acks = audit.acks_for(envelope)
    assert len(acks) == 1, f"expected one accepted ack for {inbox_key(envelope)}, got {acks}"
    found, at = acks[0]
    assert found, f"acked before {inbox_key(envelope)} was in the inbox"
    if released is not None:
        assert at >= released, "acked while the inbox could not take the row (lock held): acked before storing"


async def exactly_once(world: World, bodies: list[str], *, settle: float = 1.5) -> None:
    c = world.cast
    await eventually(lambda: relayed(world, c.jordan) == bodies, within=20, what=f"relayed {bodies}")
    await asyncio.sleep(settle)  # a duplicate relay would show up by now
    assert relayed(world, c.jordan) == bodies


async def test_reply_and_command_over_socket_are_stored_before_the_ack_and_relayed_once(
    socket_bridge: SocketBridge,
) -> None:
    world, audit = socket_bridge.world, socket_bridge.audit
    slack, c = world.slack, world.cast
    assert slack.calls("apps.connections.open") == 1
    assert "Slack over Socket Mode" in socket_bridge.bridge.output()
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{world.bridge_url}/slack/events", json={"type": "url_verification"}) as response,
    ):
        assert response.status == 404  # no public Slack route in Socket Mode

    # /rally link over the socket: a slash_commands envelope, acked with the ephemeral answer as its payload.
    result, released = await audit.under_lock(
        lambda: slack.run_command(c.channel, c.owner.slack_id, f"link {c.study_id}")
    )
    command = slack.envelopes[-1]
    assert_stored_before_ack(audit, command, released)
    assert result.status == 200
    assert command.type == "slash_commands" and command.accepts_response_payload
    assert isinstance(result.json, dict) and result.json.get("text"), result.body  # the ephemeral answer
    root_ts = str((await root_of(world, c.jordan))["ts"])

    # A thread reply over the socket: an events_api envelope.
    body = f"{unique_tag()} which step felt slowest?"
    _, released = await audit.under_lock(lambda: slack.user_posts(c.channel, c.owner.slack_id, body, thread_ts=root_ts))
    reply = slack.envelopes[-1]
    assert reply.type == "events_api" and reply.deliveries == 1
    assert_stored_before_ack(audit, reply, released)
    await exactly_once(world, [body])
    assert all(ack.accepted for ack in slack.socket_acks), slack.socket_acks


async def test_dropped_socket_reconnects_and_an_unacked_envelope_is_redelivered_and_handled_once(
    socket_bridge: SocketBridge,
) -> None:
    world, audit = socket_bridge.world, socket_bridge.audit
    slack, c = world.slack, world.cast
    result = await slack.run_command(c.channel, c.owner.slack_id, f"link {c.study_id}")
    assert result.status == 200
    root_ts = str((await root_of(world, c.jordan))["ts"])
    tag = unique_tag()

    # A reply acked on the first connection, then the connection drops: it is not lost and not sent again.
    first = f"{tag} first: acked before the drop"
    await slack.user_posts(c.channel, c.owner.slack_id, first, thread_ts=root_ts)
    acked_before_drop = slack.envelopes[-1]
    await slack.drop_socket()
    await eventually(lambda: slack.connections_opened == 2 and slack.socket_connections == 1, what="a reconnect")
    assert slack.calls("apps.connections.open") == 2  # a fresh URL for the new connection

    # A reply delivered, then the socket drops before its ack can arrive: delivered again on the next connection,
    # stored once, relayed once. Inserts wait meanwhile, so the ack that counts must come after the lock.
    second = f"{tag} second: delivered, the socket dropped before the ack"
    slack.drop_after_next_envelope()
    _, released = await audit.under_lock(
        lambda: slack.user_posts(c.channel, c.owner.slack_id, second, thread_ts=root_ts)
    )
    redelivered = slack.envelopes[-1]
    assert redelivered.deliveries == 2, redelivered.envelope_ids
    assert slack.connections_opened == 3
    # The bridge acks both deliveries once each is stored (or found stored); the ack of the first may only reach
    # the stand-in over the new connection. Exactly one ack counts, on the new connection.
    accepted = [a for a in slack.socket_acks if a.envelope_id in redelivered.envelope_ids and a.accepted]
    assert len(accepted) == 1 and accepted[0].connection == 3, slack.socket_acks
    assert_stored_before_ack(audit, redelivered, released)

    # Slack recycles the connection gracefully: disconnect/refresh_requested, the client opens a new one first.
    await slack.drop_socket(graceful=True)
    await eventually(lambda: slack.connections_opened == 4 and slack.socket_connections == 1, what="a refresh")
    third = f"{tag} third: after a refresh"
    await slack.user_posts(c.channel, c.owner.slack_id, third, thread_ts=root_ts)

    await exactly_once(world, [first, second, third])
    assert acked_before_drop.deliveries == 1
    for envelope in slack.envelopes:
        assert envelope.acked.done()
        assert len(audit.acks_for(envelope)) == 1 and audit.acks_for(envelope)[0][0]
    rows = await queue_rows(world.database_url)
    keys = [r["key"] for r in rows if r["table"] == "inbox"]
    assert keys.count(inbox_key(redelivered)) == 1
