"""The same reminder commands from a Teams channel (the command logic is platform-agnostic)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from sandbox.teams import TeamsPerson
from storage import reminders as store
from tests.reminders.conftest import FakeClock, eventually
from tests.teams.conftest import CHANNEL, TeamsWorld

# The Teams world fixture, used by name below.
from tests.teams.conftest import tw as tw


async def _answer(tw: TeamsWorld, who: TeamsPerson, before: int) -> str:
    found = await eventually(lambda: tw.private(who)[before:], what="a private answer")
    return str(found[0])


async def test_remind_from_teams_fires_once_as_the_scheduler(tw: TeamsWorld, fake_clock: FakeClock) -> None:
    root_id = await tw.link()
    owner = tw.cast.owner
    before = len(tw.private(owner))
    await tw.teams.command(CHANNEL, owner, "remind Jordan in 2h See you Friday")
    answer = await _answer(tw, owner, before)
    assert "Reminder #1 for Jordan L. set for" in answer and "UTC" in answer
    fake_clock.advance(timedelta(hours=2, seconds=1))
    assert tw.world.bridge is not None
    await tw.world.bridge.queue_due_reminders()
    assert await eventually(tw.sent_to_jordan, what="the reminder") == ["See you Friday"]
    entry = (await eventually(tw.archived, what="archive"))[0]
    assert (entry["source"], entry["author"]["type"], entry["author"]["name"]) == ("SCHEDULER", "BOT", "Ana Ortiz")
    await eventually(lambda: [r for r in tw.replies(root_id) if "scheduled by Ana Ortiz" in r], what="thread notice")
    before = len(tw.private(owner))
    await tw.teams.command(CHANNEL, owner, "remind Jordon in 2h")
    assert "Nobody called" in await _answer(tw, owner, before)


async def test_reminders_card_in_teams_cancels_with_its_button(tw: TeamsWorld, fake_clock: FakeClock) -> None:
    root_id = await tw.link()
    owner, teammate, ben = tw.cast.owner, tw.cast.teammate, tw.cast.no_access
    before = len(tw.private(owner))
    await tw.teams.command(CHANNEL, owner, "remind Jordan in 2h first")
    await _answer(tw, owner, before)
    before = len(tw.private(owner))
    await tw.teams.command(CHANNEL, owner, "remind Jordan in 3h second")
    await _answer(tw, owner, before)
    await tw.teams.command(CHANNEL, teammate, "reminders")
    (card,) = await eventually(lambda: tw.teams.personal_cards(teammate), what="the reminders card")
    content = card["attachments"][0]["content"]
    shown = " ".join(b.get("text", "") for b in content["body"] if b["type"] == "TextBlock")
    assert (
        "#1 reminder for Jordan L." in shown
        and "#2 reminder for Jordan L." in shown
        and "@Rally Bridge cancel" in shown
    )
    submits = [a for b in content["body"] if b["type"] == "ActionSet" for a in b["actions"]]
    assert [(a["title"], a["data"]["rallybridge"]["command"], a["style"]) for a in submits] == [
        ("Cancel #1", "cancel 1", "destructive"),
        ("Cancel #2", "cancel 2", "destructive"),
    ]
    assert {a["data"]["rallybridge"]["channel"] for a in submits} == {CHANNEL}

    before = len(tw.private(teammate))
    click = await tw.teams.submit_card(teammate, card, "Cancel #2")
    assert (await tw.teams.deliver(click)).status == 200  # delivered twice: one effect
    assert "Chloe Park cancelled #2" in await _answer(tw, teammate, before)
    await eventually(lambda: [r for r in tw.replies(root_id) if "Chloe Park cancelled #2" in r], what="thread notice")
    await tw.quiet()
    assert len([t for t in tw.private(teammate) if "cancelled #2" in t]) == 1

    # Ben has no external-panel access: the list is shown, the click refused.
    await tw.teams.command(CHANNEL, ben, "reminders")
    (bens,) = await eventually(lambda: tw.teams.personal_cards(ben), what="Ben's card")
    before = len(tw.private(ben))
    await tw.teams.submit_card(ben, bens, "Cancel #1")
    assert "external-panel access" in await _answer(tw, ben, before)
    assert tw.world.bridge is not None
    async with tw.world.bridge.db.transaction() as session:
        statuses = [
            r.status for r in (await session.execute(select(store.Reminder).order_by(store.Reminder.id))).scalars()
        ]
    assert statuses == ["pending", "cancelled"]
