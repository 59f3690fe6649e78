"""Bulk seeding of a Rally Bridge database for the scale benchmark: links, threads, messages, done queue rows.

Rows are what a long-running bridge accumulates, in the shapes the pipeline writes them (``storage/models.py``,
``bridge/outbox.py``): per participant one thread (a Slack thread root, a Respondent conversation) and
``MESSAGES`` archived messages, half each way; per message one inbox row and two outbox rows, done. Studies hold
``PER_STUDY`` participants, each study linked to its own channel.

Seeding grows a database: ``await grow(url, 1_000)`` then ``await grow(url, 10_000)`` adds participants 1,000 to
9,999 only. PostgreSQL is filled with COPY through SQLAlchemy's connection to asyncpg, then ANALYZEd (as its
autovacuum would after such growth); SQLite with executemany through SQLAlchemy Core. Never the ORM row by row.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from storage.models import Base, ChatMessage, InboxEvent, OutboxItem, ParticipantThread, StudyLink

PER_STUDY = 200  # participants per linked study
MESSAGES = 10  # archived messages per participant (5 from them, 5 to them)
CHUNK = 20_000  # rows per insert batch
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
WORKSPACE = "T0SANDBOX"


@dataclass(frozen=True)
class SeededThread:
    """What a lookup or a traffic generator needs to know about seeded participant ``index``."""

    index: int

    @property
    def study(self) -> int:
        return self.index // PER_STUDY

    @property
    def study_id(self) -> str:
        return f"st_s{self.study:05d}"

    @property
    def project_id(self) -> str:
        return f"{self.study + 1:024x}"

    @property
    def channel(self) -> str:
        return f"C{self.study:08d}"

    @property
    def participant_id(self) -> str:
        return f"pa_{self.index:07d}"

    @property
    def respondent_user_id(self) -> str:
        return f"{self.index + 1:024x}"

    @property
    def conversation_uid(self) -> str:
        return f"c{self.index + 1:023x}"

    @property
    def thread_ts(self) -> str:
        return f"{1_770_000_000 + self.index}.000100"

    @property
    def email(self) -> str:
        return f"p{self.index}@example.net"

    def message_ts(self, n: int) -> str:
        return f"{1_770_000_000 + self.index}.{n + 1:06d}"

    def respondent_uid(self, n: int) -> str:
        return f"m{self.index:015x}{n:08x}"


def table(model: Any) -> Table:
    return Base.metadata.tables[model.__tablename__]


def _links(first: int, end: int) -> Iterator[dict[str, Any]]:
    for index in range(first, end):
        if index % PER_STUDY:
            continue
        t = SeededThread(index)
        yield {
            "id": t.study + 1,
            "study_id": t.study_id,
            "study_name": f"Scale study {t.study}",
            "respondent_project_id": t.project_id,
            "platform": "slack",
            "workspace": WORKSPACE,
            "channel": t.channel,
            "active": True,
            "linked_by": "U0ANA",
            "linked_at": T0,
        }


def _threads(first: int, end: int) -> Iterator[dict[str, Any]]:
    for index in range(first, end):
        t = SeededThread(index)
        yield {
            "id": index + 1,
            "study_id": t.study_id,
            "participant_id": t.participant_id,
            "person_id": f"pe_{index:07d}",
            "email": t.email,
            "display_name": f"P{index} L.",
            "respondent_project_id": t.project_id,
            "respondent_user_id": t.respondent_user_id,
            "conversation_uid": t.conversation_uid,
            "scheduling_url": f"https://app.rallyuxr.com/schedule/{t.participant_id}",
            "session_starts_at": T0 + timedelta(days=7),
            "opted_out": False,
            "platform": "slack",
            "workspace": WORKSPACE,
            "channel": t.channel,
            "thread_ts": t.thread_ts,
            "created_at": T0,
        }


def _messages(first: int, end: int) -> Iterator[dict[str, Any]]:
    for index in range(first, end):
        t = SeededThread(index)
        for n in range(MESSAGES):
            from_them = n % 2 == 0
            yield {
                "thread_id": index + 1,
                "direction": "FROM_PARTICIPANT" if from_them else "TO_PARTICIPANT",
                "respondent_uid": t.respondent_uid(n),
                "platform": "slack",
                "channel": t.channel,
                "platform_ts": t.message_ts(n),
                "author_user_id": None if from_them else "U0ANA",
                "author_name": f"P{index} L." if from_them else "Ana Ortiz",
                "state": "mirrored" if from_them else "delivered",
                "failure_reason": None,
                "sent_at": T0 + timedelta(minutes=n),
                "created_at": T0 + timedelta(minutes=n),
            }


def _queue_row(key: str, kind: str, lane: str, payload: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "key": key,
        "kind": kind,
        "lane": lane,
        "payload": payload,
        "status": "done",
        "attempts": 1,
        "next_attempt_at": at,
        "lease_until": None,
        "lease_owner": None,
        "needs_verify": False,
        "last_error": None,
        "result": None,
        "created_at": at,
        "finished_at": at,
    }


def _inbox(first: int, end: int) -> Iterator[dict[str, Any]]:
    for index in range(first, end):
        t = SeededThread(index)
        for n in range(MESSAGES):
            at = T0 + timedelta(minutes=n)
            if n % 2 == 0:
                payload = {"message_id": t.respondent_uid(n), "conversation_uid": t.conversation_uid}
                yield _queue_row(
                    f"respondent:webhook:{t.respondent_uid(n)}",
                    "respondent.message_created",
                    f"respondent:{t.conversation_uid}",
                    {**payload, "project_id": t.project_id},
                    at,
                )
            else:
                payload = {"platform": "slack", "channel": t.channel, "ts": t.message_ts(n), "thread_ts": t.thread_ts}
                yield _queue_row(
                    f"slack:msg:{WORKSPACE}:{t.channel}:{t.message_ts(n)}",
                    "chat.message",
                    f"slack:{t.channel}:{t.thread_ts}",
                    {**payload, "user_id": "U0ANA", "workspace": WORKSPACE, "text": "(seeded)"},
                    at,
                )


def _outbox(first: int, end: int) -> Iterator[dict[str, Any]]:
    for index in range(first, end):
        t = SeededThread(index)
        for n in range(MESSAGES):
            at = T0 + timedelta(minutes=n)
            message_id = index * MESSAGES + n + 1  # as seeded in order; only informative in a done row
            if n % 2 == 0:
                yield _queue_row(
                    f"mirror:{t.respondent_uid(n)}",
                    "chat.mirror",
                    f"thread:{index + 1}",
                    {"platform": "slack", "thread_id": index + 1, "message_id": message_id, "body": "(seeded)"},
                    at,
                )
            else:
                yield _queue_row(
                    f"relay:slack:msg:{WORKSPACE}:{t.channel}:{t.message_ts(n)}",
                    "respondent.send",
                    f"relay:{index + 1}",
                    {"thread_id": index + 1, "message_id": message_id, "body": "(seeded)"},
                    at,
                )
            yield _queue_row(
                f"archive:respondent:{t.respondent_uid(n)}",
                "rally.archive",
                f"archive:{index + 1}",
                {"thread_id": index + 1, "study_id": t.study_id, "participant_id": t.participant_id},
                at,
            )


def _chunks(rows: Iterator[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _copy(conn: AsyncConnection, target: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL COPY of ``rows`` through the asyncpg connection under SQLAlchemy's."""
    columns = [c.name for c in target.columns if c.name in rows[0]]
    json_columns = {c.name for c in target.columns if c.type.__class__.__name__ == "JSON"}
    records = [
        tuple(json.dumps(row[c]) if c in json_columns and row[c] is not None else row[c] for c in columns)
        for row in rows
    ]
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(target.name, records=records, columns=columns)


async def _insert(conn: AsyncConnection, model: Any, rows: Iterator[dict[str, Any]]) -> int:
    target = table(model)
    count = 0
    for chunk in _chunks(rows):
        if conn.dialect.name == "postgresql":
            await _copy(conn, target, chunk)
        else:
            await conn.execute(target.insert(), chunk)  # executemany
        count += len(chunk)
    return count


async def seeded_participants(url: str) -> int:
    """How many participants the database at ``url`` holds (seeded ones are numbered from 0)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table(ParticipantThread)))).scalar_one())
    finally:
        await engine.dispose()


async def grow(url: str, participants: int) -> dict[str, float]:
    """Seed participants ``[already there, participants)``; returns rows added and seconds taken."""
    first = await seeded_participants(url)
    if participants <= first:
        return {"participants": first, "seconds": 0.0}
    started = time.perf_counter()
    engine = create_async_engine(url)
    added: dict[str, float] = {}
    try:
        async with engine.begin() as conn:
            for model, rows in (
                (StudyLink, _links(first, participants)),
                (ParticipantThread, _threads(first, participants)),
                (ChatMessage, _messages(first, participants)),
                (InboxEvent, _inbox(first, participants)),
                (OutboxItem, _outbox(first, participants)),
            ):
                added[model.__tablename__] = await _insert(conn, model, rows)
            if conn.dialect.name == "postgresql":
                for model in (StudyLink, ParticipantThread):  # the ids given explicitly
                    name = model.__tablename__
                    await conn.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
                    )
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    added["seconds"] = time.perf_counter() - started
    added["participants"] = participants
    return added


def sample(participants: int, n: int, *, seed: int = 7) -> Sequence[SeededThread]:
    """``n`` seeded participants spread over all of them (deterministic)."""
    rng = random.Random(seed)
    return [SeededThread(i) for i in rng.sample(range(participants), min(n, participants))]
