"""Chat events the handlers would certainly ignore, recognised before they are stored (issue 13).

A busy channel the bot sits in sends message events all day that are not the bridge's: top-level messages, and
replies in threads that are not participant threads. Stored, each costs an inbox row (a durable write), a claim and
a finish, only for ``bridge.handlers.replies`` to return ``nothing``. :func:`worth_storing` recognises them, and
``bridge.inbox.record`` answers them without storing anything. The rule follows the handlers and errs towards storing:

* a message that is not a thread reply: ``posted`` ignores it before reading anything, so it is not stored (no
  read either). No other handler takes a ``ChatMessagePosted``.
* a thread reply: stored when its root is the root of one of the channel's participant threads, or when one of the
  channel's threads has no root recorded and an unfinished row in its outbox lane. ``posted`` relays (or refuses
  privately) a reply of the first kind, and retries one of the second kind while that thread's root row is being
  worked on: the root is being posted, and the reply may be in it (the root is the first row of the thread's lane).
  "Unfinished" (pending or working) is wider than ``posted``'s "working": a root row waiting to retry after an
  unknown outcome may have been posted already.
* an edit or a delete: ``changed`` explains one privately only when its post is a relayed reply of the bridge's,
  and a relay is only ever made of a reply in a participant thread (``posted``). So it is stored when its post is a
  message the bridge knows in that channel, or its root is a participant thread's root (the reply may still be in
  the inbox, ahead of the edit in the same lane), or a root of the channel is being posted. A top-level post, or a
  reply in another thread, is never a relayed reply.
* anything else: stored.

Safe with several replicas: the read is of what is committed in the one database, in one statement (one snapshot),
and nothing is cached. A root shows in the chat only once its outbox row was claimed (committed as working, on
whichever replica); from then on the row stays unfinished until the transaction that records the root's id, which
finishes the row in the same commit. So a reply to that root, read at any moment, finds the root or its unfinished
row, and is stored. A storage error during the read stores the event (as before): never dropped on an error.
"""

from __future__ import annotations

import logging

from bridge import outbox
from bridge.services import Services
from core import events
from core.events import ChatMessageChanged, ChatMessagePosted, EventKind, InboundEvent

log = logging.getLogger(__name__)

# A thread's lane is this and its id (``outbox.thread_lane``): where its root is posted, first.
ROOT_LANE_PREFIX = outbox.thread_lane(0).removesuffix("0")
_CHAT_KINDS = (EventKind.CHAT_MESSAGE, EventKind.CHAT_MESSAGE_CHANGED)


async def worth_storing(services: Services, event: InboundEvent) -> bool:
    """False only for a chat event the handlers would certainly ignore; True otherwise, and when unsure."""
    if event.kind not in _CHAT_KINDS:
        return True
    try:
        typed = events.parse(event.key, event.kind.value, event.payload)
    except (KeyError, TypeError, ValueError):
        return True  # not of the shape the handler reads: let it say so, as before
    if isinstance(typed, ChatMessagePosted):
        if not typed.is_thread_reply:
            return False  # a top-level message (or a thread's root): ``posted`` returns nothing at once
        root_id, post_id = typed.root_id, None
    elif isinstance(typed, ChatMessageChanged):
        root_id, post_id = typed.root_id or None, typed.post_id or None
    else:  # pragma: no cover - the kinds above parse to these two
        return True
    try:
        async with services.store.read() as reads:
            return await reads.may_concern_a_thread(
                typed.platform, typed.channel, root_id=root_id, post_id=post_id, root_lane_prefix=ROOT_LANE_PREFIX
            )
    except Exception as exc:
        log.warning(
            "could not tell whether a %s concerns a thread (%s); storing it", event.kind.value, type(exc).__name__
        )
        return True
