"""Firing: the tick that turns due rows into inbox events, the handler that sends them, and cancellation
when a participant writes.

Exactly once: the tick moves a row ``pending -> queued`` with a conditional update (``FOR UPDATE SKIP LOCKED``
on PostgreSQL) and stores the inbox event ``reminder:<id>`` in the same transaction; the inbox key is unique, so
however many replicas tick, one event exists. The handler re-checks everything that may have changed since the
row was scheduled (study link, opt-out, the scheduler's R2 permission, session time, whether the participant
wrote), then moves ``queued -> sent`` in the transaction that queues the relay: the relay, archive
(``author.type: BOT``, ``source: SCHEDULER``) and retries are the normal outbox's.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bridge import outbox
from bridge.apply import Apply, nothing
from bridge.reminders import session_defaults
from bridge.services import Services
from core import clock, texts
from core.domain import AuthorType, Direction, Source
from core.errors import NotFound
from core.events import ReminderDue, lane_for, reminder_due
from core.message import Text
from core.permissions import may_act_for_study
from core.records import OPEN_REMINDER, Link, MessageState, Reminder, ReminderKind, ReminderStatus, Thread
from core.store import UnitOfWork
from core.when import format_duration, format_moment

log = logging.getLogger(__name__)

LATE_AFTER = timedelta(minutes=5)
TICK_SECONDS = 1.0


async def queue_now(uow: UnitOfWork, row: Reminder) -> None:
    """Store the inbox event that sends ``row`` (already ``queued``)."""
    event = reminder_due(reminder_id=row.id, thread_id=row.thread_id)
    await uow.inbox.add(key=event.key, kind=event.kind.value, lane=lane_for(event), payload=event.payload)


async def enqueue_due(services: Services, now: datetime | None = None) -> int:
    """The tick: queue every row whose time has come. Safe to run in every replica at once."""
    now = now or clock.now()
    queued = 0
    async with services.store.transaction() as uow:
        for row in await uow.reminders.due(now):
            if await uow.reminders.transition(
                row.id, to=ReminderStatus.QUEUED, allowed_from=(ReminderStatus.PENDING,), now=now
            ):
                await queue_now(uow, row)
                queued += 1
    if queued:
        log.info("%d reminder(s) came due", queued)
        services.wakeup.set()
    return queued


async def cancel_followups(uow: UnitOfWork, thread: Thread, written_at: datetime, now: datetime | None = None) -> int:
    """The participant wrote at ``written_at``: cancel follow-ups scheduled before that, and say so."""
    now = now or clock.now()
    cancelled = 0
    for row in await uow.reminders.open_followups(thread.id, written_at):
        moved = await uow.reminders.transition(
            row.id, to=ReminderStatus.CANCELLED, allowed_from=OPEN_REMINDER, now=now, outcome="participant wrote"
        )
        if moved:
            text = texts.followup_cancelled_participant_wrote(thread.display_name, format_moment(row.due_at, row.tz))
            await outbox.notice_in_thread(uow, thread, f"followup-cancelled:{row.id}", text)
            cancelled += 1
    return cancelled


async def fire(services: Services, event: ReminderDue) -> Apply:
    """Inbox handler for ``reminder.due``."""
    now = clock.now()
    async with services.store.transaction() as uow:
        row = await uow.reminders.by_id(event.reminder_id)
        thread = await uow.threads.by_id(row.thread_id) if row is not None else None
        link = await uow.links.for_study(row.study_id) if row is not None else None
    if row is None or thread is None or row.status != ReminderStatus.QUEUED:
        return nothing  # cancelled meanwhile, or handled already
    if row.kind == ReminderKind.TEAM:
        return await _team(services, row, thread, link, now)
    name, moment = thread.display_name, format_moment(row.due_at, row.tz)
    if link is None or not link.active or link.channel != row.channel:
        return _end(
            row, thread, ReminderStatus.CANCELLED, "study unlinked", texts.reminder_cancelled_unlinked(name, moment)
        )
    try:
        participant = await services.rally.get_participant(row.study_id, row.participant_id)
    except NotFound:
        return _end(
            row, thread, ReminderStatus.CANCELLED, "participant gone", texts.reminder_cancelled_gone(name, moment)
        )
    if thread.opted_out or participant.has_opted_out:
        return _end(
            row, thread, ReminderStatus.CANCELLED, "opted out", texts.reminder_cancelled_opted_out(name, moment)
        )
    team = await services.rally.get_team(row.study_id)
    email = row.created_by_email
    users = await services.rally.find_users_by_email(email) if email else []
    decision = may_act_for_study(
        email=email, chat_name=row.created_by_name, study_name=link.study_name, team=team, rally_users=users
    )
    if not decision.allowed:
        text = texts.reminder_cancelled_permission(row.created_by_name, name, moment, decision.reason)
        return _end(row, thread, ReminderStatus.CANCELLED, "permission", text, in_channel=True)
    if row.kind == ReminderKind.NOSHOW:
        skipped = await _noshow_skipped(services, row, thread, participant.session_starts_at, now)
        if skipped is not None:
            return _end(row, thread, ReminderStatus.SKIPPED, *skipped)
    session_at = participant.session_starts_at or thread.session_starts_at
    if (
        row.kind not in (ReminderKind.RESCHEDULE, ReminderKind.NOSHOW)
        and session_at is not None
        and row.due_at < session_at <= now
    ):
        text = texts.reminder_skipped_session_started(name, moment)
        return _end(row, thread, ReminderStatus.SKIPPED, "session started", text)
    if row.kind == ReminderKind.FOLLOWUP and await _participant_wrote(services, thread, row.created_at):
        text = texts.followup_cancelled_participant_wrote(name, moment)
        return _end(
            row, thread, ReminderStatus.CANCELLED, "participant wrote", text, key=f"followup-cancelled:{row.id}"
        )
    late = now - row.due_at
    late_by = format_duration(late) if late > LATE_AFTER else None
    return _send(row, thread.id, decision.rally_user.user_id if decision.rally_user else None, late_by, now)


async def _noshow_skipped(
    services: Services, row: Reminder, thread: Thread, session_at: datetime | None, now: datetime
) -> tuple[str, Text] | None:
    """Why a no-show follow-up is not sent: the session moved or was cleared, Rally's no-show window closed while
    the bridge was down, or the participant wrote since the session started (our mirror, or Respondent itself: the
    webhook may still be on its way)."""
    changed = session_defaults.session_changed(row, session_at, thread.display_name)
    if changed is not None or session_at is None:
        return changed
    name, moment = thread.display_name, format_moment(row.due_at, row.tz)
    if now >= session_at + session_defaults.NOSHOW_WINDOW:
        return "too late", texts.noshow_skipped_too_late(name, moment)
    if await _participant_wrote(services, thread, session_at):
        return "participant wrote", texts.noshow_skipped_wrote(name, moment)
    return None


async def _team(services: Services, row: Reminder, thread: Thread, link: Link | None, now: datetime) -> Apply:
    """A team reminder: a notice in the thread for the team, nothing to the participant. Skipped without a word when
    the study is no longer bridged here or Rally no longer has the participant; cancelled with its no-show
    follow-up; skipped with a notice when the session moved or was cleared."""
    if link is None or not link.active or link.channel != row.channel:
        return _end(row, thread, ReminderStatus.SKIPPED, "study unlinked", None)
    partner = session_defaults.partner_of(row)
    if partner is not None:
        async with services.store.transaction() as uow:
            noshow = await uow.reminders.by_id(partner)
        if session_defaults.partner_cancelled(noshow):
            return _end(row, thread, ReminderStatus.CANCELLED, f"with #{partner}", None)
    try:
        participant = await services.rally.get_participant(row.study_id, row.participant_id)
    except NotFound:
        return _end(row, thread, ReminderStatus.SKIPPED, "participant gone", None)
    session_at = participant.session_starts_at
    changed = session_defaults.session_changed(row, session_at, thread.display_name)
    if changed is not None or session_at is None:
        return _end(row, thread, ReminderStatus.SKIPPED, *(changed or ("session cleared", None)))
    return session_defaults.team_notice(row, thread.id, session_at, now)


def _end(
    row: Reminder,
    thread: Thread,
    status: str,
    outcome: str,
    text: Text | None,
    *,
    in_channel: bool = False,
    key: str | None = None,
) -> Apply:
    """Close ``row`` without sending, and tell the thread (or the channel) unless ``text`` is None."""
    reminder_id, thread_id = row.id, thread.id

    async def apply(uow: UnitOfWork) -> None:
        now = clock.now()
        if not await uow.reminders.transition(
            reminder_id, to=status, allowed_from=(ReminderStatus.QUEUED,), now=now, outcome=outcome
        ):
            return
        current = await uow.threads.by_id(thread_id)
        assert current is not None
        if text is None:
            return
        notice_key = key or f"reminder-{status}:{reminder_id}"
        if in_channel:
            await outbox.notice_in_channel(uow, current.platform, current.channel, notice_key, text)
        else:
            await outbox.notice_in_thread(uow, current, notice_key, text)

    return apply


def _send(row: Reminder, thread_id: int, rally_user_id: str | None, late_by: str | None, now: datetime) -> Apply:
    reminder_id, kind, body = row.id, row.kind, row.body
    who, email, chat_user_id = row.created_by_name, row.created_by_email, row.created_by_user_id

    async def apply(uow: UnitOfWork) -> None:
        if not await uow.reminders.transition(
            reminder_id, to=ReminderStatus.SENT, allowed_from=(ReminderStatus.QUEUED,), now=now
        ):
            return  # cancelled between the checks and now: nothing leaves
        thread = await uow.threads.by_id(thread_id)
        assert thread is not None
        message_id = await uow.messages.add(
            thread=thread,
            direction=Direction.TO_PARTICIPANT.value,
            state=MessageState.PENDING.value,
            sent_at=now,
            author_user_id=chat_user_id,
            author_name=who,
        )
        assert message_id is not None  # no post or Respondent id yet: nothing it could duplicate
        await outbox.relay(
            uow,
            thread,
            message_id,
            body,
            f"reminder:{reminder_id}",
            author={
                "user_id": rally_user_id,
                "email": email,
                "name": who,
                "post_id": None,
                "type": AuthorType.BOT.value,
                "source": Source.SCHEDULER.value,
                "external_id": f"rallybridge:reminder:{reminder_id}",
            },
        )
        text = texts.reminder_sent_notice(kind, thread.display_name, who, body, late_by)
        await outbox.notice_in_thread(uow, thread, f"reminder-sent:{reminder_id}", text)

    return apply


async def _participant_wrote(services: Services, thread: Thread, since: datetime) -> bool:
    """Whether the participant wrote after ``since``: in our mirror, or at Respondent (webhook still on its way)."""
    async with services.store.transaction() as uow:
        last = await uow.messages.last(thread.id, Direction.FROM_PARTICIPANT.value)
    if last is not None and last.sent_at > since:
        return True
    if thread.conversation_uid:
        conversations = [await services.respondent.get_conversation(thread.conversation_uid)]
    else:
        conversations = [
            c
            for c in await services.respondent.list_conversations(thread.respondent_project_id)
            if thread.respondent_user_id in c.participant_user_ids
        ]
    return any(
        m.sender_uid == thread.respondent_user_id and m.created_at is not None and m.created_at > since
        for c in conversations
        for m in c.messages
    )
