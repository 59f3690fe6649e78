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
from core.domain import Action, ArchiveEntry, AuthorType, Direction, Mark, Source
from core.message import Text
from core.records import Thread
from core.store import UnitOfWork

# The token of each mark in its rows' keys. Keys are identities: these are the tokens rows were keyed with when marks
# were named after Slack's emoji, so a mark queued before that changed is still recognised (never shown to anyone).
_KEY_TOKENS = {
    Mark.PENDING: "hourglass_flowing_sand",
    Mark.DELIVERED: "white_check_mark",
    Mark.FAILED: "x",
    Mark.SEEN: "eyes",
}
_FROM_TOKEN = {token: mark for mark, token in _KEY_TOKENS.items()}


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
    CARD = "chat.card"  # redraw a thread's root card (bridge/case.py)
    NUDGE = "chat.nudge"  # tell the team a participant waits (bridge/nudges.py)
    UPDATE_SUMMARY = "chat.update_summary"  # a study-wide update's one line in the channel (bridge/compose.py)


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


def relay_lane(thread_id: int) -> str:
    return f"relay:{thread_id}"


async def mirror(
    uow: UnitOfWork, thread: Thread, message_id: int, respondent_uid: str, body: str, *, outside_by: str | None = None
) -> bool:
    """Show a participant's message in their thread; ``outside_by`` (a name, or "" when unknown): a message the team
    sent from outside the thread (Respondent's own chat), shown as such."""
    extra = {"outside_by": outside_by} if outside_by is not None else {}
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
            **extra,
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
    root_id: str | None = None,
    actions: Sequence[Action] = (),
) -> bool:
    """Something only one person sees (in the thread of ``root_id``, else in the channel). Its own lane: it waits for
    nothing. ``actions``: buttons under it."""
    payload: dict[str, Any] = {
        "platform": platform,
        "channel": channel,
        "user_id": user_id,
        "text": text.to_json(),
        "root_id": root_id,
    }
    if actions:
        payload["actions"] = [{"label": a.label, "command": a.command, "style": a.style} for a in actions]
    return await _add(uow, Effect.PRIVATE, f"private:{key}", f"private:{key}", payload)


def actions_of(payload: dict[str, Any]) -> tuple[Action, ...]:
    """The buttons a private notice's payload carries (none for notices queued before buttons existed)."""
    return tuple(Action(a["label"], a["command"], a.get("style")) for a in payload.get("actions") or ())


def private_root(payload: dict[str, Any]) -> str | None:
    """The thread a private notice goes to (``thread_ts`` in rows queued before the neutral name)."""
    return payload.get("root_id", payload.get("thread_ts"))


def mark_key(platform: str, channel: str, post_id: str, mark: Mark, round_: str = "") -> str:
    return f"reaction:{platform}:{channel}:{post_id}:{_KEY_TOKENS[mark]}{round_}"


def mark_of(payload: dict[str, Any]) -> tuple[str, Mark]:
    """(post id, mark) of a mark row (rows queued before marks were neutral carry ``ts`` and an emoji ``name``)."""
    post_id = str(payload.get("post_id") or payload["ts"])
    return post_id, Mark(payload["mark"]) if "mark" in payload else _FROM_TOKEN[str(payload["name"]).strip(":")]


def author_post(payload: dict[str, Any]) -> str | None:
    """The researcher's post a relay came from (None for scheduled sends): what its marks go on."""
    author = payload.get("author") or {}
    found = author.get("post_id") or author.get("platform_ts")
    return str(found) if found else None


def delivery_round(payload: dict[str, Any]) -> str:
    """Key suffix of a relay's current round: "" at first, ``#retry<n>`` after the n-th ``retry`` of a relay that
    gave up, so the marks and the failure notice of a new round are not taken for those of an earlier one."""
    retries = int(payload.get("retries") or 0)
    return f"#retry{retries}" if retries else ""


def _marks_lane(platform: str, channel: str, post_id: str) -> str:
    # One lane per message: a mark is always added before it is taken off (pending, then delivered).
    return f"reactions:{platform}:{channel}:{post_id}"


async def mark(uow: UnitOfWork, platform: str, channel: str, post_id: str, mark: Mark, round_: str = "") -> bool:
    """Show ``mark`` on a researcher's message (``round_``: the relay's round, see :func:`delivery_round`)."""
    payload = {"platform": platform, "channel": channel, "post_id": post_id, "mark": mark.value, "round": round_}
    key = mark_key(platform, channel, post_id, mark, round_)
    return await _add(uow, Effect.REACTION, key, _marks_lane(platform, channel, post_id), payload)


async def unmark(uow: UnitOfWork, platform: str, channel: str, post_id: str, mark: Mark, round_: str = "") -> bool:
    """Take ``mark`` off a message, after any earlier change of that message's marks."""
    payload = {"platform": platform, "channel": channel, "post_id": post_id, "mark": mark.value}
    key = f"unreaction:{platform}:{channel}:{post_id}:{_KEY_TOKENS[mark]}{round_}"
    return await _add(uow, Effect.UNREACTION, key, _marks_lane(platform, channel, post_id), payload)


async def relay(
    uow: UnitOfWork,
    thread: Thread,
    message_id: int,
    body: str,
    source_key: str,
    *,
    author: dict[str, str | None],
    extra: dict[str, Any] | None = None,
) -> bool:
    """Send a researcher's reply to the participant; on success it is archived and marked delivered. ``extra``: more
    for the payload (a study-wide update's id).

    Queued behind a relay that is waiting out a failure, it shows the pending mark at once.
    """
    lane = relay_lane(thread.id)
    waiting = await uow.outbox.waiting_in_lane(lane)
    added = await _add(
        uow,
        Effect.RELAY,
        f"relay:{source_key}",
        lane,
        {
            "platform": thread.platform,
            "channel": thread.channel,  # where the author's post (and so its marks) is
            "thread_id": thread.id,
            "message_id": message_id,
            "body": body,
            "author": author,
            **(extra or {}),
        },
    )
    post_id = author.get("post_id")
    if added and waiting and post_id:
        await mark(uow, thread.platform, thread.channel, post_id, Mark.PENDING)
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


def archive_lane(thread_id: int) -> str:
    return f"archive:{thread_id}"


async def archive(uow: UnitOfWork, thread_id: int, entry: ArchiveEntry) -> bool:
    return await _add(
        uow, Effect.ARCHIVE, f"archive:{entry.external_id}", archive_lane(thread_id), archive_payload(thread_id, entry)
    )


def home_lane(platform: str, user_id: str) -> str:
    return f"home:{platform}:{user_id}"


async def publish_home(uow: UnitOfWork, platform: str, key: str, user_id: str, view: dict[str, Any]) -> bool:
    """Draw ``user_id``'s home (``core.home.HomeView.to_dict``). One lane per person: the newest view is drawn last."""
    payload = {"platform": platform, "user_id": user_id, "view": view}
    return await _add(uow, Effect.PUBLISH_HOME, f"home:{key}", home_lane(platform, user_id), payload)


async def card(uow: UnitOfWork, thread: Thread) -> bool:
    """Redraw the thread's root card as of its version now: one row per version in the card's own lane; a row that
    finds the card drawn at its version or later does nothing (``bridge/case.py``)."""
    key = f"card:{thread.id}:{thread.card_version}"
    return await _add(uow, Effect.CARD, key, f"card:{thread.id}", {"thread_id": thread.id})


async def nudge(uow: UnitOfWork, thread: Thread, stage: int, waiting_since: datetime) -> bool:
    """Nudge ``stage`` (1: the owner's direct message, 2: a note in the thread) of the wait since ``waiting_since``:
    keyed by the wait and the stage, so it is queued once across replicas however often the tick runs."""
    since = waiting_since.isoformat()
    payload = {"thread_id": thread.id, "stage": stage, "waiting_since": since}
    return await _add(uow, Effect.NUDGE, f"nudge:{thread.id}:{since}:{stage}", f"nudge:{thread.id}", payload)


def update_relays(update_id: int) -> str:
    """The key prefix of the relays of one study-wide update (``relay:`` + ``update:<id>:<participant id>``)."""
    return f"relay:update:{update_id}:"


async def update_summary(uow: UnitOfWork, update_id: int, platform: str, channel: str, *, skipped: int) -> bool:
    """The channel's one summary of a study-wide update, posted once its relays have all finished."""
    payload = {"update_id": update_id, "platform": platform, "channel": channel, "skipped": skipped}
    return await _add(uow, Effect.UPDATE_SUMMARY, f"update-summary:{update_id}", f"update:{update_id}", payload)
