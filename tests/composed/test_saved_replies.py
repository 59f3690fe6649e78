"""Saved replies: saved per workspace or per study, listed, sent to one participant with the placeholders filled,
through the same permission check, relay, archive and exactly-once path as a typed reply; a placeholder that is
unknown or has nothing to fill it is refused privately before anything is sent."""

from __future__ import annotations

from playground.world import World
from tests.composed.conftest import FakeClock, command, linked, thread_texts, unescape
from tests.integration.conftest import eventually
from tests.integration.flows import archived, sent_to


async def test_save_list_and_send_a_saved_reply_with_placeholders(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    said = unescape(
        await command(
            world, c.owner.slack_id, "reply add welcome Hi {first_name}, thanks for joining {study}! — {researcher}"
        )
    )
    assert "Saved reply “welcome” saved for the workspace" in said
    said = unescape(await command(world, c.owner.slack_id, "reply study parking Park on level -1, {first_name}."))
    assert "saved for Checkout redesign interviews" in said
    listed = unescape(await command(world, c.teammate.slack_id, "replies"))
    assert "• parking (Checkout redesign interviews)" in listed and "• welcome (the workspace)" in listed

    result = await world.slack.run_command(c.channel, c.teammate.slack_id, "reply Jordan welcome")
    assert result.status == 200
    sent = await eventually(lambda: sent_to(world, c.jordan), what="the saved reply relayed")
    assert sent == ["Hi Jordan, thanks for joining Checkout redesign interviews! — Chloe Park"]
    notice = await eventually(
        lambda: [unescape(t) for t in thread_texts(world, root_ts) if "sent the saved reply" in t], what="notice"
    )
    welcome = "Hi Jordan, thanks for joining Checkout redesign interviews! — Chloe Park"
    assert notice == [f"Chloe Park sent the saved reply “welcome”:\n{welcome}"]
    entry = (await eventually(lambda: archived(world), what="archived"))[-1]
    assert entry["author"]["name"] == "Chloe Park" and entry["direction"] == "TO_PARTICIPANT"
    assert entry["externalId"].startswith("rallybridge:saved:")
    await world.quiet()
    assert len(sent_to(world, c.jordan)) == 1  # once


async def test_the_cards_saved_reply_button_offers_one_button_per_reply(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    await linked(world)
    await command(world, c.owner.slack_id, "reply add hello Hello {first_name}!")
    said = unescape(await command(world, c.owner.slack_id, "replies pa_jordan"))  # what the card's button runs
    assert "Send Jordan L. a saved reply" in said
    buttons = [e for e in world.slack.ephemerals if e["user"] == c.owner.slack_id][-1]
    assert "reply pa_jordan hello" in str(buttons.get("blocks"))


async def test_unknown_or_unfillable_placeholders_are_refused_before_anything_is_sent(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    await world.rally.move_session(c.study_id, c.jordan.participant_id, None)
    await linked(world)
    said = unescape(await command(world, c.owner.slack_id, "reply add typo Hi {frist_name}"))
    assert "Not saved: I don't know {frist_name}" in said
    await command(world, c.owner.slack_id, "reply add when See you at {session_time}")
    said = unescape(await command(world, c.owner.slack_id, "reply Jordan when"))
    assert "Nothing was sent to Jordan L.: nothing to fill {session_time} for them" in said
    said = unescape(await command(world, c.owner.slack_id, "reply Jordan nope"))
    assert "No saved reply “nope” here (saved replies: when)" in said
    said = unescape(await command(world, c.no_access.slack_id, "reply Jordan when"))
    assert "external-panel access" in said
    await world.quiet()
    assert sent_to(world, c.jordan) == [] and archived(world) == []


async def test_the_message_shortcut_in_a_thread_offers_the_saved_replies(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    await command(world, c.owner.slack_id, "reply add hello Hello {first_name}!")
    posted = await world.slack.user_posts(c.channel, c.owner.slack_id, "// a note in the thread", thread_ts=root_ts)
    before = len([e for e in world.slack.ephemerals if e["user"] == c.owner.slack_id])
    shortcut = await world.slack.message_shortcut(c.channel, c.owner.slack_id, posted, "rallybridge_saved_reply")
    assert shortcut.status == 200
    offered = await eventually(
        lambda: [e for e in world.slack.ephemerals if e["user"] == c.owner.slack_id][before:], what="the offer"
    )
    assert "Send Jordan L. a saved reply" in unescape(offered[0]["text"])
    await world.slack.click(c.channel, c.owner.slack_id, "Send “hello”", ephemeral=offered[0])
    await eventually(lambda: sent_to(world, c.jordan) == ["Hello Jordan!"], what="the saved reply sent")
