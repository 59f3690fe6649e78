"""Behaviours 1 and 2 of the live case: the root card is updated in place as the story goes (state, owner, last
message each way), and a thread gets an owner (the card's ``Assign to me``, ``/rally assign``) who may message the
participant; reassigning says who from and to in the thread."""

from __future__ import annotations

from playground.world import World
from tests.cases.conftest import FakeClock, card_of, command, linked, private_to, thread_texts, unescape
from tests.integration.conftest import eventually
from tests.integration.flows import participant_writes, sent_to


def _drawn(world: World, root_ts: str) -> list[str]:
    """The card's texts as the updates drew them, a repeat of the same drawing counted once: a row whose outcome
    could not be recorded (a lease lost on a loaded machine) is performed again, and redraws the same card."""
    texts = [str(m.get("text", "")) for m in world.slack.update_history(world.cast.channel, root_ts)]
    return [t for i, t in enumerate(texts) if i == 0 or t != texts[i - 1]]


def _updates(world: World, root_ts: str) -> int:
    return len(world.slack.update_history(world.cast.channel, root_ts))


async def test_the_card_changes_as_the_story_goes(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    card = card_of(world, root_ts)
    assert "Nobody has written yet" in card and "Owner: nobody yet" in card

    await participant_writes(world, c.jordan, "Is there parking at the office?")
    await eventually(lambda: "Waiting on the team since" in card_of(world, root_ts), what="waiting on the team")
    assert "Last message: from participant" in card_of(world, root_ts)

    await world.slack.user_posts(c.channel, c.owner.slack_id, "Yes, level -1.", thread_ts=root_ts)
    await eventually(lambda: sent_to(world, c.jordan) == ["Yes, level -1."], what="the reply relayed")
    await eventually(lambda: "Waiting on the participant" in card_of(world, root_ts), what="waiting on them")
    card = card_of(world, root_ts)
    assert "Waiting on the team" not in card and "from team" in card and "from participant" in card
    await world.quiet()
    # What the card costs: one chat.update per message each way (no more, however the rows are processed).
    assert len(_drawn(world, root_ts)) == 2 and _updates(world, root_ts) <= 3


async def test_messages_read_together_cost_one_card_update(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    await world.quiet()
    before = len(_drawn(world, root_ts))
    for n in range(5):  # their webhooks are lost: the next reconcile reads the five together
        await participant_writes(world, c.jordan, f"message {n}", deliveries=0)
    assert world.bridge is not None
    await world.bridge.queue_reconciles(cycle="burst")
    await eventually(lambda: "Waiting on the team since" in card_of(world, root_ts), what="the card redrawn")
    await world.quiet()
    assert len(_drawn(world, root_ts)) - before == 1
    mirrored = [unescape(t) for t in thread_texts(world, root_ts) if "message " in t]
    assert mirrored == [f"*Jordan L.* (participant):\nmessage {n}" for n in range(5)]


async def _run(world: World, user: str, text: str) -> None:
    """A command whose answer is said in the thread (not privately)."""
    assert (await world.slack.run_command(world.cast.channel, user, text)).status == 200


async def test_assign_to_me_then_reassign_says_who_from_and_to(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    await _run(world, c.owner.slack_id, "assign pa_jordan")  # what the card's Assign to me button runs
    await eventually(lambda: "Owner: Ana Ortiz" in card_of(world, root_ts), what="Ana on the card")
    await eventually(  # the notice has the thread's lane, the card its own: either may be first
        lambda: "Ana Ortiz now owns Jordan L.'s thread" in " ".join(unescape(t) for t in thread_texts(world, root_ts)),
        what="the owner said in the thread",
    )

    await _run(world, c.owner.slack_id, "assign Jordan @Chloe Park")
    await eventually(lambda: "Owner: Chloe Park" in card_of(world, root_ts), what="Chloe on the card")
    moved = await eventually(
        lambda: [unescape(t) for t in thread_texts(world, root_ts) if "moved from" in unescape(t)], what="the move"
    )
    assert moved == ["Jordan L.'s thread moved from Ana Ortiz to Chloe Park (by Ana Ortiz)."]

    said = await command(world, c.teammate.slack_id, "assign Jordan")
    assert "Chloe Park already owns Jordan L.'s thread" in unescape(said)


async def test_only_people_who_may_message_the_participant_may_own_it(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    said = unescape(await command(world, c.owner.slack_id, "assign Jordan @Ben Ito"))
    assert "Ben Ito can't own this thread" in said and "external-panel access" in said
    said = unescape(await command(world, c.owner.slack_id, "assign Jordan @Nobody Here"))
    assert "I can't tell who “@Nobody Here” is" in said
    said = unescape(await command(world, c.no_access.slack_id, "assign Jordan"))
    assert "external-panel access" in said
    await world.quiet()
    assert "Owner: nobody yet" in card_of(world, root_ts)
    assert not [t for t in thread_texts(world, root_ts) if "owns" in t or "moved from" in t]
    assert private_to(world, c.outsider.slack_id) == []
