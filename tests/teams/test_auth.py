"""Inbound authentication on /api/messages: only tokens the Teams channel signed for this bot get in."""

from __future__ import annotations

import time

from sqlalchemy import text

from sandbox.teams import TeamsPerson
from sandbox.teams.openid import new_key
from tests.integration.conftest import eventually
from tests.teams.conftest import CHANNEL, TeamsWorld


async def _stored(tw: TeamsWorld) -> tuple[int, int]:
    assert tw.world.bridge is not None
    async with tw.world.bridge.db.engine.connect() as conn:
        inbox = (await conn.execute(text("SELECT count(*) FROM inbox"))).scalar_one()
        refs = (await conn.execute(text("SELECT count(*) FROM teams_conversations"))).scalar_one()
    return int(inbox), int(refs)


async def test_a_valid_channel_token_is_accepted_and_the_message_stored(tw: TeamsWorld) -> None:
    # A command (a plain top-level post would be answered without an inbox row: bridge/edge.py).
    activity = tw.teams.activity(CHANNEL, tw.cast.owner, "help", mention_bot=True)
    delivery = await tw.teams.deliver(activity)
    assert delivery.status == 200, delivery
    assert await _stored(tw) == (1, 1)
    # the signature was checked against the key this sandbox published
    assert tw.teams.openid.prefix + "/v1/keys" in tw.teams.openid.requests


async def test_missing_expired_wrong_audience_and_wrong_key_are_refused_and_nothing_is_stored(
    tw: TeamsWorld,
) -> None:
    teams, service_url = tw.teams, tw.teams.service_url
    bad = {
        "missing": None,
        "not a bearer": "",
        "expired": teams.openid.token(teams.app_id, service_url, issued_at=time.time() - 7200, lifetime=3600),
        "wrong audience": teams.openid.token("some-other-bot", service_url),
        "wrong signing key": teams.openid.token(teams.app_id, service_url, key=new_key()),
        "wrong issuer": teams.openid.token(teams.app_id, service_url, issuer="https://evil.example"),
        "other service url": teams.openid.token(teams.app_id, "https://smba.evil.example/"),
        "garbage": "not.a.jwt",
    }
    for what, token in bad.items():
        activity = teams.activity(CHANNEL, tw.cast.owner, f"sneaky ({what})")
        delivery = await teams.deliver(activity, token=token)
        assert delivery.status == 401, (what, delivery)
    await tw.quiet()
    assert await _stored(tw) == (0, 0)
    assert teams.connector.request_log == []


async def test_malformed_bodies_get_400_after_the_header_check(tw: TeamsWorld) -> None:
    import aiohttp

    token = tw.teams.openid.token(tw.teams.app_id, tw.teams.service_url)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{tw.teams.bridge_url}/api/messages", data=b"{nope") as resp:
            assert resp.status == 401  # no token: refused before the body is even read as JSON
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with session.post(f"{tw.teams.bridge_url}/api/messages", data=b"{nope", headers=headers) as resp:
            assert resp.status == 400
    await eventually(lambda: True)
    assert await _stored(tw) == (0, 0)


async def test_a_sandbox_without_app_id_accepts_unsigned_activities(database_url: str) -> None:
    """RALLYBRIDGE_TEAMS_SANDBOX=1 and no app id: no authentication (what `serve` refuses outside a sandbox)."""
    from playground.world import World
    from sandbox.teams import TeamsSandbox

    world = await World.create(database_url, slack_options={"rate_limit": False})
    teams = await TeamsSandbox.create(world.bridge_url)
    teams.connector.add_channel(CHANNEL, "Checkout study")
    try:
        await world.start_bridge(worker_poll_seconds=0.05, RALLYBRIDGE_TEAMS_SANDBOX="1")
        delivery = await teams.deliver(teams.activity(CHANNEL, TeamsPerson("29:x", "X", None), "hi"), token=None)
        assert delivery.status == 200, delivery
    finally:
        await world.stop()
        await teams.stop()
