"""The thread root's Remind / Follow up / Send scheduling link in Teams: ``Action.ShowCard`` forms on the root's
Adaptive Card whose ``Action.Submit`` becomes the same command as typed (permission check, answers, exactly-once),
checked first by ``core.forms`` as Slack's modals are. Real bridge, the Teams sandbox, SQLite and PostgreSQL."""

from __future__ import annotations

import html
import json
from typing import Any

from sqlalchemy import select

from adapters.teams import card as teams_card
from adapters.teams import format as fmt
from sandbox.teams import TeamsPerson
from storage import reminders as store
from storage.models import InboxEvent
from tests.integration.conftest import eventually
from tests.teams.conftest import CHANNEL, TeamsWorld

# The Teams world fixture, used by name below.
from tests.teams.conftest import tw as tw

TITLES = ["Remind", "Follow up", "Send scheduling link"]


async def _rows(tw: TeamsWorld) -> list[store.Reminder]:
    assert tw.world.bridge is not None
    async with tw.world.bridge.db.transaction() as session:
        return list((await session.execute(select(store.Reminder).order_by(store.Reminder.id))).scalars())


async def _commands(tw: TeamsWorld) -> list[str]:
    """The text of every command in the inbox, typed, clicked or submitted, in order."""
    assert tw.world.bridge is not None
    async with tw.world.bridge.db.transaction() as session:
        events = (await session.execute(select(InboxEvent).order_by(InboxEvent.id))).scalars()
        return [e.payload["text"] for e in events if e.kind == "chat.command"]


async def _answer(tw: TeamsWorld, who: TeamsPerson, before: int) -> str:
    found = await eventually(lambda: tw.private(who)[before:], what="a private answer")
    return html.unescape(str(found[0]))


async def _root(tw: TeamsWorld) -> dict[str, Any]:
    await tw.link()
    (root,) = tw.roots("Jordan L.")
    return root


def _card(activity: dict[str, Any]) -> dict[str, Any]:
    content = activity["attachments"][0]["content"]
    assert isinstance(content, dict)
    return content


def test_root_card_forms_are_adaptive_card_show_cards() -> None:
    card = teams_card.root_card("Jo [x](y)", "Study", None, "https://app.rallyuxr.com/schedule/1", "pa_9")
    json.dumps(card)  # JSON as sent
    assert card["version"] == "1.4"
    shows = [a for a in card["actions"] if a["type"] == "Action.ShowCard"]
    assert [a["title"] for a in shows] == TITLES
    assert card["actions"][-1] == {
        "type": "Action.OpenUrl",
        "title": "Scheduling link",
        "url": "https://app.rallyuxr.com/schedule/1",
    }
    ids = []
    for show, form in zip(shows, ("remind", "followup", "reschedule"), strict=True):
        inner = show["card"]
        assert inner["type"] == "AdaptiveCard" and "$schema" not in inner
        inputs = [b for b in inner["body"] if b["type"] == "Input.Text"]
        ids += [i["id"] for i in inputs]
        assert "Jo \\[x\\](y)" in inner["body"][0]["text"]  # the name Markdown-escaped
        (submit,) = inner["actions"]
        assert submit["type"] == "Action.Submit"
        assert submit["data"] == {"rallybridge_form": {"form": form, "participant": "pa_9"}}
    assert ids == ["remind_when", "remind_note", "followup_after", "followup_note", "reschedule_note"]
    assert len(set(ids)) == len(ids), "input ids are unique across the card"
    # Without a participant id (an old root), no forms: the card is as before.
    assert [a["type"] for a in teams_card.root_card("Jo", "S", None, None, None).get("actions", [])] == []


def test_submitted_form_reads_the_inputs_by_field() -> None:
    value = {"rallybridge_form": {"form": "remind", "participant": "pa_9"}, "remind_when": "in 2h", "remind_note": ""}
    form = fmt.submitted_form(value)
    assert form is not None and (form.form, form.participant_id, form.values) == (
        "remind",
        "pa_9",
        {"when": "in 2h", "note": ""},
    )
    for bad in (
        None,
        "x",
        {},
        {"rallybridge_form": {"form": "delete", "participant": "pa_9"}},
        {"rallybridge_form": 1},
    ):
        assert fmt.submitted_form(bad) is None


async def test_the_root_card_carries_the_three_forms(tw: TeamsWorld) -> None:
    card = _card(await _root(tw))
    assert [a["title"] for a in card["actions"] if a["type"] == "Action.ShowCard"] == TITLES
    submits = [a["card"]["actions"][0]["data"] for a in card["actions"] if a["type"] == "Action.ShowCard"]
    assert {d["rallybridge_form"]["participant"] for d in submits} == {"pa_jordan"}


async def test_a_teammate_submitting_remind_schedules_as_the_typed_command(tw: TeamsWorld) -> None:
    root = await _root(tw)
    chloe = tw.cast.teammate
    before = len(tw.private(chloe))
    inputs = {"remind_when": "in 2h", "remind_note": "Please bring your ID"}
    submitted = await tw.teams.submit_root_form(CHANNEL, chloe, root, "Remind", inputs)
    answer = await _answer(tw, chloe, before)
    assert "Reminder #1 for Jordan L. set for" in answer and "Please bring your ID" in answer
    assert (await tw.teams.deliver(submitted)).status == 200  # delivered twice: one effect
    await tw.quiet()
    assert await _commands(tw) == ["link st_checkout", "remind pa_jordan in 2h -- Please bring your ID"]
    (row,) = await _rows(tw)
    assert (row.kind, row.body, row.created_by_name, row.participant_id, row.status) == (
        "remind",
        "Please bring your ID",
        "Chloe Park",
        "pa_jordan",
        "pending",
    )
    assert len([t for t in tw.private(chloe) if "Reminder #1" in html.unescape(t)]) == 1


async def test_an_unreadable_form_is_refused_privately_and_stores_nothing(tw: TeamsWorld) -> None:
    root = await _root(tw)
    ana = tw.cast.owner
    before = len(tw.private(ana))
    await tw.teams.submit_root_form(CHANNEL, ana, root, "Remind", {"remind_when": "tomorrow 9am sharp"})
    refused = await _answer(tw, ana, before)
    assert 'I read "tomorrow 9am" as the time but not "sharp"' in refused
    assert "nothing was scheduled" in refused and "@Rally Bridge remind pa_jordan <when> [message]" in refused
    before = len(tw.private(ana))
    await tw.teams.submit_root_form(CHANNEL, ana, root, "Follow up", {"followup_after": "soon"})
    assert '"soon" is not a duration' in await _answer(tw, ana, before)
    await tw.quiet()
    assert await _commands(tw) == ["link st_checkout"] and await _rows(tw) == []
    assert not any("Reminder" in t or "Follow-up" in t for t in tw.replies(str(root["id"])))


async def test_people_who_may_not_message_the_participant_are_refused_by_the_same_check(tw: TeamsWorld) -> None:
    root = await _root(tw)
    for person, reason in ((tw.cast.outsider, "not on the team"), (tw.cast.no_access, "external-panel access")):
        before = len(tw.private(person))
        await tw.teams.submit_root_form(CHANNEL, person, root, "Remind", {"remind_when": "in 2h"})
        assert reason in await _answer(tw, person, before)
    await tw.quiet()
    assert await _rows(tw) == [] and tw.sent_to_jordan() == []


async def test_send_scheduling_link_from_the_root_card(tw: TeamsWorld) -> None:
    root = await _root(tw)
    chloe = tw.cast.teammate
    before = len(tw.private(chloe))
    await tw.teams.submit_root_form(
        CHANNEL, chloe, root, "Send scheduling link", {"reschedule_note": "Sorry for the change!"}
    )
    assert "Sending Jordan L. their scheduling link" in await _answer(tw, chloe, before)
    sent = await eventually(tw.sent_to_jordan, what="the scheduling link")
    assert "https://app.rallyuxr.com/schedule/pa_jordan" in sent[0] and sent[0].endswith("Sorry for the change!")
    assert (await _commands(tw))[-1] == "reschedule pa_jordan -- Sorry for the change!"
