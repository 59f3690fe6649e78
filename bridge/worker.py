"""The loops that drain the inbox and the outbox.

Each loop keeps up to ``batch`` rows in flight: it claims the heads of due lanes (one row per lane), runs
them concurrently, and claims more as soon as one finishes, so a slow row (a send waiting for its platform's
rate budget, a slow API) never holds back the others. Each outcome is recorded in the same transaction as its
follow-up writes. A process that dies mid-row leaves a lease that expires; another loop (here or in another
replica) then takes the row again.

A row whose send would exceed a platform's budget (``Paced``, raised by the adapters' pacers before anything
is sent) is put back until the budget allows it, without counting an attempt, and the loop takes other lanes
meanwhile: a blocked channel or thread never stalls the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge import effects, logs
from bridge.apply import Apply
from bridge.handlers import handle
from bridge.handlers.failures import on_permanent_failure
from bridge.services import Services
from core.errors import Paced, PermanentFailure, TemporaryFailure, UnknownOutcome
from core.records import QueuedRow
from core.store import INBOX, OUTBOX, GroupWriter, Queue, UnitOfWork

log = logging.getLogger(__name__)

# Rows an outcome's transaction may claim beyond the slots it frees (they start as soon as a slot is free).
CLAIM_AHEAD = 2

# Temporary failures are retried with backoff for this long; then the row fails and people are told.
GIVE_UP_AFTER = timedelta(hours=24)


# What an outcome's transaction claimed: rows of this worker's queue, rows for the worker it feeds.
Claimed = tuple[list[QueuedRow], list[QueuedRow]]


class LeaseLost(Exception):
    """Another claimer took the row over while this one worked on it: drop this outcome."""


def backoff(attempts: int, retry_after: float | None, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Seconds to wait: the remote's Retry-After when it gave one, else capped exponential with full jitter."""
    if retry_after is not None:
        return max(0.0, retry_after) + random.uniform(0, 0.25)
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return random.uniform(ceiling / 2, ceiling)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class QueueWorker:
    def __init__(
        self,
        services: Services,
        queue: str,
        run: Callable[[Services, QueuedRow], Awaitable[Apply]],
        on_permanent: Callable[[Services, QueuedRow, str], Awaitable[Apply]] | None,
        *,
        lease: timedelta,
        poll: float,
        batch: int = 20,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        on_temporary: Callable[[Services, QueuedRow, str], Awaitable[Apply | None]] | None = None,
    ) -> None:
        self.services = services
        self.run = run
        self.on_permanent = on_permanent
        self.on_temporary = on_temporary
        self.lease = lease
        self.poll = poll
        self.batch = batch
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.owner = worker_name()
        self.name = queue  # core.store.INBOX or OUTBOX
        # When the earliest row put back by pacing falls due (monotonic), so the loop looks again right then.
        self._paced_due: float | None = None
        # Outcomes ready together share one transaction, which also claims the rows they made due (claim on
        # commit): those wait here for the loop to start them. New rows queued by this process: ``_new_rows``.
        self._outcomes: GroupWriter[tuple[QueuedRow, Apply], Claimed] = services.store.group_writer(
            self._record_outcomes
        )
        self._handed: list[QueuedRow] = []
        self._new_rows = services.store.new_rows(self.name)
        self._last_look = 0.0
        # The other queue's worker in this process (the inbox worker feeds the outbox worker): when an outcome's
        # transaction queued rows for it, the same transaction claims them for it (no claim transaction of its own).
        self.feeds: QueueWorker | None = None
        self._fed = asyncio.Event()  # rows were handed to this worker by the one that feeds it
        self._in_flight = 0
        self._accepting = False  # this worker's loop is running and takes rows handed to it

    def _queue(self, uow: UnitOfWork) -> Queue:
        """This worker's queue in ``uow``."""
        return uow.inbox if self.name == INBOX else uow.outbox

    def room(self) -> int:
        """Rows this worker's loop could start now (0 when it is not running)."""
        return self.batch - self._in_flight - len(self._handed) if self._accepting else 0

    def take(self, rows: list[QueuedRow]) -> None:
        """Rows claimed for this worker by another worker's commit: start them. If this worker stopped meanwhile
        (the process is shutting down), they are left to their leases, which expire, like rows in flight at a
        stop: no database work is started while the database is being closed."""
        if self._accepting:
            self._handed.extend(rows)
            self._fed.set()
        else:
            log.info("%d %s rows handed to a stopped worker; their leases will expire", len(rows), self.name)

    async def run_once(self) -> int:
        """Claim and handle one batch, and the rows their outcomes claimed; returns how many rows were handled."""
        async with self.services.store.transaction() as uow:
            rows = await self._queue(uow).claim(owner=self.owner, lease=self.lease, limit=self.batch)
        handled = 0
        while rows:
            await asyncio.gather(*(self._handle(row) for row in rows))
            handled += len(rows)
            rows, self._handed = self._handed, []
        return handled

    def correlation_id(self, row: QueuedRow) -> str:
        """An inbox row's id derives from its key; an outbox row carries the id of the event that caused it."""
        carried = row.payload.get(logs.CORRELATION_ID) if self.name == OUTBOX else None
        return carried if isinstance(carried, str) and carried else logs.correlation_id_for(row.key)

    async def _handle(self, row: QueuedRow) -> None:
        # Every line about this row (and every outbox row it queues) carries the event's correlation id.
        with logs.correlated(self.correlation_id(row), queue=self.name, row=row.id, kind=row.kind):
            await self._handle_row(row)

    async def _handle_row(self, row: QueuedRow) -> None:
        try:
            apply = await self.run(self.services, row)
            await self._commit(row, apply)
        except Paced as exc:
            await self._defer(row, exc.retry_after or 0.0)
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

    async def _commit(self, row: QueuedRow, apply: Apply) -> None:
        # Outcomes that are ready together share one transaction (group commit); raises LeaseLost for this row.
        # Rows queued for the other queue are claimed for its worker here, or wake it when that commits.
        own, fed = await self._outcomes.submit((row, apply))
        self._handed.extend(own)
        if fed and self.feeds is not None:
            self.feeds.take(fed)
        if self.name == OUTBOX:
            self.services.metrics.effect_done(row.kind, str(row.payload.get("platform", "slack")))
        log.info("%s row %s (%s) done after %d attempt(s)", self.name, row.id, row.kind, row.attempts)

    async def _record_outcomes(self, uow: UnitOfWork, outcomes: Sequence[tuple[QueuedRow, Apply]]) -> list[Claimed]:
        """Each row's follow-up writes and its finish, all in ``uow``; any failure undoes the whole batch, and the
        group writer then records the rows one by one, so a failing row only fails itself.

        Then, in the same transaction, claim what these outcomes made due (the next row of their lanes, the
        follow-ups they queued here), up to the slots they free and ``CLAIM_AHEAD`` more: no separate claim
        transaction per finished row. Likewise for the worker this one feeds, when these outcomes queued rows for
        it (an inbox row's relay): up to the rows it has room for.
        """
        queue = self._queue(uow)
        for row, apply in outcomes:
            await apply(uow)
            if not await queue.finish(row.id, self.owner):
                raise LeaseLost()
        # A little more than the slots these outcomes free: a relay's outcome queues two rows (archive, delivery
        # mark), and when everything due fits, the loop need not run a claim transaction of its own afterwards.
        limit = min(self.batch, len(outcomes) + CLAIM_AHEAD)
        claimed = await queue.claim(owner=self.owner, lease=self.lease, limit=limit)
        if len(claimed) < limit:
            queue.nothing_more_due()  # nothing more of ours is due: our own loop need not look
        fed: list[QueuedRow] = []
        target = self.feeds
        if target is not None and target._queue(uow).queued_here() and (room := target.room()) > 0:
            fed = await target._queue(uow).claim(owner=target.owner, lease=target.lease, limit=room)
            if len(fed) < room:
                target._queue(uow).nothing_more_due()  # all it could take is handed to it: no need to wake it
        return [(claimed, fed), *(([], []) for _ in outcomes[1:])]

    async def _put_back_handed(self) -> None:
        """Rows claimed on commit that were not started (the loop stopped): pending again, attempt taken back."""
        rows, self._handed = self._handed, []
        if not rows:
            return
        try:
            async with self.services.store.transaction() as uow:
                for row in rows:
                    await self._queue(uow).defer(row.id, self.owner, delay=0.0)
        except Exception:
            log.exception("could not put back %d claimed %s rows; their leases will expire", len(rows), self.name)

    async def _retry(self, row: QueuedRow, exc: TemporaryFailure, *, needs_verify: bool) -> None:
        # The wall clock, as the store's own ``created_at`` (not core.clock, which reminder tests move forward).
        if datetime.now(UTC) - row.created_at > GIVE_UP_AFTER:
            await self._fail(row, f"still failing after {GIVE_UP_AFTER}: {exc.reason}")
            return
        self.services.metrics.retries.labels(self.name, row.kind).inc()
        delay = backoff(row.attempts, exc.retry_after, base=self.backoff_base, cap=self.backoff_cap)
        log.info("%s row %s (%s) will retry in %.1fs: %s", self.name, row.id, row.kind, delay, exc.reason)
        show: Apply | None = None
        if self.on_temporary is not None:
            try:
                show = await self.on_temporary(self.services, row, exc.reason)
            except Exception:
                log.exception("could not prepare the pending notice for %s row %s", self.name, row.id)
        try:
            async with self.services.store.transaction() as uow:
                held = await self._queue(uow).retry_later(
                    row.id, self.owner, error=exc.reason, delay=delay, needs_verify=needs_verify
                )
                if held and show is not None:
                    await show(uow)
            if show is not None:
                self.services.wakeup.set()
        except Exception:
            log.exception("could not record the retry of %s row %s; its lease will expire", self.name, row.id)

    async def _defer(self, row: QueuedRow, delay: float) -> None:
        """Nothing was attempted (pacing): back to pending until ``delay`` from now; not a retry, not an error."""
        try:
            async with self.services.store.transaction() as uow:
                await self._queue(uow).defer(row.id, self.owner, delay=delay)
        except Exception:
            log.exception("could not put back paced %s row %s; its lease will expire", self.name, row.id)
            return
        due = time.monotonic() + delay
        self._paced_due = due if self._paced_due is None else min(self._paced_due, due)

    async def _fail(self, row: QueuedRow, reason: str) -> None:
        self.services.metrics.failures.labels(self.name, row.kind).inc()
        log.warning("%s row %s (%s) failed for good: %s", self.name, row.id, row.kind, reason)
        tell: Apply | None = None
        if self.on_permanent is not None:
            try:
                tell = await self.on_permanent(self.services, row, reason)
            except Exception:
                log.exception("could not prepare the failure notice for %s row %s", self.name, row.id)
        async with self.services.store.transaction() as uow:
            if tell is not None:
                await tell(uow)
            await self._queue(uow).give_up(row.id, self.owner, error=reason)
        self.services.wakeup.set()

    async def _handle_logged(self, row: QueuedRow) -> None:
        try:
            await self._handle(row)
        except Exception:  # recording the outcome failed (database down?): the lease expires, the row returns
            log.exception("%s row %s (%s): could not record the outcome", self.name, row.id, row.kind)

    def _wait_timeout(self) -> float:
        """The poll interval, or less when a row put back by pacing falls due sooner."""
        if self._paced_due is None:
            return self.poll
        until = self._paced_due - time.monotonic()
        if until <= self.poll:
            self._paced_due = None
        return min(self.poll, max(0.005, until))

    async def forever(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set with up to ``batch`` rows in flight.

        A finished row's transaction claims the rows it made due, and they start at once. The loop claims by
        itself when this process queued rows for this queue (``Store.new_rows``), when poked
        (``services.wakeup``), when a paced row falls due, and at least once per poll interval (rows of other
        processes, retries whose time has come). Idle, it sleeps until one of those happens or a row finishes.
        """
        running: set[asyncio.Task[None]] = set()
        look = True
        self._accepting = True
        try:
            while not stop.is_set():
                self._fed.clear()
                free = self.batch - len(running)
                while free > 0 and self._handed:  # claimed by our own commits
                    running.add(asyncio.create_task(self._handle_logged(self._handed.pop(0))))
                    free -= 1
                woken = self._new_rows.is_set() or self.services.wakeup.is_set()
                if free > 0 and (look or woken or time.monotonic() - self._last_look >= self.poll):
                    # Cleared before claiming: work committed after this point wakes the wait below.
                    self.services.wakeup.clear()
                    self._new_rows.clear()
                    self._last_look = time.monotonic()
                    try:
                        async with self.services.store.transaction() as uow:
                            rows = await self._queue(uow).claim(owner=self.owner, lease=self.lease, limit=free)
                    except Exception:
                        log.exception("%s worker could not claim rows (database down?); retrying", self.name)
                        rows = []
                        await asyncio.sleep(self.poll * 4)
                    running.update(asyncio.create_task(self._handle_logged(row)) for row in rows)
                # With room left, new work may start us too; when full, only a finished row (or the poll) does.
                events = (self.services.wakeup, self._new_rows, self._fed) if len(running) < self.batch else ()
                self._in_flight = len(running)
                waiters = [asyncio.ensure_future(event.wait()) for event in events]
                try:
                    done, _ = await asyncio.wait(
                        {*running, *waiters},
                        timeout=self._wait_timeout(),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                look = not done  # the wait timed out: a paced row is due, or the poll interval passed
                running -= done
                self._in_flight = len(running)
        finally:
            self._accepting = False
            # Rows in flight finish and record their outcome; if this loop is cancelled, their leases expire.
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            await self._put_back_handed()


def inbox_worker(services: Services, **options: Any) -> QueueWorker:
    return QueueWorker(services, INBOX, handle, on_permanent_failure, **options)


# Outbox rows in flight at once. Most of a chat post's time is spent waiting for its channel's or thread's send
# budget (adapters' pacers), so enough lanes must be under way to use a workspace's or app's whole budget: Teams
# allows 50 sends a second per app but only about 4 a second per thread.
OUTBOX_IN_FLIGHT = 50


def outbox_worker(services: Services, **options: Any) -> QueueWorker:
    options.setdefault("batch", OUTBOX_IN_FLIGHT)
    return QueueWorker(
        services,
        OUTBOX,
        effects.perform,
        effects.on_permanent_failure,
        on_temporary=effects.on_temporary_failure,
        **options,
    )
