"""What operators watch, served by the application: ``/metrics`` (the bridge's counters, ``bridge/metrics.py``, plus
the queue gauges read from the database at scrape time) and the timing of every inbound HTTP request."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from adapters.web import Handler
from bridge.metrics import Metrics
from storage.db import Database
from storage.gauges import queue_gauges


async def refresh_queues(metrics: Metrics, db: Database) -> None:
    """Queue gauges are read from the database at scrape time: the same numbers on every replica."""
    for name, gauge in (await queue_gauges(db)).items():
        metrics.depth.labels(name).set(gauge.unfinished)
        metrics.oldest.labels(name).set(gauge.oldest_age_seconds)
        metrics.failed_rows.labels(name).set(gauge.failed)


def timing_middleware(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
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
            metrics.latency.labels(name, str(status)).observe(time.perf_counter() - start)

    return timed


def metrics_route(metrics: Metrics, db: Database) -> Handler:
    async def handle(_request: web.Request) -> web.StreamResponse:
        # The database may be down: the process counters are still worth serving.
        with contextlib.suppress(Exception):
            await refresh_queues(metrics, db)
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle
