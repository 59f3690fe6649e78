"""Reminders counted from the session follow it when Rally moves it: those counted back from it ("1h before
session") and the no-show follow-up and its team reminder ("10m after session", "23h after session, ...").

Called whenever a thread's facts are refreshed from Rally (status webhook, reconcile, re-link). Only rows still
``pending`` move (a ``queued`` row is already being sent; its fire-time check skips it if the session started, or,
for a no-show follow-up or team reminder, if the session is no longer where it was counted from). The move is a
conditional update on ``status = pending``, so it cannot race a tick that queues the same row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge import outbox
from bridge.reminders.view import KIND_NAMES
from core import texts
from core.records import Reminder, ReminderKind, ReminderStatus, Thread
from core.store import UnitOfWork
from core.when import format_moment, parse_duration

AFTER_SESSION_KINDS = (ReminderKind.NOSHOW, ReminderKind.TEAM)


def _counted(spec: str, word: str) -> timedelta | None:
    words = [w.lower().rstrip(",") for w in spec.split()]
    found = parse_duration(words)
    if found is None:
        return None
    length, used = found
    return (
        length
        if words[used : used + 2] == [word, "session"] or words[used : used + 3] == [word, "the", "session"]
        else None
    )


def offset_before_session(spec: str) -> timedelta | None:
    """``1h before session`` -> 1 hour; None for a reminder not counted back from the session."""
    return _counted(spec, "before")


def offset_after_session(spec: str) -> timedelta | None:
    """``10m after session`` (a no-show follow-up), ``23h after session, ...`` (its team reminder) -> the length;
    None for a spec that does not say so."""
    return _counted(spec, "after")


def session_offset(row: Reminder) -> timedelta | None:
    """Where ``row`` is from the session it was counted from (negative: before it); None if it is not."""
    if row.kind == ReminderKind.REMIND:
        before = offset_before_session(row.spec)
        return -before if before is not None else None
    if row.kind in AFTER_SESSION_KINDS:
        return offset_after_session(row.spec)
    return None


async def _following(uow: UnitOfWork, thread: Thread) -> list[Reminder]:
    rows = await uow.reminders.pending_reminds(thread.id)
    seen = {row.id for row in rows}
    others = await uow.reminders.open_for_threads([thread.id])
    return rows + [
        row
        for row in others
        if row.kind in AFTER_SESSION_KINDS and row.status == ReminderStatus.PENDING and row.id not in seen
    ]


async def follow_session(uow: UnitOfWork, thread: Thread, was: datetime | None, now_starts: datetime | None) -> int:
    """Move the thread's pending reminders counted from session ``was`` to ``now_starts``; returns how many moved.
    Each move (or a removed session time) is said once in the thread."""
    if was == now_starts or was is None:
        return 0
    moved = 0
    for row in await _following(uow, thread):
        offset = session_offset(row)
        if offset is None:
            continue
        what = KIND_NAMES.get(row.kind, row.kind)
        if now_starts is None:
            moment = format_moment(row.due_at, row.tz)
            if row.kind == ReminderKind.REMIND:
                text = texts.reminder_session_removed(thread.display_name, row.spec, row.id, moment)
            else:
                text = texts.session_reminder_session_removed(what, thread.display_name, row.id, moment)
            await outbox.notice_in_thread(uow, thread, f"reminder-session-removed:{row.id}", text)
            continue
        due = now_starts + offset
        if not await uow.reminders.move_pending(row.id, due):
            continue
        moved += 1
        was_at, now_at = format_moment(row.due_at, row.tz), format_moment(due, row.tz)
        if row.kind == ReminderKind.REMIND:
            text = texts.reminder_moved_with_session(thread.display_name, row.spec, row.id, was_at, now_at)
        else:
            text = texts.session_reminder_moved(what, thread.display_name, row.id, was_at, now_at)
        await outbox.notice_in_thread(uow, thread, f"reminder-moved:{row.id}:{due.isoformat()}", text)
    return moved
