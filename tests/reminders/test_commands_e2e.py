"""Reminders end to end through Slack commands, against the stand-ins, on SQLite and PostgreSQL.

The bridge is the real app on a real port; time is moved with the reminder clock, not slept through.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select

from playground.world import World
from storage import reminders as store
from tests.integration.flows import archived, participant_writes, sent_to
from tests.reminders.conftest import (
    FakeClock,
    any_text,
    channel_texts,
    command,
    eventually,
    fire_due,
    linked,
    thread_texts,
    unescape,
)


async def _rows(world: World) -> list[store.Reminder]:
    assert world.bridge is not None
    async with world.bridge.db.transaction() as session:
        return list((await session.execute(select(store.Reminder).order_by(store.Reminder.id))).scalars())


async def test_remind_confirms_in_both_zones_then_fires_once_as_the_scheduler(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    root_ts = await linked(world)
    answer = unescape(await command(world, c.owner.slack_id, "remind Jordan L. in 2h See you on Friday!"))
    assert "Reminder #1 for Jordan L. set for" in answer
    assert "(Europe/Berlin) = " in answer and answer.count("UTC") == 1  # the owner's Slack tz, and UTC
    assert "Message: See you on Friday!" in answer
    assert await fire_due(world) == 0  # not yet
    fake_clock.advance(timedelta(hours=2, seconds=1))
    await fire_due(world)
    await eventually(lambda: sent_to(world, c.jordan), what="the reminder at Respondent")
    entry = (await eventually(lambda: archived(world), what="archive"))[0]
    assert entry["source"] == "SCHEDULER" and entry["direction"] == "TO_PARTICIPANT"
    assert (entry["author"]["type"], entry["author"]["name"], entry["author"]["userId"]) == (
        "BOT",
        "Ana Ortiz",
        "usr_ana",
    )
    await eventually(lambda: any_text(thread_texts(world, root_ts), "Reminder to Jordan L., scheduled by Ana Ortiz"))
    assert await fire_due(world) == 0
    await world.quiet()
    assert sent_to(world, c.jordan) == ["See you on Friday!"]
    assert [r.status for r in await _rows(world)] == ["sent"]
    assert not any_text(thread_texts(world, root_ts), "Sent late")


async def test_default_text_and_before_session(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    await linked(world)
    answer = unescape(await command(world, c.teammate.slack_id, "remind pa_jordan 1h before session"))
    assert "Reminder #1" in answer and "friendly reminder about your session" in answer
    row = (await _rows(world))[0]
    session = world.rally.participants[c.study_id][c.jordan.participant_id]["sessionStartsAt"]
    assert row.due_at == datetime.fromisoformat(session.replace("Z", "+00:00")) - timedelta(hours=1)
    assert row.created_by_name == "Chloe Park"


async def test_late_after_downtime_fires_with_a_note_and_session_started_is_not_sent(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    root_ts = await linked(world)
    await command(world, c.owner.slack_id, "remind Jordan in 1h first")
    await command(world, c.owner.slack_id, "remind Jordan 1h before session second")
    # Down while the first comes due (the session, two days ahead, has not started yet).
    await world.stop_bridge()
    fake_clock.advance(timedelta(hours=23))
    await world.start_bridge(worker_poll_seconds=0.05, reconcile_interval_seconds=3600)
    # No manual tick: the restarted bridge's own scheduler finds the due row.
    await eventually(lambda: sent_to(world, c.jordan), what="the late reminder", within=10)
    await eventually(lambda: any_text(thread_texts(world, root_ts), "Sent late by 22h"))
    # Down again until after the session started: the second is not sent, and the thread says so.
    await world.stop_bridge()
    fake_clock.advance(timedelta(days=2))
    await world.start_bridge(worker_poll_seconds=0.05, reconcile_interval_seconds=3600)
    await eventually(lambda: any_text(thread_texts(world, root_ts), "session has already started"), within=10)
    await world.quiet()
    assert sent_to(world, c.jordan) == ["first"]
    assert [r.status for r in await _rows(world)] == ["sent", "skipped"]


async def test_followup_is_cancelled_by_a_message_one_second_before_it_was_due(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    root_ts = await linked(world)
    answer = unescape(await command(world, c.owner.slack_id, "followup Jordan after 1h Any news?"))
    assert "Follow-up #1" in answer and "cancelled automatically if they write" in answer
    due = (await _rows(world))[0].due_at
    fake_clock.set(due - timedelta(seconds=1))
    await participant_writes(world, c.jordan, "Sorry, was away!")
    await eventually(lambda: any_text(thread_texts(world, root_ts), "Jordan L. wrote, so the follow-up"))
    fake_clock.set(due + timedelta(seconds=1))
    assert await fire_due(world) == 0
    await world.quiet()
    assert sent_to(world, c.jordan) == []
    assert [r.status for r in await _rows(world)] == ["cancelled"]


async def test_followup_checks_respondent_at_fire_time_when_the_webhook_is_late(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    root_ts = await linked(world)
    await participant_writes(world, c.jordan, "hello")  # the thread knows their conversation
    await eventually(lambda: archived(world), what="first message mirrored")
    await command(world, c.owner.slack_id, "followup Jordan after 1h")
    due = (await _rows(world))[0].due_at
    fake_clock.set(due - timedelta(seconds=1))
    url, world.respondent.webhook_url = world.respondent.webhook_url, None  # this webhook never arrives
    await participant_writes(world, c.jordan, "I'm here")
    world.respondent.webhook_url = url
    fake_clock.set(due + timedelta(seconds=1))
    assert await fire_due(world) == 1
    await eventually(lambda: any_text(thread_texts(world, root_ts), "wrote, so the follow-up"))
    await world.quiet()
    assert sent_to(world, c.jordan) == []


async def test_followup_counts_from_the_last_researcher_message_and_fires(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    await world.slack.user_posts(c.channel, c.owner.slack_id, "Can you make Tuesday?", thread_ts=root_ts)
    await eventually(lambda: sent_to(world, c.jordan), what="the researcher's reply")
    await command(world, c.owner.slack_id, "followup Jordan")
    row = (await _rows(world))[0]
    assert row.body.startswith('Just checking in about "Checkout redesign interviews"')
    assert timedelta(hours=23, minutes=59) < row.due_at - row.created_at <= timedelta(hours=24)
    fake_clock.advance(timedelta(hours=24, seconds=5))
    await fire_due(world)
    await eventually(lambda: len(sent_to(world, c.jordan)) == 2, what="the follow-up")
    await eventually(lambda: any_text(thread_texts(world, root_ts), "Follow-up to Jordan L."))


async def test_removed_teammate_cancels_at_fire_time_and_the_channel_is_told(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    await linked(world)
    await command(world, c.teammate.slack_id, "remind Jordan in 1h from Chloe")
    world.rally.teams[c.study_id] = [m for m in world.rally.teams[c.study_id] if m["userId"] != "usr_chloe"]
    fake_clock.advance(timedelta(hours=1, seconds=1))
    assert await fire_due(world) == 1
    await eventually(lambda: any_text(channel_texts(world), "may no longer message participants"))
    await world.quiet()
    assert sent_to(world, c.jordan) == [] and archived(world) == []
    assert [r.status for r in await _rows(world)] == ["cancelled"]


async def test_opt_out_is_rechecked_at_fire_time(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    await command(world, c.owner.slack_id, "remind Jordan tomorrow 9am hi")
    # Rally says opted out, but its webhook was lost: only the fire-time check can know.
    world.rally.participants[c.study_id][c.jordan.participant_id]["status"] = "OPTED_OUT"
    fake_clock.advance(timedelta(days=2))
    await fire_due(world)
    await eventually(lambda: any_text(thread_texts(world, root_ts), "opted out of all communication"))
    await world.quiet()
    assert sent_to(world, c.jordan) == []
    answer = unescape(await command(world, c.owner.slack_id, "remind Jordan in 2h again"))
    assert "opted out" in answer and "nothing was scheduled" in answer


async def test_names_are_never_guessed(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    world.rally.add_participant(
        c.study_id,
        "pa_jordan_k",
        "Jordan",
        "King",
        email="jk@example.net",
        respondent_user_id="6960391fbd5465b2dd6bd6f9",
        approval_status="APPROVED",
    )
    await linked(world)
    ambiguous = unescape(await command(world, c.owner.slack_id, "remind Jordan in 2h hi"))
    assert "could be several participants" in ambiguous
    assert "Jordan L. (pa_jordan," in ambiguous and "Jordan K. (pa_jordan_k," in ambiguous
    unknown = unescape(await command(world, c.owner.slack_id, "remind Jordon in 2h hi"))
    assert 'Nobody called "Jordon"' in unknown and "Jordan K." in unknown
    exact = unescape(await command(world, c.owner.slack_id, "remind jordan k tomorrow 9am hi"))
    assert "Reminder #1 for Jordan K." in exact
    assert [r.participant_id for r in await _rows(world)] == ["pa_jordan_k"]


async def test_permission_and_bad_when_are_refused_when_scheduling(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    await linked(world)
    assert "not on the team" in unescape(await command(world, c.outsider.slack_id, "remind Jordan in 2h"))
    assert "external-panel access" in unescape(await command(world, c.no_access.slack_id, "remind Jordan in 2h"))
    assert "morning or evening" in unescape(await command(world, c.owner.slack_id, "remind Jordan tomorrow 9"))
    assert "Usage: /rally remind" in unescape(await command(world, c.owner.slack_id, "remind"))
    assert await _rows(world) == []


async def test_reschedule_sends_the_scheduling_link_or_refuses(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    answer = unescape(await command(world, c.owner.slack_id, "reschedule Jordan Sorry for the change!"))
    assert "Sending Jordan L. their scheduling link" in answer
    sent = await eventually(lambda: sent_to(world, c.jordan), what="the scheduling link")
    assert "https://app.rallyuxr.com/schedule/pa_jordan" in sent[0] and sent[0].endswith("Sorry for the change!")
    assert "pick (or change) the time of your session" in sent[0]
    await eventually(lambda: any_text(thread_texts(world, root_ts), "Scheduling link to Jordan L."))
    world.rally.participants[c.study_id][c.jordan.participant_id]["schedulingUrl"] = None
    refused = unescape(await command(world, c.owner.slack_id, "reschedule Jordan"))
    assert "no scheduling link" in refused
    assert len(sent_to(world, c.jordan)) == 1


async def test_status_list_and_cancel(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    await world.slack.user_posts(c.channel, c.owner.slack_id, "Hi Jordan", thread_ts=root_ts)
    await participant_writes(world, c.jordan, "Hi!")
    await eventually(lambda: len(archived(world)) == 2, what="both messages archived")
    await command(world, c.owner.slack_id, "remind Jordan fri 14:30 see you")
    await command(world, c.owner.slack_id, "followup Jordan after 2d")
    status = unescape(await command(world, c.teammate.slack_id, "status Jordan"))
    assert "Jordan L. (pa_jordan, Checkout redesign interviews)" in status
    assert "Last from them: " in status and "Last to them: " in status and ", delivered" in status
    assert "#1 reminder for Jordan L." in status and "#2 follow-up for Jordan L." in status
    listed = unescape(await command(world, c.owner.slack_id, "reminders"))
    assert "#1 reminder" in listed and "#2 follow-up" in listed and "/rally cancel <id>" in listed
    assert "external-panel access" in unescape(await command(world, c.no_access.slack_id, "cancel 1"))
    assert [r.status for r in await _rows(world)] == ["pending", "pending"]
    cancelled = unescape(await command(world, c.teammate.slack_id, "cancel #1"))
    assert "Chloe Park cancelled #1" in cancelled
    await eventually(lambda: any_text(thread_texts(world, root_ts), "Chloe Park cancelled #1"))
    assert "no pending reminder #1" in unescape(await command(world, c.owner.slack_id, "cancel 1"))
    assert [r.status for r in await _rows(world)] == ["cancelled", "pending"]
    overview = unescape(await command(world, c.owner.slack_id, "status"))
    assert "Jordan L." in overview and "#2 follow-up" in overview


async def test_before_session_reminder_follows_the_session_when_rally_moves_it(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    root_ts = await linked(world)
    await command(world, c.owner.slack_id, "remind Jordan 1h before session See you soon")
    await command(world, c.owner.slack_id, "remind Jordan in 3h fixed")
    fixed_due = (await _rows(world))[1].due_at
    p = world.rally.participants[c.study_id][c.jordan.participant_id]
    moved_to = datetime.fromisoformat(p["sessionStartsAt"].replace("Z", "+00:00")) + timedelta(days=1, hours=2)
    await world.rally.move_session(c.study_id, c.jordan.participant_id, moved_to.isoformat().replace("+00:00", "Z"))

    for _ in range(200):  # the webhook is processed asynchronously
        if (await _rows(world))[0].due_at == moved_to - timedelta(hours=1):
            break
        await asyncio.sleep(0.05)
    assert (await _rows(world))[0].due_at == moved_to - timedelta(hours=1)
    await eventually(lambda: any_text(thread_texts(world, root_ts), "session moved, so reminder #1"))
    rows = await _rows(world)
    assert rows[1].due_at == fixed_due  # a reminder at a fixed time stays where it was
    assert [r.status for r in rows] == ["pending", "pending"]
    # It fires at the new time, not the old one.
    fake_clock.set(moved_to - timedelta(hours=1, minutes=5))
    await fire_due(world)
    await world.quiet()
    assert "See you soon" not in sent_to(world, c.jordan)
    fake_clock.set(moved_to - timedelta(hours=1) + timedelta(seconds=1))
    await fire_due(world)
    await eventually(lambda: "See you soon" in sent_to(world, c.jordan), what="the moved reminder sent")
