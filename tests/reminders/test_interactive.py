"""The interactive parts of reminders, end to end: Slack buttons on the thread root open a modal prefilled for the
participant; the submitted modal, and a Cancel button under `/rally reminders`, run the same command pipeline as a
typed command. Real bridge on a real port, the Slack stand-in delivering signed interactivity payloads, SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from playground.world import World
from sandbox.slack.interactions import OpenedView
from storage import reminders as store
from storage.models import InboxEvent
from tests.integration.flows import sent_to
from tests.reminders.conftest import (
    FakeClock,
    any_text,
    command,
    eventually,
    linked,
    private_to,
    thread_texts,
    unescape,
)


async def _rows(world: World) -> list[store.Reminder]:
    assert world.bridge is not None
    async with world.bridge.db.transaction() as session:
        return list((await session.execute(select(store.Reminder).order_by(store.Reminder.id))).scalars())


async def _commands(world: World) -> list[str]:
    """The text of every command in the inbox, typed or clicked, in order."""
    assert world.bridge is not None
    async with world.bridge.db.transaction() as session:
        events = (await session.execute(select(InboxEvent).order_by(InboxEvent.id))).scalars()
        return [e.payload["text"] for e in events if e.kind == "chat.command"]


async def _answer(world: World, user: str, before: int) -> str:
    found: list[str] = await eventually(lambda: private_to(world, user)[before:], what="a private answer")
    return unescape(found[0])


async def _open(world: World, user: str, root_ts: str, label: str) -> OpenedView:
    """``user`` clicks ``label`` on the root; the modal that opened for them."""
    before = len(world.slack.views_for(user))
    clicked = await world.slack.click(world.cast.channel, user, label, ts=root_ts)
    assert (clicked.status, clicked.body) == (200, "")
    views = world.slack.views_for(user)
    assert len(views) == before + 1, "the modal opens during the click (trigger_id valid 3 s), not later"
    return views[-1]


def _texts(view: OpenedView) -> str:
    return json.dumps(view.view)


def _input(view: OpenedView, block_id: str) -> dict[str, Any]:
    return next(b for b in view.view["blocks"] if b.get("block_id") == block_id)


async def test_root_buttons_open_a_modal_prefilled_for_the_participant_and_submitting_schedules(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    root_ts = await linked(world)
    root = world.slack.find_message(c.channel, root_ts)
    assert root is not None
    buttons = [e for b in root["blocks"] if b["type"] == "actions" for e in b["elements"]]
    labels = [b["text"]["text"] for b in buttons]
    assert labels == ["Remind", "Follow up", "Send scheduling link", "Assign to me", "Saved reply"]
    assert all(json.loads(b["value"])["participant"] == "pa_jordan" for b in buttons[:3])  # the forms
    assert buttons[3]["value"] == "assign pa_jordan"  # a command, run as typed (adapters/slack/card.py)

    view = await _open(world, c.owner.slack_id, root_ts, "Remind")
    assert view.view["title"]["text"] == "Schedule a reminder" and view.view["submit"]["text"] == "Schedule"
    assert "*Jordan L.*" in _texts(view) and c.study_name in _texts(view)
    assert "tomorrow 9am" in _input(view, "when")["element"]["placeholder"]["text"]
    assert _input(view, "note")["optional"] is True and _input(view, "when")["optional"] is False
    metadata = json.loads(view.view["private_metadata"])
    assert (metadata["channel"], metadata["participant"], metadata["form"]) == (c.channel, "pa_jordan", "remind")
    assert await _rows(world) == [], "opening a form changes nothing"

    before = len(private_to(world, c.owner.slack_id))
    submitted = await world.slack.submit_view(view, {"when": "tomorrow 9am", "note": "Please bring your ID"})
    assert (submitted.status, submitted.body) == (200, "") and view.closed
    answer = await _answer(world, c.owner.slack_id, before)
    assert "Reminder #1 for Jordan L. set for" in answer and "Message: Please bring your ID" in answer
    assert "(Europe/Berlin) = " in answer  # the researcher's Slack zone, as for the typed command
    assert await _commands(world) == ["link st_checkout", "remind pa_jordan tomorrow 9am -- Please bring your ID"]
    (row,) = await _rows(world)
    assert (row.kind, row.body, row.created_by_name, row.participant_id) == (
        "remind",
        "Please bring your ID",
        "Ana Ortiz",
        "pa_jordan",
    )


async def test_a_message_that_starts_like_a_time_stays_the_message(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    view = await _open(world, c.owner.slack_id, root_ts, "Remind")
    before = len(private_to(world, c.owner.slack_id))
    await world.slack.submit_view(view, {"when": "in 2h", "note": "30 min before the call I'll send the link"})
    assert "Reminder #1" in await _answer(world, c.owner.slack_id, before)  # stored in the same transaction
    (row,) = await _rows(world)
    assert row.body == "30 min before the call I'll send the link"
    assert timedelta(hours=1, minutes=59) < row.due_at - row.created_at <= timedelta(hours=2)


async def test_form_problems_are_shown_in_the_modal_and_store_nothing(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    view = await _open(world, c.owner.slack_id, root_ts, "Remind")
    for when, expected in (
        ("   ", "Say when"),
        ("tomorrow", 'Add a time after "tomorrow"'),
        ("tomorrow 9", "morning or evening"),
        ("tomorrow 9am sharp", 'I read "tomorrow 9am" as the time but not "sharp"'),
    ):
        answer = await world.slack.submit_view(view, {"when": when, "note": "hi"})
        assert answer.status == 200 and answer.json["response_action"] == "errors", when
        assert expected in view.errors["when"] and not view.closed, when
    follow = await _open(world, c.owner.slack_id, root_ts, "Follow up")
    answer = await world.slack.submit_view(follow, {"after": "soon", "note": None})
    assert '"soon" is not a duration' in answer.json["errors"]["after"]
    await world.quiet()
    assert await _commands(world) == ["link st_checkout"] and await _rows(world) == []
    # Fixed, the same modal goes through.
    before = len(private_to(world, c.owner.slack_id))
    assert (await world.slack.submit_view(follow, {"after": "after 2d", "note": "Any news?"})).body == ""
    assert "Follow-up #1 for Jordan L." in await _answer(world, c.owner.slack_id, before)
    assert (await _commands(world))[-1] == "followup pa_jordan after 2d -- Any news?"
    (row,) = await _rows(world)
    assert (row.kind, row.body) == ("followup", "Any news?")


async def test_send_scheduling_link_from_the_root(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    view = await _open(world, c.teammate.slack_id, root_ts, "Send scheduling link")
    assert view.view["title"]["text"] == "Send scheduling link" and "*Jordan L.*" in _texts(view)
    before = len(private_to(world, c.teammate.slack_id))
    await world.slack.submit_view(view, {"note": "Sorry for the change!"})
    assert "Sending Jordan L. their scheduling link" in await _answer(world, c.teammate.slack_id, before)
    sent = await eventually(lambda: sent_to(world, c.jordan), what="the scheduling link")
    assert "https://app.rallyuxr.com/schedule/pa_jordan" in sent[0] and sent[0].endswith("\nSorry for the change!")
    await eventually(lambda: any_text(thread_texts(world, root_ts), "Scheduling link to Jordan L."))


async def test_people_who_may_not_message_the_participant_are_refused_privately(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    root_ts = await linked(world)
    for person, reason in ((c.outsider, "not on the team"), (c.no_access, "external-panel access")):
        view = await _open(world, person.slack_id, root_ts, "Remind")  # opening a form is harmless
        before = len(private_to(world, person.slack_id))
        assert (await world.slack.submit_view(view, {"when": "in 2h", "note": "hi"})).body == ""
        assert reason in await _answer(world, person.slack_id, before)
    await world.quiet()
    assert await _rows(world) == [] and sent_to(world, c.jordan) == []


def _ephemeral(world: World, user: str, part: str) -> dict[str, Any]:
    return next(e for e in reversed(world.slack.ephemerals) if e["user"] == user and part in unescape(e["text"]))


async def test_cancel_buttons_under_the_list_cancel_exactly_that_reminder(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    await command(world, c.owner.slack_id, "remind Jordan tomorrow 9am first")
    await command(world, c.owner.slack_id, "remind Jordan in 3h second")
    listed = unescape(await command(world, c.teammate.slack_id, "reminders"))
    assert "#1 reminder" in listed and "#2 reminder" in listed and "/rally cancel <id>" in listed
    message = _ephemeral(world, c.teammate.slack_id, "Scheduled for participants")
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["text"]["text"], b["value"], b["style"]) for b in buttons] == [
        ("Cancel #2", "cancel 2", "danger"),  # in the list's order: the soonest first
        ("Cancel #1", "cancel 1", "danger"),
    ]
    before = len(private_to(world, c.teammate.slack_id))
    clicked = await world.slack.click(c.channel, c.teammate.slack_id, "Cancel #2", ephemeral=message)
    assert (clicked.status, clicked.body) == (200, "")
    assert "Chloe Park cancelled #2" in await _answer(world, c.teammate.slack_id, before)
    await eventually(lambda: any_text(thread_texts(world, root_ts), "Chloe Park cancelled #2"))
    assert [r.status for r in await _rows(world)] == ["pending", "cancelled"]
    assert (await _commands(world))[-1] == "cancel 2"

    # The same permission as typing it: Ben (no external-panel access) sees the list, but his click is refused.
    await command(world, c.no_access.slack_id, "reminders")
    bens = _ephemeral(world, c.no_access.slack_id, "Scheduled for participants")
    before = len(private_to(world, c.no_access.slack_id))
    await world.slack.click(c.channel, c.no_access.slack_id, "Cancel #1", ephemeral=bens)
    assert "external-panel access" in await _answer(world, c.no_access.slack_id, before)
    assert [r.status for r in await _rows(world)] == ["pending", "cancelled"]


async def test_a_repeated_click_or_submission_has_one_effect(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    view = await _open(world, c.owner.slack_id, root_ts, "Remind")
    first = await world.slack.submit_view(view, {"when": "in 2h", "note": "once"})
    again = await world.slack.deliver_interaction(first.payload)  # the same submission, delivered twice
    assert (again.status, again.body) == (200, "")
    await eventually(lambda: any_text(private_to(world, c.owner.slack_id), "Reminder #1"), what="confirmation")
    await command(world, c.owner.slack_id, "reminders")
    message = _ephemeral(world, c.owner.slack_id, "Scheduled for participants")
    clicked = await world.slack.click(c.channel, c.owner.slack_id, "Cancel #1", ephemeral=message)
    assert (await world.slack.deliver_interaction(clicked.payload)).status == 200
    await eventually(lambda: any_text(private_to(world, c.owner.slack_id), "Ana Ortiz cancelled #1"), what="cancel")
    await world.quiet()
    assert [r.status for r in await _rows(world)] == ["cancelled"]
    assert await _commands(world) == [
        "link st_checkout",
        "remind pa_jordan in 2h -- once",
        "reminders",
        "cancel 1",
    ]
    answers = private_to(world, c.owner.slack_id)
    assert len(any_text(answers, "Reminder #1")) == 1 and len(any_text(answers, "cancelled #1")) == 1
    assert len(any_text(answers, "no pending reminder")) == 0


async def test_unsigned_or_malformed_interactions_are_refused_and_change_nothing(
    world: World, fake_clock: FakeClock
) -> None:
    c = world.cast
    root_ts = await linked(world)
    view = await _open(world, c.owner.slack_id, root_ts, "Remind")
    submission = {
        "type": "view_submission",
        "team": {"id": world.slack.team_id},
        "user": {"id": c.owner.slack_id},
        "view": {**view.view, "state": {"values": {"when": {"when": {"type": "plain_text_input", "value": "in 2h"}}}}},
    }
    body, headers = world.slack.interaction_request(submission)
    forged = {**headers, "X-Slack-Signature": "v0=" + "0" * 64}
    status, text = await world.slack.deliver_raw(body, forged)
    assert status == 401 and "signature" in text
    stale = {**headers, **world.slack.sign(body, timestamp=int(headers["X-Slack-Request-Timestamp"]) - 600)}
    assert (await world.slack.deliver_raw(body, stale))[0] == 401
    no_user = await world.slack.deliver_interaction({**submission, "user": {}})
    assert no_user.status == 400 and "without a user" in no_user.body
    not_ours = {**submission, "view": {**submission["view"], "private_metadata": "{}"}}
    refused = await world.slack.deliver_interaction(not_ours)
    assert refused.status == 400 and "whom it is for" in refused.body
    await world.quiet()
    assert await _commands(world) == ["link st_checkout"] and await _rows(world) == []


async def test_a_form_that_cannot_open_says_so_privately(world: World, fake_clock: FakeClock) -> None:
    c = world.cast
    root_ts = await linked(world)
    opened = await world.slack.click(c.channel, c.owner.slack_id, "Follow up", ts=root_ts)
    late = {**opened.payload, "trigger_id": opened.payload["trigger_id"]}  # already exchanged for the first modal
    before = len(private_to(world, c.owner.slack_id))
    assert (await world.slack.deliver_interaction(late)).status == 200
    answer = await _answer(world, c.owner.slack_id, before)
    assert "couldn't open the form (Slack said: exchanged_trigger_id)" in answer
    assert "/rally followup pa_jordan" in answer
    assert len(world.slack.views_for(c.owner.slack_id)) == 1 and await _rows(world) == []
