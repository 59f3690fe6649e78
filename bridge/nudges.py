"""Nobody answered: when a participant has waited on the team longer than the study's threshold, the owner gets a
direct message; after twice the threshold the thread gets a note that mentions the owner (or, with no owner, whoever
linked the study). One nudge per stage per waiting period, exactly once across replicas, and none once someone has
answered.

The tick (every minute, every replica) reads the waiting threads (a partial index holds only them) and, for each
stage that came due, sets the thread's ``nudged`` stage under its row lock and queues the nudge row in the same
transaction: another replica finds the stage set and queues nothing, and the row's key (the wait and the stage) is
unique besides. The row checks again, when it runs, that the same wait is still on: a reply since cancels it. The tick
also redraws the cards of threads whose session came within 24 h or ended since the last tick.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bridge import case, outbox
from bridge.apply import Apply, nothing
from bridge.services import Services
from core import case_changes, clock, texts
from core.case import SESSION_LENGTH, SOON, NudgePolicy, nudge_due
from core.errors import RallyBridgeError
from core.records import Link, QueuedRow, Thread
from core.store import UnitOfWork

log = logging.getLogger(__name__)

TICK_SECONDS = 60.0
STAGES = (1, 2)


def policy_of(link: Link) -> NudgePolicy:
    """The study's thresholds (``/rally settings``), the defaults where it has none."""
    default = NudgePolicy()
    wait = timedelta(minutes=link.nudge_wait_minutes) if link.nudge_wait_minutes else default.wait
    soon = timedelta(minutes=link.nudge_soon_minutes) if link.nudge_soon_minutes else default.soon
    return NudgePolicy(wait=wait, soon=soon)


async def _zone(services: Services, thread: Thread, link: Link, zones: dict[str, str | None]) -> str | None:
    """Whose working hours count: the owner's zone, else that of whoever linked the study (looked up once a tick)."""
    if thread.owner_user_id:
        return thread.owner_tz
    if link.linked_by not in zones:
        try:
            zones[link.linked_by] = (await services.chat(link.platform).lookup_user(link.linked_by)).tz
        except RallyBridgeError as exc:
            log.info("no time zone for the linker of %s (%s): UTC hours", link.study_id, type(exc).__name__)
            zones[link.linked_by] = None
    return zones[link.linked_by]


async def tick(services: Services, *, since: datetime | None = None, now: datetime | None = None) -> int:
    """Queue the nudges that came due; redraw cards whose session state changed since ``since``. How many nudges."""
    now = now or clock.now()
    async with services.store.transaction() as uow:
        waiting = await uow.threads.waiting(below_stage=max(STAGES))
        links = {link.study_id: link for link in await uow.links.active()}
        moved = await _session_moves(uow, since, now) if since is not None else []
    zones: dict[str, str | None] = {}
    queued = 0
    for thread in waiting:
        link = links.get(thread.study_id)
        if link is None or thread.opted_out or thread.waiting_since is None:
            continue
        tz = await _zone(services, thread, link, zones)
        for stage in STAGES:
            if thread.nudged >= stage:
                continue
            policy = policy_of(link)
            due = nudge_due(
                thread.waiting_since,
                stage=stage,
                policy=policy,
                tz=tz,
                session_starts_at=thread.session_starts_at,
                now=now,
            )
            if due > now:
                break
            queued += await _queue(services, thread, thread.waiting_since, stage)
    if moved:
        async with services.store.transaction() as uow:
            for thread in moved:
                await case.redraw(uow, thread)
    return queued


async def _session_moves(uow: UnitOfWork, since: datetime, now: datetime) -> list[Thread]:
    """Threads whose card state changed by time alone in (since, now]: the session came within 24 h, or ended."""
    coming = await uow.threads.sessions_between(since + SOON, now + SOON)
    ended = await uow.threads.sessions_between(since - SESSION_LENGTH, now - SESSION_LENGTH)
    return list({t.id: t for t in [*coming, *ended]}.values())


async def _queue(services: Services, thread: Thread, waiting_since: datetime, stage: int) -> int:
    async with services.store.transaction() as uow:
        changed = await uow.threads.change_case(thread.id, lambda t: case_changes.nudged(t, waiting_since, stage))
        if changed is None:
            return 0  # answered meanwhile, or another replica queued it
        await outbox.nudge(uow, changed, stage, waiting_since)
    log.info("nudge %d queued for thread %s", stage, thread.id)
    return 1


async def perform(services: Services, item: QueuedRow) -> Apply:
    """Send one nudge, unless the wait it is about is over."""
    p = item.payload
    async with services.store.transaction() as uow:
        thread = await uow.threads.by_id(p["thread_id"])
        link = await uow.links.for_study(thread.study_id) if thread is not None else None
    if thread is None or link is None or thread.waiting_since is None:
        return nothing
    if thread.waiting_since.isoformat() != p["waiting_since"]:
        return nothing  # someone answered; this wait is over (a new one has its own nudges)
    waited = clock.now() - thread.waiting_since
    chat = services.chat(thread.platform)
    if int(p["stage"]) == 1:
        if item.needs_verify:
            # A direct message cannot be looked up afterwards without reading the person's DMs: at most once beats
            # twice (the note at twice the threshold still comes, and is verified).
            log.info("nudge %s may have been sent before; not repeated", item.key)
            return nothing
        to = thread.owner_user_id or link.linked_by
        await chat.post_direct(to, texts.nudge_direct(thread.display_name, link.study_name, waited), key=item.key)
        return nothing
    if thread.root_id is None:
        return nothing
    if thread.owner_user_id:
        people = [(thread.owner_user_id, thread.owner_name or "the owner")]
    else:
        linker = await chat.lookup_user(link.linked_by)
        people = [(link.linked_by, linker.name)]
    if item.needs_verify and await chat.find_post(thread.channel, item.key, root_id=thread.root_id):
        return nothing
    note = texts.nudge_note(thread.display_name, waited, people)
    await chat.post_notice(thread.channel, note, key=item.key, root_id=thread.root_id)
    return nothing
