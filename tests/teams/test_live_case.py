"""The live case on Teams, through the same core as Slack: the root card updated in place (an activity update of
the chain's first post), an owner taken with the same words, a nudge in the owner's personal chat with the bot."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any

from core import clock
from core.case import NudgePolicy, nudge_due
from tests.integration.conftest import eventually
from tests.integration.flows import participant_writes
from tests.teams.conftest import CHANNEL, TeamsWorld


def _card_text(tw: TeamsWorld, root_id: str) -> str:
    root: dict[str, Any] | None = tw.teams.connector.find_activity(root_id)
    assert root is not None
    return html.unescape(str(root["attachments"][0]["content"]))


async def test_the_card_is_updated_in_place_and_the_owner_is_nudged_in_their_chat(tw: TeamsWorld) -> None:
    c, people = tw.study, tw.cast
    await tw.world.rally.move_session(c.study_id, c.jordan.participant_id, None)  # working hours count
    root_id = await tw.link()
    assert "Nobody has written yet" in _card_text(tw, root_id)

    await participant_writes(tw.world, c.jordan, "Is the study remote?")
    await eventually(lambda: "Waiting on the team since" in _card_text(tw, root_id), what="the card updated")
    # Each viewer sees the time in their own zone: an Adaptive Card date function, not a fixed zone.
    assert "{{TIME(" in _card_text(tw, root_id)
    (root,) = tw.roots("Jordan L.")
    assert root["id"] == root_id  # updated in place, never posted again

    await tw.teams.command(CHANNEL, people.owner, "assign Jordan")
    await eventually(lambda: "Owner: Ana Ortiz" in _card_text(tw, root_id), what="the owner on the card")
    await eventually(
        lambda: [r for r in tw.replies(root_id) if "Ana Ortiz now owns Jordan L." in html.unescape(r)],
        what="the owner said in the chain",
    )

    assert tw.world.bridge is not None
    async with tw.world.bridge.services.store.transaction() as uow:
        thread = await uow.threads.for_participant(c.study_id, c.jordan.participant_id)
    assert thread is not None and thread.waiting_since is not None
    due = nudge_due(
        thread.waiting_since,
        stage=1,
        policy=NudgePolicy(),
        tz=thread.owner_tz,
        session_starts_at=None,
        now=thread.waiting_since,
    )
    ahead = due + timedelta(seconds=1) - clock.now()
    clock.set_clock(lambda: datetime.now(UTC) + ahead)
    try:
        assert await tw.world.bridge.queue_nudges() == 1

        def nudges() -> list[str]:
            said = [html.unescape(m) for m in tw.teams.connector.personal_messages(people.owner.user_id)]
            return [m for m in said if "Jordan L. (" in m and "has waited" in m]

        assert len(await eventually(nudges, what="the nudge in Ana's chat with the bot")) == 1
    finally:
        clock.set_clock(None)
    assert len(tw.teams.connector.updates_of(root_id)) >= 2
    assert len(tw.roots("Jordan L.")) == 1
