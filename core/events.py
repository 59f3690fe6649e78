"""Inbound events in the core's own words. Adapters build these; the inbox stores them as they are.

``key`` is the event's natural identity: storing the same key twice is a no-op, which is what turns
at-least-once delivery (Slack retries, webhook redeliveries, reconcile overlap) into exactly-once effects.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any


class EventKind(enum.StrEnum):
    CHAT_MESSAGE = "chat.message"  # a message posted in a channel (maybe a thread reply)
    CHAT_MESSAGE_CHANGED = "chat.message_changed"  # an edit or delete: cannot be relayed
    CHAT_COMMAND = "chat.command"  # /rally <command> <args>
    RESPONDENT_MESSAGE_CREATED = "respondent.message_created"
    RALLY_PARTICIPANT_STATUS = "rally.participant_status_changed"
    RALLY_PERSON_OPTED_OUT = "rally.person_opted_out"
    RECONCILE_STUDY = "reconcile.study"
    REMINDER_DUE = "reminder.due"  # a scheduled send came due (bridge/reminders)
    HOME_OPENED = (
        "chat.home_opened"  # someone opened the bridge's home (Slack App Home): publish theirs (bridge/home.py)
    )


@dataclass(frozen=True)
class InboundEvent:
    key: str
    kind: EventKind
    payload: dict[str, Any]


def chat_message(
    *,
    platform: str,
    event_id: str,
    workspace: str,
    channel: str,
    user_id: str,
    ts: str,
    thread_ts: str | None,
    text: str,
    has_files: bool = False,
) -> InboundEvent:
    """A message in a channel. Keyed by (platform, workspace, channel, ts) so a retried event is one row."""
    return InboundEvent(
        key=f"{platform}:msg:{workspace}:{channel}:{ts}",
        kind=EventKind.CHAT_MESSAGE,
        payload={
            "platform": platform,
            "event_id": event_id,
            "workspace": workspace,
            "channel": channel,
            "user_id": user_id,
            "ts": ts,
            "thread_ts": thread_ts,
            "text": text,
            "has_files": has_files,
        },
    )


def chat_message_changed(
    *,
    platform: str,
    event_id: str,
    workspace: str,
    channel: str,
    user_id: str | None,
    ts: str,
    thread_ts: str | None,
    change: str,
) -> InboundEvent:
    """``change`` is ``edited`` or ``deleted``."""
    return InboundEvent(
        key=f"{platform}:event:{event_id}",
        kind=EventKind.CHAT_MESSAGE_CHANGED,
        payload={
            "platform": platform,
            "workspace": workspace,
            "channel": channel,
            "user_id": user_id,
            "ts": ts,
            "thread_ts": thread_ts,
            "change": change,
        },
    )


HOME = "home"  # ``origin`` of a command clicked on the home view (it has no channel; bridge/home.py)


def chat_command(
    *,
    platform: str,
    request_id: str,
    workspace: str,
    channel: str,
    user_id: str,
    text: str,
    tz: str | None = None,
    origin: str | None = None,
) -> InboundEvent:
    """A slash command; ``request_id`` is unique per invocation (Slack ``trigger_id``). ``tz``: the sender's
    time zone when the platform sends it with the command (Teams ``localTimezone``); else the user lookup's.
    ``origin`` :data:`HOME`: clicked on the clicker's home view, which has no channel: ``channel`` is then the
    clicker's user id, and the answer is their home view published again with a status line."""
    payload = {"platform": platform, "workspace": workspace, "channel": channel, "user_id": user_id, "text": text}
    if tz:
        payload["tz"] = tz
    if origin:
        payload["origin"] = origin
    return InboundEvent(key=f"{platform}:command:{request_id}", kind=EventKind.CHAT_COMMAND, payload=payload)


def home_opened(*, platform: str, event_id: str, workspace: str, user_id: str) -> InboundEvent:
    """``user_id`` opened the bridge's home (Slack ``app_home_opened``, tab ``home``); one row per event id."""
    return InboundEvent(
        key=f"{platform}:event:{event_id}",
        kind=EventKind.HOME_OPENED,
        payload={"platform": platform, "workspace": workspace, "user_id": user_id},
    )


def respondent_message_created(
    *, delivery_uuid: str, message_id: str, conversation_uid: str | None, project_id: str | None
) -> InboundEvent:
    return InboundEvent(
        key=f"respondent:webhook:{delivery_uuid}",
        kind=EventKind.RESPONDENT_MESSAGE_CREATED,
        payload={"message_id": message_id, "conversation_uid": conversation_uid, "project_id": project_id},
    )


def rally_participant_status(*, svix_id: str, study_id: str, participant_id: str, status: str) -> InboundEvent:
    return InboundEvent(
        key=f"rally:webhook:{svix_id}",
        kind=EventKind.RALLY_PARTICIPANT_STATUS,
        payload={"study_id": study_id, "participant_id": participant_id, "status": status},
    )


def rally_person_opted_out(*, svix_id: str, email: str, opted_out: bool) -> InboundEvent:
    return InboundEvent(
        key=f"rally:webhook:{svix_id}",
        kind=EventKind.RALLY_PERSON_OPTED_OUT,
        payload={"email": email, "opted_out": opted_out},
    )


def reconcile_study(*, study_id: str, cycle: str) -> InboundEvent:
    return InboundEvent(
        key=f"reconcile:{study_id}:{cycle}",
        kind=EventKind.RECONCILE_STUDY,
        payload={"study_id": study_id},
    )


def reminder_due(*, reminder_id: int, thread_id: int) -> InboundEvent:
    """A reminder, follow-up or scheduling link to send now; one key per reminder, so it fires once."""
    return InboundEvent(
        key=f"reminder:{reminder_id}",
        kind=EventKind.REMINDER_DUE,
        payload={"reminder_id": reminder_id, "thread_id": thread_id},
    )


# --- typed events: what the handlers receive ----------------------------------------------------------------
# The inbox stores ``InboundEvent.payload`` as adapters built it; the worker parses each row once, here, into one of
# these, so a handler reads named, typed fields. Chat words stay at the edge: ``post_id`` is the platform's id of a
# message (Slack ``ts``), ``root_id`` the id of its thread's root (Slack ``thread_ts``).


@dataclass(frozen=True)
class ChatMessagePosted:
    key: str
    platform: str
    workspace: str
    channel: str
    user_id: str
    post_id: str
    root_id: str | None
    text: str
    has_files: bool = False

    @property
    def is_thread_reply(self) -> bool:
        return bool(self.root_id) and self.root_id != self.post_id


@dataclass(frozen=True)
class ChatMessageChanged:
    key: str
    platform: str
    workspace: str
    channel: str
    user_id: str | None
    post_id: str
    root_id: str | None
    change: str  # edited | deleted


@dataclass(frozen=True)
class CommandIssued:
    """``/rally <text>`` or the same words in Teams; ``origin`` :data:`HOME` when clicked on the home view."""

    key: str
    platform: str
    workspace: str
    channel: str
    user_id: str
    text: str
    tz: str | None = None
    origin: str | None = None

    @property
    def from_home(self) -> bool:
        return self.origin == HOME


@dataclass(frozen=True)
class HomeOpened:
    key: str
    platform: str
    workspace: str
    user_id: str


@dataclass(frozen=True)
class ParticipantWrote:
    """Respondent says a message was created; which conversation (or project) to read is all it tells."""

    key: str
    message_id: str
    conversation_uid: str | None
    project_id: str | None


@dataclass(frozen=True)
class ParticipantStatusChanged:
    key: str
    study_id: str
    participant_id: str
    status: str


@dataclass(frozen=True)
class PersonOptedOut:
    key: str
    email: str
    opted_out: bool


@dataclass(frozen=True)
class ReconcileDue:
    """Compare a study with Rally and Respondent. ``catch_up``: only read the conversations of
    ``respondent_user_ids`` (threads just opened), whatever their latest message."""

    key: str
    study_id: str
    catch_up: bool = False
    respondent_user_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReminderDue:
    key: str
    reminder_id: int
    thread_id: int


Event = (
    ChatMessagePosted
    | ChatMessageChanged
    | CommandIssued
    | HomeOpened
    | ParticipantWrote
    | ParticipantStatusChanged
    | PersonOptedOut
    | ReconcileDue
    | ReminderDue
)


def parse(key: str, kind: str, payload: dict[str, Any]) -> Event:
    """A stored inbox row as its typed event. Raises ``KeyError``/``ValueError`` on a payload of another shape."""
    p = payload
    match EventKind(kind):
        case EventKind.CHAT_MESSAGE:
            return ChatMessagePosted(
                key,
                p["platform"],
                p["workspace"],
                p["channel"],
                p["user_id"],
                p["ts"],
                p.get("thread_ts"),
                p.get("text") or "",
                bool(p.get("has_files")),
            )
        case EventKind.CHAT_MESSAGE_CHANGED:
            return ChatMessageChanged(
                key,
                p["platform"],
                p["workspace"],
                p["channel"],
                p.get("user_id"),
                p["ts"],
                p.get("thread_ts"),
                p["change"],
            )
        case EventKind.CHAT_COMMAND:
            return CommandIssued(
                key, p["platform"], p["workspace"], p["channel"], p["user_id"], p["text"], p.get("tz"), p.get("origin")
            )
        case EventKind.HOME_OPENED:
            return HomeOpened(key, p["platform"], p["workspace"], p["user_id"])
        case EventKind.RESPONDENT_MESSAGE_CREATED:
            return ParticipantWrote(key, p["message_id"], p.get("conversation_uid"), p.get("project_id"))
        case EventKind.RALLY_PARTICIPANT_STATUS:
            return ParticipantStatusChanged(key, p["study_id"], p["participant_id"], p["status"])
        case EventKind.RALLY_PERSON_OPTED_OUT:
            return PersonOptedOut(key, p["email"], bool(p["opted_out"]))
        case EventKind.RECONCILE_STUDY:
            users = tuple(p.get("respondent_user_ids") or ())
            return ReconcileDue(key, p["study_id"], bool(p.get("catch_up")), users)
        case EventKind.REMINDER_DUE:
            return ReminderDue(key, int(p["reminder_id"]), int(p["thread_id"]))
    raise ValueError(f"unknown event kind {kind}")  # pragma: no cover - the match is exhaustive


def catch_up(*, study_id: str, cause: str, respondent_user_ids: list[str]) -> InboundEvent:
    """Read the conversations of participants whose threads ``cause`` (an inbox key) just opened: what they wrote
    before approval appears at once, in one read of the project however many threads the cause opened."""
    digest = hashlib.sha256(cause.encode()).hexdigest()[:16]
    return InboundEvent(
        key=f"reconcile:{study_id}:catch-up:{digest}",
        kind=EventKind.RECONCILE_STUDY,
        payload={"study_id": study_id, "catch_up": True, "respondent_user_ids": sorted(set(respondent_user_ids))},
    )


def lane_for(event: InboundEvent) -> str:
    """Events of one lane are processed one at a time, in arrival order."""
    p = event.payload
    if event.kind in (EventKind.CHAT_MESSAGE, EventKind.CHAT_MESSAGE_CHANGED):
        return f"{p['platform']}:{p['channel']}:{p.get('thread_ts') or p['ts']}"
    if event.kind is EventKind.HOME_OPENED or (event.kind is EventKind.CHAT_COMMAND and p.get("origin") == HOME):
        return f"{p['platform']}:home:{p['user_id']}"  # one person's home views, built and published in order
    if event.kind is EventKind.CHAT_COMMAND:
        return f"{p['platform']}:command:{p['channel']}"
    if event.kind is EventKind.RESPONDENT_MESSAGE_CREATED:
        return f"respondent:{p.get('conversation_uid') or p.get('project_id') or 'unknown'}"
    if event.kind is EventKind.RALLY_PARTICIPANT_STATUS:
        return f"rally:{p['study_id']}:{p['participant_id']}"
    if event.kind is EventKind.RALLY_PERSON_OPTED_OUT:
        return f"rally:opt-out:{p['email'].casefold()}"
    if event.kind is EventKind.REMINDER_DUE:
        return f"reminder:{p['thread_id']}"
    return f"reconcile:{p.get('study_id', '')}"
