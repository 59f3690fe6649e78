"""Issue 13 on Teams: channel messages that concern no participant's reply chain are answered 200 without an inbox row
(the same ``bridge.inbox.record`` as Slack's, bridge/edge.py); a reply in a chain is stored and relayed as before."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import InboxEvent
from tests.integration.conftest import eventually
from tests.teams.conftest import CHANNEL, OTHER_CHANNEL, TeamsWorld


async def _inbox_keys(tw: TeamsWorld) -> list[str]:
    assert tw.world.bridge is not None
    async with tw.world.bridge.db.transaction() as session:
        return list((await session.execute(select(InboxEvent.key).order_by(InboxEvent.id))).scalars())


async def test_teams_messages_outside_the_reply_chains_are_answered_and_not_stored(tw: TeamsWorld) -> None:
    root_id = await tw.link()
    await tw.quiet()
    before = await _inbox_keys(tw)

    post = await tw.teams.posts(CHANNEL, tw.cast.owner, "lunch anyone?")  # a new post: top-level (posts asserts 200)
    await tw.teams.posts(CHANNEL, tw.cast.teammate, "yes!", root=post)  # a chain of people, not a participant's
    other = await tw.teams.posts(OTHER_CHANNEL, tw.cast.owner, "hi all")  # a channel linked to nothing
    await tw.teams.posts(OTHER_CHANNEL, tw.cast.teammate, "hello", root=other)
    await tw.teams.edits(CHANNEL, tw.cast.teammate, post, "yes! 12:30", root=post)

    assert await _inbox_keys(tw) == before
    assert tw.world.bridge is not None
    registry = tw.world.bridge.services.metrics.registry
    ignored = {
        kind: registry.get_sample_value("rallybridge_inbound_events_total", {"kind": kind, "result": "ignored"})
        for kind in ("chat.message", "chat.message_changed")
    }
    assert ignored == {"chat.message": 4, "chat.message_changed": 1}

    activity = await tw.teams.posts(CHANNEL, tw.cast.teammate, "See you Tuesday", root=root_id)
    assert [k for k in await _inbox_keys(tw) if k.endswith(f":{activity}")]
    assert await eventually(tw.sent_to_jordan, what="relay") == ["See you Tuesday"]
