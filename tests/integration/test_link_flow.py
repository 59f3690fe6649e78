"""Flow 1: linking a study to a channel, and every refusal."""

from __future__ import annotations

from sandbox.world import World
from tests.integration.conftest import eventually


def _ephemerals_for(world: World, user: str) -> list[str]:
    return [e["text"] for e in world.slack.ephemerals if e["user"] == user]


async def test_owner_links_study_and_approved_participant_gets_a_thread(world: World) -> None:
    c = world.cast
    result = await world.slack.run_command(c.channel, c.owner.slack_id, f"link {c.study_id}")
    assert result.status == 200
    messages = await eventually(
        lambda: [m for m in world.slack.messages(c.channel) if "Jordan L." in m.get("text", "")],
        what="Jordan's thread root",
    )
    assert len(messages) == 1
    root = messages[0]
    assert c.study_name in root["text"]
    confirmations = [m for m in world.slack.messages(c.channel) if "linked Rally study" in m.get("text", "")]
    assert len(confirmations) == 1 and "1 approved participant" in confirmations[0]["text"]
