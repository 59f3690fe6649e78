"""Seen: the team's last message is marked seen when Respondent's conversation says the participant has read it.

Read from the conversation list the reconcile reads anyway (``participants[].read``, embedded), so it costs no call
of its own: a conversation nobody wrote in is not read again for it. A participant has read "the conversation as it
stands", which says something about our last message only when that message is in what was listed: one delivered
after the list was read is not taken for seen.
"""

from __future__ import annotations

import functools

from bridge import case, outbox
from bridge.apply import Apply, nothing
from bridge.services import Services
from core import case_changes
from core.case_changes import CaseChange
from core.domain import Conversation, Direction, Mark
from core.records import MessageState, Thread
from core.store import UnitOfWork


def _seen(thread: Thread, *, message_id: int) -> CaseChange | None:
    return case_changes.seen(thread, message_id)


async def from_list(services: Services, study_id: str, listed: list[Conversation]) -> Apply:
    """What the listed conversations say the participants of ``study_id`` have seen, as marks and card lines."""
    readers = {user: c for c in listed for user in c.read_by & set(c.participant_user_ids)}
    if not readers:
        return nothing
    found: list[tuple[int, int, str | None, str, str]] = []
    async with services.store.transaction() as uow:
        threads = await uow.threads.of_study(study_id)
        for thread in threads.values():
            conversation = readers.get(thread.respondent_user_id)
            if conversation is None or thread.last_out_at is None or thread.seen_message_id is not None:
                continue
            last = await uow.messages.last(thread.id, Direction.TO_PARTICIPANT.value)
            if last is None or last.state != MessageState.DELIVERED.value or not last.respondent_uid:
                continue
            listed_uids = {m.uid for m in conversation.messages} | {conversation.latest_message_uid}
            if last.respondent_uid in listed_uids:
                found.append((thread.id, last.id, last.post_id, thread.platform, thread.channel))
    if not found:
        return nothing

    async def apply(uow: UnitOfWork) -> None:
        for thread_id, message_id, post_id, platform, channel in found:
            changed = await case.change(uow, thread_id, functools.partial(_seen, message_id=message_id))
            if changed is not None and post_id:
                await outbox.mark(uow, platform, channel, post_id, Mark.SEEN)

    return apply
