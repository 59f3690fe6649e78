"""One participant's thread: everything the bridge does to it, in one place, whichever event asked.

A thread is a participant of a linked study and the one chat thread that carries their conversation (the role a
"portal" plays in a chat bridge). It is opened once ever (its root queued), kept current with Rally's facts
(session time, scheduling link, opt-out), announces an opt-out once, and mirrors and archives what the participant
writes. Every function here writes in the caller's unit of work; none reads outside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from bridge import outbox
from bridge.reminders import firing, session_moves
from core import clock, events, texts
from core.domain import ArchiveEntry, AuthorType, Conversation, Direction, Participant, Source
from core.records import Link, MessageState, Thread
from core.store import UnitOfWork


def bridgeable(participant: Participant) -> bool:
    """Whether the participant gets a thread: approved, and reachable on Respondent."""
    return participant.is_approved and bool(participant.respondent_user_id)


async def ensure_thread(uow: UnitOfWork, link: Link, participant: Participant) -> tuple[Thread, bool]:
    """The participant's thread, its root queued when it is new. Returns (thread, created); the caller queues
    one catch-up read for the threads it created (:func:`catch_up`)."""
    thread, created = await uow.threads.insert(link, participant)
    if created:
        await outbox.post_root(uow, thread)
    else:
        thread = await refresh_facts(uow, thread, participant)
    return thread, created


async def refresh_facts(uow: UnitOfWork, thread: Thread, participant: Participant) -> Thread:
    """Session time, scheduling link and opt-out from Rally; reminders counted back from the session follow it.
    Returns the thread as it is now."""
    was = thread.session_starts_at
    thread = await uow.threads.refresh_facts(thread.id, participant)
    await session_moves.follow_session(uow, thread, was, thread.session_starts_at)
    return thread


async def follow_rally(uow: UnitOfWork, thread: Thread, participant: Participant) -> Thread:
    """:func:`refresh_facts`, and the opt-out announced in the thread when Rally's facts just made it one."""
    was_opted_out = thread.opted_out
    thread = await refresh_facts(uow, thread, participant)
    if thread.opted_out and not was_opted_out:
        await opted_out_notice(uow, thread)
    return thread


async def catch_up(uow: UnitOfWork, link: Link, threads: Iterable[Thread], cause: str) -> None:
    """Messages the participants wrote before their threads existed are picked up from Respondent now, in one
    read of the project for every thread ``cause`` (one inbox event) opened, after this transaction commits."""
    opened = list(threads)
    if not opened:
        return
    event = events.catch_up(
        study_id=link.study_id, cause=cause, respondent_user_ids=[t.respondent_user_id for t in opened]
    )
    await uow.inbox.add(key=event.key, kind=event.kind.value, lane=events.lane_for(event), payload=event.payload)


async def opted_out_notice(uow: UnitOfWork, thread: Thread) -> None:
    """Once per thread, whichever path saw the opt-out first: an opt-out webhook and a reconcile (or a status
    webhook) can both find the thread not yet opted out in concurrent transactions, so the key is the thread's."""
    await outbox.notice_in_thread(uow, thread, f"opted-out:{thread.id}", texts.opted_out_notice(thread.display_name))


async def ingest_all(uow: UnitOfWork, conversations: Iterable[Conversation], fallback_project: str | None) -> None:
    """Mirror and archive every participant message not seen before, in the order they were written, in the
    threads of the conversations' participants."""
    for conversation in conversations:
        project_id = conversation.project_id or fallback_project
        if not project_id:
            continue
        for user_id in conversation.participant_user_ids:
            for thread in await uow.threads.for_respondent_user(project_id, user_id):
                await ingest(uow, thread, conversation)


async def ingest(uow: UnitOfWork, thread: Thread, conversation: Conversation) -> None:
    """Mirror and archive what the thread's participant wrote in ``conversation`` that is not mapped yet; a
    message from them cancels the follow-ups scheduled before it."""
    if thread.conversation_uid is None:
        await uow.threads.set_conversation(thread.id, conversation.uid)
    # A participant may have several conversations in one project (one opened from Rally's Chat tab, one by us,
    # opened at the same moment): what they write in any of them belongs to their one thread.
    theirs = [m for m in conversation.messages if m.sender_uid == thread.respondent_user_id]
    known = await uow.messages.known_respondent_uids([m.uid for m in theirs])
    epoch = datetime.min.replace(tzinfo=UTC)
    # Stable sort on time alone: messages of the same millisecond keep the conversation's own order.
    for message in sorted(theirs, key=lambda m: m.created_at or epoch):
        if message.uid in known:
            continue
        sent_at = message.created_at or clock.now()
        message_id = await uow.messages.add(
            thread=thread,
            direction=Direction.FROM_PARTICIPANT.value,
            state=MessageState.MIRRORED.value,
            sent_at=sent_at,
            respondent_uid=message.uid,
            author_name=thread.display_name,
        )
        if message_id is None:
            continue
        await outbox.mirror(uow, thread, message_id, message.uid, message.body)
        await outbox.archive(
            uow,
            thread.id,
            ArchiveEntry(
                study_id=thread.study_id,
                participant_id=thread.participant_id,
                external_id=f"respondent:{message.uid}",
                direction=Direction.FROM_PARTICIPANT,
                body=message.body,
                sent_at=sent_at,
                author_type=AuthorType.PARTICIPANT,
                source=Source.RESPONDENT,
                author_name=thread.display_name,
                respondent_message_uid=message.uid,
            ),
        )
        # The participant wrote: follow-ups scheduled before this message are no longer wanted.
        await firing.cancel_followups(uow, thread, sent_at)
