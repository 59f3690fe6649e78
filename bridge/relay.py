"""A researcher's reply (or a scheduled send) to the participant: the relay row's work.

Checked again at send time (``bridge/access.py``), sent through Respondent (after an attempt with unknown outcome,
looked for there first: contract S1), then archived in Rally and marked delivered in the thread in the same row
when nothing needs them to wait, else queued as rows of their own. One durable step per delivered message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bridge import access, outbox
from bridge.apply import Apply
from bridge.outbox import Effect
from bridge.services import Services
from core.domain import ArchiveEntry, AuthorType, Direction, Mark, RespondentMessage, Source
from core.errors import PermanentFailure
from core.records import Link, QueuedRow, Thread
from core.store import UnitOfWork

log = logging.getLogger(__name__)


async def send(services: Services, item: QueuedRow) -> Apply:
    p = item.payload
    post_id = outbox.author_post(p)
    round_ = outbox.delivery_round(p)  # marks of a retried relay are the new round's (bridge/handlers/retry.py)
    thread, link, follow = await _relay_context(services, p, post_id, round_)
    if thread.opted_out:
        raise PermanentFailure(f"{thread.display_name} has opted out of all communication")
    await access.recheck_relay(services, item, thread, link)  # the author may still message them (R2, at send time)
    conversation_uid = thread.conversation_uid or await _open_conversation(services, thread)
    sent: RespondentMessage | None = None
    if item.needs_verify:
        sent = await _find_sent(services, conversation_uid, thread.respondent_user_id, p["body"], item)
    if sent is None:
        sent = await services.respondent.send_message(conversation_uid, p["body"])
    author = p["author"]
    entry = ArchiveEntry(
        study_id=thread.study_id,
        participant_id=thread.participant_id,
        external_id=author.get("external_id") or f"{thread.platform}:{thread.workspace}:{thread.channel}:{post_id}",
        direction=Direction.TO_PARTICIPANT,
        body=p["body"],
        sent_at=sent.created_at or item.created_at,
        # Scheduled sends (bridge/reminders) say BOT / SCHEDULER; a researcher's reply keeps the defaults.
        author_type=AuthorType(author.get("type") or AuthorType.RESEARCHER.value),
        source=Source(author.get("source") or thread.platform.upper()),
        author_user_id=author.get("user_id"),
        author_email=author.get("email"),
        author_name=author.get("name"),
        respondent_message_uid=sent.uid,
    )
    thread_id, message_id, channel, platform = thread.id, p["message_id"], thread.channel, thread.platform
    message_uid = sent.uid
    # The archive and the delivered mark follow in this same row when nothing needs them to wait (one durable
    # step per message instead of three); otherwise they are queued as rows of their own, as before.
    archived, marked = await _follow_up_now(services, thread, entry, post_id, round_, follow)

    async def apply(uow: UnitOfWork) -> None:
        await uow.messages.set_state(message_id, state="delivered", respondent_uid=message_uid)
        if not archived:
            await outbox.archive(uow, thread_id, entry)
        if post_id and not marked:  # scheduled sends have no researcher post to mark
            await settle_marks(uow, platform, channel, post_id, Mark.DELIVERED, round_)

    return apply


@dataclass(frozen=True)
class _FollowUp:
    """What may follow a relay's send in its own row (read with the thread, before the send)."""

    archive: bool  # no earlier archive of the thread is still queued
    mark: bool  # a researcher's post, and no pending mark was queued for it in this round


async def _relay_context(
    services: Services, payload: dict[str, Any], post_id: str | None, round_: str
) -> tuple[Thread, Link | None, _FollowUp]:
    """The relay's thread, its study's link, and what may follow its send in the same row: one statement, outside
    any transaction. Read before the send: a spilled archive of an earlier relay of this participant, or a pending
    mark of this post, is queued before this row is claimed (the relay lane keeps their order), so nothing that
    matters can appear in between. A relay queued before its payload named the channel marks through its own row."""
    thread_id, channel = payload["thread_id"], payload.get("channel")
    pending_key = (
        outbox.mark_key(payload["platform"], channel, post_id, Mark.PENDING, round_) if post_id and channel else None
    )
    async with services.store.read() as reads:
        found = await reads.relay_context(
            thread_id, archive_lane=outbox.archive_lane(thread_id), pending_mark_key=pending_key or ""
        )
    if found is None:
        raise PermanentFailure(f"participant thread {thread_id} no longer exists")
    follow = _FollowUp(archive=not found.archive_busy, mark=pending_key is not None and not found.pending_shown)
    return found.thread, found.link, follow


async def _follow_up_now(
    services: Services, thread: Thread, entry: ArchiveEntry, post_id: str | None, round_: str, follow: _FollowUp
) -> tuple[bool, bool]:
    """Archive a delivered relay and mark the researcher's post delivered right away, concurrently; (archived,
    marked). Each is done here only when that keeps its order: the archive when no earlier archive of the thread
    is still queued (a spilled one waits out Rally), the mark when no pending mark was queued for this post in
    this round (the pending mark is taken off first, in the marks' own lane). Whatever is not done here, or fails
    here, is queued as its own row by the caller (retried with backoff, verified, told when it fails for good).
    Both calls are idempotent (Rally keys the archive by its external id, a mark already shown is not shown
    again), so a crash before the outcome is recorded repeats them harmlessly."""

    async def archive() -> bool:
        if not follow.archive:
            return False
        try:
            await services.rally.archive(entry)
        except Exception as exc:  # queued as a row instead: retried, and told if it fails for good
            log.info("archive of a delivered relay queued after %s", type(exc).__name__)
            return False
        services.metrics.effect_done(Effect.ARCHIVE.value, thread.platform)
        return True

    async def mark() -> bool:
        if not follow.mark or post_id is None:
            return False
        try:
            await services.chat(thread.platform).add_mark(thread.channel, post_id, Mark.DELIVERED, occasion=round_)
        except Exception as exc:  # paced, or the platform failed: queued as a row instead
            log.info("delivered mark queued after %s", type(exc).__name__)
            return False
        services.metrics.effect_done(Effect.REACTION.value, thread.platform)
        return True

    archived, marked = await asyncio.gather(archive(), mark())
    log.info("delivered relay followed up in its own row: archived %s, marked %s", archived, marked)
    return archived, marked


async def settle_marks(
    uow: UnitOfWork, platform: str, channel: str, post_id: str, final: Mark, round_: str = ""
) -> None:
    """Replace the pending mark (if the reply ever showed one in this round) by ``final``; same lane, so in this
    order. ``round_``: ``outbox.delivery_round`` of the relay (a retried relay's marks are new ones)."""
    if await uow.outbox.exists(outbox.mark_key(platform, channel, post_id, Mark.PENDING, round_)):
        await outbox.unmark(uow, platform, channel, post_id, Mark.PENDING, round_)
    await outbox.mark(uow, platform, channel, post_id, final, round_)


async def _open_conversation(services: Services, thread: Thread) -> str:
    """The participant's conversation in the study's project: reuse the existing one, else open one.

    Only one relay per participant runs at a time (their lane), so two conversations are never opened.
    """
    existing = [
        c
        for c in await services.respondent.list_conversations(thread.respondent_project_id)
        if thread.respondent_user_id in c.participant_user_ids
    ]
    if existing:
        uid = existing[0].uid
    else:
        conversation = await services.respondent.open_conversation(
            thread.respondent_project_id, thread.respondent_user_id, services.respondent_researcher_id
        )
        uid = conversation.uid
    async with services.store.transaction() as uow:
        # Kept unless one is known: the participant's messages arrived meanwhile, so keep to their conversation.
        uid = await uow.threads.set_conversation(thread.id, uid)
    return uid


async def _find_sent(
    services: Services, conversation_uid: str, participant_user_id: str, body: str, item: QueuedRow
) -> RespondentMessage | None:
    """Contract S1: read the conversation and find this message if the earlier attempt delivered it.

    A match is a message from us (not the participant) with the same text, written after this row was
    queued (less a minute of clock skew), whose uid no other message of ours claims.
    """
    conversation = await services.respondent.get_conversation(conversation_uid)
    since = item.created_at - timedelta(minutes=1)
    candidates = [
        m
        for m in conversation.messages
        if m.body == body and m.sender_uid != participant_user_id and (m.created_at is None or m.created_at >= since)
    ]
    if not candidates:
        return None
    async with services.store.transaction() as uow:
        claimed = await uow.messages.known_respondent_uids([m.uid for m in candidates])
    unclaimed = [m for m in candidates if m.uid not in claimed]
    return unclaimed[0] if unclaimed else None
