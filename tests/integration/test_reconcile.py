"""The periodic reconcile: it catches what lost webhooks missed, and it is incremental (call counts, not times)."""

from __future__ import annotations

import time
from collections import Counter

from bridge import reconcile_schedule
from playground.world import World
from tests.integration.conftest import eventually
from tests.integration.flows import archived, link_study, participant_writes, replies, root_of, roots

SEARCH = "POST /studies/{sid}/participants/search"
LIST = "GET /v1/messaging/conversations"
GET_ONE = "GET /v1/messaging/conversations/{uid}"


async def reconcile_round(world: World, cycle: str) -> tuple[Counter[str], Counter[str]]:
    """One reconcile of every linked study; the calls it made to Rally and Respondent, by endpoint."""
    assert world.bridge is not None
    await world.quiet(wait_scheduled=True)
    rally, respondent = Counter(world.rally.calls), Counter(world.respondent.calls)
    assert await world.bridge.queue_reconciles(cycle=cycle) == 1
    await world.quiet(wait_scheduled=True)
    return Counter(world.rally.calls) - rally, Counter(world.respondent.calls) - respondent


def pause_tick(world: World) -> None:
    """No reconcile but the ones the test queues (the periodic tick could add calls to a count)."""
    assert world.bridge is not None and world.bridge.scheduler is not None
    world.bridge.scheduler.pause_job("reconcile")


async def test_a_lost_message_webhook_is_caught_by_the_next_reconcile(world: World) -> None:
    c = world.cast
    pause_tick(world)
    await link_study(world)
    root = await root_of(world, c.jordan)
    world.respondent.webhook_url = None  # the webhook is lost
    uid = await participant_writes(world, c.jordan, "did you get this?")
    await world.quiet()
    assert replies(world, root) == []
    _, respondent = await reconcile_round(world, "after-loss")
    posted = await eventually(lambda: replies(world, root), what="the caught message")
    assert len(posted) == 1 and "did you get this?" in posted[0]["text"]
    assert [e["respondentMessageUid"] for e in archived(world)] == [uid]
    assert respondent == Counter({LIST: 1})  # the list carried the message: no conversation read on its own


async def test_a_lost_approval_is_caught_with_what_the_participant_wrote_before(world: World) -> None:
    c = world.cast
    pause_tick(world)
    await link_study(world)
    await participant_writes(world, c.priya, "I wrote before you approved me")  # no thread yet: not mirrored
    world.rally.webhook_url = None
    await world.rally.approve(c.study_id, c.priya.participant_id)  # the webhook is lost
    await world.quiet()
    assert roots(world, c.priya) == []
    rally, respondent = await reconcile_round(world, "after-approval")
    root = await root_of(world, c.priya)
    posted = await eventually(lambda: replies(world, root), what="the earlier message")
    assert "I wrote before you approved me" in posted[0]["text"]
    await world.quiet()
    assert len(roots(world, c.priya)) == 1 and len(replies(world, root)) == 1
    # The reconcile read each list once; the thread it opened queued one catch-up read of the project.
    assert rally[SEARCH] == 1 and respondent == Counter({LIST: 2})


async def test_an_idle_reconcile_reads_each_list_once_and_writes_nothing(world: World) -> None:
    c = world.cast
    pause_tick(world)
    await link_study(world)
    root = await root_of(world, c.jordan)
    for n in range(3):
        await participant_writes(world, c.jordan, f"message {n}")
    await eventually(lambda: len(replies(world, root)) == 3, what="three messages")
    await reconcile_round(world, "first")
    slack_posts = len(world.slack.messages(c.channel))
    rally, respondent = await reconcile_round(world, "idle")
    assert rally == Counter({SEARCH: 1}) and respondent == Counter({LIST: 1})
    assert len(world.slack.messages(c.channel)) == slack_posts


async def test_linking_reads_the_project_once_for_all_its_new_threads(world: World) -> None:
    c = world.cast
    pause_tick(world)
    world.respondent.webhook_url = None  # written before the link: nobody was listening
    for who in (c.priya, c.sam):
        world.rally.participants[c.study_id][who.participant_id]["approvalStatus"] = "APPROVED"
        await participant_writes(world, who, f"hello from {who.first_name}")
    await link_study(world)
    for who in (c.jordan, c.priya, c.sam):
        await root_of(world, who)
    await world.quiet(wait_scheduled=True)
    assert world.rally.calls[SEARCH] == 1
    assert world.respondent.calls == Counter({LIST: 1})  # one catch-up for three new threads
    for who in (c.priya, c.sam):
        root = await root_of(world, who)
        assert f"hello from {who.first_name}" in replies(world, root)[0]["text"]


async def test_reads_grow_by_pages_not_by_conversations(world: World) -> None:
    c = world.cast
    pause_tick(world)
    for n in range(250):  # 253 participants: three pages of 100 at Rally
        world.rally.add_participant(
            c.study_id, f"pa_extra{n}", "Extra", "Person", email=None, respondent_user_id=f"{n:024x}"
        )
    for n in range(120):  # 120 conversations of people without a thread: three pages of 50 at Respondent
        world.respondent.add_conversation(c.project_id, f"{n:024x}")
    await link_study(world)
    rally, respondent = await reconcile_round(world, "paged")
    assert rally == Counter({SEARCH: 3}) and respondent == Counter({LIST: 3})


async def test_when_lists_carry_no_messages_only_changed_conversations_are_read(world: World) -> None:
    """The docs do not say whether conversation lists embed messages: without them, a conversation is read on its
    own only when its latest message is not a participant message already mirrored."""
    c = world.cast
    pause_tick(world)
    world.respondent.list_embeds_messages = False
    await link_study(world)
    root = await root_of(world, c.jordan)
    await participant_writes(world, c.jordan, "first")
    await eventually(lambda: replies(world, root), what="the first message")
    _, respondent = await reconcile_round(world, "idle")
    assert respondent == Counter({LIST: 1})  # latest message mirrored: nothing to read

    world.respondent.webhook_url = None
    await participant_writes(world, c.jordan, "lost, then answered")
    world.respondent.webhook_url = f"{world.bridge_url}/webhooks/respondent"
    # A researcher answers: the conversation's latest message is now ours, which says nothing about the one before.
    reply = await world.slack.user_posts(c.channel, c.owner.slack_id, "Thanks!", thread_ts=root["ts"])
    await eventually(lambda: world.respondent.messages_to(c.jordan.respondent_user_id), what="the relay")
    _, respondent = await reconcile_round(world, "after-relay")
    assert respondent == Counter({LIST: 1, GET_ONE: 1})
    posted = await eventually(
        lambda: [m for m in replies(world, root) if "lost, then answered" in m.get("text", "")], what="caught"
    )
    assert len(posted) == 1 and reply


async def test_the_tick_queues_only_the_studies_that_came_due(world: World) -> None:
    c = world.cast
    pause_tick(world)
    await link_study(world)
    bridge = world.bridge
    assert bridge is not None
    interval = bridge.settings.reconcile_interval_seconds
    _, due = reconcile_schedule.current_cycle(c.study_id, interval, time.time())
    bridge.reconciles_queued_until = due - 0.001
    assert await bridge.queue_due_reconciles() == 1
    assert await bridge.queue_due_reconciles() == 0  # not due again until the next interval
    bridge.reconciles_queued_until = due + 0.001
    assert await bridge.queue_due_reconciles() == 0
