"""What Respondent and Rally say about participants: a participant wrote (mirror it), their status changed in a
study (open their thread, keep its facts current, announce an opt-out), a person opted out of everything."""

from __future__ import annotations

from bridge import thread as threads
from bridge.apply import Apply, nothing
from bridge.services import Services
from core.domain import Conversation, Participant
from core.errors import NotFound
from core.events import ParticipantStatusChanged, ParticipantWrote, PersonOptedOut
from core.store import UnitOfWork


async def wrote(services: Services, event: ParticipantWrote) -> Apply:
    """Respondent says a message was created: read the conversation it names (or, without one, every
    conversation of the project, or of every linked project) and mirror what is new."""
    conversations: list[Conversation]
    if event.conversation_uid:
        conversations = [await services.respondent.get_conversation(event.conversation_uid)]
    else:
        async with services.store.transaction() as uow:
            links = await uow.links.active()
        projects = {event.project_id} if event.project_id else {link.respondent_project_id for link in links}
        conversations = []
        for project_id in sorted(projects):
            conversations.extend(await services.respondent.list_conversations(project_id))
    return ingest(conversations, fallback_project=event.project_id)


def ingest(conversations: list[Conversation], fallback_project: str | None) -> Apply:
    """Mirror and archive every participant message not seen before, in the order they were written."""

    async def apply(uow: UnitOfWork) -> None:
        await threads.ingest_all(uow, conversations, fallback_project)

    return apply


async def status_changed(services: Services, event: ParticipantStatusChanged) -> Apply:
    """Rally says a participant's status changed: their thread opens (approved) or follows Rally's facts."""
    async with services.store.transaction() as uow:
        link = await uow.links.for_study(event.study_id)
    if link is None or not link.active:
        return nothing
    try:
        participant = await services.rally.get_participant(event.study_id, event.participant_id)
    except NotFound:
        return nothing
    return _apply_participant(link.study_id, participant, event.key)


def _apply_participant(study_id: str, participant: Participant, key: str) -> Apply:
    async def apply(uow: UnitOfWork) -> None:
        link = await uow.links.for_study(study_id)
        if link is None or not link.active:
            return
        thread = await uow.threads.for_participant(study_id, participant.participant_id)
        if thread is None and threads.bridgeable(participant):
            thread, created = await threads.ensure_thread(uow, link, participant)
            await threads.catch_up(uow, link, [thread] if created else [], key)
        elif thread is not None:
            await threads.follow_rally(uow, thread, participant)

    return apply


async def opted_out(services: Services, event: PersonOptedOut) -> Apply:
    """Rally says a person opted out of all communication: every thread of theirs says so, once."""

    async def apply(uow: UnitOfWork) -> None:
        for thread in await uow.threads.by_email(event.email):
            if event.opted_out and not thread.opted_out:
                await uow.threads.set_opted_out(thread.id)
                await threads.opted_out_notice(uow, thread)

    return apply
