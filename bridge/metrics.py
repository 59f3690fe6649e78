"""Prometheus metrics: what an operator needs to see at a glance whether anything is stuck."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from storage.db import Database
from storage.models import InboxEvent, OutboxItem
from storage.queue import FAILED, PENDING, WORKING, utcnow

# Outbox effects that carry a message, and the direction it travels.
MESSAGE_EFFECTS = {"respondent.send": "to_participant", "chat.mirror": "from_participant"}


class Metrics:
    """One registry per bridge (tests run several bridges in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "rallybridge_messages",
            "Messages delivered, by direction and platform",
            ["direction", "platform"],
            registry=self.registry,
        )
        self.inbound = Counter(
            "rallybridge_inbound_events",
            "Inbound events (webhooks, chat events, commands, ticks): stored, duplicate or not storable (503)",
            ["kind", "result"],
            registry=self.registry,
        )
        self.effects = Counter(
            "rallybridge_effects", "Outbox effects completed, by kind", ["kind"], registry=self.registry
        )
        self.retries = Counter(
            "rallybridge_retries",
            "Temporary failures that will be retried, by queue and kind",
            ["queue", "kind"],
            registry=self.registry,
        )
        self.failures = Counter(
            "rallybridge_permanent_failures",
            "Rows that failed for good, by queue and kind",
            ["queue", "kind"],
            registry=self.registry,
        )
        self.depth = Gauge(
            "rallybridge_queue_depth", "Unfinished rows (pending or in progress)", ["queue"], registry=self.registry
        )
        self.oldest = Gauge(
            "rallybridge_queue_oldest_age_seconds",
            "Age of the oldest unfinished row",
            ["queue"],
            registry=self.registry,
        )
        self.failed_rows = Gauge(
            "rallybridge_queue_failed_rows",
            "Rows that failed for good and were not retried",
            ["queue"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rallybridge_request_duration_seconds",
            "Time to answer inbound HTTP requests",
            ["route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 3, 5),
        )

    def effect_done(self, kind: str, platform: str) -> None:
        self.effects.labels(kind).inc()
        direction = MESSAGE_EFFECTS.get(kind)
        if direction is not None:
            self.messages.labels(direction, platform).inc()

    async def refresh_queues(self, db: Database) -> None:
        """Queue gauges are read from the database at scrape time: the same numbers on every replica."""
        now = utcnow()
        async with db.transaction() as session:
            for name, model in (("inbox", InboxEvent), ("outbox", OutboxItem)):
                unfinished = model.status.in_((PENDING, WORKING))
                count, oldest = (
                    await session.execute(select(func.count(), func.min(model.created_at)).where(unfinished))
                ).one()
                failed = (await session.execute(select(func.count()).where(model.status == FAILED))).scalar_one()
                self.depth.labels(name).set(count)
                self.oldest.labels(name).set((now - oldest).total_seconds() if oldest else 0)
                self.failed_rows.labels(name).set(failed)

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def timed(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            start = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                route = request.match_info.route.resource
                name = route.canonical if route is not None else "unmatched"
                self.latency.labels(name, str(status)).observe(time.perf_counter() - start)

        return timed

    def route(self, db: Database) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(_request: web.Request) -> web.StreamResponse:
            # The database may be down: the process counters are still worth serving.
            with contextlib.suppress(Exception):
                await self.refresh_queues(db)
            return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        return handle
