"""Behaviours 4 and 5 of the live case: the team's last message is marked seen when Respondent's conversation says
the participant read it (from the reconcile's own list: no call of its own), and what the team said to the
participant from outside the thread (Respondent's own chat) appears in the thread once, attributed, in order, and is
archived."""

from __future__ import annotations

from playground.world import World
from tests.cases.conftest import FakeClock, card_of, linked, thread_texts, unescape
from tests.integration.conftest import eventually
from tests.integration.flows import archived, participant_writes, sent_to


async def _reconcile(world: World, cycle: str) -> None:
    assert world.bridge is not None
    await world.bridge.queue_reconciles(cycle=cycle)
    await world.quiet()


async def test_a_reply_the_participant_read_is_marked_seen(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    ts = await world.slack.user_posts(c.channel, c.owner.slack_id, "Your session is on Monday.", thread_ts=root_ts)
    await eventually(lambda: sent_to(world, c.jordan), what="the reply relayed")
    await world.quiet()
    await _reconcile(world, "before-reading")  # delivered, not read yet: nothing is seen
    assert "eyes" not in world.slack.reactions.get((c.channel, ts), set())
    assert "Seen by participant" not in card_of(world, root_ts)

    world.respondent.participant_reads(c.jordan.respondent_user_id)
    calls = dict(world.respondent.calls)
    await _reconcile(world, "after-reading")
    await eventually(lambda: "eyes" in world.slack.reactions.get((c.channel, ts), set()), what="the seen mark")
    await eventually(lambda: "Seen by participant" in card_of(world, root_ts), what="the card's seen line")
    # The read flag came with the conversation list the reconcile reads anyway: one list call, nothing else.
    made = {endpoint: n - calls.get(endpoint, 0) for endpoint, n in world.respondent.calls.items()}
    assert {e: n for e, n in made.items() if n} == {"GET /v1/messaging/conversations": 1}

    # The team writes again: what was seen is no longer the last message.
    await world.slack.user_posts(c.channel, c.owner.slack_id, "Bring an ID, please.", thread_ts=root_ts)
    await eventually(lambda: len(sent_to(world, c.jordan)) == 2, what="the second reply relayed")
    await eventually(lambda: "Seen by participant" not in card_of(world, root_ts), what="the seen line gone")


async def test_a_message_sent_from_respondent_appears_once_attributed_and_archived(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    root_ts = await linked(world)
    await participant_writes(world, c.jordan, "Can I bring my laptop?")
    await eventually(lambda: "Waiting on the team" in card_of(world, root_ts), what="Jordan waiting")
    sent = await world.respondent.researcher_writes_outside(
        c.project_id, c.jordan.respondent_user_id, "Sure, bring it <b>along</b>!", first_name="Dana", last_name="Reed"
    )
    said = await eventually(
        lambda: [unescape(t) for t in thread_texts(world, root_ts) if "sent from Respondent" in t], what="outside"
    )
    assert said == ["📨 To the participant, sent from Respondent by Dana Reed:\nSure, bring it <b>along</b>!"]
    await eventually(lambda: "Waiting on the participant" in card_of(world, root_ts), what="the wait over")
    entries = await eventually(
        lambda: [e for e in archived(world) if e["respondentMessageUid"] == sent["uid"]], what="archived"
    )
    assert entries[0]["direction"] == "TO_PARTICIPANT" and entries[0]["source"] == "RESPONDENT"
    assert entries[0]["author"]["name"] == "Dana Reed"

    await _reconcile(world, "again")  # read again: nothing twice
    texts = thread_texts(world, root_ts)
    assert len([t for t in texts if "sent from Respondent" in t]) == 1
    assert len([t for t in texts if "Can I bring my laptop?" in t]) == 1
    order = [t for t in texts if "laptop" in t or "sent from Respondent" in t]
    assert "laptop" in order[0] and "sent from Respondent" in order[1]  # in the order they were written
    assert sent_to(world, c.jordan) == []  # the bridge sent nothing itself: Dana did, from Respondent


async def test_the_bridge_never_takes_its_own_relay_for_one_said_outside(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    for n in range(3):
        await world.slack.user_posts(c.channel, c.owner.slack_id, f"reply {n}", thread_ts=root_ts)
        await _reconcile(world, f"during-{n}")  # reconciles racing the relays
    await eventually(lambda: len(sent_to(world, c.jordan)) == 3, what="three relays")
    await _reconcile(world, "after")
    assert not [t for t in thread_texts(world, root_ts) if "sent from Respondent" in t]
