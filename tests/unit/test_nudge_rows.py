"""A nudge row when it runs: it speaks only while the wait it is about is still on, and a direct message whose
earlier attempt may have been sent is not sent again (at most once; the thread note is verified instead)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from bridge import nudges
from core.case_changes import CaseChange
from core.domain import ChatUser, Participant
from core.records import QueuedRow
from tests.fakes.bridge import Bridge

SINCE = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


async def _waiting(bridge: Bridge) -> int:
    async with bridge.store.transaction() as uow:
        link = await uow.links.activate(
            study_id="st_1",
            study_name="Study",
            respondent_project_id="proj",
            platform="slack",
            workspace="T1",
            channel="C1",
            linked_by="U0ANA",
            linked_at=SINCE,
        )
        participant = Participant(
            "pa_1", "pe_1", "st_1", "APPROVED", None, "Jordan", "Lee", None, "u1", None, None, None
        )
        thread, _ = await uow.threads.insert(link, participant)
        await uow.threads.set_root(thread.id, "1.1")
        await uow.threads.change_case(thread.id, lambda t: CaseChange({"waiting_since": SINCE, "last_in_at": SINCE}))
    bridge.chat.users["U0ANA"] = ChatUser("U0ANA", "Ana Ortiz", "ana@example.com")
    return thread.id


def _row(thread_id: int, stage: int, *, since: datetime = SINCE, needs_verify: bool = False) -> QueuedRow:
    payload = {"thread_id": thread_id, "stage": stage, "waiting_since": since.isoformat()}
    return QueuedRow(
        1, f"nudge:{thread_id}:{since.isoformat()}:{stage}", "chat.nudge", "nudge:1", payload, 1, needs_verify, SINCE
    )


async def test_a_direct_message_that_may_have_gone_is_not_sent_again() -> None:
    bridge = Bridge()
    thread_id = await _waiting(bridge)
    await nudges.perform(bridge.services, _row(thread_id, 1))
    assert [user for user, _text, _key in bridge.chat.directs] == ["U0ANA"]  # no owner: whoever linked the study
    await nudges.perform(bridge.services, dataclasses.replace(_row(thread_id, 1), needs_verify=True))
    assert len(bridge.chat.directs) == 1


async def test_a_nudge_about_a_wait_that_is_over_says_nothing() -> None:
    bridge = Bridge()
    thread_id = await _waiting(bridge)
    await nudges.perform(bridge.services, _row(thread_id, 1, since=SINCE - timedelta(hours=1)))  # an older wait
    await nudges.perform(bridge.services, _row(thread_id, 2, since=SINCE - timedelta(hours=1)))
    assert bridge.chat.directs == [] and bridge.chat.posts == []
