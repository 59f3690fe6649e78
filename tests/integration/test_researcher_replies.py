"""Flow 4: a researcher replies in a participant's thread: checked, relayed, archived, acknowledged."""

from __future__ import annotations

from playground.world import World
from tests.integration.conftest import eventually
from tests.integration.flows import archived, link_study, root_of, sent_to


def _private(world: World, user: str) -> list[str]:
    return [e["text"] for e in world.slack.ephemerals if e["user"] == user]


async def _thread_root_ts(world: World) -> str:
    await link_study(world)
    return str((await root_of(world, world.cast.jordan))["ts"])


async def test_teammate_reply_is_relayed_archived_and_marked_delivered(world: World) -> None:
    c = world.cast
    root_ts = await _thread_root_ts(world)
    # Chloe's Slack email differs in case from her Rally email: matched case-insensitively.
    ts = await world.slack.user_posts(
        c.channel,
        c.teammate.slack_id,
        "Hi Jordan &lt;3 see <https://rally.example/s|the schedule> <@U0ANA>",
        thread_ts=root_ts,
    )
    sent = await eventually(lambda: sent_to(world, c.jordan), what="relay to Respondent")
    assert sent == ["Hi Jordan <3 see the schedule (https://rally.example/s) @Ana Ortiz"]
    await eventually(lambda: "white_check_mark" in world.slack.reactions.get((c.channel, ts), set()), what="reaction")
    entry = (await eventually(lambda: archived(world), what="archive"))[0]
    assert entry["direction"] == "TO_PARTICIPANT" and entry["source"] == "SLACK"
    author = entry["author"]
    assert (author["type"], author["userId"], author["name"]) == ("RESEARCHER", "usr_chloe", "Chloe Park")
    assert entry["respondentMessageUid"] == world.respondent.messages_to(c.jordan.respondent_user_id)[0]["uid"]
    assert entry["externalId"].endswith(f":{c.channel}:{ts}")


async def test_reply_reuses_the_participants_existing_conversation(world: World) -> None:
    c = world.cast
    root_ts = await _thread_root_ts(world)
    existing = world.respondent.add_conversation(c.project_id, c.jordan.respondent_user_id)
    await world.slack.user_posts(c.channel, c.owner.slack_id, "first", thread_ts=root_ts)
    await world.slack.user_posts(c.channel, c.owner.slack_id, "second", thread_ts=root_ts)
    await eventually(lambda: len(sent_to(world, c.jordan)) == 2, what="two relays")
    conversations = {m["conversationUid"] for m in world.respondent.messages_to(c.jordan.respondent_user_id)}
    assert conversations == {existing}
    assert sent_to(world, c.jordan) == ["first", "second"]


async def test_non_teammate_is_refused_privately_and_nothing_leaves(world: World) -> None:
    c = world.cast
    root_ts = await _thread_root_ts(world)
    await world.slack.user_posts(c.channel, c.outsider.slack_id, "let me jump in", thread_ts=root_ts)
    await world.slack.user_posts(c.channel, c.no_access.slack_id, "me too", thread_ts=root_ts)
    assert "not on the team" in (await eventually(lambda: _private(world, c.outsider.slack_id)))[0]
    assert "external-panel access" in (await eventually(lambda: _private(world, c.no_access.slack_id)))[0]
    await world.quiet()
    assert sent_to(world, c.jordan) == [] and archived(world) == []


async def test_internal_notes_stay_in_the_thread(world: World) -> None:
    c = world.cast
    root_ts = await _thread_root_ts(world)
    await world.slack.user_posts(c.channel, c.owner.slack_id, "// she seemed unsure, follow up", thread_ts=root_ts)
    await world.slack.user_posts(c.channel, c.owner.slack_id, "Thanks Jordan!", thread_ts=root_ts)
    await eventually(lambda: sent_to(world, c.jordan), what="the real reply")
    await world.quiet()
    assert sent_to(world, c.jordan) == ["Thanks Jordan!"]
    assert [e["body"] for e in archived(world)] == ["Thanks Jordan!"]


async def test_files_edits_and_deletes_are_explained_not_dropped(world: World) -> None:
    c = world.cast
    root_ts = await _thread_root_ts(world)
    await world.slack.user_posts(c.channel, c.owner.slack_id, "", thread_ts=root_ts, files=True)
    assert "Files can't be sent" in (await eventually(lambda: _private(world, c.owner.slack_id)))[0]
    ts = await world.slack.user_posts(c.channel, c.owner.slack_id, "See you Tuesday", thread_ts=root_ts)
    await eventually(lambda: sent_to(world, c.jordan), what="relay")
    await world.slack.user_edits(c.channel, c.owner.slack_id, ts, "See you Wednesday")
    await eventually(lambda: any("Edits can't be relayed" in t for t in _private(world, c.owner.slack_id)))
    await world.slack.user_deletes(c.channel, ts)
    await eventually(lambda: any("doesn't unsend" in t for t in _private(world, c.owner.slack_id)))
    assert sent_to(world, c.jordan) == ["See you Tuesday"]


async def test_opted_out_participant_gets_nothing(world: World) -> None:
    c = world.cast
    root_ts = await _thread_root_ts(world)
    await world.rally.opt_out(c.jordan.email)
    await eventually(
        lambda: any("opted out" in m["text"] for m in world.slack.thread(c.channel, root_ts)), what="opt-out notice"
    )
    await world.slack.user_posts(c.channel, c.owner.slack_id, "Are you still there?", thread_ts=root_ts)
    assert "opted out" in (await eventually(lambda: _private(world, c.owner.slack_id)))[0]
    assert sent_to(world, c.jordan) == []


async def test_slack_retries_of_one_reply_send_it_once(world: World) -> None:
    c = world.cast
    root_ts = await _thread_root_ts(world)
    await world.slack.user_posts(c.channel, c.owner.slack_id, "only once please", thread_ts=root_ts, deliveries=4)
    await eventually(lambda: sent_to(world, c.jordan), what="relay")
    await world.quiet()
    assert sent_to(world, c.jordan) == ["only once please"]
    assert len(archived(world)) == 1
    assert [d.status for d in world.slack.event_deliveries][-4:] == [200, 200, 200, 200]


async def test_bot_echoes_are_not_relayed(database_url: str) -> None:
    w = await World.create(database_url, slack_options={"rate_limit": False, "echo_bot_messages": True})
    await w.start_bridge(worker_poll_seconds=0.05)
    try:
        await link_study(w)
        await w.respondent.participant_writes(w.cast.project_id, w.cast.jordan.respondent_user_id, "hello")
        await eventually(lambda: archived(w), what="mirrored and archived")
        await w.quiet()
        assert sent_to(w, w.cast.jordan) == []
    finally:
        await w.stop()
