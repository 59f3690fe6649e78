"""Turn inbox rows into state changes and outbox rows.

Each handler first reads what it needs from outside (Rally, Respondent, the chat platform: no database
transaction is open meanwhile), then returns an ``Apply`` that the worker runs in one transaction together
with marking the inbox row done. Running a handler twice on the same row has the effect of running it once:
every write is keyed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.commands import parse_command
from bot.domain import ArchiveEntry, AuthorType, Conversation, Direction, Participant, Source, Study
from bot.errors import NotFound, PermanentFailure
from bot.inbound import EventKind, reconcile_study
from bot.inbox import lane_for
from bot.permissions import Decision, may_act_for_study, may_message_participant
from bot.pipeline import outbox
from bot.pipeline.services import Services
from bot.reminders import commands as reminder_commands
from bot.reminders import firing as reminder_firing
from storage import repo
from storage.models import InboxEvent, ParticipantThread, StudyLink
from storage.queue import Claimed, enqueue, utcnow

log = logging.getLogger(__name__)

Apply = Callable[[AsyncSession], Awaitable[None]]


async def _nothing(_session: AsyncSession) -> None:
    return None


async def handle(services: Services, event: Claimed) -> Apply:
    handler = _HANDLERS.get(EventKind(event.kind))
    if handler is None:  # pragma: no cover - every kind has a handler
        raise PermanentFailure(f"no handler for {event.kind}")
    return await handler(services, event)


# --- chat commands -------------------------------------------------------------------------------------


async def _command(services: Services, event: Claimed) -> Apply:
    p = event.payload
    channel, user_id, platform = p["channel"], p["user_id"], p["platform"]
    command = parse_command(p["text"])
    marker = services.internal_note_marker

    def reply(text: str) -> Apply:
        async def apply(session: AsyncSession) -> None:
            await outbox.private(session, platform, event.key, channel, user_id, text)

        return apply

    if command.name == "help":
        return reply(texts.help_text(marker))
    if command.name in reminder_commands.COMMANDS:
        return await reminder_commands.handle(services, event)
    if command.name not in ("link", "unlink"):
        return reply(texts.unknown_command(command.name, marker))
    if not command.args:
        return reply(texts.link_usage() if command.name == "link" else texts.unlink_usage())
    study_id = command.args[0]
    try:
        study = await services.rally.get_study(study_id)
    except NotFound:
        return reply(texts.study_not_found(study_id))
    if command.name == "link" and study.respondent_project_id is None:
        return reply(texts.study_not_respondent(study.study_id, study.name))
    user = await services.chat(platform).lookup_user(user_id)
    decision = await _study_permission(services, study, user.email, user.name)
    if not decision.allowed:
        return reply(decision.reason)
    if command.name == "unlink":
        return await _unlink(services, event, study, user.name, reply)
    participants = [p for p in await services.rally.list_participants(study.study_id) if _bridgeable(p)]

    async def apply(session: AsyncSession) -> None:
        link = await repo.link_for_study(session, study.study_id)
        if link is not None and link.active and link.channel != channel:
            await outbox.private(
                session, platform, event.key, channel, user_id, texts.already_linked_elsewhere(study.name)
            )
            return
        if link is not None and link.active:
            await outbox.private(session, platform, event.key, channel, user_id, texts.already_linked_here(study.name))
            return
        if link is None:
            link = StudyLink(
                study_id=study.study_id,
                study_name=study.name,
                linked_at=utcnow(),
                respondent_project_id=study.respondent_project_id or "",
                platform=p["platform"],
                workspace=p["workspace"],
                channel=channel,
                active=True,
                linked_by=user_id,
            )
            session.add(link)
            await session.flush()
        else:
            link.active, link.channel, link.linked_by, link.linked_at = True, channel, user_id, utcnow()
            link.study_name = study.name
        await outbox.notice_in_channel(
            session,
            platform,
            channel,
            event.key,
            texts.linked(study.name, study.study_id, user.name, len(participants)),
        )
        for participant in participants:
            await _ensure_thread(session, link, participant)

    return apply


async def _unlink(services: Services, event: Claimed, study: Study, who: str, reply: Callable[[str], Apply]) -> Apply:
    channel = event.payload["channel"]

    async def apply(session: AsyncSession) -> None:
        link = await repo.link_for_study(session, study.study_id)
        if link is None or not link.active or link.channel != channel:
            await reply(texts.not_linked_here(study.study_id))(session)
            return
        link.active = False
        await outbox.notice_in_channel(
            session, event.payload["platform"], channel, event.key, texts.unlinked(study.name, who)
        )

    return apply


async def _study_permission(services: Services, study: Study, email: str | None, name: str) -> Decision:
    team = await services.rally.get_team(study.study_id)
    users = await services.rally.find_users_by_email(email) if email else []
    return may_act_for_study(email=email, chat_name=name, study_name=study.name, team=team, rally_users=users)


def _bridgeable(participant: Participant) -> bool:
    return participant.is_approved and bool(participant.respondent_user_id)


async def _ensure_thread(session: AsyncSession, link: StudyLink, participant: Participant) -> ParticipantThread:
    thread, created = await repo.insert_thread(session, link, participant)
    if created:
        await outbox.post_root(session, thread)
        # Messages the participant wrote before their thread existed are picked up from Respondent now.
        catch_up = reconcile_study(study_id=link.study_id, cycle=f"new-thread:{participant.participant_id}")
        await enqueue(
            session,
            InboxEvent,
            key=catch_up.key,
            kind=catch_up.kind.value,
            lane=lane_for(catch_up),
            payload=catch_up.payload,
        )
    else:
        await repo.refresh_thread_facts(session, thread, participant)
    return thread


# --- researcher replies in a thread --------------------------------------------------------------------


async def _chat_message(services: Services, event: Claimed) -> Apply:
    p = event.payload
    thread_ts, ts = p.get("thread_ts"), p["ts"]
    if not thread_ts or thread_ts == ts:
        return _nothing  # a top-level channel message: not ours to relay
    async with services.db.transaction() as session:
        thread = await repo.thread_by_ts(session, p["platform"], p["channel"], thread_ts)
        link = await repo.link_for_study(session, thread.study_id) if thread else None
    if thread is None or link is None:
        log.debug("reply in a thread that is not a participant thread; ignored")
        return _nothing
    text: str = p.get("text") or ""
    channel, user_id, key = p["channel"], p["user_id"], event.key
    if text.lstrip().startswith(services.internal_note_marker):
        log.debug("internal note kept in the thread")
        return _nothing
    notices: list[str] = [texts.files_not_relayed()] if p.get("has_files") else []
    if not text.strip():
        if not notices:
            notices.append(texts.empty_message())
        return _private_notices(p["platform"], key, channel, user_id, thread_ts, notices)

    chat = services.chat(p["platform"])
    user = await chat.lookup_user(user_id)
    team = await services.rally.get_team(thread.study_id)
    users = await services.rally.find_users_by_email(user.email) if user.email else []
    decision = may_message_participant(
        email=user.email,
        chat_name=user.name,
        study_name=link.study_name,
        link_active=link.active,
        participant_name=thread.display_name,
        participant_opted_out=thread.opted_out,
        team=team,
        rally_users=users,
    )
    if not decision.allowed:
        return _private_notices(p["platform"], key, channel, user_id, thread_ts, [decision.reason])
    body = await chat.to_plain_text(text)
    author = decision.rally_user
    thread_id = thread.id

    async def apply(session: AsyncSession) -> None:
        current = await repo.thread_by_id(session, thread_id)
        assert current is not None
        message = await repo.add_message(
            session,
            thread=current,
            direction=Direction.TO_PARTICIPANT.value,
            state="pending",
            sent_at=_slack_time(ts),
            platform_ts=ts,
            author_user_id=user_id,
            author_name=author.fullname if author else user.name,
        )
        if message is None:
            return  # the same Slack message arrived again: already relayed once
        await outbox.relay(
            session,
            current,
            message.id,
            body,
            key,
            author={
                "user_id": author.user_id if author else None,
                "email": user.email,
                "name": author.fullname if author else user.name,
                "platform_ts": ts,
            },
        )
        for index, notice in enumerate(notices):
            await outbox.private(session, current.platform, f"{key}:{index}", channel, user_id, notice, thread_ts)

    return apply


def _private_notices(
    platform: str, key: str, channel: str, user_id: str, thread_ts: str | None, notices: list[str]
) -> Apply:
    async def apply(session: AsyncSession) -> None:
        for index, notice in enumerate(notices):
            await outbox.private(session, platform, f"{key}:{index}", channel, user_id, notice, thread_ts)

    return apply


def _slack_time(ts: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except ValueError:
        return utcnow()


async def _chat_message_changed(services: Services, event: Claimed) -> Apply:
    p = event.payload

    async def apply(session: AsyncSession) -> None:
        message = await repo.message_by_platform_ts(session, p["platform"], p["channel"], p["ts"])
        if message is None or message.direction != Direction.TO_PARTICIPANT.value or not message.author_user_id:
            return  # not a relayed message: nothing was sent, nothing to explain
        text = texts.edit_not_relayed() if p["change"] == "edited" else texts.delete_not_relayed()
        thread = await repo.thread_by_id(session, message.thread_id)
        await outbox.private(
            session,
            p["platform"],
            event.key,
            p["channel"],
            message.author_user_id,
            text,
            thread.thread_ts if thread else None,
        )

    return apply


# --- participant messages from Respondent --------------------------------------------------------------


async def _respondent_message(services: Services, event: Claimed) -> Apply:
    p = event.payload
    conversations: list[Conversation]
    if p.get("conversation_uid"):
        conversations = [await services.respondent.get_conversation(p["conversation_uid"])]
    else:
        async with services.db.transaction() as session:
            links = await repo.active_links(session)
        projects = {p["project_id"]} if p.get("project_id") else {link.respondent_project_id for link in links}
        conversations = []
        for project_id in sorted(projects):
            conversations.extend(await services.respondent.list_conversations(project_id))
    return _ingest(conversations, fallback_project=p.get("project_id"))


def _ingest(conversations: list[Conversation], fallback_project: str | None) -> Apply:
    """Mirror and archive every participant message not seen before, in the order they were written."""

    async def apply(session: AsyncSession) -> None:
        for conversation in conversations:
            project_id = conversation.project_id or fallback_project
            if not project_id:
                continue
            for user_id in conversation.participant_user_ids:
                for thread in await repo.threads_for_respondent_user(session, project_id, user_id):
                    await _ingest_thread(session, thread, conversation)

    return apply


async def _ingest_thread(session: AsyncSession, thread: ParticipantThread, conversation: Conversation) -> None:
    if thread.conversation_uid is None:
        thread.conversation_uid = conversation.uid
    # A participant may have several conversations in one project (one opened from Rally's Chat tab, one by us,
    # opened at the same moment): what they write in any of them belongs to their one thread.
    theirs = [m for m in conversation.messages if m.sender_uid == thread.respondent_user_id]
    known = await repo.known_respondent_uids(session, [m.uid for m in theirs])
    epoch = datetime.min.replace(tzinfo=UTC)
    # Stable sort on time alone: messages of the same millisecond keep the conversation's own order.
    for message in sorted(theirs, key=lambda m: m.created_at or epoch):
        if message.uid in known:
            continue
        sent_at = message.created_at or utcnow()
        row = await repo.add_message(
            session,
            thread=thread,
            direction=Direction.FROM_PARTICIPANT.value,
            state="mirrored",
            sent_at=sent_at,
            respondent_uid=message.uid,
            author_name=thread.display_name,
        )
        if row is None:
            continue
        await outbox.mirror(session, thread, row.id, message.uid, message.body)
        await outbox.archive(
            session,
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
        await reminder_firing.cancel_followups(session, thread, sent_at)


# --- Rally webhooks and reconciliation -----------------------------------------------------------------


async def _participant_status(services: Services, event: Claimed) -> Apply:
    p = event.payload
    async with services.db.transaction() as session:
        link = await repo.link_for_study(session, p["study_id"])
    if link is None or not link.active:
        return _nothing
    try:
        participant = await services.rally.get_participant(p["study_id"], p["participant_id"])
    except NotFound:
        return _nothing
    return _apply_participant(link.study_id, participant, event.key)


def _apply_participant(study_id: str, participant: Participant, key: str) -> Apply:
    async def apply(session: AsyncSession) -> None:
        link = await repo.link_for_study(session, study_id)
        if link is None or not link.active:
            return
        thread = await repo.thread_for_participant(session, study_id, participant.participant_id)
        if thread is None and _bridgeable(participant):
            thread = await _ensure_thread(session, link, participant)
        elif thread is not None:
            was_opted_out = thread.opted_out
            await repo.refresh_thread_facts(session, thread, participant)
            if thread.opted_out and not was_opted_out:
                await _opted_out_notice(session, thread)

    return apply


async def _opted_out_notice(session: AsyncSession, thread: ParticipantThread) -> None:
    """Once per thread, whichever path saw the opt-out first: an opt-out webhook and a reconcile (or a status
    webhook) can both find the thread not yet opted out in concurrent transactions, so the key is the thread's."""
    await outbox.notice_in_thread(
        session, thread, f"opted-out:{thread.id}", texts.opted_out_notice(thread.display_name)
    )


async def _person_opted_out(services: Services, event: Claimed) -> Apply:
    p = event.payload

    async def apply(session: AsyncSession) -> None:
        for thread in await repo.threads_by_email(session, p["email"]):
            if p["opted_out"] and not thread.opted_out:
                thread.opted_out = True
                await _opted_out_notice(session, thread)

    return apply


async def _reconcile(services: Services, event: Claimed) -> Apply:
    """Catch what lost webhooks missed: newly approved participants and unseen participant messages."""
    study_id = event.payload["study_id"]
    async with services.db.transaction() as session:
        link = await repo.link_for_study(session, study_id)
    if link is None or not link.active:
        return _nothing
    participants = await services.rally.list_participants(study_id)
    conversations = await services.respondent.list_conversations(link.respondent_project_id)
    ingest = _ingest(conversations, link.respondent_project_id)
    updates = [_apply_participant(study_id, p, f"{event.key}:{p.participant_id}") for p in participants]

    async def apply(session: AsyncSession) -> None:
        for update in updates:
            await update(session)
        await ingest(session)

    return apply


_Handler = Callable[[Services, Claimed], Awaitable[Apply]]
_HANDLERS: dict[EventKind, _Handler] = {
    EventKind.CHAT_COMMAND: _command,
    EventKind.CHAT_MESSAGE: _chat_message,
    EventKind.CHAT_MESSAGE_CHANGED: _chat_message_changed,
    EventKind.RESPONDENT_MESSAGE_CREATED: _respondent_message,
    EventKind.RALLY_PARTICIPANT_STATUS: _participant_status,
    EventKind.RALLY_PERSON_OPTED_OUT: _person_opted_out,
    EventKind.RECONCILE_STUDY: _reconcile,
    EventKind.REMINDER_DUE: reminder_firing.fire,
}

__all__ = ["Apply", "handle"]
