"""How full the queues are, read at scrape time (``bot/observability.py``): the same numbers on every replica."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import func, select

from storage.db import Database
from storage.models import InboxEvent, OutboxItem
from storage.queue import FAILED, PENDING, WORKING, utcnow


class QueueGauge(NamedTuple):
    unfinished: int  # pending or in progress
    oldest_age_seconds: float  # of the oldest unfinished row; 0 when there is none
    failed: int  # failed for good and not retried


async def queue_gauges(db: Database) -> dict[str, QueueGauge]:
    """Per queue (``inbox``, ``outbox``): its unfinished rows, the age of the oldest, its failed rows."""
    now = utcnow()
    gauges: dict[str, QueueGauge] = {}
    async with db.transaction() as session:
        for name, model in (("inbox", InboxEvent), ("outbox", OutboxItem)):
            unfinished = model.status.in_((PENDING, WORKING))
            count, oldest = (
                await session.execute(select(func.count(), func.min(model.created_at)).where(unfinished))
            ).one()
            failed = (await session.execute(select(func.count()).where(model.status == FAILED))).scalar_one()
            gauges[name] = QueueGauge(count, (now - oldest).total_seconds() if oldest else 0.0, failed)
    return gauges
