"""``remind``, ``followup``, ``reschedule``, ``status``, ``reminders``, ``cancel``: platform-agnostic commands.

Each is registered in the command registry (``core.commands.registry``). Its handler reads what it needs (the
channel's threads, the researcher's name/email/time zone from the chat platform, the team and the participant
from Rally; no transaction is open meanwhile: ``bridge/reminders/targets.py``) and returns an ``Apply`` that
writes the reminder row and the researcher's private confirmation in one unit of work. The same words work from
any chat platform whose adapter stores commands as ``chat.command`` inbox events.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge import home, outbox
from bridge.apply import Apply
from bridge.reminders import session_defaults, view
from bridge.reminders.firing import queue_now
from bridge.reminders.targets import Asker, Target, channel_threads, pick, reminder_row, target, who
from bridge.services import Services
from core import clock, texts
from core.case import first_response_times, median
from core.commands import Command, registry
from core.domain import Action, ChatUser, Direction
from core.events import CommandIssued
from core.message import Text, cmd, join, text
from core.names import words_of
from core.permissions import may_act_for_study
from core.records import OPEN_REMINDER, NewReminder, ReminderKind, ReminderStatus
from core.store import UnitOfWork
from core.when import WhenError, format_duration, format_moment, parse_duration, parse_noshow, parse_when

DEFAULT_FOLLOWUP = timedelta(hours=24)
FIRST_RESPONSE_WINDOW = timedelta(days=7)  # ``status``: the median first response over this long


def message_part(text: str) -> str:
    """The words for the participant. A leading ``--`` only separates them from what comes before (the scheduling
    forms always put it there, so a message starting with "30 min" is never read as part of the time)."""
    text = text.strip()
    return text[2:].strip() if text.startswith("--") else text


# --- the registered commands ------------------------------------------------------------------------------------


@registry.command(
    "remind",
    usage="<participant> <when> [message]",
    summary="remind them (when: in 2h, tomorrow 9am, fri 14:30, 2026-12-01 10:00, 1h before session, no-show); "
    "the participant alone: their session's defaults as buttons",
)
async def remind(services: Services, command: Command, event: CommandIssued) -> Apply:
    now = clock.now()
    found = await _targeted(services, command, event)
    if not isinstance(found, tuple):
        return found
    asker, target = found
    words = words_of(target.rest)
    if not words:  # the participant alone: their session's defaults, as buttons
        return await session_defaults.offer(services, asker, target, now)
    if used := parse_noshow([w for w, _, _ in words]):
        message = message_part(target.rest[words[used - 1][2] :])
        return await session_defaults.schedule_noshow(services, asker, target, message, now)
    return _remind(asker, target, now)


@registry.command(
    "followup",
    usage="<participant> [after <duration>] [message]",
    summary="nudge them if they haven't written by then (default 24h after your last message); "
    "cancelled as soon as they write",
    aliases=("follow-up",),
)
async def followup(services: Services, command: Command, event: CommandIssued) -> Apply:
    now = clock.now()
    found = await _targeted(services, command, event)
    return await _followup(services, *found, now) if isinstance(found, tuple) else found


@registry.command("reschedule", usage="<participant> [note]", summary="send them their scheduling link now")
async def reschedule(services: Services, command: Command, event: CommandIssued) -> Apply:
    now = clock.now()
    found = await _targeted(services, command, event)
    return _reschedule(*found, now) if isinstance(found, tuple) else found


@registry.command(
    "status",
    usage="[participant]",
    summary="each participant's session, last message each way and what is scheduled",
)
async def status(services: Services, command: Command, event: CommandIssued) -> Apply:
    return await _status(services, Asker.of(event), command.rest, clock.now())


@registry.command("reminders", summary="what is scheduled for the participants in this channel")
async def reminders(services: Services, command: Command, event: CommandIssued) -> Apply:
    return await _list(services, Asker.of(event), clock.now())


@registry.command(
    "cancel",
    usage="<id>",
    summary=text("cancel a scheduled message (the id is in ", cmd("reminders"), ")"),
    on_home=True,
)
async def cancel(services: Services, command: Command, event: CommandIssued) -> Apply:
    """Typed, a reminder of this channel, answered privately; clicked on the home (which has no channel), one of
    any channel of the clicker's workspace, answered on the home (``bridge.home.cancel``)."""
    if event.from_home:
        viewer = await home.viewer(services, event.platform, event.workspace, event.user_id)
        answer = home.republish(viewer, event.key, marker=services.internal_note_marker)
        return await home.cancel(services, viewer, " ".join(command.args), answer)
    return await _cancel(services, Asker.of(event), command.rest, clock.now())


async def _targeted(services: Services, command: Command, event: CommandIssued) -> tuple[Asker, Target] | Apply:
    """The asker and the participant the command names, or the reply that says why not."""
    asker = Asker.of(event)
    if not command.rest:
        return asker.reply(texts.reminder_usage(command.name))
    found = await target(services, asker, command.rest)
    if not isinstance(found, Target):
        return found
    return asker, found


# --- what they do -----------------------------------------------------------------------------------------------


def _schedule(asker: Asker, row: NewReminder, name: str, note: Text) -> Apply:
    async def apply(uow: UnitOfWork) -> None:
        added = await uow.reminders.add(row)
        if added is None:
            return  # the same command handled again: scheduled once already
        moment = format_moment(added.due_at, added.tz)
        said = texts.reminder_set(added.kind, name, moment, added.id, added.body, note)
        await outbox.private(uow, asker.platform, asker.key, asker.channel, asker.user_id, said)

    return apply


def _zone_note(user: ChatUser) -> Text:
    return Text() if user.tz else texts.no_tz_note()


def _remind(asker: Asker, target: Target, now: datetime) -> Apply:
    words = words_of(target.rest)
    try:
        when = parse_when(
            [w for w, _, _ in words], now=now, tz=target.user.tz, session_starts_at=target.session_starts_at
        )
    except WhenError as exc:
        return asker.reply(text(str(exc), "\n", texts.reminder_usage("remind")))
    message = message_part(target.rest[words[when.consumed - 1][2] :])
    session = texts.format_session(target.session_starts_at)
    body = message or texts.default_reminder(target.link.study_name, session)
    row = reminder_row(asker, target, kind=ReminderKind.REMIND, due_at=when.at, body=body, spec=when.spec, now=now)
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
    async with services.store.transaction() as uow:
        last = await uow.messages.last(target.thread.id, Direction.TO_PARTICIPANT.value)
    note = _zone_note(target.user)
    due_at = (last.sent_at if last is not None else now) + length
    if due_at <= now + timedelta(minutes=1):
        due_at = now + length
        note += texts.followup_counted_from_now(format_duration(length))
    body = message or texts.default_followup(target.link.study_name)
    row = reminder_row(asker, target, kind=ReminderKind.FOLLOWUP, due_at=due_at, body=body, spec=spec, now=now)
    return _schedule(asker, row, target.thread.display_name, note)


def _reschedule(asker: Asker, target: Target, now: datetime) -> Apply:
    url = target.participant.scheduling_url
    if not url:
        return asker.reply(texts.no_scheduling_link(target.thread.display_name))
    body = texts.scheduling_message(target.link.study_name, url, message_part(target.rest))
    row = reminder_row(
        asker,
        target,
        kind=ReminderKind.RESCHEDULE,
        due_at=now,
        body=body,
        spec="now",
        now=now,
        status=ReminderStatus.QUEUED,
    )

    async def apply(uow: UnitOfWork) -> None:
        added = await uow.reminders.add(row)
        if added is None:
            return
        await queue_now(uow, added)
        said = texts.scheduling_link_queued(target.thread.display_name)
        await outbox.private(uow, asker.platform, asker.key, asker.channel, asker.user_id, said)

    return apply


async def _status(services: Services, asker: Asker, rest: str, now: datetime) -> Apply:
    if rest:
        picked = await pick(services, asker, rest)
        if not isinstance(picked, tuple):
            return picked
        threads, links = [picked[0]], {picked[1].study_id: picked[1]}
    else:
        threads, links = await channel_threads(services, asker)
        if not threads:
            return asker.reply(texts.no_participants_here())
    user = await who(services, asker)
    since = now - FIRST_RESPONSE_WINDOW
    async with services.store.transaction() as uow:
        shown = await view.status(uow, threads, links, user.tz)
        studies = sorted({t.study_id for t in threads if t.study_id in links})
        times = {study_id: await uow.messages.times_since(study_id, since) for study_id in studies}
    speed = []
    for study_id in studies:
        answered = first_response_times(times[study_id])
        speed.append(texts.first_response(links[study_id].study_name, median(answered), len(answered)))
    return asker.reply(join("\n", [shown, *speed]))


async def _list(services: Services, asker: Asker, now: datetime) -> Apply:
    threads, _links = await channel_threads(services, asker)
    user = await who(services, asker)
    async with services.store.transaction() as uow:
        pending = await uow.reminders.open_for_threads([t.id for t in threads])
    if not pending:
        return asker.reply(texts.no_pending_reminders())
    names = {t.id: t.display_name for t in threads}
    buttons = [Action(f"Cancel #{row.id}", f"cancel {row.id}", "danger") for row in pending]
    return asker.reply(view.pending_list(pending, names, user.tz), buttons)


async def _cancel(services: Services, asker: Asker, rest: str, now: datetime) -> Apply:
    wanted = rest.lstrip("#").split(" ")[0]
    if not wanted.isdigit():
        return asker.reply(texts.reminder_usage("cancel"))
    async with services.store.transaction() as uow:
        found = await uow.reminders.open_with_thread(int(wanted))
    if found is None or (found[0].platform, found[0].channel) != (asker.platform, asker.channel):
        return asker.reply(texts.reminder_not_found(wanted))
    row, thread, link = found
    user = await who(services, asker)
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

    async def apply(uow: UnitOfWork) -> None:
        moved = await uow.reminders.transition(
            reminder_id, to=ReminderStatus.CANCELLED, allowed_from=OPEN_REMINDER, now=now, outcome=f"by {user.name}"
        )
        if not moved:
            await asker.reply(texts.reminder_not_found(wanted))(uow)
            return
        # A no-show follow-up takes its team reminder with it.
        team = await session_defaults.cancel_team(uow, row, user.name, now)
        said = notice + texts.team_reminder_cancelled_too(team) if team else notice
        current = await uow.threads.by_id(thread.id)
        assert current is not None
        await outbox.notice_in_thread(uow, current, f"reminder-cancelled:{reminder_id}", said)
        await asker.reply(said)(uow)

    return apply
