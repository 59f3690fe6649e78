"""The same reminder commands from a Teams channel (the command logic is platform-agnostic)."""

from __future__ import annotations

from datetime import timedelta

from sandbox.teams import TeamsPerson
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
