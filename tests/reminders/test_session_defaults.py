"""Session-aware defaults of `/rally remind`, end to end on SQLite and PostgreSQL: the offer (`remind <participant>`
alone) with its buttons, the no-show follow-up (session + 10 min, unless the participant wrote since the session
started) and its team reminder (session + 23 h, a mention in the thread, nothing to the participant), both
following the session when Rally moves it and cancelled together.

The Respondent stand-in stamps messages with the real time, so a test where the participant writes after the
session started puts the session (in Rally) a minute before the real now instead of moving the bridge's clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bridge.reminders import session_defaults
from bridge.reminders.session_moves import offset_after_session, offset_before_session
from core import forms
from core.when import parse_noshow
from playground.world import World
from storage import reminders as store
from tests.integration.flows import archived, participant_writes, sent_to
from tests.reminders.conftest import (
    FakeClock,
    any_text,
    command,
    eventually,
    fire_due,
    linked,
    private_to,
    thread_texts,
    unescape,
)

NOSHOW_AFTER, TEAM_AFTER = timedelta(minutes=10), timedelta(hours=23)


async def _rows(world: World) -> list[store.Reminder]:
    assert world.bridge is not None
    async with world.bridge.db.transaction() as session:
        return list((await session.execute(select(store.Reminder).order_by(store.Reminder.id))).scalars())


def _participant(world: World) -> dict[str, Any]:
    c = world.cast
    found: dict[str, Any] = world.rally.participants[c.study_id][c.jordan.participant_id]
    return found


def _session(world: World) -> datetime:
    return datetime.fromisoformat(_participant(world)["sessionStartsAt"].replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ephemeral(world: World, user: str, part: str) -> dict[str, Any]:
    return next(e for e in reversed(world.slack.ephemerals) if e["user"] == user and part in unescape(e["text"]))


def _buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (e["text"]["text"], e["value"])
        for b in message.get("blocks") or []
        if b["type"] == "actions"
        for e in b["elements"]
    ]


async def _click(world: World, user: str, message: dict[str, Any], label: str) -> str:
    """``user`` clicks ``label`` under a private answer; the private answer the click got."""
    before = len(private_to(world, user))
    clicked = await world.slack.click(world.cast.channel, user, label, ephemeral=message)
    assert (clicked.status, clicked.body) == (200, "")
    found: list[str] = await eventually(lambda: private_to(world, user)[before:], what=f"answer to {label}")
    return unescape(found[0])


async def _wait_for(world: World, check: Any, what: str) -> None:
    for _ in range(200):  # a Rally webhook is processed asynchronously
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(what)


# --- the words (no database) -----------------------------------------------------------------------------------


def test_no_show_words() -> None:
    assert parse_noshow(["no-show"]) == 1 and parse_noshow(["NoShow", "please"]) == 1
    assert parse_noshow(["no", "show", "follow-up", "hi"]) == 3 and parse_noshow(["no-show", "followup"]) == 2
    assert parse_noshow(["in", "2h"]) == 0 and parse_noshow(["no", "worries"]) == 0 and parse_noshow([]) == 0


def test_the_offered_words_mean_what_the_offer_says() -> None:
    for words, before in session_defaults.BEFORE_SESSION.items():
        assert offset_before_session(words) == before
    assert offset_after_session(session_defaults.NOSHOW_SPEC) == NOSHOW_AFTER == session_defaults.NOSHOW_AFTER
    assert offset_after_session(session_defaults.team_spec(7)) == TEAM_AFTER == session_defaults.TEAM_AFTER


def test_the_remind_form_takes_no_show_as_its_when() -> None:
    now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    filled = forms.fill(forms.REMIND, "pa_9", {"when": "no-show", "note": "We missed you"}, now=now)
    assert filled.command == "remind pa_9 no-show -- We missed you"
    bad = forms.fill(forms.REMIND, "pa_9", {"when": "no-show tomorrow"}, now=now)
    assert bad.command is None and 'I read "no-show" as the time but not "tomorrow"' in bad.errors["when"].plain()


# --- the offer -------------------------------------------------------------------------------------------------


async def test_remind_alone_offers_the_session_defaults_and_a_click_schedules_one(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    await linked(world)
    session = _session(world)
    answer = unescape(await command(world, c.owner.slack_id, "remind Jordan"))
    assert "Jordan L.'s session: " in answer and "(Europe/Berlin) = " in answer
    assert "/rally remind pa_jordan <when> [message]" in answer and "Usage" not in answer
    offer = _ephemeral(world, c.owner.slack_id, "Jordan L.'s session")
    assert _buttons(offer) == [
        ("24h before session", "remind pa_jordan 24h before session"),
        ("1h before session", "remind pa_jordan 1h before session"),
        ("No-show follow-up", "remind pa_jordan no-show"),
    ]
    assert await _rows(world) == [], "the offer changes nothing"

    said = await _click(world, c.owner.slack_id, offer, "24h before session")
    assert "Reminder #1 for Jordan L. set for" in said and "friendly reminder about your session" in said
    said = await _click(world, c.owner.slack_id, offer, "No-show follow-up")
    assert "No-show follow-up #2 for Jordan L. set for" in said and "Team reminder #3" in said
    assert "We missed you at your session" in said and "https://app.rallyuxr.com/schedule/pa_jordan" in said
    assert "/rally cancel 2" in said
    rows = await _rows(world)
    assert [(r.kind, r.due_at, r.created_by_name) for r in rows] == [
        ("remind", session - timedelta(hours=24), "Ana Ortiz"),
        ("noshow", session + NOSHOW_AFTER, "Ana Ortiz"),
        ("team", session + TEAM_AFTER, "Ana Ortiz"),
    ]
    assert rows[2].body.startswith("Mark Jordan L. in Rally (attended / no-show)")

    # Asked again: what is scheduled is said, and only what is left is offered; a second no-show is refused.
    again = unescape(await command(world, c.owner.slack_id, "remind pa_jordan"))
    assert "Already scheduled: #1 24h before session; #2 no-show follow-up." in again
    assert _buttons(_ephemeral(world, c.owner.slack_id, "Already scheduled")) == [
        ("1h before session", "remind pa_jordan 1h before session")
    ]
    twice = unescape(await command(world, c.owner.slack_id, "remind Jordan no-show"))
    assert "already has a no-show follow-up for this session: #2" in twice
    assert len(await _rows(world)) == 3

    # Within 24 h of the session only what is still ahead is offered.
    fake_clock.set(session - timedelta(hours=2))
    await command(world, c.teammate.slack_id, "remind Jordan")
    late = _ephemeral(world, c.teammate.slack_id, "Jordan L.'s session")
    assert [label for label, _ in _buttons(late)] == ["1h before session"]


async def test_without_a_session_the_answer_says_so_and_what_to_do(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    _participant(world)["sessionStartsAt"] = None
    await linked(world)
    answer = unescape(await command(world, c.owner.slack_id, "remind Jordan"))
    assert "Rally has no session time for Jordan L., so there are no session reminders to offer." in answer
    assert "/rally remind pa_jordan <when> [message]" in answer and "/rally reschedule pa_jordan" in answer
    assert _buttons(_ephemeral(world, c.owner.slack_id, "no session time")) == []
    refused = unescape(await command(world, c.owner.slack_id, "remind Jordan no-show"))
    assert "nothing to count a no-show follow-up from" in refused
    # The typed forms work as before.
    assert "Reminder #1 for Jordan L." in unescape(await command(world, c.owner.slack_id, "remind Jordan in 2h hi"))
    assert "no session time" in unescape(await command(world, c.owner.slack_id, "remind Jordan 1h before session"))
    assert [r.kind for r in await _rows(world)] == ["remind"]


# --- the no-show follow-up -------------------------------------------------------------------------------------


async def test_no_show_follow_up_fires_ten_minutes_after_the_session_when_they_have_not_written(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    root_ts = await linked(world)
    session = _session(world)
    said = unescape(await command(world, c.owner.slack_id, "remind Jordan no-show"))
    assert "No-show follow-up #1" in said
    fake_clock.set(session + NOSHOW_AFTER - timedelta(seconds=5))
    assert await fire_due(world) == 0
    fake_clock.set(session + NOSHOW_AFTER + timedelta(seconds=1))
    assert await fire_due(world) == 1
    sent = await eventually(lambda: sent_to(world, c.jordan), what="the no-show follow-up at Respondent")
    assert sent[0].startswith('We missed you at your session for "Checkout redesign interviews" today.')
    assert "https://app.rallyuxr.com/schedule/pa_jordan" in sent[0]
    entry = (await eventually(lambda: archived(world), what="archive"))[0]
    assert (entry["source"], entry["author"]["type"], entry["author"]["name"]) == ("SCHEDULER", "BOT", "Ana Ortiz")
    await eventually(lambda: any_text(thread_texts(world, root_ts), "No-show follow-up to Jordan L., scheduled by"))
    assert await fire_due(world) == 0
    await world.quiet()
    assert len(sent_to(world, c.jordan)) == 1
    assert [(r.kind, r.status) for r in await _rows(world)] == [("noshow", "sent"), ("team", "pending")]


async def test_no_show_follow_up_is_skipped_when_they_wrote_after_the_session_started(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    _participant(world)["sessionStartsAt"] = _iso(datetime.now(UTC) - timedelta(minutes=1))
    root_ts = await linked(world)
    session = _session(world)
    assert "No-show follow-up #1" in unescape(await command(world, c.owner.slack_id, "remind Jordan no-show Hi!"))
    await participant_writes(world, c.jordan, "Sorry, running late, joining now")
    await eventually(lambda: archived(world), what="their message mirrored")
    fake_clock.set(session + NOSHOW_AFTER + timedelta(seconds=1))
    assert await fire_due(world) == 1
    await eventually(lambda: any_text(thread_texts(world, root_ts), "wrote after their session started"))
    await world.quiet()
    assert sent_to(world, c.jordan) == []
    assert [(r.kind, r.status, r.outcome) for r in await _rows(world)] == [
        ("noshow", "skipped", "participant wrote"),
        ("team", "pending", None),
    ]


async def test_a_message_before_the_session_does_not_stop_it(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    _participant(world)["sessionStartsAt"] = _iso(datetime.now(UTC) + timedelta(minutes=2))
    await linked(world)
    session = _session(world)
    await participant_writes(world, c.jordan, "See you in a bit")
    await eventually(lambda: archived(world), what="their message mirrored")
    await command(world, c.owner.slack_id, "remind Jordan no-show -- Are you still coming?")
    fake_clock.set(session + NOSHOW_AFTER + timedelta(seconds=1))
    await fire_due(world)
    await eventually(lambda: sent_to(world, c.jordan) == ["Are you still coming?"], what="the no-show follow-up")


# --- the team reminder -----------------------------------------------------------------------------------------


async def test_team_reminder_mentions_the_scheduler_and_sends_nothing_to_the_participant(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    root_ts = await linked(world)
    session = _session(world)
    await command(world, c.teammate.slack_id, "remind Jordan no-show")
    status = unescape(await command(world, c.owner.slack_id, "status Jordan"))
    assert "#1 no-show follow-up for Jordan L." in status and "#2 team reminder for Jordan L." in status
    fake_clock.set(session + NOSHOW_AFTER + timedelta(seconds=1))
    await fire_due(world)
    await eventually(lambda: len(sent_to(world, c.jordan)) == 1, what="the no-show follow-up")
    fake_clock.set(session + TEAM_AFTER - timedelta(seconds=5))
    assert await fire_due(world) == 0
    fake_clock.set(session + TEAM_AFTER + timedelta(seconds=1))
    assert await fire_due(world) == 1
    notices = await eventually(
        lambda: any_text(thread_texts(world, root_ts), "no-show window"), what="the team reminder"
    )
    (notice,) = notices
    # A real mention of whoever scheduled it.
    assert notice.startswith(f"<@{c.teammate.slack_id}> Rally's no-show window for Jordan L.'s session (")
    assert "closes in 1 hour, at " in notice and "mark them in Rally: attended or no-show" in notice
    assert await fire_due(world) == 0
    await world.quiet()
    assert len(sent_to(world, c.jordan)) == 1 and len(archived(world)) == 1  # nothing more left for them
    assert [(r.kind, r.status) for r in await _rows(world)] == [("noshow", "sent"), ("team", "sent")]
    assert len(any_text(thread_texts(world, root_ts), "no-show window")) == 1


# --- moved, cleared, cancelled ---------------------------------------------------------------------------------


async def test_moving_the_session_moves_both_and_clearing_it_skips_them(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    await command(world, c.owner.slack_id, "remind Jordan no-show")
    moved_to = _session(world) + timedelta(days=1, hours=2)
    await world.rally.move_session(c.study_id, c.jordan.participant_id, _iso(moved_to))

    async def moved() -> bool:
        return [r.due_at for r in await _rows(world)] == [moved_to + NOSHOW_AFTER, moved_to + TEAM_AFTER]

    await _wait_for(world, moved, "both rows follow the session")
    await eventually(lambda: any_text(thread_texts(world, root_ts), "so the no-show follow-up #1 moved with it"))
    await eventually(lambda: any_text(thread_texts(world, root_ts), "so the team reminder #2 moved with it"))

    await world.rally.move_session(c.study_id, c.jordan.participant_id, None)
    await eventually(lambda: any_text(thread_texts(world, root_ts), "The no-show follow-up #1 (planned for"))
    fake_clock.set(moved_to + NOSHOW_AFTER + timedelta(seconds=1))
    assert await fire_due(world) == 1
    await eventually(
        lambda: any_text(thread_texts(world, root_ts), "so the no-show follow-up planned for"), what="skipped"
    )
    fake_clock.set(moved_to + TEAM_AFTER + timedelta(seconds=1))
    assert await fire_due(world) == 1
    await eventually(lambda: any_text(thread_texts(world, root_ts), "so the team reminder planned for"))
    await world.quiet()
    assert sent_to(world, c.jordan) == []
    assert [(r.status, r.outcome) for r in await _rows(world)] == [
        ("skipped", "session cleared"),
        ("skipped", "session cleared"),
    ]


async def test_cancelling_the_no_show_follow_up_cancels_its_team_reminder(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    session = _session(world)
    await command(world, c.owner.slack_id, "remind Jordan no-show")
    listed = unescape(await command(world, c.teammate.slack_id, "reminders"))
    assert "#1 no-show follow-up for Jordan L." in listed and "#2 team reminder for Jordan L." in listed
    message = _ephemeral(world, c.teammate.slack_id, "Scheduled for participants")
    said = await _click(world, c.teammate.slack_id, message, "Cancel #1")
    assert "Chloe Park cancelled #1" in said and "Its team reminder #2 was cancelled with it." in said
    await eventually(lambda: any_text(thread_texts(world, root_ts), "Its team reminder #2 was cancelled with it"))
    assert [(r.status, r.outcome) for r in await _rows(world)] == [
        ("cancelled", "by Chloe Park"),
        ("cancelled", "by Chloe Park, with #1"),
    ]
    fake_clock.set(session + TEAM_AFTER + timedelta(minutes=1))
    assert await fire_due(world) == 0
    await world.quiet()
    assert sent_to(world, c.jordan) == [] and not any_text(thread_texts(world, root_ts), "no-show window")


async def test_a_team_reminder_whose_no_show_follow_up_was_cancelled_elsewhere_stays_quiet(
    world: World, fake_clock: FakeClock
) -> None:
    """A no-show follow-up cancelled without its team reminder (``cancel`` and the home's Cancel take both; a row
    changed by hand does not): the team reminder sees it when it comes due and stays quiet."""
    c = world.cast
    root_ts = await linked(world)
    session = _session(world)
    await command(world, c.owner.slack_id, "remind Jordan no-show")
    assert world.bridge is not None
    async with world.bridge.db.transaction() as db:
        assert await store.transition(
            db, 1, to=store.CANCELLED, allowed_from=store.OPEN, now=datetime.now(UTC), outcome="by Ana Ortiz"
        )
    fake_clock.set(session + TEAM_AFTER + timedelta(seconds=1))
    assert await fire_due(world) == 1
    await world.quiet()
    assert [(r.status, r.outcome) for r in await _rows(world)] == [
        ("cancelled", "by Ana Ortiz"),
        ("cancelled", "with #1"),
    ]
    assert not any_text(thread_texts(world, root_ts), "no-show window") and sent_to(world, c.jordan) == []
