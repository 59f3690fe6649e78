"""Study-wide updates: previewed (the first three filled-in messages, the exact count, who is skipped) before
anything leaves; on Confirm one relay per participant, each exactly once however often Confirm is clicked, each in
that participant's own thread and in the archive; opted-out participants skipped and counted; one summary in the
channel; only someone allowed to message every recipient may send it."""

from __future__ import annotations

from typing import Any

from playground.world import World
from tests.composed.conftest import FakeClock, command, linked, thread_texts, unescape
from tests.integration.conftest import eventually
from tests.integration.flows import archived, root_of, sent_to

MESSAGE = "Hi {first_name}, a reminder that {study} sessions are in Room 4. — {researcher}"


async def _three(world: World) -> dict[str, str]:
    """Jordan, Priya and Sam approved: their thread roots."""
    c = world.cast
    roots = {"jordan": await linked(world)}
    for who in (c.priya, c.sam):
        await world.rally.approve(c.study_id, who.participant_id)
        roots[who.first_name.lower()] = str((await root_of(world, who))["ts"])
    await world.quiet()
    return roots


def _last_private(world: World, user: str) -> dict[str, Any]:
    return [e for e in world.slack.ephemerals if e["user"] == user][-1]


def _summary(world: World) -> list[str]:
    return [
        unescape(m.get("text", ""))
        for m in world.slack.messages(world.cast.channel)
        if "Study update from" in m.get("text", "")
    ]


async def test_preview_then_confirm_sends_each_exactly_once_with_a_summary(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    roots = await _three(world)
    preview = unescape(await command(world, c.owner.slack_id, f"update all -- {MESSAGE}"))
    assert "Update to 3 participants of Checkout redesign interviews (all)" in preview
    assert (
        "→ Jordan L.: Hi Jordan, a reminder that Checkout redesign interviews sessions are in Room 4. — Ana Ortiz"
        in preview
    )
    assert "Nothing is sent until you confirm." in preview
    await world.quiet()
    assert all(sent_to(world, who) == [] for who in (c.jordan, c.priya, c.sam))  # the preview sent nothing

    message = _last_private(world, c.owner.slack_id)
    for _ in range(2):  # a double click
        await world.slack.click(c.channel, c.owner.slack_id, "Confirm: send to 3", ephemeral=message)
    summary = await eventually(lambda: _summary(world), what="the channel summary")
    assert summary == [
        "Study update from Ana Ortiz to Checkout redesign interviews: 3 sent, 0 skipped (opted out), 0 failed."
    ]
    await world.quiet()  # the summary waits for the relays; the notices and archives have lanes of their own
    for who in (c.jordan, c.priya, c.sam):
        expected = (
            f"Hi {who.first_name}, a reminder that Checkout redesign interviews sessions are in Room 4. — Ana Ortiz"
        )
        assert sent_to(world, who) == [expected]
        shown = [t for t in thread_texts(world, roots[who.first_name.lower()]) if "sent a study-wide update" in t]
        assert len(shown) == 1
    entries = [e for e in archived(world) if e["externalId"].startswith("rallybridge:update:")]
    assert len(entries) == 3 and {e["author"]["name"] for e in entries} == {"Ana Ortiz"}
    again = unescape(_last_private(world, c.owner.slack_id)["text"])
    assert "already sent" in again  # the second click was told, and sent nothing


async def test_opted_out_participants_are_skipped_and_counted(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    await _three(world)
    await world.rally.opt_out(c.sam.email)
    await eventually(
        lambda: [t for t in world.slack.messages(c.channel) if "opted out" in t.get("text", "")], what="opt-out"
    )
    preview = unescape(await command(world, c.owner.slack_id, "update all -- Hello {first_name}!"))
    assert "Update to 2 participants" in preview and "Skipped: 1 opted out (Sam C.)" in preview
    await world.slack.click(
        c.channel, c.owner.slack_id, "Confirm: send to 2", ephemeral=_last_private(world, c.owner.slack_id)
    )
    summary = await eventually(lambda: _summary(world), what="the channel summary")
    assert "2 sent, 1 skipped (opted out), 0 failed." in summary[0]
    assert sent_to(world, c.sam) == []


async def test_audiences_cancel_and_who_may_send(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    await _three(world)
    await world.rally.move_session(c.study_id, c.priya.participant_id, None)
    await world.quiet()  # the status webhook has cleared her session on the thread
    preview = unescape(await command(world, c.owner.slack_id, "update unbooked -- We still need a time, {first_name}."))
    assert "Update to 1 participant of" in preview and "→ Priya S.: We still need a time, Priya." in preview
    await world.slack.click(c.channel, c.owner.slack_id, "Cancel", ephemeral=_last_private(world, c.owner.slack_id))
    assert "Update cancelled" in unescape(
        (await eventually(lambda: [e for e in world.slack.ephemerals if "cancelled" in e["text"]], what="cancel"))[0][
            "text"
        ]
    )
    preview = unescape(await command(world, c.owner.slack_id, "update list Jordan, Sam -- Quick check-in."))
    assert "Update to 2 participants" in preview and "Jordan L." in preview and "Sam C." in preview
    said = unescape(await command(world, c.owner.slack_id, "update everyone -- Hi"))
    assert "“everyone” is not an audience" in said
    said = unescape(await command(world, c.owner.slack_id, "update all -- Hi {frist_name}"))
    assert "can't be filled in" in said and "unknown {frist_name}" in said
    said = unescape(await command(world, c.no_access.slack_id, "update all -- Hi"))
    assert "You may not message Jordan L., Priya S., Sam C.:" in said and "external-panel access" in said
    await world.quiet()
    assert all(sent_to(world, who) == [] for who in (c.jordan, c.priya, c.sam))
