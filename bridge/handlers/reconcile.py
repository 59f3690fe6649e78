"""A study compared with Rally and Respondent: what lost webhooks missed (``ReconcileDue``)."""

from __future__ import annotations

from bridge import seen
from bridge import thread as threads
from bridge.apply import Apply, nothing
from bridge.handlers.participants import ingest
from bridge.services import Services
from core.domain import Conversation, Participant, RespondentMessage
from core.errors import NotFound
from core.events import ReconcileDue
from core.records import Thread
from core.store import UnitOfWork


async def reconcile(services: Services, event: ReconcileDue) -> Apply:
    """Catch what lost webhooks missed: newly approved participants and unseen participant messages.

    Incremental where the contracts allow (docs/performance.md, "Reconciliation cost"): Rally's participant list
    (all pages, cursors) is compared with the study's threads in one query, and only differences are written;
    Respondent's conversation list (all pages) is compared with the message ids already mapped, and only
    conversations with an unseen participant message are ingested. A conversation is read on its own only when
    the list does not carry all its messages and its ``latestMessage`` is not a participant message already
    mirrored. A catch-up (``event.catch_up``: threads just opened) skips Rally and reads the conversations of
    those participants whatever their latest message.
    """
    study_id = event.study_id
    async with services.store.transaction() as uow:
        link = await uow.links.for_study(study_id)
        threaded = await uow.threads.participant_ids(study_id) if link is not None else set()
    if link is None or not link.active:
        return nothing
    project_id = link.respondent_project_id
    participants = None if event.catch_up else await services.rally.list_participants(study_id)
    # Participants this reconcile is about to open a thread for: their earlier messages are read now too.
    joining = {
        x.respondent_user_id
        for x in participants or ()
        if x.respondent_user_id and threads.bridgeable(x) and x.participant_id not in threaded
    }
    listed = await services.respondent.list_conversations(project_id)
    force = joining | set(event.respondent_user_ids)
    conversations = await _unseen(services, project_id, listed, joining=joining, force=force)
    ingested = ingest(conversations, project_id)
    update = _apply_participants(study_id, participants, event.key) if participants is not None else nothing
    marks = await seen.from_list(services, study_id, listed)  # read flags of the same list: no call of its own

    async def apply(uow: UnitOfWork) -> None:
        await update(uow)
        await ingested(uow)
        await marks(uow)

    return apply


async def _unseen(
    services: Services, project_id: str, listed: list[Conversation], *, joining: set[str], force: set[str]
) -> list[Conversation]:
    """The conversations of ``listed`` holding a participant message the bridge has not mirrored yet, read in
    full where the list did not carry all their messages. ``joining``: participants whose threads are about to
    open; ``force``: participants whose conversations are read in full whatever their latest message."""
    async with services.store.transaction() as uow:
        users = await uow.threads.respondent_users(project_id) | joining
        relevant = [c for c in listed if users.intersection(c.participant_user_ids)]
        # Participants' messages, and messages to them the bridge did not send (said outside the thread).
        theirs = [m.uid for c in relevant if c.messages_complete for m in c.messages if _ours_to_show(m, c, users)]
        known = await uow.messages.known_respondent_uids(theirs)
        latest = [c.latest_message_uid for c in relevant if not c.messages_complete and c.latest_message_uid]
        mirrored = await uow.messages.mirrored_respondent_uids(latest)
    unseen: list[Conversation] = []
    for conversation in relevant:
        if conversation.messages_complete:
            if any(_ours_to_show(m, conversation, users) and m.uid not in known for m in conversation.messages):
                unseen.append(conversation)
            continue
        # Mirroring ingests a whole conversation, so a mirrored latest message means nothing before it is unseen;
        # a latest message of ours (a relay) says nothing about what the participant wrote before it.
        if force.isdisjoint(conversation.participant_user_ids) and conversation.latest_message_uid in mirrored:
            continue
        try:
            unseen.append(await services.respondent.get_conversation(conversation.uid))
        except NotFound:
            continue  # deleted since it was listed
    return unseen


def _ours_to_show(message: RespondentMessage, conversation: Conversation, users: set[str]) -> bool:
    """A participant's message, or one the team sent them from outside the thread (not from a participant)."""
    return message.sender_uid in users or (
        message.sender_uid is not None and message.sender_uid not in conversation.participant_user_ids
    )


def _apply_participants(study_id: str, participants: list[Participant], key: str) -> Apply:
    """Rally's participant list against the study's threads: open the missing ones, keep facts current, announce
    opt-outs; one query for the threads, writes only where something differs."""

    async def apply(uow: UnitOfWork) -> None:
        link = await uow.links.for_study(study_id)
        if link is None or not link.active:
            return
        known = await uow.threads.of_study(study_id)
        opened: list[Thread] = []
        for participant in participants:
            thread = known.get(participant.participant_id)
            if thread is None:
                if threads.bridgeable(participant):
                    thread, created = await threads.ensure_thread(uow, link, participant)
                    if created:
                        opened.append(thread)
                continue
            await threads.follow_rally(uow, thread, participant)
        await threads.catch_up(uow, link, opened, key)

    return apply
