"""Inbound events in the core's own words. Adapters build these; the inbox stores them as they are.

``key`` is the event's natural identity: storing the same key twice is a no-op, which is what turns
at-least-once delivery (Slack retries, webhook redeliveries, reconcile overlap) into exactly-once effects.
"""

from __future__ import annotations

import enum
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
