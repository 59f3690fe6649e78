"""Prometheus metrics: what an operator needs to see at a glance whether anything is stuck.

The bridge counts here; the application serves them (``bot/observability.py``: the ``/metrics`` route, the queue
gauges read from the database at scrape time, the request timing middleware).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
            "Inbound events (webhooks, chat events, commands, ticks): stored, duplicate, not storable (503) or "
            "ignored (a chat event concerning no participant thread, answered without storing: bridge/edge.py)",
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
        self.pruned = Counter(
            "rallybridge_pruned_rows",
            "Finished rows deleted after the retention period (RALLYBRIDGE_RETENTION_DAYS), by queue",
            ["queue"],
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
