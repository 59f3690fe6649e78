"""Effects the pipeline asks for. Each becomes one outbox row with a key (exactly once) and a lane (order).

Lanes: everything shown in one participant's thread goes through ``thread:<id>`` (so the root is posted
before any reply, and replies keep their order); relays to one participant through ``relay:<id>``;
archive calls through ``archive:<id>``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bridge import logs
from core.domain import Action, ArchiveEntry, AuthorType, Direction, Source
from core.message import Text
from core.records import Thread
from core.store import UnitOfWork

# Shown on a researcher's reply while its relay waits out a temporary failure; taken off when it settles.
PENDING_REACTION = "hourglass_flowing_sand"
FAILED_REACTION = "x"  # on a reply Respondent refused for good (taken off again by ``retry``)


class Effect(enum.StrEnum):
    POST_ROOT = "chat.root"
    MIRROR = "chat.mirror"
    NOTICE = "chat.notice"
    PRIVATE = "chat.private"
    REACTION = "chat.reaction"
    UNREACTION = "chat.unreaction"
    RELAY = "respondent.send"
    ARCHIVE = "rally.archive"
    PUBLISH_HOME = "chat.home"


def thread_lane(thread_id: int) -> str:
    return f"thread:{thread_id}"


async def _add(uow: UnitOfWork, effect: Effect, key: str, lane: str, payload: dict[str, Any]) -> bool:
    correlation_id = logs.current_correlation_id()  # the inbound event this effect follows from (bridge/logs.py)
    if correlation_id is not None:
        payload = {**payload, logs.CORRELATION_ID: correlation_id}
    return await uow.outbox.add(key=key, kind=effect.value, lane=lane, payload=payload)


async def post_root(uow: UnitOfWork, thread: Thread) -> bool:
    return await _add(
        uow,
        Effect.POST_ROOT,
        f"root:{thread.study_id}:{thread.participant_id}",
        thread_lane(thread.id),
        {"thread_id": thread.id},
    )


async def mirror(uow: UnitOfWork, thread: Thread, message_id: int, respondent_uid: str, body: str) -> bool:
    return await _add(
        uow,
        Effect.MIRROR,
        f"mirror:{respondent_uid}",
        thread_lane(thread.id),
        {
            "platform": thread.platform,
            "thread_id": thread.id,
            "message_id": message_id,
            "author_name": thread.display_name,
            "body": body,
        },
    )


# Notices and private notices carry the core's text as ``Text.to_json()`` (``bridge/effects.py`` rebuilds it; rows
# queued before texts had a structure carry a plain string, which ``Text.from_json`` reads too).


async def notice_in_thread(uow: UnitOfWork, thread: Thread, key: str, text: Text) -> bool:
    payload = {"platform": thread.platform, "thread_id": thread.id, "channel": thread.channel, "text": text.to_json()}
    return await _add(uow, Effect.NOTICE, f"notice:{key}", thread_lane(thread.id), payload)


async def notice_in_channel(uow: UnitOfWork, platform: str, channel: str, key: str, text: Text) -> bool:
    payload = {"platform": platform, "channel": channel, "text": text.to_json()}
    return await _add(uow, Effect.NOTICE, f"notice:{key}", f"channel:{platform}:{channel}", payload)


async def private(
    uow: UnitOfWork,
    platform: str,
    key: str,
    channel: str,
    user_id: str,
    text: Text,
    thread_ts: str | None = None,
    actions: Sequence[Action] = (),
) -> bool:
    """Something only one person sees. Its own lane: it waits for nothing. ``actions``: buttons under it."""
    payload: dict[str, Any] = {
        "platform": platform,
        "channel": channel,
        "user_id": user_id,
        "text": text.to_json(),
        "thread_ts": thread_ts,
    }
    if actions:
        payload["actions"] = [{"label": a.label, "command": a.command, "style": a.style} for a in actions]
    return await _add(uow, Effect.PRIVATE, f"private:{key}", f"private:{key}", payload)


def actions_of(payload: dict[str, Any]) -> tuple[Action, ...]:
    """The buttons a private notice's payload carries (none for notices queued before buttons existed)."""
    return tuple(Action(a["label"], a["command"], a.get("style")) for a in payload.get("actions") or ())


def reaction_key(platform: str, channel: str, ts: str, name: str, round_: str = "") -> str:
    return f"reaction:{platform}:{channel}:{ts}:{name}{round_}"


def delivery_round(payload: dict[str, Any]) -> str:
    """Key suffix of a relay's current round: "" at first, ``#retry<n>`` after the n-th ``retry`` of a relay that
    gave up, so the marks and the failure notice of a new round are not taken for those of an earlier one."""
    retries = int(payload.get("retries") or 0)
    return f"#retry{retries}" if retries else ""


def _reaction_lane(platform: str, channel: str, ts: str) -> str:
    # One lane per message: a mark is always added before it is taken off (pending, then delivered).
    return f"reactions:{platform}:{channel}:{ts}"


async def reaction(uow: UnitOfWork, platform: str, channel: str, ts: str, name: str, round_: str = "") -> bool:
    key = reaction_key(platform, channel, ts, name, round_)
    payload = {"platform": platform, "channel": channel, "ts": ts, "name": name}
    return await _add(uow, Effect.REACTION, key, _reaction_lane(platform, channel, ts), payload)


async def unreaction(uow: UnitOfWork, platform: str, channel: str, ts: str, name: str, round_: str = "") -> bool:
    """Take a mark off a message, after any earlier change of that message's marks."""
    key = f"unreaction:{platform}:{channel}:{ts}:{name}{round_}"
    payload = {"platform": platform, "channel": channel, "ts": ts, "name": name}
    return await _add(uow, Effect.UNREACTION, key, _reaction_lane(platform, channel, ts), payload)


async def relay(
    uow: UnitOfWork,
    thread: Thread,
    message_id: int,
    body: str,
    source_key: str,
    *,
    author: dict[str, str | None],
) -> bool:
    """Send a researcher's reply to the participant; on success it is archived and marked delivered.

    Queued behind a relay that is waiting out a failure, it shows the pending mark at once.
    """
    lane = f"relay:{thread.id}"
    waiting = await uow.outbox.waiting_in_lane(lane)
    added = await _add(
        uow,
        Effect.RELAY,
        f"relay:{source_key}",
        lane,
        {"platform": thread.platform, "thread_id": thread.id, "message_id": message_id, "body": body, "author": author},
    )
    if added and waiting and author.get("platform_ts"):
        await reaction(uow, thread.platform, thread.channel, str(author["platform_ts"]), PENDING_REACTION)
    return added


def archive_payload(thread_id: int, entry: ArchiveEntry) -> dict[str, Any]:
    return {
        "thread_id": thread_id,
        "study_id": entry.study_id,
        "participant_id": entry.participant_id,
        "external_id": entry.external_id,
        "direction": entry.direction.value,
        "body": entry.body,
        "sent_at": entry.sent_at.isoformat(),
        "author_type": entry.author_type.value,
        "source": entry.source.value,
        "author_user_id": entry.author_user_id,
        "author_email": entry.author_email,
        "author_name": entry.author_name,
        "respondent_message_uid": entry.respondent_message_uid,
    }


def archive_entry(payload: dict[str, Any]) -> ArchiveEntry:
    return ArchiveEntry(
        study_id=payload["study_id"],
        participant_id=payload["participant_id"],
        external_id=payload["external_id"],
        direction=Direction(payload["direction"]),
        body=payload["body"],
        sent_at=datetime.fromisoformat(payload["sent_at"]),
        author_type=AuthorType(payload["author_type"]),
        source=Source(payload["source"]),
        author_user_id=payload.get("author_user_id"),
        author_email=payload.get("author_email"),
        author_name=payload.get("author_name"),
        respondent_message_uid=payload.get("respondent_message_uid"),
    )


async def archive(uow: UnitOfWork, thread_id: int, entry: ArchiveEntry) -> bool:
    return await _add(
        uow,
        Effect.ARCHIVE,
        f"archive:{entry.external_id}",
        f"archive:{thread_id}",
        archive_payload(thread_id, entry),
    )


def home_lane(platform: str, user_id: str) -> str:
    return f"home:{platform}:{user_id}"


async def publish_home(uow: UnitOfWork, platform: str, key: str, user_id: str, view: dict[str, Any]) -> bool:
    """Draw ``user_id``'s home (``core.home.HomeView.to_dict``). One lane per person: the newest view is drawn last."""
    payload = {"platform": platform, "user_id": user_id, "view": view}
    return await _add(uow, Effect.PUBLISH_HOME, f"home:{key}", home_lane(platform, user_id), payload)
