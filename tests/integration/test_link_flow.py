"""Flow 1: linking a study to a channel, and every refusal."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from playground.world import World
from storage.models import InboxEvent, StudyLink
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


async def _command_reply(world: World, user: str, text: str) -> str:
    before = len(_ephemerals_for(world, user))
    result = await world.slack.run_command(world.cast.channel, user, text)
    assert result.status == 200, result.body
    replies = await eventually(lambda: _ephemerals_for(world, user)[before:], what=f"reply to /rally {text}")
    return str(replies[0])


async def test_unknown_study_is_refused_naming_it(world: World) -> None:
    reply = await _command_reply(world, world.cast.owner.slack_id, "link st_nope")
    assert 'no study "st_nope"' in reply and "URL" in reply


async def test_study_not_recruiting_from_respondent_is_refused(world: World) -> None:
    reply = await _command_reply(world, world.cast.owner.slack_id, f"link {world.cast.other_study_id}")
    assert "does not recruit from Respondent" in reply


async def test_person_not_on_the_team_cannot_link(world: World) -> None:
    reply = await _command_reply(world, world.cast.outsider.slack_id, f"link {world.cast.study_id}")
    assert "not on the team" in reply
    assert not [m for m in world.slack.messages(world.cast.channel) if "linked Rally study" in m.get("text", "")]


async def test_teammate_without_external_panel_access_cannot_link(world: World) -> None:
    reply = await _command_reply(world, world.cast.no_access.slack_id, f"link {world.cast.study_id}")
    assert "without external-panel access" in reply


async def test_deactivated_rally_user_cannot_link(world: World) -> None:
    world.rally.users["usr_chloe"]["status"] = "DEACTIVATED"
    reply = await _command_reply(world, world.cast.teammate.slack_id, f"link {world.cast.study_id}")
    assert "deactivated" in reply


async def test_a_study_has_one_channel(world: World) -> None:
    c = world.cast
    await _command_reply(world, c.owner.slack_id, "help")  # warm up nothing; just the help reply
    await world.slack.run_command(c.channel, c.owner.slack_id, f"link {c.study_id}")
    await eventually(lambda: world.slack.messages(c.channel), what="link confirmation")
    before = len(_ephemerals_for(world, c.owner.slack_id))
    await world.slack.run_command("C0OTHER", c.owner.slack_id, f"link {c.study_id}")
    replies = await eventually(lambda: _ephemerals_for(world, c.owner.slack_id)[before:], what="refusal")
    assert "already bridged to another channel" in replies[0]
    assert world.slack.messages("C0OTHER") == []


async def test_help_and_unknown_commands_explain_themselves(world: World) -> None:
    # Our own text is escaped too: "<studyId>" must not reach Slack as a control sequence.
    assert "/rally link &lt;studyId&gt;" in await _command_reply(world, world.cast.owner.slack_id, "help")
    assert 'don\'t know the command "frobnicate"' in await _command_reply(
        world, world.cast.owner.slack_id, "frobnicate"
    )
    assert "Tell me which study" in await _command_reply(world, world.cast.owner.slack_id, "link")


async def test_unlink_stops_the_bridge_and_says_so(world: World) -> None:
    c = world.cast
    await world.slack.run_command(c.channel, c.owner.slack_id, f"link {c.study_id}")
    await eventually(lambda: [m for m in world.slack.messages(c.channel) if "Jordan" in m.get("text", "")])
    await world.slack.run_command(c.channel, c.owner.slack_id, f"unlink {c.study_id}")
    await eventually(
        lambda: [m for m in world.slack.messages(c.channel) if "unlinked" in m.get("text", "")], what="unlink notice"
    )


async def test_link_in_a_public_channel_without_the_bot_joins_it_and_links(world: World) -> None:
    c = world.cast
    world.slack.add_channel("C0NEWPUB", "checkout-new", bot_member=False)
    result = await world.slack.run_command("C0NEWPUB", c.owner.slack_id, f"link {c.study_id}")
    assert result.status == 200 and "Checking the study" in result.body
    assert "C0NEWPUB" not in world.slack.bot_absent  # the bot joined before answering
    roots = await eventually(
        lambda: [m for m in world.slack.messages("C0NEWPUB") if "Jordan L." in m.get("text", "")],
        what="Jordan's thread root in the newly joined channel",
    )
    assert len(roots) == 1


async def test_command_in_a_private_channel_without_the_bot_says_to_invite_it_and_stores_nothing(
    world: World,
) -> None:
    c = world.cast
    assert world.bridge is not None
    world.slack.add_channel("G0SECRET", "secret-study", bot_member=False, private=True)
    async with world.bridge.db.transaction() as session:
        before = (await session.execute(select(func.count()).select_from(InboxEvent))).scalar_one()
    result = await world.slack.run_command("G0SECRET", c.owner.slack_id, f"link {c.study_id}")
    assert result.status == 200
    assert "/invite @Rally Bridge" in json.loads(result.body)["text"]
    async with world.bridge.db.transaction() as session:
        after = (await session.execute(select(func.count()).select_from(InboxEvent))).scalar_one()
        links = (await session.execute(select(func.count()).select_from(StudyLink))).scalar_one()
    assert (after, links) == (before, 0)
    assert world.slack.messages("G0SECRET") == [] and "G0SECRET" in world.slack.bot_absent
    # Once invited, the same command works.
    world.slack.bot_absent.discard("G0SECRET")
    result = await world.slack.run_command("G0SECRET", c.owner.slack_id, f"link {c.study_id}")
    assert "Checking the study" in result.body
    await eventually(
        lambda: [m for m in world.slack.messages("G0SECRET") if "linked Rally study" in m.get("text", "")],
        what="the link confirmation after the invite",
    )


async def test_rally_refusing_the_bridge_during_link_is_answered_privately_with_the_reason(world: World) -> None:
    """A 401 from Rally after the command was acknowledged: the researcher is told why and what to do, nothing is
    linked (before, the inbox row failed silently and the researcher waited for an answer that never came)."""
    c = world.cast
    world.rally.fail_next(1, status=401, path_contains=f"/studies/{c.study_id}")

    answer = await _command_reply(world, c.owner.slack_id, f"link {c.study_id}")

    assert '"link" could not be done' in answer and "401" in answer and "check-config" in answer
    assert world.bridge is not None
    async with world.bridge.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(StudyLink))).scalar_one() == 0
