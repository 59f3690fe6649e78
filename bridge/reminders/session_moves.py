"""Reminders counted back from the session ("1h before session") follow the session when Rally moves it.

Called whenever a thread's facts are refreshed from Rally (status webhook, reconcile, re-link). Only rows still
``pending`` move (a ``queued`` row is already being sent; its fire-time check skips it if the session started).
The move is a conditional update on ``status = pending``, so it cannot race a tick that queues the same row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge import outbox
from core import texts
from core.records import Thread
from core.store import UnitOfWork
from core.when import format_moment, parse_duration


def offset_before_session(spec: str) -> timedelta | None:
    """``1h before session`` -> 1 hour; None for a reminder not counted back from the session."""
    words = spec.split()
    found = parse_duration(words)
    if found is None:
        return None
    length, used = found
    return length if [w.lower() for w in words[used : used + 1]] == ["before"] else None


async def follow_session(uow: UnitOfWork, thread: Thread, was: datetime | None, now_starts: datetime | None) -> int:
    """Move the thread's pending before-session reminders from session ``was`` to ``now_starts``; returns how
    many moved. Each move (or a removed session time) is said once in the thread."""
    if was == now_starts or was is None:
        return 0
    moved = 0
    for row in await uow.reminders.pending_reminds(thread.id):
        offset = offset_before_session(row.spec)
        if offset is None:
            continue
        if now_starts is None:
            text = texts.reminder_session_removed(
                thread.display_name, row.spec, row.id, format_moment(row.due_at, row.tz)
            )
            await outbox.notice_in_thread(uow, thread, f"reminder-session-removed:{row.id}", text)
            continue
        due = now_starts - offset
        if not await uow.reminders.move_pending(row.id, due):
            continue
        moved += 1
        text = texts.reminder_moved_with_session(
            thread.display_name, row.spec, row.id, format_moment(row.due_at, row.tz), format_moment(due, row.tz)
        )
        await outbox.notice_in_thread(uow, thread, f"reminder-moved:{row.id}:{due.isoformat()}", text)
    return moved
