"""Store an inbound event durably before anyone is told it was received."""

from __future__ import annotations

import logging

from bot.inbound import EventKind, InboundEvent
from bot.pipeline.services import Services
from storage.models import InboxEvent
from storage.queue import enqueue

log = logging.getLogger(__name__)


class StorageUnavailable(Exception):
    """The event could not be stored: answer 503 so that the sender retries."""


def lane_for(event: InboundEvent) -> str:
    """Events of one lane are processed one at a time, in arrival order."""
    p = event.payload
    if event.kind in (EventKind.CHAT_MESSAGE, EventKind.CHAT_MESSAGE_CHANGED):
        return f"{p['platform']}:{p['channel']}:{p.get('thread_ts') or p['ts']}"
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
    try:
        async with services.db.transaction() as session:
            inserted = await enqueue(
                session, InboxEvent, key=event.key, kind=event.kind.value, lane=lane_for(event), payload=event.payload
            )
    except Exception as exc:
        log.error("could not store inbound %s: %s", event.kind.value, type(exc).__name__)
        raise StorageUnavailable(str(type(exc).__name__)) from exc
    if inserted:
        services.wakeup.set()
    else:
        log.debug("duplicate inbound %s absorbed", event.kind.value)
    return inserted
