"""Steps shared by the flow tests, written as what people do."""

from __future__ import annotations

from typing import Any

from playground.world import Candidate, World
from tests.integration.conftest import eventually


async def link_study(world: World) -> None:
    c = world.cast
    result = await world.slack.run_command(c.channel, c.owner.slack_id, f"link {c.study_id}")
    assert result.status == 200
    await root_of(world, c.jordan)


def roots(world: World, who: Candidate) -> list[dict[str, Any]]:
    name = f"{who.first_name} {who.last_name[0]}."
    return [
        m
        for m in world.slack.messages(world.cast.channel)
        if name in m.get("text", "")
        and m.get("thread_ts") in (None, m["ts"])
        and "Reply in this thread" in m.get("text", "")
    ]


async def root_of(world: World, who: Candidate) -> dict[str, Any]:
    found = await eventually(lambda: roots(world, who), what=f"{who.first_name}'s thread")
    return dict(found[0])


def replies(world: World, root: dict[str, Any]) -> list[dict[str, Any]]:
    return list(world.slack.thread(world.cast.channel, root["ts"]))


async def participant_writes(world: World, who: Candidate, body: str, **options: Any) -> str:
    return await world.respondent.participant_writes(
        world.cast.project_id,
        who.respondent_user_id,
        body,
        first_name=who.first_name,
        last_name=who.last_name,
        **options,
    )


def archived(world: World) -> list[dict[str, Any]]:
    return list(world.rally.archived(world.cast.study_id))


def sent_to(world: World, who: Candidate) -> list[str]:
    return [m["body"] for m in world.respondent.messages_to(who.respondent_user_id)]
