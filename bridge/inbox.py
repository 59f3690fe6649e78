"""Store an inbound event durably before anyone is told it was received (unless the handlers would certainly ignore
it: ``bridge.edge``, then nothing is stored)."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from functools import partial
from typing import Any

from bridge import edge, logs
from bridge.services import Services, Taker
from core.errors import StorageUnavailable
from core.events import InboundEvent, lane_for
from core.records import QueuedRow
from core.store import GroupWriter, Store, UnitOfWork

log = logging.getLogger(__name__)


async def record(services: Services, event: InboundEvent) -> bool:
    """Store ``event`` unless its key was stored before. True when it is new; False for a duplicate, and for a chat
    event recognised as one the handlers would ignore (``bridge.edge``), which is answered without being stored.
    Raises StorageUnavailable."""
    with logs.correlated(logs.correlation_id_for(event.key), kind=event.kind.value):
        return await _record(services, event)


async def _record(services: Services, event: InboundEvent) -> bool:
    if not await edge.worth_storing(services, event):
        services.metrics.inbound.labels(event.kind.value, "ignored").inc()
        log.debug("inbound %s concerns no participant thread: answered, not stored", event.kind.value)
        return False
    try:
        inserted, claimed = await _group_commit(services.store).submit(event)
    except Exception as exc:
        services.metrics.inbound.labels(event.kind.value, "unavailable").inc()
        log.error("could not store inbound %s: %s", event.kind.value, type(exc).__name__)
        raise StorageUnavailable(str(type(exc).__name__)) from exc
    if claimed:
        _takers[services.store].take(claimed)
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

# The same transaction claims the new rows for this process's inbox worker when it has room (``claim_for``): they
# start as soon as the request is answered, without a claim transaction of the worker's own.

Stored = tuple[bool, list[QueuedRow]]  # whether the event was new; rows claimed for the worker (on one event)

_writers: weakref.WeakKeyDictionary[Store, GroupWriter[InboundEvent, Stored]] = weakref.WeakKeyDictionary()
_takers: weakref.WeakKeyDictionary[Store, Taker] = weakref.WeakKeyDictionary()


def claim_for(store: Store, taker: Taker) -> None:
    """Rows stored through ``store`` are claimed for ``taker`` (the inbox worker) while it has room."""
    _takers[store] = taker


def _group_commit(store: Store) -> GroupWriter[InboundEvent, Stored]:
    writer = _writers.get(store)
    if writer is None:
        writer = _writers[store] = store.group_writer(partial(_insert_new, store), urgent=True)
    return writer


async def _insert_new(store: Store, uow: UnitOfWork, events: Sequence[InboundEvent]) -> list[Stored]:
    """Insert the events whose key is not stored yet; per event, whether it was new (first of its key). The rows
    claimed for the inbox worker ride on the first event's result."""
    first: dict[str, int] = {}
    rows: list[tuple[str, str, str, dict[str, Any]]] = []
    for index, event in enumerate(events):
        if event.key in first:
            continue  # a retry that arrived with the original: the original is the new one
        first[event.key] = index
        rows.append((event.key, event.kind.value, lane_for(event), event.payload))
    stored = await uow.inbox.add_many(rows)  # the inbox worker is woken when this commits
    claimed: list[QueuedRow] = []
    taker = _takers.get(store)
    if stored and taker is not None and (room := taker.room()) > 0:
        claimed = await uow.inbox.claim(owner=taker.owner, lease=taker.lease, limit=room)
        if len(claimed) < room:
            uow.inbox.nothing_more_due()  # everything due is handed to the worker: no need to wake it
    return [
        (first[event.key] == index and event.key in stored, claimed if index == 0 else [])
        for index, event in enumerate(events)
    ]
