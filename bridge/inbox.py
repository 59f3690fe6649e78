"""Store an inbound event durably before anyone is told it was received."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Any

from bridge import logs
from bridge.services import Services
from core.errors import StorageUnavailable
from core.events import InboundEvent, lane_for
from core.store import GroupWriter, Store, UnitOfWork

log = logging.getLogger(__name__)


async def record(services: Services, event: InboundEvent) -> bool:
    """Store ``event`` unless its key was stored before. True when it is new. Raises StorageUnavailable."""
    with logs.correlated(logs.correlation_id_for(event.key), kind=event.kind.value):
        return await _record(services, event)


async def _record(services: Services, event: InboundEvent) -> bool:
    try:
        inserted = await _group_commit(services.store).submit(event)
    except Exception as exc:
        services.metrics.inbound.labels(event.kind.value, "unavailable").inc()
        log.error("could not store inbound %s: %s", event.kind.value, type(exc).__name__)
        raise StorageUnavailable(str(type(exc).__name__)) from exc
    services.metrics.inbound.labels(event.kind.value, "stored" if inserted else "duplicate").inc()
    if inserted:
        log.info("stored inbound %s", event.kind.value)  # the commit woke the inbox worker (Store.new_rows)
    else:
        log.debug("duplicate inbound %s absorbed", event.kind.value)
    return inserted


# --- group commit ---------------------------------------------------------------------------------------------
# Requests that arrive while the inbox is being written are stored together in the next transaction (one
# multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING key), and each is answered once that commits. Under load
# this turns hundreds of transactions a second, each queueing for SQLite's single writer, into a few.

_writers: weakref.WeakKeyDictionary[Store, GroupWriter[InboundEvent, bool]] = weakref.WeakKeyDictionary()


def _group_commit(store: Store) -> GroupWriter[InboundEvent, bool]:
    writer = _writers.get(store)
    if writer is None:
        writer = _writers[store] = store.group_writer(_insert_new, urgent=True)
    return writer


async def _insert_new(uow: UnitOfWork, events: Sequence[InboundEvent]) -> list[bool]:
    """Insert the events whose key is not stored yet; per event, whether it was new (first of its key)."""
    first: dict[str, int] = {}
    rows: list[tuple[str, str, str, dict[str, Any]]] = []
    for index, event in enumerate(events):
        if event.key in first:
            continue  # a retry that arrived with the original: the original is the new one
        first[event.key] = index
        rows.append((event.key, event.kind.value, lane_for(event), event.payload))
    stored = await uow.inbox.add_many(rows)  # the inbox worker is woken when this commits
    return [first[event.key] == index and event.key in stored for index, event in enumerate(events)]
