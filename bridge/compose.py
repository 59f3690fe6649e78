"""Sending what was not typed in the thread: a saved reply, a study-wide update, a reply held for a broken link.

Each goes the way a typed reply goes (``bridge/handlers/replies.py``): the author's permission was checked by the
caller, the message is recorded, its relay queued (``outbox.relay``: checked again at send time, sent once,
archived with the author who chose it), the wait it answers ended; and since nobody typed it in the thread, the
thread shows what was sent. Links are checked first (``core/links.py``): what would hold a message is decided here.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from bridge import case, outbox
from bridge.apply import Apply, nothing
from bridge.services import Services
from core import clock, texts
from core.domain import AuthorType, Direction, Participant
from core.errors import Paced
from core.links import LinkProblem, problems
from core.message import Text
from core.records import Link, MessageState, QueuedRow, QueueStatus, Thread
from core.store import UnitOfWork
from core.when import format_moment


def values_for(participant: Participant | None, thread: Thread, link: Link, researcher: str) -> dict[str, str | None]:
    """What the placeholders say for one participant (``core/placeholders.py``). The session time in UTC words: Rally
    does not give the participant's zone."""
    session = participant.session_starts_at if participant is not None else thread.session_starts_at
    first = participant.first_name if participant is not None else thread.display_name.split(" ")[0]
    return {
        "first_name": first or None,
        "session_time": format_moment(session, None) if session is not None else None,
        "scheduling_link": (participant.scheduling_url if participant is not None else None) or thread.scheduling_url,
        "study": link.study_name,
        "researcher": researcher,
    }


async def link_problems(services: Services, body: str, *, trusted: Collection[str] = ()) -> list[LinkProblem]:
    """The links of ``body`` that look broken (none when the check is off); ``trusted``: the study's scheduling
    links, never checked."""
    return await problems(body, services.link_checker, trusted=trusted)


def author_of(
    *, rally_user_id: str | None, email: str | None, name: str, platform: str, external_id: str, post_id: str | None
) -> dict[str, Any]:
    """The relay's author (``outbox.relay``) of a message a researcher chose rather than typed in the thread."""
    return {
        "user_id": rally_user_id,
        "email": email,
        "name": name,
        "post_id": post_id,
        "type": AuthorType.RESEARCHER.value,
        "source": platform.upper(),
        "external_id": external_id,
    }


async def send(
    uow: UnitOfWork,
    thread: Thread,
    body: str,
    *,
    key: str,
    author: dict[str, Any],
    chat_user_id: str,
    notice: Text | None,
    extra: dict[str, Any] | None = None,
    written: datetime | None = None,
) -> bool:
    """Record the message and queue its relay (keyed ``relay:<key>``: once however often this runs), show ``notice``
    in the thread, end the wait. False when the message was recorded before (its post id is mapped already)."""
    message_id = await uow.messages.add(
        thread=thread,
        direction=Direction.TO_PARTICIPANT.value,
        state=MessageState.PENDING.value,
        sent_at=written or clock.now(),
        post_id=author.get("post_id"),
        author_user_id=chat_user_id,
        author_name=str(author.get("name") or ""),
    )
    if message_id is None:
        return False
    await outbox.relay(uow, thread, message_id, body, key, author=author, extra=extra)
    if notice is not None:
        await outbox.notice_in_thread(uow, thread, f"sent:{key}", notice)
    await case.team_wrote(uow, thread, written or clock.now())
    return True


SUMMARY_WAIT_SECONDS = 2.0  # a summary row whose update still has relays on their way looks again after this long


async def summarize(services: Services, item: QueuedRow) -> Apply:
    """A study-wide update's summary row: once every relay of the update has finished, one line in the channel."""
    p = item.payload
    update_id = int(p["update_id"])
    async with services.store.transaction() as uow:
        relays = await uow.outbox.with_key_prefix(outbox.update_relays(update_id))
        draft = await uow.composed.update_by_id(update_id)
        link = await uow.links.for_study(draft.study_id) if draft is not None else None
        threads = await uow.threads.of_study(draft.study_id) if draft is not None else {}
    if any(r.status in (QueueStatus.PENDING, QueueStatus.WORKING) for r in relays):
        raise Paced("the update's relays are still on their way", retry_after=SUMMARY_WAIT_SECONDS)
    names = {t.id: t.display_name for t in threads.values()}
    sent = sum(1 for r in relays if r.status == QueueStatus.DONE)
    failed = [
        (names.get(int(r.payload.get("thread_id") or 0), "a participant"), r.last_error or "unknown")
        for r in relays
        if r.status == QueueStatus.FAILED
    ]
    who = str((draft.author if draft else {}).get("name") or "the team")
    study = link.study_name if link else (draft.study_id if draft else "the study")
    line = texts.update_summary(study, who, sent, int(p.get("skipped") or 0), failed)
    chat = services.chat(p["platform"])
    if not (item.needs_verify and await chat.find_post(p["channel"], item.key)):
        await chat.post_notice(p["channel"], line, key=item.key)
    return nothing
