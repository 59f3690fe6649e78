"""The loops that drain the inbox and the outbox.

Each loop claims the heads of due lanes (several lanes at once, one row per lane), runs them concurrently,
and records each outcome in the same transaction as its follow-up writes. A process that dies mid-row
leaves a lease that expires; another loop (here or in another replica) then takes the row again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot.errors import PermanentFailure, TemporaryFailure, UnknownOutcome
from bot.pipeline import effects, intake
from bot.pipeline.intake import Apply
from bot.pipeline.services import Services
from storage import queue
from storage.models import InboxEvent, OutboxItem
from storage.queue import Claimed, QueueModel

log = logging.getLogger(__name__)

# Temporary failures are retried with backoff for this long; then the row fails and people are told.
GIVE_UP_AFTER = timedelta(hours=24)


class LeaseLost(Exception):
    """Another claimer took the row over while this one worked on it: drop this outcome."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class QueueWorker:
    def __init__(
        self,
        services: Services,
        model: QueueModel,
        run: Callable[[Services, Claimed], Awaitable[Apply]],
        on_permanent: Callable[[Services, Claimed, str], Awaitable[Apply]] | None,
        *,
        lease: timedelta,
        poll: float,
        batch: int = 20,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        on_temporary: Callable[[Services, Claimed, str], Awaitable[Apply | None]] | None = None,
    ) -> None:
        self.services = services
        self.model = model
        self.run = run
        self.on_permanent = on_permanent
        self.on_temporary = on_temporary
        self.lease = lease
        self.poll = poll
        self.batch = batch
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.owner = worker_name()
        self.name = model.__tablename__

    async def run_once(self) -> int:
        """Claim and handle one batch; returns how many rows were handled."""
        async with self.services.db.transaction() as session:
            rows = await queue.claim(session, self.model, owner=self.owner, lease=self.lease, limit=self.batch)
        if rows:
            await asyncio.gather(*(self._handle(row) for row in rows))
        return len(rows)

    async def _handle(self, row: Claimed) -> None:
        try:
            apply = await self.run(self.services, row)
            await self._commit(row, apply)
        except UnknownOutcome as exc:
            await self._retry(row, exc, needs_verify=True)
        except TemporaryFailure as exc:
            await self._retry(row, exc, needs_verify=row.needs_verify)
        except PermanentFailure as exc:
            await self._fail(row, exc.reason)
        except LeaseLost:
            log.info("%s row %s was taken over by another worker", self.name, row.id)
        except Exception as exc:  # a bug or an unmapped library error: keep the row, retry later
            log.exception("%s row %s (%s) raised; retrying later", self.name, row.id, row.kind)
            await self._retry(row, TemporaryFailure(type(exc).__name__), needs_verify=True)

    async def _commit(self, row: Claimed, apply: Apply) -> None:
        async with self.services.db.transaction() as session:
            await apply(session)
            if not await queue.finish(session, self.model, row.id, self.owner):
                raise LeaseLost()
        if self.model is OutboxItem:
            self.services.metrics.effect_done(row.kind, str(row.payload.get("platform", "slack")))
        self.services.wakeup.set()

    async def _retry(self, row: Claimed, exc: TemporaryFailure, *, needs_verify: bool) -> None:
        if queue.utcnow() - row.created_at > GIVE_UP_AFTER:
            await self._fail(row, f"still failing after {GIVE_UP_AFTER}: {exc.reason}")
            return
        self.services.metrics.retries.labels(self.name, row.kind).inc()
        delay = queue.backoff(row.attempts, exc.retry_after, base=self.backoff_base, cap=self.backoff_cap)
        log.info("%s row %s (%s) will retry in %.1fs: %s", self.name, row.id, row.kind, delay, exc.reason)
        show: Apply | None = None
        if self.on_temporary is not None:
            try:
                show = await self.on_temporary(self.services, row, exc.reason)
            except Exception:
                log.exception("could not prepare the pending notice for %s row %s", self.name, row.id)
        try:
            async with self.services.db.transaction() as session:
                held = await queue.retry_later(
                    session, self.model, row.id, self.owner, error=exc.reason, delay=delay, needs_verify=needs_verify
                )
                if held and show is not None:
                    await show(session)
            if show is not None:
                self.services.wakeup.set()
        except Exception:
            log.exception("could not record the retry of %s row %s; its lease will expire", self.name, row.id)

    async def _fail(self, row: Claimed, reason: str) -> None:
        self.services.metrics.failures.labels(self.name, row.kind).inc()
        log.warning("%s row %s (%s) failed for good: %s", self.name, row.id, row.kind, reason)
        tell: Apply | None = None
        if self.on_permanent is not None:
            try:
                tell = await self.on_permanent(self.services, row, reason)
            except Exception:
                log.exception("could not prepare the failure notice for %s row %s", self.name, row.id)
        async with self.services.db.transaction() as session:
            if tell is not None:
                await tell(session)
            await queue.give_up(session, self.model, row.id, self.owner, error=reason)
        self.services.wakeup.set()

    async def forever(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set; sleep until woken or the poll interval passes when idle."""
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("%s worker could not claim rows (database down?); retrying", self.name)
                handled = 0
                await asyncio.sleep(self.poll * 4)
            if handled == 0:
                self.services.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.services.wakeup.wait(), timeout=self.poll)


def inbox_worker(services: Services, **options: Any) -> QueueWorker:
    return QueueWorker(services, InboxEvent, intake.handle, None, **options)


def outbox_worker(services: Services, **options: Any) -> QueueWorker:
    return QueueWorker(
        services,
        OutboxItem,
        effects.perform,
        effects.on_permanent_failure,
        on_temporary=effects.on_temporary_failure,
        **options,
    )
