"""Flow 5: delivery through the outbox under outages, refusals, unknown outcomes and rate limits."""

from __future__ import annotations

from playground.world import World
from tests.integration.conftest import eventually
from tests.integration.flows import archived, link_study, participant_writes, replies, root_of, sent_to


async def _root_ts(world: World) -> str:
    await link_study(world)
    return str((await root_of(world, world.cast.jordan))["ts"])


async def test_respondent_outage_delays_but_delivers_once_in_order(world: World) -> None:
    c = world.cast
    root_ts = await _root_ts(world)
    world.respondent.outage(503)
    for text in ("one", "two", "three"):
        await world.slack.user_posts(c.channel, c.owner.slack_id, text, thread_ts=root_ts)
    await eventually(
        lambda: any(r.status == 503 for r in world.respondent.request_log), what="the bridge to meet the outage"
    )
    assert sent_to(world, c.jordan) == []
    world.respondent.heal()
    await eventually(lambda: len(sent_to(world, c.jordan)) == 3, within=20, what="delivery after recovery")
    await world.quiet()
    assert sent_to(world, c.jordan) == ["one", "two", "three"]
    await eventually(lambda: len(archived(world)) == 3, what="archive")


async def test_permanent_refusal_is_shown_in_the_thread_with_its_reason(world: World) -> None:
    c = world.cast
    root_ts = await _root_ts(world)
    world.respondent.fail_next(1, status=400, path_contains="/messages")
    ts = await world.slack.user_posts(c.channel, c.owner.slack_id, "this will be refused", thread_ts=root_ts)
    notice = await eventually(
        lambda: [m for m in world.slack.thread(c.channel, root_ts) if "Not delivered" in m.get("text", "")],
        what="failure notice",
    )
    assert "400" in notice[0]["text"]
    await eventually(lambda: "x" in world.slack.reactions.get((c.channel, ts), set()), what="failure reaction")
    assert sent_to(world, c.jordan) == [] and archived(world) == []
    await world.slack.user_posts(c.channel, c.owner.slack_id, "but this one goes", thread_ts=root_ts)
    await eventually(lambda: sent_to(world, c.jordan) == ["but this one goes"], what="next message delivered")


async def test_unknown_outcome_is_verified_before_sending_again(world: World) -> None:
    c = world.cast
    root_ts = await _root_ts(world)
    world.respondent.drop_next_send(1)  # Respondent stores the message, then the connection drops
    await world.slack.user_posts(c.channel, c.owner.slack_id, "did this arrive?", thread_ts=root_ts)
    await eventually(lambda: archived(world), within=15, what="archive after verification")
    await world.quiet()
    assert sent_to(world, c.jordan) == ["did this arrive?"]
    sends = [r for r in world.respondent.request_log if r.method == "POST" and r.path.endswith("/messages")]
    assert len(sends) == 1, "the bridge must read the conversation instead of sending again"


async def test_slack_rate_limits_are_honoured_and_nothing_is_lost(world: World) -> None:
    c = world.cast
    await link_study(world)
    root = await root_of(world, c.jordan)
    world.slack.rate_limit_next(3, retry_after=1, method="chat.postMessage")
    for n in range(4):
        await participant_writes(world, c.jordan, f"burst {n}")
    await eventually(lambda: len(replies(world, root)) == 4, within=20, what="all mirrored")
    await world.quiet()
    assert [m["text"].rsplit(" ", 1)[1] for m in replies(world, root)] == ["0", "1", "2", "3"]
    assert sum(1 for call in world.slack.request_log if call.http_status == 429) == 3


async def test_rally_archive_failures_are_retried_until_archived_once(world: World) -> None:
    c = world.cast
    await _root_ts(world)
    world.rally.archive_failure_rate(0.5, seed=7)
    for n in range(6):
        await participant_writes(world, c.jordan, f"note {n}")
    await eventually(lambda: len(archived(world)) == 6, within=30, what="all archived")
    assert sorted(e["body"] for e in archived(world)) == [f"note {n}" for n in range(6)]


async def test_replies_waiting_out_an_outage_show_pending_then_delivered(world: World) -> None:
    c = world.cast
    root_ts = await _root_ts(world)
    world.respondent.outage(503)
    first = await world.slack.user_posts(c.channel, c.owner.slack_id, "first", thread_ts=root_ts)
    await eventually(
        lambda: "hourglass_flowing_sand" in world.slack.reactions(c.channel, first), what="pending mark on the reply"
    )
    # A reply queued behind the waiting one is pending too, before it was ever tried.
    second = await world.slack.user_posts(c.channel, c.owner.slack_id, "second", thread_ts=root_ts)
    await eventually(
        lambda: "hourglass_flowing_sand" in world.slack.reactions(c.channel, second), what="pending mark, queued"
    )
    world.respondent.heal()
    for ts in (first, second):
        await eventually(
            lambda ts=ts: world.slack.reactions(c.channel, ts) == {"white_check_mark"}, within=20, what="delivered"
        )
    marks = [(name, op) for (_ch, ts, name, op) in world.slack.reaction_events if ts == first]
    assert marks == [
        ("hourglass_flowing_sand", "add"),
        ("hourglass_flowing_sand", "remove"),
        ("white_check_mark", "add"),
    ]
    assert sent_to(world, c.jordan) == ["first", "second"]


async def test_a_reply_delivered_at_once_gets_no_pending_mark(world: World) -> None:
    c = world.cast
    root_ts = await _root_ts(world)
    ts = await world.slack.user_posts(c.channel, c.owner.slack_id, "quick", thread_ts=root_ts)
    await eventually(lambda: world.slack.reactions(c.channel, ts) == {"white_check_mark"}, what="delivered mark")
    assert not any(name == "hourglass_flowing_sand" for (_c, _t, name, _op) in world.slack.reaction_events)
