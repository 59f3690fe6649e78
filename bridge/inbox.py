"""Store an inbound event durably before anyone is told it was received."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bridge import logs
from bridge.services import Services
from core.events import EventKind, InboundEvent
from storage.db import Database, GroupCommit, mark_queued
from storage.models import InboxEvent
from storage.queue import PENDING, utcnow

log = logging.getLogger(__name__)


class StorageUnavailable(Exception):
    """The event could not be stored: answer 503 so that the sender retries."""


def lane_for(event: InboundEvent) -> str:
    """Events of one lane are processed one at a time, in arrival order."""
    p = event.payload
    if event.kind in (EventKind.CHAT_MESSAGE, EventKind.CHAT_MESSAGE_CHANGED):
        return f"{p['platform']}:{p['channel']}:{p.get('thread_ts') or p['ts']}"
    if event.kind is EventKind.HOME_OPENED or (event.kind is EventKind.CHAT_COMMAND and p.get("origin") == "home"):
        return f"{p['platform']}:home:{p['user_id']}"  # one person's home views, built and published in order
    if event.kind is EventKind.CHAT_COMMAND:
        return f"{p['platform']}:command:{p['channel']}"
    if event.kind is EventKind.RESPONDENT_MESSAGE_CREATED:
        return f"respondent:{p.get('conversation_uid') or p.get('project_id') or 'unknown'}"
    if event.kind is EventKind.RALLY_PARTICIPANT_STATUS:
        return f"rally:{p['study_id']}:{p['participant_id']}"
    if event.kind is EventKind.RALLY_PERSON_OPTED_OUT:
        return f"rally:opt-out:{p['email'].casefold()}"
    if event.kind is EventKind.REMINDER_DUE:
        return f"reminder:{p['thread_id']}"
    return f"reconcile:{p.get('study_id', '')}"


async def record(services: Services, event: InboundEvent) -> bool:
    """Store ``event`` unless its key was stored before. True when it is new. Raises StorageUnavailable."""
    with logs.correlated(logs.correlation_id_for(event.key), kind=event.kind.value):
        return await _record(services, event)


async def _record(services: Services, event: InboundEvent) -> bool:
    try:
        inserted = await _group_commit(services.db).submit(event)
    except Exception as exc:
        services.metrics.inbound.labels(event.kind.value, "unavailable").inc()
        log.error("could not store inbound %s: %s", event.kind.value, type(exc).__name__)
        raise StorageUnavailable(str(type(exc).__name__)) from exc
    services.metrics.inbound.labels(event.kind.value, "stored" if inserted else "duplicate").inc()
    if inserted:
        log.info("stored inbound %s", event.kind.value)  # the commit woke the inbox worker (Database.new_rows)
    else:
        log.debug("duplicate inbound %s absorbed", event.kind.value)
    return inserted


# --- group commit ---------------------------------------------------------------------------------------------
# Requests that arrive while the inbox is being written are stored together in the next transaction (one
# multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING key), and each is answered once that commits. Under load
# this turns hundreds of transactions a second, each queueing for SQLite's single writer, into a few.

_INBOX = cast(Table, InboxEvent.__table__)
_writers: weakref.WeakKeyDictionary[Database, GroupCommit[InboundEvent, bool]] = weakref.WeakKeyDictionary()


def _group_commit(db: Database) -> GroupCommit[InboundEvent, bool]:
    writer = _writers.get(db)
    if writer is None:
        writer = _writers[db] = GroupCommit(db, _insert_new, urgent=True)
    return writer


async def _insert_new(session: AsyncSession, events: Sequence[InboundEvent]) -> list[bool]:
    """Insert the events whose key is not stored yet; per event, whether it was new (first of its key)."""
    now = utcnow()
    first: dict[str, int] = {}
    rows = []
    for index, event in enumerate(events):
        if event.key in first:
            continue  # a retry that arrived with the original: the original is the new one
        first[event.key] = index
        rows.append(
            {
                "key": event.key,
                "kind": event.kind.value,
                "lane": lane_for(event),
                "payload": event.payload,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "needs_verify": False,
                "created_at": now,
            }
        )
    connection = await session.connection()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(_INBOX).on_conflict_do_nothing(index_elements=["key"]).returning(_INBOX.c.key)
    stored = set((await connection.execute(statement, rows)).scalars())
    if stored:
        mark_queued(session, InboxEvent.__tablename__)  # the inbox worker is woken when this commits
    return [first[event.key] == index and event.key in stored for index, event in enumerate(events)]
