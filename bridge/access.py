"""Fetch what contract R2 needs (the study team, the person's Rally accounts) and decide with
:func:`core.permissions.may_message_participant`: one place for every path that acts on a participant (a relayed
reply, a retry, scheduling a reminder), and for the same check again when a queued relay is about to leave
(:func:`recheck_relay`).

The checks at intake always ask Rally and keep what they got in ``services.team_cache``
(``bridge/team_cache.py``, a short TTL, per process); the check at send time reuses it, so a reply sent right after
it was written costs no further Rally call."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from bridge.services import Services
from core.domain import ChatUser
from core.errors import PermanentFailure
from core.permissions import Decision, may_message_participant, still_may_send
from core.records import Link, QueuedRow, Thread

log = logging.getLogger(__name__)


async def may_message(
    services: Services,
    user: ChatUser,
    thread: Thread,
    link: Link,
    *,
    check_opt_out: bool = True,
) -> Decision:
    """Whether ``user`` may message ``thread``'s participant now. ``check_opt_out`` False leaves the opt-out to
    the caller (scheduling refuses it with its own sentence)."""
    cache = services.team_cache
    team = await cache.team(services.rally, thread.study_id, fresh=True)
    accounts = await cache.users(services.rally, user.email, fresh=True) if user.email else []
    return may_message_participant(
        email=user.email,
        chat_name=user.name,
        study_name=link.study_name,
        link_active=link.active,
        participant_name=thread.display_name,
        participant_opted_out=thread.opted_out and check_opt_out,
        team=team,
        rally_users=accounts,
    )


async def recheck_relay(services: Services, item: QueuedRow, thread: Thread, link: Link | None) -> None:
    """Before a queued relay leaves (``bridge/effects.py``): raise :class:`PermanentFailure` unless its author may
    still message the participant, so nothing leaves and the thread is told why (the failure's reason names the
    author and what to do; the permanent-failure path marks the reply failed and offers ``retry <id>``, which
    checks again the same way).

    The author is the payload's: the researcher who wrote the reply, or for a scheduled send (``bridge/reminders``,
    author type BOT) the person who scheduled it, whose permission the reminder's firing checked and which is
    checked again here in the same way (the send may have waited out an outage too). A retried relay stays its
    author's: whoever asks for the retry, it leaves only while the author may message the participant.

    Allowed on data up to the cache's TTL old (normally what the intake check just fetched: no Rally call);
    refused only on fresh data, so a teammate added back (or an account reactivated) is not refused from the cache.
    Rally unreachable when a fetch is needed: the ``TemporaryFailure`` makes the relay wait like any other.
    ``link``: the study's link as the relay read it with its thread (None when the study is no longer linked)."""
    author: dict[str, Any] = item.payload.get("author") or {}
    kept = services.team_cache.holds(thread.study_id, author.get("email"))
    reason = await _refusal(services, author, thread, link, fresh=False)
    if reason is not None and kept and link is not None and link.active:
        reason = await _refusal(services, author, thread, link, fresh=True)  # the refusal came from kept data
    if reason is None:
        return
    if item.needs_verify and await _maybe_sent(services, item, thread):
        # The attempt before may have delivered it: the relay verifies at Respondent and records what it finds.
        log.info("relay %s: author no longer permitted, but an earlier attempt may have sent it", item.id)
        return
    log.info("relay %s stopped at send time: %s", item.id, reason)
    raise PermanentFailure(reason)


async def _refusal(
    services: Services, author: dict[str, Any], thread: Thread, link: Link | None, *, fresh: bool
) -> str | None:
    email = author.get("email")
    name = str(author.get("name") or email or "The author")
    study_name = link.study_name if link is not None else thread.study_id
    active = link is not None and link.active
    cache = services.team_cache
    team = await cache.team(services.rally, thread.study_id, fresh=fresh) if active else []
    accounts = await cache.users(services.rally, email, fresh=fresh) if active and email else []
    return still_may_send(
        author_name=name, email=email, study_name=study_name, link_active=active, team=team, rally_users=accounts
    )


async def _maybe_sent(services: Services, item: QueuedRow, thread: Thread) -> bool:
    """After an attempt with unknown outcome: whether Respondent holds a message of ours with this relay's text,
    written since it was queued, that no other message claims (what the relay's own verification would find)."""
    if not thread.conversation_uid:
        return False  # no conversation was opened, so nothing was sent
    conversation = await services.respondent.get_conversation(thread.conversation_uid)
    since = item.created_at - timedelta(minutes=1)
    uids = [
        m.uid
        for m in conversation.messages
        if m.body == item.payload.get("body")
        and m.sender_uid != thread.respondent_user_id
        and (m.created_at is None or m.created_at >= since)
    ]
    if not uids:
        return False
    async with services.store.transaction() as uow:
        claimed = await uow.messages.known_respondent_uids(uids)
    return any(uid not in claimed for uid in uids)
