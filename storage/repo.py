"""Queries and upserts on links, threads and messages. Each takes the caller's session (one transaction)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.domain import Direction, Participant
from core.records import Link, Thread
from storage.db import dialect_of
from storage.models import ChatMessage, ParticipantThread, StudyLink
from storage.queue import utcnow


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    return postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert


# Writes go through the tables (SQLAlchemy Core): an ORM-enabled INSERT or UPDATE costs several times the CPU of
# the statement itself (bulk-persistence bookkeeping, identity-map synchronisation), and these are on the hot path.
_THREADS = cast(Table, ParticipantThread.__table__)
_MESSAGES = cast(Table, ChatMessage.__table__)


async def link_for_study(session: AsyncSession, study_id: str) -> StudyLink | None:
    return (await session.execute(select(StudyLink).where(StudyLink.study_id == study_id))).scalar_one_or_none()


async def active_links(session: AsyncSession) -> list[StudyLink]:
    return list((await session.execute(select(StudyLink).where(StudyLink.active.is_(True)))).scalars())


async def thread_by_id(session: AsyncSession, thread_id: int) -> ParticipantThread | None:
    return await session.get(ParticipantThread, thread_id)


async def thread_by_ts(session: AsyncSession, platform: str, channel: str, thread_ts: str) -> ParticipantThread | None:
    query = select(ParticipantThread).where(
        ParticipantThread.platform == platform,
        ParticipantThread.channel == channel,
        ParticipantThread.thread_ts == thread_ts,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def thread_for_participant(session: AsyncSession, study_id: str, participant_id: str) -> ParticipantThread | None:
    query = select(ParticipantThread).where(
        ParticipantThread.study_id == study_id, ParticipantThread.participant_id == participant_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def threads_for_respondent_user(
    session: AsyncSession, project_id: str, respondent_user_id: str
) -> list[ParticipantThread]:
    query = select(ParticipantThread).where(
        ParticipantThread.respondent_project_id == project_id,
        ParticipantThread.respondent_user_id == respondent_user_id,
    )
    return list((await session.execute(query)).scalars())


async def threads_of_study(session: AsyncSession, study_id: str) -> dict[str, ParticipantThread]:
    """Every thread of the study by participant id (one query: reconcile compares them with Rally's list)."""
    query = select(ParticipantThread).where(ParticipantThread.study_id == study_id)
    return {thread.participant_id: thread for thread in (await session.execute(query)).scalars()}


async def participants_with_threads(session: AsyncSession, study_id: str) -> set[str]:
    """Participant ids of the study that have a thread (ids only: what reconcile needs before it reads Rally)."""
    query = select(ParticipantThread.participant_id).where(ParticipantThread.study_id == study_id)
    return set((await session.execute(query)).scalars())


async def respondent_users_with_threads(session: AsyncSession, project_id: str) -> set[str]:
    """Respondent user ids that have a thread in ``project_id``: whose messages the bridge mirrors."""
    query = select(ParticipantThread.respondent_user_id).where(ParticipantThread.respondent_project_id == project_id)
    return set((await session.execute(query)).scalars())


async def threads_by_email(session: AsyncSession, email: str) -> list[ParticipantThread]:
    query = select(ParticipantThread).where(ParticipantThread.email == email.strip().casefold())
    return list((await session.execute(query)).scalars())


async def insert_thread(
    session: AsyncSession, link: StudyLink | Link, participant: Participant
) -> tuple[ParticipantThread, bool]:
    """The participant's thread row, created once ever. Returns (row, created)."""
    assert participant.respondent_user_id
    values = {
        "study_id": link.study_id,
        "participant_id": participant.participant_id,
        "person_id": participant.person_id,
        "email": participant.email.strip().casefold() if participant.email else None,
        "display_name": participant.display_name,
        "respondent_project_id": link.respondent_project_id,
        "respondent_user_id": participant.respondent_user_id,
        "scheduling_url": participant.scheduling_url,
        "session_starts_at": participant.session_starts_at,
        "opted_out": participant.has_opted_out,
        "platform": link.platform,
        "workspace": link.workspace,
        "channel": link.channel,
        "created_at": utcnow(),
    }
    statement = (
        _insert(session)(_THREADS)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["study_id", "participant_id"])
    )
    created = bool(getattr(await session.execute(statement), "rowcount", 0))
    row = await thread_for_participant(session, link.study_id, participant.participant_id)
    assert row is not None
    return row, created


async def refresh_thread_facts(session: AsyncSession, thread: ParticipantThread, participant: Participant) -> None:
    """Keep session time, scheduling link and opt-out current; opting back in is Rally's call, not ours."""
    thread.scheduling_url = participant.scheduling_url
    thread.session_starts_at = participant.session_starts_at
    if participant.has_opted_out:
        thread.opted_out = True


async def message_by_platform_ts(session: AsyncSession, platform: str, channel: str, ts: str) -> ChatMessage | None:
    query = select(ChatMessage).where(
        ChatMessage.platform == platform, ChatMessage.channel == channel, ChatMessage.platform_ts == ts
    )
    return (await session.execute(query)).scalar_one_or_none()


_IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's and asyncpg's parameter limits


async def known_respondent_uids(session: AsyncSession, uids: list[str]) -> set[str]:
    """Which of ``uids`` are mapped to a message of ours already (either direction)."""
    known: set[str] = set()
    for start in range(0, len(uids), _IN_CHUNK):
        query = select(ChatMessage.respondent_uid).where(
            ChatMessage.respondent_uid.in_(uids[start : start + _IN_CHUNK])
        )
        known.update(uid for uid in (await session.execute(query)).scalars() if uid)
    return known


async def mirrored_respondent_uids(session: AsyncSession, uids: list[str]) -> set[str]:
    """Which of ``uids`` are participant messages the bridge mirrored (not relays of ours)."""
    mirrored: set[str] = set()
    for start in range(0, len(uids), _IN_CHUNK):
        query = select(ChatMessage.respondent_uid).where(
            ChatMessage.respondent_uid.in_(uids[start : start + _IN_CHUNK]),
            ChatMessage.direction == Direction.FROM_PARTICIPANT.value,
        )
        mirrored.update(uid for uid in (await session.execute(query)).scalars() if uid)
    return mirrored


async def add_message(
    session: AsyncSession,
    *,
    thread: ParticipantThread | Thread,
    direction: str,
    state: str,
    sent_at: datetime,
    respondent_uid: str | None = None,
    platform_ts: str | None = None,
    author_user_id: str | None = None,
    author_name: str | None = None,
) -> int | None:
    """Insert a message mapping; its id, or None when either of its ids is already mapped (a duplicate)."""
    values = {
        "thread_id": thread.id,
        "direction": direction,
        "respondent_uid": respondent_uid,
        "platform": thread.platform,
        "channel": thread.channel,
        "platform_ts": platform_ts,
        "author_user_id": author_user_id,
        "author_name": author_name,
        "state": state,
        "sent_at": sent_at,
        "created_at": utcnow(),
    }
    return (await session.execute(_add_message_statement(dialect_of(session)), values)).scalar_one_or_none()


@functools.cache
def _add_message_statement(dialect: str) -> Any:
    """Built once (the values are parameters): ``INSERT ... ON CONFLICT DO NOTHING RETURNING id``."""
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_fn(_MESSAGES).on_conflict_do_nothing().returning(_MESSAGES.c.id)


async def set_message_state(
    session: AsyncSession,
    message_id: int,
    *,
    state: str,
    respondent_uid: str | None = None,
    platform_ts: str | None = None,
    failure_reason: str | None = None,
) -> None:
    values: dict[str, object] = {"state": state}
    if respondent_uid is not None:
        values["respondent_uid"] = respondent_uid
    if platform_ts is not None:
        values["platform_ts"] = platform_ts
    if failure_reason is not None:
        values["failure_reason"] = failure_reason
    await session.execute(update(_MESSAGES).where(_MESSAGES.c.id == message_id).values(**values))


async def last_messages(session: AsyncSession, thread_ids: list[int]) -> dict[tuple[int, str], ChatMessage]:
    """The latest message each way of each thread, by (thread id, direction), in one query per 500 threads."""
    latest: dict[tuple[int, str], ChatMessage] = {}
    for start in range(0, len(thread_ids), _IN_CHUNK):
        rank = (
            func.row_number()
            .over(
                partition_by=(ChatMessage.thread_id, ChatMessage.direction),
                order_by=(ChatMessage.sent_at.desc(), ChatMessage.id.desc()),
            )
            .label("rank")
        )
        ranked = (
            select(ChatMessage.id, rank)
            .where(ChatMessage.thread_id.in_(thread_ids[start : start + _IN_CHUNK]))
            .subquery()
        )
        query = select(ChatMessage).join(ranked, ranked.c.id == ChatMessage.id).where(ranked.c.rank == 1)
        for message in (await session.execute(query)).scalars():
            latest[(message.thread_id, message.direction)] = message
    return latest


async def reset_failed_message(session: AsyncSession, message_id: int) -> None:
    """A researcher's message whose delivery is being retried: pending again, the old failure reason cleared."""
    await session.execute(
        update(_MESSAGES).where(_MESSAGES.c.id == message_id).values(state="pending", failure_reason=None)
    )
