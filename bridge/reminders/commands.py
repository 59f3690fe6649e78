"""``remind``, ``followup``, ``reschedule``, ``status``, ``reminders``, ``cancel``: platform-agnostic commands.

Each handler reads what it needs (the channel's threads, the researcher's name/email/time zone from the chat
platform, the team and the participant from Rally; no transaction is open meanwhile) and returns an
``Apply`` that writes the reminder row and the researcher's private confirmation in one transaction. The same
words work from any chat platform whose adapter stores commands as ``chat.command`` inbox events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bridge import access, outbox
from bridge.reminders import view
from bridge.reminders.firing import queue_now
from bridge.services import Services
from core import clock, texts
from core.domain import Action, ChatUser, Direction, Participant
from core.errors import NotFound
from core.names import Candidate, resolve, words_of
from core.permissions import may_act_for_study
from core.when import WhenError, format_duration, format_moment, parse_duration, parse_when
from storage import reminders as store
from storage import repo
from storage.models import ParticipantThread, StudyLink
from storage.queue import Claimed

Apply = Callable[[AsyncSession], Awaitable[None]]
COMMANDS = frozenset({"remind", "followup", "follow-up", "reschedule", "status", "reminders", "cancel"})
DEFAULT_FOLLOWUP = timedelta(hours=24)


@dataclass(frozen=True)
class Asker:
    """Who typed the command, where; ``key`` is the command's inbox key."""

    platform: str
    channel: str
    user_id: str
    key: str
    tz: str | None = None  # sent with the command (Teams); else the user lookup's

    def reply(self, text: str, actions: Sequence[Action] = ()) -> Apply:
        async def apply(session: AsyncSession) -> None:
            await outbox.private(session, self.platform, self.key, self.channel, self.user_id, text, actions=actions)

        return apply


@dataclass(frozen=True)
class Target:
    """A resolved participant the asker may message, with fresh facts from Rally."""

    thread: ParticipantThread
    link: StudyLink
    participant: Participant
    user: ChatUser
    rally_user_id: str | None
    rest: str  # the command text after the participant

    @property
    def session_starts_at(self) -> datetime | None:
        return self.participant.session_starts_at or self.thread.session_starts_at


def message_part(text: str) -> str:
    """The words for the participant. A leading ``--`` only separates them from what comes before (the scheduling
    forms always put it there, so a message starting with "30 min" is never read as part of the time)."""
    text = text.strip()
    return text[2:].strip() if text.startswith("--") else text


def split_command(text: str) -> tuple[str, str]:
    parts = text.strip().split(maxsplit=1)
    word = parts[0].lower() if parts else "help"
    rest = parts[1].strip() if len(parts) > 1 else ""
    return ("followup" if word == "follow-up" else word), rest


async def handle(services: Services, event: Claimed) -> Apply:
    p = event.payload
    asker = Asker(p["platform"], p["channel"], p["user_id"], event.key, p.get("tz"))
    word, rest = split_command(p["text"])
    now = clock.now()
    if word == "reminders":
        return await _list(services, asker, now)
    if word == "cancel":
        return await _cancel(services, asker, rest, now)
    if word == "status":
        return await _status(services, asker, rest, now)
    if not rest:
        return asker.reply(texts.reminder_usage(word))
    found = await _target(services, asker, rest)
    if not isinstance(found, Target):
        return found
    if word == "remind":
        return _remind(asker, found, now)
    if word == "followup":
        return await _followup(services, asker, found, now)
    return _reschedule(asker, found, now)


async def _who(services: Services, asker: Asker) -> ChatUser:
    user = await services.chat(asker.platform).lookup_user(asker.user_id)
    return replace(user, tz=asker.tz) if asker.tz else user


async def _channel_threads(services: Services, asker: Asker) -> tuple[list[ParticipantThread], dict[str, StudyLink]]:
    async with services.db.transaction() as session:
        threads = await store.threads_in_channel(session, asker.platform, asker.channel)
        links = {link.study_id: link for link in await repo.active_links(session)}
    return threads, links


def _candidates(threads: list[ParticipantThread], links: dict[str, StudyLink]) -> list[Candidate]:
    return [
        Candidate(t.id, t.participant_id, t.display_name, links[t.study_id].study_name)
        for t in threads
        if t.study_id in links
    ]


async def _pick(services: Services, asker: Asker, text: str) -> tuple[ParticipantThread, StudyLink, str] | Apply:
    """The one thread ``text`` names, or a reply listing who there is."""
    threads, links = await _channel_threads(services, asker)
    candidates = _candidates(threads, links)
    if not candidates:
        return asker.reply(texts.no_participants_here())
    resolution = resolve(text, candidates)
    chosen = resolution.one
    if chosen is None:
        if resolution.matches:
            return asker.reply(texts.participant_ambiguous(resolution.wanted, [c.label for c in resolution.matches]))
        return asker.reply(texts.participant_unknown(resolution.wanted, [c.label for c in candidates]))
    thread = next(t for t in threads if t.id == chosen.thread_id)
    return thread, links[thread.study_id], resolution.rest


async def _target(services: Services, asker: Asker, text: str) -> Target | Apply:
    picked = await _pick(services, asker, text)
    if not isinstance(picked, tuple):
        return picked
    thread, link, rest = picked
    user = await _who(services, asker)
    # The opt-out is refused below with a sentence about scheduling.
    decision = await access.may_message(services, user, thread, link, check_opt_out=False)
    if not decision.allowed:
        return asker.reply(decision.reason)
    try:
        participant = await services.rally.get_participant(thread.study_id, thread.participant_id)
    except NotFound:
        return asker.reply(texts.participant_gone(thread.display_name))
    if thread.opted_out or participant.has_opted_out:
        return asker.reply(texts.participant_opted_out_nothing_scheduled(thread.display_name))
    rally_user_id = decision.rally_user.user_id if decision.rally_user else None
    return Target(thread, link, participant, user, rally_user_id, rest)


def _row(
    asker: Asker, target: Target, *, kind: str, due_at: datetime, body: str, spec: str, now: datetime
) -> store.Reminder:
    return store.Reminder(
        source_key=asker.key,
        kind=kind,
        thread_id=target.thread.id,
        study_id=target.thread.study_id,
        participant_id=target.thread.participant_id,
        platform=target.thread.platform,
        channel=target.thread.channel,
        due_at=due_at,
        body=body,
        spec=spec[:200],
        tz=target.user.tz or "UTC",
        created_by_user_id=asker.user_id,
        created_by_name=target.user.name,
        created_by_email=target.user.email,
        created_by_rally_user_id=target.rally_user_id,
        created_at=now,
        status=store.PENDING,
    )


def _schedule(asker: Asker, row: store.Reminder, name: str, note: str) -> Apply:
    async def apply(session: AsyncSession) -> None:
        added = await store.add(session, row)
        if added is None:
            return  # the same command handled again: scheduled once already
        moment = format_moment(added.due_at, added.tz)
        text = texts.reminder_set(added.kind, name, moment, added.id, added.body, note)
        await outbox.private(session, asker.platform, asker.key, asker.channel, asker.user_id, text)

    return apply


def _zone_note(user: ChatUser) -> str:
    return "" if user.tz else texts.no_tz_note()


def _remind(asker: Asker, target: Target, now: datetime) -> Apply:
    words = words_of(target.rest)
    try:
        when = parse_when(
            [w for w, _, _ in words], now=now, tz=target.user.tz, session_starts_at=target.session_starts_at
        )
    except WhenError as exc:
        return asker.reply(f"{exc}\n{texts.reminder_usage('remind')}")
    message = message_part(target.rest[words[when.consumed - 1][2] :])
    session = texts.format_session(target.session_starts_at)
    body = message or texts.default_reminder(target.link.study_name, session)
    row = _row(asker, target, kind=store.REMIND, due_at=when.at, body=body, spec=when.spec, now=now)
    return _schedule(asker, row, target.thread.display_name, _zone_note(target.user))


async def _followup(services: Services, asker: Asker, target: Target, now: datetime) -> Apply:
    words = words_of(target.rest)
    length, used, spec = DEFAULT_FOLLOWUP, 0, "24h after the last message"
    if words and words[0][0].lower() == "after":
        found = parse_duration([w for w, _, _ in words], 1)
        if found is None or found[0] <= timedelta(0):
            return asker.reply(texts.reminder_usage("followup"))
        length, used = found[0], 1 + found[1]
        spec = f"{format_duration(length)} after the last message"
    message = message_part(target.rest[words[used - 1][2] :] if used else target.rest)
    async with services.db.transaction() as session:
        last = await store.last_message(session, target.thread.id, Direction.TO_PARTICIPANT.value)
    note = _zone_note(target.user)
    due_at = (last.sent_at if last is not None else now) + length
    if due_at <= now + timedelta(minutes=1):
        due_at = now + length
        note += texts.followup_counted_from_now(format_duration(length))
    body = message or texts.default_followup(target.link.study_name)
    row = _row(asker, target, kind=store.FOLLOWUP, due_at=due_at, body=body, spec=spec, now=now)
    return _schedule(asker, row, target.thread.display_name, note)


def _reschedule(asker: Asker, target: Target, now: datetime) -> Apply:
    url = target.participant.scheduling_url
    if not url:
        return asker.reply(texts.no_scheduling_link(target.thread.display_name))
    body = texts.scheduling_message(target.link.study_name, url, message_part(target.rest))
    row = _row(asker, target, kind=store.RESCHEDULE, due_at=now, body=body, spec="now", now=now)
    row.status = store.QUEUED

    async def apply(session: AsyncSession) -> None:
        added = await store.add(session, row)
        if added is None:
            return
        await queue_now(session, added)
        text = texts.scheduling_link_queued(target.thread.display_name)
        await outbox.private(session, asker.platform, asker.key, asker.channel, asker.user_id, text)

    return apply


async def _status(services: Services, asker: Asker, rest: str, now: datetime) -> Apply:
    if rest:
        picked = await _pick(services, asker, rest)
        if not isinstance(picked, tuple):
            return picked
        threads, links = [picked[0]], {picked[1].study_id: picked[1]}
    else:
        threads, links = await _channel_threads(services, asker)
        if not threads:
            return asker.reply(texts.no_participants_here())
    user = await _who(services, asker)
    async with services.db.transaction() as session:
        text = await view.status(session, threads, links, user.tz)
    return asker.reply(text)


async def _list(services: Services, asker: Asker, now: datetime) -> Apply:
    threads, _links = await _channel_threads(services, asker)
    user = await _who(services, asker)
    async with services.db.transaction() as session:
        pending = await store.open_for_threads(session, [t.id for t in threads])
    if not pending:
        return asker.reply(texts.no_pending_reminders())
    names = {t.id: t.display_name for t in threads}
    buttons = [Action(f"Cancel #{row.id}", f"cancel {row.id}", "danger") for row in pending]
    return asker.reply(view.pending_list(pending, names, user.tz), buttons)


async def _cancel(services: Services, asker: Asker, rest: str, now: datetime) -> Apply:
    wanted = rest.lstrip("#").split(" ")[0]
    if not wanted.isdigit():
        return asker.reply(texts.reminder_usage("cancel"))
    async with services.db.transaction() as session:
        found = await store.open_with_thread(session, int(wanted))
    if found is None or (found[0].platform, found[0].channel) != (asker.platform, asker.channel):
        return asker.reply(texts.reminder_not_found(wanted))
    row, thread, link = found
    user = await _who(services, asker)
    team = await services.rally.get_team(row.study_id)
    users = await services.rally.find_users_by_email(user.email) if user.email else []
    decision = may_act_for_study(
        email=user.email, chat_name=user.name, study_name=link.study_name, team=team, rally_users=users
    )
    if not decision.allowed:
        return asker.reply(decision.reason)
    moment = format_moment(row.due_at, user.tz)
    notice = texts.reminder_cancelled_by(user.name, row.id, thread.display_name, moment)
    reminder_id = row.id

    async def apply(session: AsyncSession) -> None:
        moved = await store.transition(
            session, reminder_id, to=store.CANCELLED, allowed_from=store.OPEN, now=now, outcome=f"by {user.name}"
        )
        if not moved:
            await asker.reply(texts.reminder_not_found(wanted))(session)
            return
        current = await repo.thread_by_id(session, thread.id)
        assert current is not None
        await outbox.notice_in_thread(session, current, f"reminder-cancelled:{reminder_id}", notice)
        await asker.reply(notice)(session)

    return apply
