"""The thread as a live case, on SQLAlchemy: case changes under a row lock, the threads that wait, per-study nudge
thresholds, and the message times first-response statistics are computed from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from core.case_changes import CaseChange
from core.records import Thread
from storage.mapping import thread_record
from storage.models import ChatMessage, ParticipantThread, StudyLink


async def change_case(
    session: AsyncSession, thread_id: int, change: Callable[[Thread], CaseChange | None]
) -> Thread | None:
    """Read the thread under a row lock (PostgreSQL ``FOR UPDATE``; SQLite's writer lock is already held), ask
    ``change`` what to set, and set it, with the card's version up when the card shows it. The changed thread, or
    None when nothing changed (or the thread is gone)."""
    query = (
        select(ParticipantThread)
        .where(ParticipantThread.id == thread_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        return None
    decided = change(thread_record(row))
    if decided is None:
        return None
    for name, value in decided.values.items():
        setattr(row, name, value)
    if decided.redraw:
        row.card_version = (row.card_version or 0) + 1
    await session.flush()
    return thread_record(row)


async def card_drawn(session: AsyncSession, thread_id: int, version: int) -> None:
    """One conditional UPDATE: ``card_shown`` only goes up."""
    threads = cast(Table, ParticipantThread.__table__)
    await session.execute(
        update(threads).where(threads.c.id == thread_id, threads.c.card_shown < version).values(card_shown=version)
    )
    row = session.identity_map.get(identity_key(ParticipantThread, thread_id))  # keep the session's copy current
    if row is not None and row.card_shown < version:
        set_committed_value(row, "card_shown", version)


async def waiting(session: AsyncSession, *, below_stage: int, limit: int) -> list[Thread]:
    """Threads whose participant waits on the team and has had fewer than ``below_stage`` nudges, longest wait
    first (the partial index ``ix_thread_waiting`` holds only waiting threads)."""
    query = (
        select(ParticipantThread)
        .where(ParticipantThread.waiting_since.is_not(None), ParticipantThread.nudged < below_stage)
        .order_by(ParticipantThread.waiting_since)
        .limit(limit)
    )
    return [thread_record(row) for row in (await session.execute(query)).scalars()]


async def sessions_between(session: AsyncSession, start: datetime, end: datetime) -> list[Thread]:
    query = select(ParticipantThread).where(
        ParticipantThread.session_starts_at > start, ParticipantThread.session_starts_at <= end
    )
    return [thread_record(row) for row in (await session.execute(query)).scalars()]


async def set_thresholds(
    session: AsyncSession, study_id: str, wait_minutes: int | None, soon_minutes: int | None
) -> None:
    await session.execute(
        update(StudyLink)
        .where(StudyLink.study_id == study_id)
        .values(nudge_wait_minutes=wait_minutes, nudge_soon_minutes=soon_minutes)
    )


async def message_times(session: AsyncSession, study_id: str, since: datetime) -> list[tuple[int, str, datetime]]:
    """(thread id, direction, sent at) of the study's messages since ``since``, in time order."""
    query = (
        select(ChatMessage.thread_id, ChatMessage.direction, ChatMessage.sent_at)
        .join(ParticipantThread, ParticipantThread.id == ChatMessage.thread_id)
        .where(ParticipantThread.study_id == study_id, ChatMessage.sent_at >= since, ChatMessage.state != "failed")
        .order_by(ChatMessage.sent_at, ChatMessage.id)
    )
    return [(row[0], row[1], row[2]) for row in (await session.execute(query)).all()]
