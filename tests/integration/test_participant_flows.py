"""Flows 2 and 3: a participant approved gets exactly one thread; what they write appears there once."""

from __future__ import annotations

import asyncio

from playground.world import World
from tests.integration.conftest import eventually
from tests.integration.flows import archived, link_study, participant_writes, replies, root_of, roots


async def test_approval_webhook_opens_one_thread_even_when_delivered_twice(world: World) -> None:
    c = world.cast
    await link_study(world)
    await world.rally.approve(c.study_id, c.priya.participant_id, deliveries=2)
    root = await root_of(world, c.priya)
    assert "Checkout redesign interviews" in root["text"]
    assert "schedule/pa_priya" in str(root.get("blocks")) + root["text"]
    await world.quiet()
    assert len(roots(world, c.priya)) == 1


async def test_racing_approval_and_reconcile_still_give_one_thread(world: World) -> None:
    c = world.cast
    await link_study(world)
    assert world.bridge is not None
    world.rally.participants[c.study_id][c.sam.participant_id]["approvalStatus"] = "APPROVED"
    await asyncio.gather(
        world.rally.approve(c.study_id, c.sam.participant_id),
        world.bridge.queue_reconciles(),
        world.rally.approve(c.study_id, c.sam.participant_id),
    )
    await root_of(world, c.sam)
    await world.quiet()
    assert len(roots(world, c.sam)) == 1


async def test_participant_message_appears_in_thread_escaped_and_is_archived(world: World) -> None:
    c = world.cast
    await link_study(world)
    root = await root_of(world, c.jordan)
    uid = await participant_writes(world, c.jordan, "Hi <!channel> see <https://evil.example|your bank> & <@U0ANA>")
    posted = await eventually(lambda: replies(world, root), what="mirrored message")
    assert len(posted) == 1
    text = posted[0]["text"]
    assert "Jordan L." in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "&lt;https://evil.example|your bank&gt;" in text and "&amp;" in text
    entry = (await eventually(lambda: archived(world), what="archive"))[0]
    assert entry["direction"] == "FROM_PARTICIPANT" and entry["respondentMessageUid"] == uid
    assert entry["author"]["type"] == "PARTICIPANT" and entry["source"] == "RESPONDENT"
    assert entry["body"].startswith("Hi <!channel>")


async def test_messages_keep_their_order_and_duplicated_webhooks_are_absorbed(world: World) -> None:
    c = world.cast
    await link_study(world)
    root = await root_of(world, c.jordan)
    for n in range(5):
        await participant_writes(world, c.jordan, f"message {n}", deliveries=2)
    posted = await eventually(lambda: len(replies(world, root)) >= 5 and replies(world, root), what="5 messages")
    await world.quiet()
    texts = [m["text"] for m in replies(world, root)]
    assert len(texts) == 5
    assert [t.rsplit("message ", 1)[1] for t in texts] == ["0", "1", "2", "3", "4"]
    await eventually(lambda: len(archived(world)) == 5, what="5 archived")
    assert posted


async def test_webhook_without_conversation_is_resolved_from_the_linked_project(world: World) -> None:
    c = world.cast
    await link_study(world)
    root = await root_of(world, c.jordan)
    await participant_writes(world, c.jordan, "no refs in this webhook", include_refs=False)
    posted = await eventually(lambda: replies(world, root), what="mirrored message")
    assert "no refs in this webhook" in posted[0]["text"]


async def test_messages_written_before_approval_appear_once_the_thread_opens(world: World) -> None:
    c = world.cast
    await link_study(world)
    await participant_writes(world, c.priya, "I wrote before you approved me")
    await world.quiet()  # what Priya wrote was handled (no thread yet) before the approval
    await world.rally.approve(c.study_id, c.priya.participant_id)
    root = await root_of(world, c.priya)
    posted = await eventually(lambda: replies(world, root), what="caught-up message")
    assert "I wrote before you approved me" in posted[0]["text"]


async def test_opt_out_seen_by_two_paths_at_once_is_announced_once(world: World) -> None:
    """An opt-out webhook and a reconcile can both read the thread as not yet opted out (concurrent transactions on
    PostgreSQL, found by the reliability suite): the notice is keyed by the thread, so it is posted once."""
    from sqlalchemy import update

    from bridge.handlers import handle
    from core.events import EventKind
    from core.records import QueuedRow
    from storage.models import ParticipantThread
    from storage.queue import utcnow
    from storage.uow import SqlUnitOfWork

    c = world.cast
    await link_study(world)
    root = await root_of(world, c.jordan)
    assert world.bridge is not None
    services = world.bridge.services
    world.rally.participants[c.study_id][c.jordan.participant_id]["status"] = "OPTED_OUT"
    opt_out = QueuedRow(
        1,
        "rally:webhook:msg_a",
        EventKind.RALLY_PERSON_OPTED_OUT.value,
        "l",
        {"email": c.jordan.email, "opted_out": True},
        1,
        False,
        utcnow(),
    )
    status = QueuedRow(
        2,
        "rally:webhook:msg_b",
        EventKind.RALLY_PARTICIPANT_STATUS.value,
        "l",
        {"study_id": c.study_id, "participant_id": c.jordan.participant_id, "status": "OPTED_OUT"},
        1,
        False,
        utcnow(),
    )
    first, second = await handle(services, opt_out), await handle(services, status)
    async with world.bridge.db.transaction() as session:
        await first(SqlUnitOfWork(session))
    async with world.bridge.db.transaction() as session:  # the other transaction had read the thread before the first
        await session.execute(update(ParticipantThread).values(opted_out=False))
        await second(SqlUnitOfWork(session))
    services.wakeup.set()
    await eventually(lambda: [m for m in replies(world, root) if "opted out" in m.get("text", "")], what="notice")
    await world.quiet()
    assert len([m for m in replies(world, root) if "opted out" in m.get("text", "")]) == 1


async def test_messages_from_a_second_conversation_with_the_same_participant_are_not_lost(world: World) -> None:
    # Found by the reliability suite: a relay opening a conversation while the participant opened another one.
    c = world.cast
    await link_study(world)
    root = await root_of(world, c.jordan)
    world.respondent.add_conversation(c.project_id, c.jordan.respondent_user_id)
    await participant_writes(world, c.jordan, "in the first conversation")
    await eventually(lambda: len(replies(world, root)) == 1, what="first message")
    world.respondent.add_conversation(c.project_id, c.jordan.respondent_user_id)
    await participant_writes(world, c.jordan, "in the second conversation")
    posted = await eventually(lambda: len(replies(world, root)) == 2 and replies(world, root), what="second message")
    assert "in the second conversation" in posted[1]["text"]
    await eventually(lambda: len(archived(world)) == 2, what="both archived")
