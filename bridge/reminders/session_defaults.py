"""Session-aware defaults of ``remind``: the offer, the no-show follow-up and its team reminder.

* ``remind <participant>`` with nothing after the participant answers privately with their session time and one
  button per default still possible (``24h before session``, ``1h before session``, ``No-show follow-up``); a click
  runs the command as typed (``remind pa_9 24h before session``, ``remind pa_9 no-show``). Without a session ahead
  the answer says so and what to do instead.
* ``remind <participant> no-show [message]`` schedules two rows in one unit of work: the no-show follow-up
  (``noshow``, to the participant at session + 10 min unless they wrote since the session started) and a team
  reminder (``team``, at session + 23 h: a notice in the thread mentioning whoever scheduled it, 1 h before Rally's
  no-show window closes; nothing goes to the participant). Both are counted from the session
  (``session_moves.follow_session`` moves them with it); the team row's spec names its no-show follow-up, so
  cancelling that one cancels both, and the team reminder knows whom it belongs to when it fires
  (``firing.fire``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

from bridge import outbox
from bridge.apply import Apply
from bridge.reminders.session_moves import offset_after_session
from bridge.reminders.targets import Asker, Target, reminder_row
from bridge.reminders.view import KIND_NAMES
from bridge.services import Services
from core import texts
from core.domain import Action
from core.message import Text, person
from core.records import OPEN_REMINDER, Reminder, ReminderKind, ReminderStatus
from core.store import UnitOfWork
from core.when import format_duration, format_moment

NOSHOW_AFTER = timedelta(minutes=10)  # the no-show follow-up: this long after the session started
NOSHOW_WINDOW = timedelta(hours=24)  # Rally: a participant can be marked a no-show until this long after the session
TEAM_AFTER = NOSHOW_WINDOW - timedelta(hours=1)  # the team reminder: 1 h before that window closes
MOVED_TOLERANCE = timedelta(minutes=1)  # a row further than this from session + offset was counted from another time
# The reminders offered, as the command words, and how long before the session each is.
BEFORE_SESSION = {"24h before session": timedelta(hours=24), "1h before session": timedelta(hours=1)}
NOSHOW_SPEC = f"{format_duration(NOSHOW_AFTER)} after session"
_PARTNER = re.compile(r"no-show #(\d+)$")


def team_spec(noshow_id: int) -> str:
    """The team reminder's spec: where it is from the session, and the no-show follow-up it belongs to."""
    return f"{format_duration(TEAM_AFTER)} after session, with no-show #{noshow_id}"


def partner_of(team: Reminder) -> int | None:
    """The id of the no-show follow-up a team reminder belongs to."""
    found = _PARTNER.search(team.spec) if team.kind == ReminderKind.TEAM else None
    return int(found[1]) if found else None


def _find(rows: list[Reminder], kind: str, due_at: datetime) -> Reminder | None:
    return next((r for r in rows if r.kind == kind and r.due_at == due_at), None)


async def _open_rows(services: Services, target: Target) -> list[Reminder]:
    async with services.store.transaction() as uow:
        return await uow.reminders.open_for_threads([target.thread.id])


# --- remind <participant>: the offer ---------------------------------------------------------------------------


async def offer(services: Services, asker: Asker, target: Target, now: datetime) -> Apply:
    """The participant's session time and a button per default still possible, or why there is none."""
    session, tz = target.session_starts_at, target.user.tz
    name, participant_id = target.thread.display_name, target.thread.participant_id
    if session is None or session <= now:
        url = target.participant.scheduling_url or target.thread.scheduling_url
        passed = format_moment(session, tz) if session is not None else None
        return asker.reply(texts.session_defaults_none(name, participant_id, passed, bool(url)))
    rows = await _open_rows(services, target)
    actions: list[Action] = []
    scheduled: list[str] = []
    for spec, before in BEFORE_SESSION.items():
        done = _find(rows, ReminderKind.REMIND, session - before)
        if done is not None:
            scheduled.append(f"#{done.id} {spec}")
        elif session - before > now:
            actions.append(Action(spec, f"remind {participant_id} {spec}"))
    done = _find(rows, ReminderKind.NOSHOW, session + NOSHOW_AFTER)
    if done is not None:
        scheduled.append(f"#{done.id} no-show follow-up")
    else:
        actions.append(Action("No-show follow-up", f"remind {participant_id} no-show"))
    said = texts.session_defaults_offer(name, participant_id, format_moment(session, tz), bool(actions), scheduled)
    return asker.reply(said, actions)


# --- remind <participant> no-show [message] --------------------------------------------------------------------


async def schedule_noshow(services: Services, asker: Asker, target: Target, message: str, now: datetime) -> Apply:
    """The no-show follow-up and its team reminder, confirmed privately; refused without a session to count from."""
    session, tz = target.session_starts_at, target.user.tz
    name = target.thread.display_name
    if session is None or session + NOSHOW_AFTER <= now:
        passed = format_moment(session, tz) if session is not None else None
        return asker.reply(texts.noshow_not_possible(name, passed))
    due_at = session + NOSHOW_AFTER
    existing = _find(await _open_rows(services, target), ReminderKind.NOSHOW, due_at)
    if existing is not None:
        return asker.reply(texts.noshow_already(name, existing.id))
    url = target.participant.scheduling_url or target.thread.scheduling_url
    body = message or texts.default_noshow(target.link.study_name, url)
    noshow = reminder_row(asker, target, kind=ReminderKind.NOSHOW, due_at=due_at, body=body, spec=NOSHOW_SPEC, now=now)
    team = reminder_row(
        asker,
        target,
        kind=ReminderKind.TEAM,
        due_at=session + TEAM_AFTER,
        body=texts.team_reminder_body(name),
        spec=team_spec(0),
        now=now,
        source_key=f"{asker.key}:team",
    )
    note = Text() if tz else texts.no_tz_note()

    async def apply(uow: UnitOfWork) -> None:
        added = await uow.reminders.add(noshow)
        if added is None:
            return  # the same command handled again: scheduled once already
        paired = await uow.reminders.add(replace(team, spec=team_spec(added.id)))
        assert paired is not None  # its key is the new row's command key + ":team": new with it
        said = texts.noshow_set(
            name,
            (added.id, format_moment(added.due_at, added.tz)),
            (paired.id, format_moment(paired.due_at, paired.tz)),
            added.body,
            note,
        )
        await outbox.private(uow, asker.platform, asker.key, asker.channel, asker.user_id, said)

    return apply


async def cancel_team(uow: UnitOfWork, row: Reminder, by: str, now: datetime) -> list[int]:
    """``row`` (a no-show follow-up) was just cancelled by ``by``: cancel its open team reminder too; their ids."""
    if row.kind != ReminderKind.NOSHOW:
        return []
    cancelled = []
    for other in await uow.reminders.open_for_threads([row.thread_id]):
        if partner_of(other) == row.id and await uow.reminders.transition(
            other.id,
            to=ReminderStatus.CANCELLED,
            allowed_from=OPEN_REMINDER,
            now=now,
            outcome=f"by {by}, with #{row.id}",
        ):
            cancelled.append(other.id)
    return cancelled


# --- at fire time ----------------------------------------------------------------------------------------------


def session_changed(row: Reminder, session_at: datetime | None, name: str) -> tuple[str, Text] | None:
    """Why a no-show follow-up or team reminder must be skipped: Rally's session (``session_at``, fresh) is no
    longer the one it was counted from (moved while the row was already queued, or cleared). None: it still is."""
    what = KIND_NAMES.get(row.kind, row.kind)
    moment = format_moment(row.due_at, row.tz)
    offset = offset_after_session(row.spec)
    if session_at is None:
        return "session cleared", texts.session_reminder_skipped(what, name, moment, None)
    if offset is None or abs(session_at + offset - row.due_at) > MOVED_TOLERANCE:
        return "session moved", texts.session_reminder_skipped(what, name, moment, format_moment(session_at, row.tz))
    return None


def partner_cancelled(partner: Reminder | None) -> bool:
    """Whether a person cancelled the no-show follow-up a team reminder belongs to (by any path: typed, clicked,
    on the home), which cancels the team reminder."""
    return (
        partner is not None and partner.status == ReminderStatus.CANCELLED and (partner.outcome or "").startswith("by ")
    )


def team_notice(row: Reminder, thread_id: int, session_at: datetime, now: datetime) -> Apply:
    """Fire a team reminder: ``queued -> sent`` and the notice in the thread, mentioning whoever scheduled it;
    nothing goes to the participant."""
    reminder_id = row.id
    who = person(row.created_by_user_id, row.created_by_name)
    closes_at = session_at + NOSHOW_WINDOW
    left = closes_at - now
    left_words = None if left <= timedelta(0) else "1 hour" if left > timedelta(minutes=50) else format_duration(left)

    async def apply(uow: UnitOfWork) -> None:
        if not await uow.reminders.transition(
            reminder_id, to=ReminderStatus.SENT, allowed_from=(ReminderStatus.QUEUED,), now=now
        ):
            return  # cancelled between the checks and now
        thread = await uow.threads.by_id(thread_id)
        assert thread is not None
        said = texts.team_reminder(who, thread.display_name, session_at, closes_at, left_words)
        await outbox.notice_in_thread(uow, thread, f"team-reminder:{reminder_id}", said)

    return apply
