"""Reminders counted back from the session ("1h before session") follow the session when Rally moves it.

Called whenever a thread's facts are refreshed from Rally (status webhook, reconcile, re-link). Only rows still
``pending`` move (a ``queued`` row is already being sent; its fire-time check skips it if the session started).
The move is a conditional update on ``status = pending``, so it cannot race a tick that queues the same row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge import outbox
from core import texts
from core.when import format_moment, parse_duration
from storage import reminders as store
from storage.models import ParticipantThread


def offset_before_session(spec: str) -> timedelta | None:
    """``1h before session`` -> 1 hour; None for a reminder not counted back from the session."""
    words = spec.split()
    found = parse_duration(words)
    if found is None:
        return None
    length, used = found
    return length if [w.lower() for w in words[used : used + 1]] == ["before"] else None


async def follow_session(
    session: AsyncSession, thread: ParticipantThread, was: datetime | None, now_starts: datetime | None
) -> int:
    """Move the thread's pending before-session reminders from session ``was`` to ``now_starts``; returns how
    many moved. Each move (or a removed session time) is said once in the thread."""
    if was == now_starts or was is None:
        return 0
    query = select(store.Reminder).where(
        store.Reminder.thread_id == thread.id,
        store.Reminder.kind == store.REMIND,
        store.Reminder.status == store.PENDING,
    )
    moved = 0
    for row in (await session.execute(query)).scalars():
        offset = offset_before_session(row.spec)
        if offset is None:
            continue
        if now_starts is None:
            text = texts.reminder_session_removed(
                thread.display_name, row.spec, row.id, format_moment(row.due_at, row.tz)
            )
            await outbox.notice_in_thread(session, thread, f"reminder-session-removed:{row.id}", text)
            continue
        due = now_starts - offset
        result = await session.execute(
            update(store.Reminder)
            .where(store.Reminder.id == row.id, store.Reminder.status == store.PENDING)
            .values(due_at=due)
        )
        if not getattr(result, "rowcount", 0):
            continue
        moved += 1
        text = texts.reminder_moved_with_session(
            thread.display_name, row.spec, row.id, format_moment(row.due_at, row.tz), format_moment(due, row.tz)
        )
        await outbox.notice_in_thread(session, thread, f"reminder-moved:{row.id}:{due.isoformat()}", text)
    return moved
