"""The thread as a live case: what changes it (``core/case_changes.py``) and its root card, drawn again in place
whenever what it shows changes.

Every change goes through :func:`change`, in the caller's unit of work: the thread's case fields are set under a row
lock and, when the card shows them, the card's version goes up and a redraw row is queued (``outbox.card``). A redraw
row draws the card as the thread is when the row runs, so several pending redraws of one root collapse into one
``chat.update`` (the later rows find the card drawn at their version and do nothing). Redraws have a lane of their
own (``card:<thread id>``): a participant's message is never held back behind a redraw of their card.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bridge import outbox
from bridge.apply import Apply, nothing
from bridge.outbox import thread_lane
from bridge.services import Services
from core import case_changes, clock, texts
from core.case_changes import CaseChange
from core.errors import Paced, PermanentFailure
from core.ports import ThreadRoot
from core.records import QueuedRow, Thread
from core.store import UnitOfWork

log = logging.getLogger(__name__)

ROOT_WAIT_SECONDS = 1.0  # a redraw that finds the root still being posted looks again after this long


async def change(uow: UnitOfWork, thread_id: int, how: Callable[[Thread], CaseChange | None]) -> Thread | None:
    """Change the thread's case; queue a redraw of its card when what it shows changed. The changed thread or None."""
    thread = await uow.threads.change_case(thread_id, how)
    if thread is not None and thread.card_version > thread.card_shown:
        await outbox.card(uow, thread)
    return thread


async def participant_wrote(uow: UnitOfWork, thread: Thread, at: datetime) -> Thread | None:
    return await change(uow, thread.id, lambda t: case_changes.participant_wrote(t, at))


async def team_wrote(uow: UnitOfWork, thread: Thread, at: datetime) -> Thread | None:
    return await change(uow, thread.id, lambda t: case_changes.team_wrote(t, at))


async def redraw(uow: UnitOfWork, thread: Thread) -> Thread | None:
    """The card says something else now though nothing stored changed (an opt-out, a session coming close)."""
    return await change(uow, thread.id, lambda _t: case_changes.time_passed())


def root_for(thread: Thread, study_name: str, now: datetime) -> ThreadRoot:
    """The root card of ``thread`` at ``now``."""
    return ThreadRoot(
        participant_name=thread.display_name,
        study_name=study_name,
        session_starts_at=thread.session_starts_at,
        scheduling_url=thread.scheduling_url,
        participant_id=thread.participant_id,
        status=texts.card_lines(thread, now, seen=thread.seen_message_id is not None),
        assignable=not thread.opted_out,
    )


async def study_name(services: Services, study_id: str) -> str:
    async with services.store.transaction() as uow:
        link = await uow.links.for_study(study_id)
    return link.study_name if link else study_id


async def draw(services: Services, item: QueuedRow) -> Apply:
    """A redraw row: update the root in place unless the card is drawn at this version or later already."""
    thread_id = int(item.payload["thread_id"])
    async with services.store.read() as reads:
        # The relay's one-statement question (the thread, its study's link, whether a lane is busy), asked about the
        # thread's lane, where its root is posted.
        found = await reads.relay_context(thread_id, archive_lane=thread_lane(thread_id), pending_mark_key="")
    if found is None:
        raise PermanentFailure(f"participant thread {thread_id} no longer exists")
    thread, link, rooting = found.thread, found.link, found.archive_busy
    if thread.root_id is None and rooting:  # its root is still on its way: draw after it, not before
        raise Paced("the thread's root is not posted yet", retry_after=ROOT_WAIT_SECONDS)
    if thread.root_id is None or thread.card_shown >= thread.card_version:
        return nothing  # no root (it could not be posted), or a later row drew the card already
    root = root_for(thread, link.study_name if link else thread.study_id, clock.now())
    await services.chat(thread.platform).update_thread_root(thread.channel, thread.root_id, root)
    return drawn(thread.id, thread.card_version)


def drawn(thread_id: int, version: int) -> Apply:
    async def apply(uow: UnitOfWork) -> None:
        await uow.threads.card_drawn(thread_id, version)

    return apply
