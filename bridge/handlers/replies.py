"""Researchers in a participant's thread: a reply becomes a relay to the participant (when the replier may message
them), an internal note stays in the thread, and an edit or a delete of a relayed reply is explained privately."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bridge import access, case, compose, outbox
from bridge.apply import Apply, nothing
from bridge.handlers import saved
from bridge.reminders.targets import Asker
from bridge.services import Services
from core import clock, texts
from core.domain import Direction
from core.errors import TemporaryFailure
from core.events import ChatMessageChanged, ChatMessagePosted
from core.message import Text
from core.records import Link, MessageState, Thread
from core.store import UnitOfWork

log = logging.getLogger(__name__)


async def posted(services: Services, event: ChatMessagePosted) -> Apply:
    """A message in a channel: relayed when it is a reply in a participant's thread, by someone who may message
    them now; the replier is told privately why not otherwise."""
    if not event.is_thread_reply:
        return nothing  # a top-level channel message: not ours to relay
    root_id, post_id = event.root_id, event.post_id
    assert root_id is not None
    async with services.store.read() as reads:  # one statement, outside any transaction
        found = await reads.thread_by_root_with_link(event.platform, event.channel, root_id)
    if found is None:
        found = await _thread_once_rooted(services, event.platform, event.channel, root_id)
    thread, link = found if found is not None else (None, None)
    if thread is None or link is None:
        log.debug("reply in a thread that is not a participant thread; ignored")
        return nothing
    text = event.text
    channel, user_id, key = event.channel, event.user_id, event.key
    if text.lstrip().startswith(services.internal_note_marker):
        log.debug("internal note kept in the thread")
        return nothing
    notices: list[Text] = [texts.files_not_relayed()] if event.has_files else []
    if not text.strip():
        if not notices:
            notices.append(texts.empty_message())
        return _private_notices(event.platform, key, channel, user_id, root_id, notices)

    chat = services.chat(event.platform)
    user = await chat.lookup_user(user_id)
    decision = await access.may_message(services, user, thread, link)
    if not decision.allowed:
        return _private_notices(event.platform, key, channel, user_id, root_id, [decision.reason])
    body = await chat.to_plain_text(text)
    author = decision.rally_user
    broken = await compose.link_problems(services, body, trusted=[u for u in (thread.scheduling_url,) if u])
    if broken:  # held back until its author says Send anyway (bridge/handlers/saved.py)
        kept = compose.author_of(
            rally_user_id=author.user_id if author else None,
            email=user.email,
            name=author.fullname if author else user.name,
            platform=event.platform,
            external_id=f"{event.platform}:{event.workspace}:{channel}:{post_id}",
            post_id=post_id,
        )
        asker = Asker(event.platform, channel, user_id, key)
        return saved.hold(asker, thread.id, body, kept, broken, root_id=root_id)

    current = thread  # its id, platform and channel are all the writes use, and they never change
    # When the team wrote: as the bridge took the reply (a Slack ts is a time to the second only, and Slack's clock
    # and Respondent's need not agree to the second: a reply must not read as older than the message it answers).
    written = max(_post_time(post_id), clock.now())

    async def apply(uow: UnitOfWork) -> None:
        message_id = await uow.messages.add(
            thread=current,
            direction=Direction.TO_PARTICIPANT.value,
            state=MessageState.PENDING.value,
            sent_at=written,
            post_id=post_id,
            author_user_id=user_id,
            author_name=author.fullname if author else user.name,
        )
        if message_id is None:
            return  # the same chat message arrived again: already relayed once
        await outbox.relay(
            uow,
            current,
            message_id,
            body,
            key,
            author={
                "user_id": author.user_id if author else None,
                "email": user.email,
                "name": author.fullname if author else user.name,
                "post_id": post_id,
            },
        )
        await case.team_wrote(uow, current, written)  # the wait is over the moment someone replies
        for index, notice in enumerate(notices):
            await outbox.private(uow, current.platform, f"{key}:{index}", channel, user_id, notice, root_id)

    return apply


async def _thread_once_rooted(
    services: Services, platform: str, channel: str, root_id: str
) -> tuple[Thread, Link | None] | None:
    """No thread has this root (yet?). A root being posted right now has no id recorded (its outcome commits just
    after the post), and one whose post had an unknown outcome waits to be verified: a reply may already be in
    that thread, so look again shortly instead of dropping it. The root is read again after that check: had it
    been recorded between the first read and the check, neither would have seen it."""
    async with services.store.transaction() as uow:
        rooting = await _root_being_posted(uow, platform, channel)
        thread = await uow.threads.by_root(platform, channel, root_id)
        link = await uow.links.for_study(thread.study_id) if thread else None
    if thread is not None:
        return thread, link
    if rooting:
        raise TemporaryFailure("a participant thread of this channel is still being opened")
    return None


async def _root_being_posted(uow: UnitOfWork, platform: str, channel: str) -> bool:
    for thread_id in await uow.threads.without_root(platform, channel):
        if await uow.outbox.lane_busy(outbox.thread_lane(thread_id)):  # the root is the lane's first row
            return True
    return False


def _private_notices(
    platform: str, key: str, channel: str, user_id: str, root_id: str | None, notices: list[Text]
) -> Apply:
    async def apply(uow: UnitOfWork) -> None:
        for index, notice in enumerate(notices):
            await outbox.private(uow, platform, f"{key}:{index}", channel, user_id, notice, root_id)

    return apply


def _post_time(post_id: str) -> datetime:
    """When a message was posted, from its id where the platform makes one of the time (Slack ``ts``)."""
    try:
        return datetime.fromtimestamp(float(post_id), UTC)
    except ValueError:
        return clock.now()


async def changed(services: Services, event: ChatMessageChanged) -> Apply:
    """An edit or a delete: it cannot be relayed; the author of a relayed reply is told so privately."""

    async def apply(uow: UnitOfWork) -> None:
        message = await uow.messages.by_post(event.platform, event.channel, event.post_id)
        if message is None or message.direction != Direction.TO_PARTICIPANT.value or not message.author_user_id:
            return  # not a relayed message: nothing was sent, nothing to explain
        text = texts.edit_not_relayed() if event.change == "edited" else texts.delete_not_relayed()
        thread = await uow.threads.by_id(message.thread_id)
        await outbox.private(
            uow,
            event.platform,
            event.key,
            event.channel,
            message.author_user_id,
            text,
            thread.root_id if thread else None,
        )

    return apply
