"""The message shortcut ``Send a saved reply`` (a message's ⋯ menu in a participant's thread): stored as the command
``replies thread:<root ts>``, answered like the card's Saved reply button with one Send button per saved reply."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from adapters.slack.interactive import PLATFORM, BadInteraction
from adapters.web import Record
from core import events

SAVED_REPLY = "rallybridge_saved_reply"  # the shortcut's callback id (manifest.yml, features.shortcuts)


def saved_reply_event(body: dict[str, Any]) -> events.InboundEvent:
    """The shortcut on a message as the command it stands for: the saved replies for that message's thread."""
    message = body.get("message") or {}
    root = message.get("thread_ts") or message.get("ts")
    user = (body.get("user") or {}).get("id")
    channel = (body.get("channel") or {}).get("id")
    if not (isinstance(root, str) and isinstance(user, str) and isinstance(channel, str) and root and user and channel):
        raise BadInteraction("message shortcut without its message, user or channel")
    team = str((body.get("team") or {}).get("id") or "")
    request_id = body.get("trigger_id") or f"{body.get('action_ts')}:{user}"
    return events.chat_command(
        platform=PLATFORM,
        request_id=f"shortcut:{request_id}",
        workspace=team,
        channel=channel,
        user_id=user,
        text=f"replies thread:{root}",
    )


def register(app: AsyncApp, record: Record) -> None:
    @app.shortcut(SAVED_REPLY)
    async def on_saved_reply(ack: AsyncAck, body: dict[str, Any]) -> None:
        await record(saved_reply_event(body))
        await ack()
