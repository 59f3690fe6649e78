"""Turn inbox rows into state changes and outbox rows.

Each handler first reads what it needs from outside (Rally, Respondent, the chat platform: no database
transaction is open meanwhile), then returns an ``Apply`` that the worker runs in one transaction together
with marking the inbox row done. Running a handler twice on the same row has the effect of running it once:
every write is keyed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bridge import access, home, outbox
from bridge.inbox import lane_for
from bridge.reminders import commands as reminder_commands
from bridge.reminders import firing as reminder_firing
from bridge.reminders import session_moves
from bridge.services import Services
from core import texts
from core.commands import Command, parse_command
from core.domain import ArchiveEntry, AuthorType, Conversation, Direction, Participant, Source, Study
from core.errors import NotFound, PermanentFailure
from core.events import HOME, EventKind, InboundEvent
from core.permissions import Decision, may_act_for_study
from storage import queue, repo
from storage.models import InboxEvent, OutboxItem, ParticipantThread, StudyLink
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

    if p.get("origin") == HOME:
        return await _from_home(services, event, command)
    if command.name == "help":
        return reply(texts.help_text(marker))
    if command.name == "retry":

        async def answer(session: AsyncSession, text: str) -> None:
            await outbox.private(session, platform, event.key, channel, user_id, text)

        return await _retry(services, event, command, answer, from_home=False)
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
        created = [await _ensure_thread(session, link, participant) for participant in participants]
        await _catch_up(session, link, [thread for thread, is_new in created if is_new], event.key)

    return apply


async def _from_home(services: Services, event: Claimed, command: Command) -> Apply:
    """A button clicked on the clicker's home (``origin`` home: no channel). Only Retry and Cancel are there; the
    answer is the home published again with a status line (``bridge/home.py``)."""
    p = event.payload
    who = await home.viewer(services, p["platform"], p["workspace"], p["user_id"])
    answer = home.republish(who, event.key, marker=services.internal_note_marker)
    if command.name == "retry":
        return await _retry(services, event, command, answer, from_home=True)
    if command.name == "cancel":
        return await home.cancel(services, who, " ".join(command.args), answer)

    async def refuse(session: AsyncSession) -> None:
        await answer(session, texts.home_not_here(command.name))

    return refuse


async def _retry(
    services: Services, event: Claimed, command: Command, answer: home.Answer, *, from_home: bool
) -> Apply:
    """``retry <id>``: send a relay that gave up again, the very same outbox row (same key: exactly once, and an
    attempt whose outcome was unknown is still verified at Respondent first). Only a failed relay, only by someone
    who may message that participant now; typed, only in the study's channel, and the confirmation comes privately
    in the participant's thread; clicked on the home, for any study of the clicker's workspace, answered there."""
    p = event.payload
    wanted = (command.args[0] if command.args else "").lstrip("#")

    def say(text: str) -> Apply:
        async def apply(session: AsyncSession) -> None:
            await answer(session, text)

        return apply

    if not wanted.isdigit():
        return say(texts.retry_usage())
    delivery_id = int(wanted)
    async with services.db.transaction() as session:
        row = await session.get(OutboxItem, delivery_id)
        relay = row is not None and row.kind == outbox.Effect.RELAY.value
        thread = await repo.thread_by_id(session, int(row.payload.get("thread_id") or 0)) if relay and row else None
        link = await repo.link_for_study(session, thread.study_id) if thread is not None else None
        status = row.status if row is not None else ""
    if thread is None or link is None or thread.platform != p["platform"]:
        return say(texts.retry_not_found(wanted))
    if (thread.workspace if from_home else thread.channel) != (p["workspace"] if from_home else p["channel"]):
        return say(texts.retry_not_found(wanted))
    if status != queue.FAILED:
        return say(texts.retry_not_failed(delivery_id, status))
    user = await services.chat(p["platform"]).lookup_user(p["user_id"])
    decision = await access.may_message(services, user, thread, link)
    if not decision.allowed:
        return say(decision.reason)
    who = decision.rally_user.fullname if decision.rally_user else user.name
    thread_id, name, lane = thread.id, thread.display_name, f"relay:{thread.id}"

    async def apply(session: AsyncSession) -> None:
        current = await session.get(OutboxItem, delivery_id)
        if current is None or current.status != queue.FAILED:
            await answer(session, texts.retry_not_failed(delivery_id, current.status if current else "done"))
            return
        if await queue.working_in_lane(session, OutboxItem, lane):
            await answer(session, texts.retry_busy(delivery_id, name))  # two relays to one person never overlap
            return
        payload = {**current.payload, "retries": int(current.payload.get("retries") or 0) + 1}
        if not await queue.requeue_failed(session, OutboxItem, delivery_id, payload=payload):
            await answer(session, texts.retry_not_failed(delivery_id, "pending"))
            return
        thread_now = await repo.thread_by_id(session, thread_id)
        assert thread_now is not None
        await repo.reset_failed_message(session, int(payload["message_id"]))
        round_ = outbox.delivery_round(payload)
        ts = (payload.get("author") or {}).get("platform_ts")
        if ts:  # the reply's ❌ comes off; ✅ (or ❌ again) follows with the new outcome
            failed_mark = outbox.FAILED_REACTION
            await outbox.unreaction(session, thread_now.platform, thread_now.channel, ts, failed_mark, round_)
        notice = texts.retry_notice(who, delivery_id, name)
        await outbox.notice_in_thread(session, thread_now, f"retry:{delivery_id}{round_}", notice)
        confirmation = texts.retry_queued(delivery_id, name)
        if from_home:
            await answer(session, confirmation)
        else:
            await outbox.private(
                session, p["platform"], event.key, thread_now.channel, p["user_id"], confirmation, thread_now.thread_ts
            )

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


async def _ensure_thread(
    session: AsyncSession, link: StudyLink, participant: Participant
) -> tuple[ParticipantThread, bool]:
    """The participant's thread, its root queued when it is new. Returns (thread, created); the caller queues
    one catch-up read for the threads it created (:func:`_catch_up`)."""
    thread, created = await repo.insert_thread(session, link, participant)
    if created:
        await outbox.post_root(session, thread)
    else:
        await _refresh_facts(session, thread, participant)
    return thread, created


async def _refresh_facts(session: AsyncSession, thread: ParticipantThread, participant: Participant) -> None:
    """Session time, scheduling link and opt-out from Rally; reminders counted back from the session follow it."""
    was = thread.session_starts_at
    await repo.refresh_thread_facts(session, thread, participant)
    await session_moves.follow_session(session, thread, was, thread.session_starts_at)


async def _catch_up(session: AsyncSession, link: StudyLink, threads: list[ParticipantThread], cause: str) -> None:
    """Messages the participants wrote before their threads existed are picked up from Respondent now, in one
    read of the project for every thread ``cause`` (one inbox event) opened, after this transaction commits."""
    if not threads:
        return
    digest = hashlib.sha256(cause.encode()).hexdigest()[:16]
    event = InboundEvent(
        key=f"reconcile:{link.study_id}:catch-up:{digest}",
        kind=EventKind.RECONCILE_STUDY,
        payload={
            "study_id": link.study_id,
            "catch_up": True,
            "respondent_user_ids": sorted({t.respondent_user_id for t in threads}),
        },
    )
    await enqueue(
        session, InboxEvent, key=event.key, kind=event.kind.value, lane=lane_for(event), payload=event.payload
    )


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
    decision = await access.may_message(services, user, thread, link)
    if not decision.allowed:
        return _private_notices(p["platform"], key, channel, user_id, thread_ts, [decision.reason])
    body = await chat.to_plain_text(text)
    author = decision.rally_user
    thread_id = thread.id

    async def apply(session: AsyncSession) -> None:
        current = await repo.thread_by_id(session, thread_id)
        assert current is not None
        message_id = await repo.add_message(
            session,
            thread=current,
            direction=Direction.TO_PARTICIPANT.value,
            state="pending",
            sent_at=_slack_time(ts),
            platform_ts=ts,
            author_user_id=user_id,
            author_name=author.fullname if author else user.name,
        )
        if message_id is None:
            return  # the same Slack message arrived again: already relayed once
        await outbox.relay(
            session,
            current,
            message_id,
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
        message_id = await repo.add_message(
            session,
            thread=thread,
            direction=Direction.FROM_PARTICIPANT.value,
            state="mirrored",
            sent_at=sent_at,
            respondent_uid=message.uid,
            author_name=thread.display_name,
        )
        if message_id is None:
            continue
        await outbox.mirror(session, thread, message_id, message.uid, message.body)
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
            thread, created = await _ensure_thread(session, link, participant)
            await _catch_up(session, link, [thread] if created else [], key)
        elif thread is not None:
            was_opted_out = thread.opted_out
            await _refresh_facts(session, thread, participant)
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
    """Catch what lost webhooks missed: newly approved participants and unseen participant messages.

    Incremental where the contracts allow (docs/performance.md, "Reconciliation cost"): Rally's participant list
    (all pages, cursors) is compared with the study's threads in one query, and only differences are written;
    Respondent's conversation list (all pages) is compared with the message ids already mapped, and only
    conversations with an unseen participant message are ingested. A conversation is read on its own only when
    the list does not carry all its messages and its ``latestMessage`` is not a participant message already
    mirrored. A catch-up (payload ``catch_up``: threads just opened) skips Rally and reads the conversations of
    those participants whatever their latest message.
    """
    p = event.payload
    study_id = p["study_id"]
    async with services.db.transaction() as session:
        link = await repo.link_for_study(session, study_id)
        threaded = await repo.participants_with_threads(session, study_id) if link is not None else set()
    if link is None or not link.active:
        return _nothing
    project_id = link.respondent_project_id
    participants = None if p.get("catch_up") else await services.rally.list_participants(study_id)
    # Participants this reconcile is about to open a thread for: their earlier messages are read now too.
    joining = {
        x.respondent_user_id
        for x in participants or ()
        if x.respondent_user_id and _bridgeable(x) and x.participant_id not in threaded
    }
    listed = await services.respondent.list_conversations(project_id)
    force = joining | set(p.get("respondent_user_ids") or ())
    conversations = await _unseen(services, project_id, listed, joining=joining, force=force)
    ingest = _ingest(conversations, project_id)
    update = _apply_participants(study_id, participants, event.key) if participants is not None else _nothing

    async def apply(session: AsyncSession) -> None:
        await update(session)
        await ingest(session)

    return apply


async def _unseen(
    services: Services, project_id: str, listed: list[Conversation], *, joining: set[str], force: set[str]
) -> list[Conversation]:
    """The conversations of ``listed`` holding a participant message the bridge has not mirrored yet, read in
    full where the list did not carry all their messages. ``joining``: participants whose threads are about to
    open; ``force``: participants whose conversations are read in full whatever their latest message."""
    async with services.db.transaction() as session:
        users = await repo.respondent_users_with_threads(session, project_id) | joining
        relevant = [c for c in listed if users.intersection(c.participant_user_ids)]
        theirs = [m.uid for c in relevant if c.messages_complete for m in c.messages if m.sender_uid in users]
        known = await repo.known_respondent_uids(session, theirs)
        latest = [c.latest_message_uid for c in relevant if not c.messages_complete and c.latest_message_uid]
        mirrored = await repo.mirrored_respondent_uids(session, latest)
    unseen: list[Conversation] = []
    for conversation in relevant:
        if conversation.messages_complete:
            if any(m.sender_uid in users and m.uid not in known for m in conversation.messages):
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


def _apply_participants(study_id: str, participants: list[Participant], key: str) -> Apply:
    """Rally's participant list against the study's threads: open the missing ones, keep facts current, announce
    opt-outs; one query for the threads, writes only where something differs."""

    async def apply(session: AsyncSession) -> None:
        link = await repo.link_for_study(session, study_id)
        if link is None or not link.active:
            return
        threads = await repo.threads_of_study(session, study_id)
        opened: list[ParticipantThread] = []
        for participant in participants:
            thread = threads.get(participant.participant_id)
            if thread is None:
                if _bridgeable(participant):
                    thread, created = await _ensure_thread(session, link, participant)
                    if created:
                        opened.append(thread)
                continue
            was_opted_out = thread.opted_out
            await _refresh_facts(session, thread, participant)
            if thread.opted_out and not was_opted_out:
                await _opted_out_notice(session, thread)
        await _catch_up(session, link, opened, key)

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
    EventKind.HOME_OPENED: lambda services, event: home.opened(services, event.key, event.payload),
}

__all__ = ["Apply", "handle"]
