"""Scheduled sends (reminders, follow-ups, scheduling links): rows in our own table, claimed atomically.

Life of a row: ``pending`` (waiting for ``due_at``) -> ``queued`` (the tick turned it into the inbox event
``reminder:<id>``; exactly one replica can make that transition) -> ``sent`` / ``skipped`` / ``cancelled``.
Every transition is a conditional ``UPDATE ... WHERE status IN (...)``, so a cancel and a send racing for the
same row cannot both win.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage import repo
from storage.models import Base, ChatMessage, ParticipantThread, StudyLink

PENDING, QUEUED, SENT, SKIPPED, CANCELLED = "pending", "queued", "sent", "skipped", "cancelled"
OPEN = (PENDING, QUEUED)
REMIND, FOLLOWUP, RESCHEDULE = "remind", "followup", "reschedule"


class Reminder(Base):
    """One scheduled message to one participant, asked for by one researcher."""

    __tablename__ = "reminders"
    __table_args__ = (
        Index("ix_reminders_due", "status", "due_at"),
        Index("ix_reminders_thread", "thread_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The inbox key of the command that created it: a command handled twice still makes one row.
    source_key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # remind | followup | reschedule
    thread_id: Mapped[int] = mapped_column(ForeignKey("participant_threads.id"))
    study_id: Mapped[str] = mapped_column(String(128))
    participant_id: Mapped[str] = mapped_column(String(128))
    platform: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(128), index=True)
    due_at: Mapped[datetime]
    body: Mapped[str] = mapped_column(Text)
    # What the researcher typed for <when>, and their zone: shown back in lists and notices.
    spec: Mapped[str] = mapped_column(String(200))
    tz: Mapped[str] = mapped_column(String(64))
    created_by_user_id: Mapped[str] = mapped_column(String(128))
    created_by_name: Mapped[str] = mapped_column(String(200))
    created_by_email: Mapped[str | None] = mapped_column(String(320))
    created_by_rally_user_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)  # why it was cancelled or skipped; who cancelled it


async def add(session: AsyncSession, reminder: Reminder) -> Reminder | None:
    """Insert ``reminder`` unless its ``source_key`` exists; None for a duplicate."""
    existing = await by_source_key(session, reminder.source_key)
    if existing is not None:
        return None
    session.add(reminder)
    await session.flush()
    return reminder


async def by_source_key(session: AsyncSession, source_key: str) -> Reminder | None:
    query = select(Reminder).where(Reminder.source_key == source_key)
    return (await session.execute(query)).scalar_one_or_none()


async def by_id(session: AsyncSession, reminder_id: int) -> Reminder | None:
    return await session.get(Reminder, reminder_id)


async def open_with_thread(
    session: AsyncSession, reminder_id: int
) -> tuple[Reminder, ParticipantThread, StudyLink] | None:
    """Reminder ``reminder_id`` with its participant's thread and its study's link, if it is still open and both
    exist (what ``cancel`` needs, typed or clicked on the home)."""
    row = await by_id(session, reminder_id)
    if row is None or row.status not in OPEN:
        return None
    thread = await repo.thread_by_id(session, row.thread_id)
    link = await repo.link_for_study(session, row.study_id)
    return None if thread is None or link is None else (row, thread, link)


async def due(session: AsyncSession, now: datetime, limit: int = 100) -> list[Reminder]:
    query = (
        select(Reminder)
        .where(Reminder.status == PENDING, Reminder.due_at <= now)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).scalars())


async def open_for_threads(session: AsyncSession, thread_ids: list[int]) -> list[Reminder]:
    if not thread_ids:
        return []
    query = (
        select(Reminder)
        .where(Reminder.thread_id.in_(thread_ids), Reminder.status.in_(OPEN))
        .order_by(Reminder.due_at, Reminder.id)
    )
    return list((await session.execute(query)).scalars())


async def transition(
    session: AsyncSession,
    reminder_id: int,
    *,
    to: str,
    allowed_from: tuple[str, ...],
    now: datetime,
    outcome: str | None = None,
) -> bool:
    """Move a row to ``to`` if it is in one of ``allowed_from``. True when this call made the move."""
    values: dict[str, object] = {"status": to}
    if to in (SENT, SKIPPED, CANCELLED):
        values["finished_at"] = now
    if outcome is not None:
        values["outcome"] = outcome
    statement = update(Reminder).where(Reminder.id == reminder_id, Reminder.status.in_(allowed_from)).values(**values)
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def open_followups(session: AsyncSession, thread_id: int, written_at: datetime) -> list[Reminder]:
    """Follow-ups of a thread, still open, created before the participant wrote at ``written_at``."""
    query = select(Reminder).where(
        Reminder.thread_id == thread_id,
        Reminder.kind == FOLLOWUP,
        Reminder.status.in_(OPEN),
        Reminder.created_at < written_at,
    )
    return list((await session.execute(query)).scalars())


async def threads_in_channel(session: AsyncSession, platform: str, channel: str) -> list[ParticipantThread]:
    """Participant threads of every study currently linked to ``channel``."""
    query = (
        select(ParticipantThread)
        .join(StudyLink, StudyLink.study_id == ParticipantThread.study_id)
        .where(
            StudyLink.platform == platform,
            StudyLink.channel == channel,
            StudyLink.active.is_(True),
            ParticipantThread.channel == channel,
        )
        .order_by(ParticipantThread.display_name, ParticipantThread.id)
    )
    return list((await session.execute(query)).scalars())


async def last_message(session: AsyncSession, thread_id: int, direction: str) -> ChatMessage | None:
    query = (
        select(ChatMessage)
        .where(ChatMessage.thread_id == thread_id, ChatMessage.direction == direction)
        .order_by(ChatMessage.sent_at.desc(), ChatMessage.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()
