"""One participant's thread: everything the bridge does to it, in one place, whichever event asked.

A thread is a participant of a linked study and the one chat thread that carries their conversation (the role a
"portal" plays in a chat bridge). It is opened once ever (its root queued), kept current with Rally's facts
(session time, scheduling link, opt-out), announces an opt-out once, and mirrors and archives what the participant
writes. Every function here writes in the caller's unit of work; none reads outside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from bridge import case, outbox
from bridge.reminders import firing, session_moves
from core import clock, events, texts
from core.domain import ArchiveEntry, AuthorType, Conversation, Direction, Participant, RespondentMessage, Source
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
    was, link_was = thread.session_starts_at, thread.scheduling_url
    thread = await uow.threads.refresh_facts(thread.id, participant)
    await session_moves.follow_session(uow, thread, was, thread.session_starts_at)
    if (was, link_was) != (thread.session_starts_at, thread.scheduling_url):
        thread = await case.redraw(uow, thread) or thread  # the card shows both
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
    webhook) can both find the thread not yet opted out in concurrent transactions, so the key is the thread's.
    The root card says it too."""
    added = await outbox.notice_in_thread(
        uow, thread, f"opted-out:{thread.id}", texts.opted_out_notice(thread.display_name)
    )
    if added:
        await case.redraw(uow, thread)


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
    """Mirror and archive what the thread's participant wrote in ``conversation`` that is not mapped yet, and what
    the team said to them there from outside the thread (Respondent's or Rally's own chat); a message from them
    cancels the follow-ups scheduled before it. All in the order they were written; the case follows."""
    if thread.conversation_uid is None:
        await uow.threads.set_conversation(thread.id, conversation.uid)
    # A participant may have several conversations in one project (one opened from Rally's Chat tab, one by us,
    # opened at the same moment): what they write in any of them belongs to their one thread.
    theirs = [m for m in conversation.messages if m.sender_uid == thread.respondent_user_id]
    outside = await _said_outside(uow, thread, conversation)
    known = await uow.messages.known_respondent_uids([m.uid for m in [*theirs, *outside]])
    epoch = datetime.min.replace(tzinfo=UTC)
    last_in: datetime | None = None
    last_out: datetime | None = None
    # Stable sort on time alone: messages of the same millisecond keep the conversation's own order.
    for message in sorted([*theirs, *outside], key=lambda m: m.created_at or epoch):
        if message.uid in known:
            continue
        sent_at = message.created_at or clock.now()
        if message.sender_uid == thread.respondent_user_id:
            if await _mirror(uow, thread, message, sent_at):
                last_in = sent_at
                # The participant wrote: follow-ups scheduled before this message are no longer wanted.
                await firing.cancel_followups(uow, thread, sent_at)
        elif await _mirror_outside(uow, thread, message, sent_at):
            last_out = sent_at
    for kind, at in sorted(((k, t) for k, t in (("in", last_in), ("out", last_out)) if t is not None), key=_at):
        if kind == "in":
            await case.participant_wrote(uow, thread, at)
        else:
            await case.team_wrote(uow, thread, at)


def _at(item: tuple[str, datetime]) -> datetime:
    return item[1]


async def _said_outside(uow: UnitOfWork, thread: Thread, conversation: Conversation) -> list[RespondentMessage]:
    """Messages to the participant that the bridge did not send: not from a participant of the conversation, not
    mapped to a message of ours. Only while no relay to them is on its way: a relay's message is in the conversation
    moments before its Respondent id is recorded, and must not be taken for one said outside."""
    if await uow.outbox.lane_busy(outbox.relay_lane(thread.id)):
        return []
    participants = set(conversation.participant_user_ids)
    return [m for m in conversation.messages if m.sender_uid is not None and m.sender_uid not in participants]


async def _mirror(uow: UnitOfWork, thread: Thread, message: RespondentMessage, sent_at: datetime) -> bool:
    """A message the participant wrote: shown in their thread under their name, and archived."""
    return await _show_and_archive(uow, thread, message, sent_at, outside=False)


async def _mirror_outside(uow: UnitOfWork, thread: Thread, message: RespondentMessage, sent_at: datetime) -> bool:
    """A message the team sent from outside the thread: shown in it, attributed, and archived (Rally keeps one
    message per ``externalId``, so one archived before under this id is not archived twice)."""
    return await _show_and_archive(uow, thread, message, sent_at, outside=True)


async def _show_and_archive(
    uow: UnitOfWork, thread: Thread, message: RespondentMessage, sent_at: datetime, *, outside: bool
) -> bool:
    """Map the Respondent message to the thread (False: mapped already), queue its post and its archive."""
    direction = Direction.TO_PARTICIPANT if outside else Direction.FROM_PARTICIPANT
    author = message.sender_name if outside else thread.display_name
    message_id = await uow.messages.add(
        thread=thread,
        direction=direction.value,
        state=(MessageState.DELIVERED if outside else MessageState.MIRRORED).value,
        sent_at=sent_at,
        respondent_uid=message.uid,
        author_name=author,
    )
    if message_id is None:
        return False
    said_by = {"outside_by": message.sender_name or ""} if outside else {}
    await outbox.mirror(uow, thread, message_id, message.uid, message.body, **said_by)
    entry = ArchiveEntry(
        study_id=thread.study_id,
        participant_id=thread.participant_id,
        external_id=f"respondent:{message.uid}",
        direction=direction,
        body=message.body,
        sent_at=sent_at,
        author_type=AuthorType.RESEARCHER if outside else AuthorType.PARTICIPANT,
        source=Source.RESPONDENT,
        author_name=author,
        respondent_message_uid=message.uid,
    )
    await outbox.archive(uow, thread.id, entry)
    return True
