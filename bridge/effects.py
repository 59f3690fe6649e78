"""Perform one outbox row against the outside world, then say what to record.

``perform`` returns an ``Apply`` run in the same transaction that marks the row done (store the Slack ts,
the Respondent message uid; a relay is ``bridge/relay.py``). ``on_permanent_failure`` says who to tell when the
row cannot succeed. After an attempt with unknown outcome (``item.needs_verify``) each effect checks at
its target before acting again, so nothing is posted or sent twice.
"""

from __future__ import annotations

import logging

from bridge import case, compose, logs, nudges, outbox, relay
from bridge.apply import Apply, nothing
from bridge.outbox import Effect
from bridge.services import Services
from core import case_changes, clock, texts
from core.domain import Mark, PostedMessage
from core.errors import PermanentFailure, UnknownOutcome
from core.home import HomeView
from core.message import Text
from core.ports import ChatPlatform, HomeSurface
from core.records import QueuedRow, Thread
from core.store import UnitOfWork

log = logging.getLogger(__name__)


async def _thread(services: Services, thread_id: int) -> Thread:
    async with services.store.transaction() as uow:
        thread = await uow.threads.by_id(thread_id)
    if thread is None:
        raise PermanentFailure(f"participant thread {thread_id} no longer exists")
    return thread


def _require_root(thread: Thread) -> str:
    if thread.root_id is None:
        # The root is earlier in the same lane, so this only happens if the root failed for good.
        raise PermanentFailure("the participant's thread could not be opened")
    return thread.root_id


async def perform(services: Services, item: QueuedRow) -> Apply:
    effect = Effect(item.kind)
    p = item.payload
    if effect is Effect.POST_ROOT:
        thread = await _thread(services, p["thread_id"])
        chat = services.chat(thread.platform)
        posted = await _verified_post(chat, item, thread.channel, None)
        if posted is None:
            root = case.root_for(thread, await case.study_name(services, thread.study_id), clock.now())
            posted = await chat.post_thread_root(thread.channel, root, key=item.key)
        return _store_root(thread.id, posted, thread.card_version)
    if effect is Effect.MIRROR:
        thread = await _thread(services, p["thread_id"])
        root_id = _require_root(thread)
        chat = services.chat(thread.platform)
        posted = await _verified_post(chat, item, thread.channel, root_id)
        if posted is None and "outside_by" in p:  # the team wrote from outside the thread
            said = texts.outside_message(p["outside_by"] or None, p["body"])
            posted = await chat.post_notice(thread.channel, said, key=item.key, root_id=root_id)
        if posted is None:
            posted = await chat.post_participant_message(
                thread.channel, root_id, p["author_name"], p["body"], key=item.key
            )
        return _store_message_post(p["message_id"], posted.post_id)
    if effect is Effect.NOTICE:
        in_thread: str | None = None  # the root of the participant's thread it goes under, if any
        if p.get("thread_id") is not None:
            in_thread = _require_root(await _thread(services, p["thread_id"]))
        chat = services.chat(p["platform"])
        if await _verified_post(chat, item, p["channel"], in_thread) is None:
            await chat.post_notice(p["channel"], Text.from_json(p["text"]), key=item.key, root_id=in_thread)
        return nothing
    if effect is Effect.PRIVATE:
        buttons = {"actions": outbox.actions_of(p)} if p.get("actions") else {}
        try:
            await services.chat(p["platform"]).post_private(
                p["channel"], p["user_id"], Text.from_json(p["text"]), root_id=outbox.private_root(p), **buttons
            )
        except UnknownOutcome:
            # Ephemeral messages cannot be looked up afterwards: at most once beats twice.
            log.info("private notice %s may not have arrived; not repeated", item.key)
        return nothing
    if effect is Effect.REACTION:
        occasion = str(p.get("round") or "")  # a retried relay's marks are shown anew
        await services.chat(p["platform"]).add_mark(p["channel"], *outbox.mark_of(p), occasion=occasion)
        return nothing
    if effect is Effect.UNREACTION:
        await services.chat(p["platform"]).remove_mark(p["channel"], *outbox.mark_of(p))
        return nothing
    if effect is Effect.RELAY:
        return await relay.send(services, item)
    if effect is Effect.ARCHIVE:
        archive_id = await services.rally.archive(outbox.archive_entry(p))
        log.debug("archived %s as %s", item.key, archive_id)
        return nothing
    if effect is Effect.CARD:
        return await case.draw(services, item)
    if effect is Effect.NUDGE:
        return await nudges.perform(services, item)
    if effect is Effect.UPDATE_SUMMARY:
        return await compose.summarize(services, item)
    if effect is Effect.PUBLISH_HOME:
        # Publishing replaces the whole view, so after an unknown outcome it is simply done again.
        surface = services.chat(p["platform"])
        if not isinstance(surface, HomeSurface):
            raise PermanentFailure(f"the {p['platform']} platform has no home view")
        await surface.publish_home(p["user_id"], HomeView.from_dict(p["view"]))
        return nothing
    raise PermanentFailure(f"unknown effect {item.kind}")  # pragma: no cover


async def _verified_post(
    chat: ChatPlatform, item: QueuedRow, channel: str, root_id: str | None
) -> PostedMessage | None:
    """After an unknown outcome, the post that the earlier attempt made, if it did."""
    if not item.needs_verify:
        return None
    return await chat.find_post(channel, item.key, root_id=root_id)


def _store_root(thread_id: int, posted: PostedMessage, version: int) -> Apply:
    """The root's id; the card it showed is the thread's as of ``version`` (a change since is redrawn)."""
    drawn = case.drawn(thread_id, version)

    async def apply(uow: UnitOfWork) -> None:
        await uow.threads.set_root(thread_id, posted.post_id)
        await drawn(uow)

    return apply


def _store_message_post(message_id: int, post_id: str) -> Apply:
    async def apply(uow: UnitOfWork) -> None:
        await uow.messages.set_state(message_id, state="mirrored", post_id=post_id)

    return apply


async def on_temporary_failure(services: Services, item: QueuedRow, reason: str) -> Apply | None:
    """A relay that has to wait shows it: a pending mark on the researcher's reply and on every reply queued
    behind it for the same participant (keyed, so each reply is marked once)."""
    if Effect(item.kind) is not Effect.RELAY:
        return None
    thread_id = item.payload["thread_id"]

    async def show_pending(uow: UnitOfWork) -> None:
        thread = await uow.threads.by_id(thread_id)
        if thread is None:
            return
        for payload in await uow.outbox.unfinished_payloads(item.lane, from_id=item.id):
            post_id = outbox.author_post(payload)
            if post_id:
                # The mark belongs to that reply's journey: it carries that reply's correlation id.
                with logs.correlated(payload.get(logs.CORRELATION_ID)):
                    round_ = outbox.delivery_round(payload)
                    await outbox.mark(uow, thread.platform, thread.channel, post_id, Mark.PENDING, round_)

    return show_pending


async def on_permanent_failure(services: Services, item: QueuedRow, reason: str) -> Apply:
    """Tell the people who need to know; nothing fails silently."""
    effect = Effect(item.kind)
    p = item.payload
    if effect is Effect.RELAY:
        thread = await _thread(services, p["thread_id"])
        post_id = outbox.author_post(p)
        round_ = outbox.delivery_round(p)

        async def tell(uow: UnitOfWork) -> None:
            await uow.messages.set_state(p["message_id"], state="failed", failure_reason=reason)
            if post_id:  # a researcher's reply that ended the participant's wait did not reach them
                await case.change(uow, thread.id, case_changes.not_answered)
            notice = texts.not_delivered(reason, item.id)  # names the row: /rally retry <id>, Retry on the home
            await outbox.notice_in_thread(uow, thread, f"failed:{item.key}{round_}", notice)
            if post_id:
                await relay.settle_marks(uow, thread.platform, thread.channel, post_id, Mark.FAILED, round_)

        return tell
    if effect is Effect.ARCHIVE:
        thread = await _thread(services, p["thread_id"])

        async def tell_archive(uow: UnitOfWork) -> None:
            await outbox.notice_in_thread(uow, thread, f"failed:{item.key}", texts.archive_failed(reason))

        return tell_archive
    log.warning("outbox %s (%s) failed for good: %s", item.id, item.kind, reason)
    return nothing
