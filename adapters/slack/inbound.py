"""Slack in: the Bolt app whose listeners store events in the inbox, and the aiohttp route in front of it.

Bolt runs with ``process_before_response=True``: a listener stores the event, then acks, so Slack gets 2xx
only for what is stored. A storage failure answers 503 and Slack retries. The route checks size, signature
and shape before Bolt sees the request, so bad input is refused with a precise status and reason.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import interactive, shortcuts
from adapters.slack.membership import ChannelMembership
from adapters.web import read_limited
from core import events
from core.commands import registry
from core.errors import StorageUnavailable
from core.events import InboundEvent

log = logging.getLogger(__name__)

Record = Callable[[InboundEvent], Awaitable[bool]]
PLATFORM = "slack"
IGNORED_SUBTYPES = {
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "channel_archive",
    "channel_unarchive",
    "bot_message",
    "pinned_item",
    "unpinned_item",
    "ekm_access_denied",
    "group_join",
    "group_leave",
    "reminder_add",
    "tombstone",
}


def message_event(body: dict[str, Any], event: dict[str, Any]) -> InboundEvent | None:
    """Translate a Slack ``message`` event; None for what the bridge ignores (bots, joins, ...)."""
    team = body.get("team_id") or event.get("team") or ""
    event_id = body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}"
    subtype = event.get("subtype")
    if subtype in ("message_changed", "message_deleted"):
        changed = event.get("message") or event.get("previous_message") or {}
        if changed.get("bot_id") or (subtype == "message_changed" and _same_text(event)):
            return None  # our own posts, or an unfurl/metadata update that changed no text
        return events.chat_message_changed(
            platform=PLATFORM,
            event_id=event_id,
            workspace=team,
            channel=event.get("channel", ""),
            user_id=changed.get("user"),
            ts=changed.get("ts") or event.get("deleted_ts", ""),
            thread_ts=changed.get("thread_ts"),
            change="edited" if subtype == "message_changed" else "deleted",
        )
    if event.get("bot_id") or subtype in IGNORED_SUBTYPES or not event.get("user"):
        return None
    return events.chat_message(
        platform=PLATFORM,
        event_id=event_id,
        workspace=team,
        channel=event["channel"],
        user_id=event["user"],
        ts=event["ts"],
        thread_ts=event.get("thread_ts"),
        text=event.get("text") or "",
        has_files=bool(event.get("files")) or subtype == "file_share",
    )


def home_opened_event(body: dict[str, Any], event: dict[str, Any]) -> InboundEvent | None:
    """``app_home_opened`` on the Home tab, keyed by its event id; None for the Messages/About tabs."""
    user = event.get("user")
    if event.get("tab") != "home" or not isinstance(user, str) or not user:
        return None
    event_id = body.get("event_id") or f"{user}:{event.get('event_ts')}"
    return events.home_opened(
        platform=PLATFORM, event_id=str(event_id), workspace=str(body.get("team_id") or ""), user_id=user
    )


def _same_text(event: dict[str, Any]) -> bool:
    return (event.get("message") or {}).get("text") == (event.get("previous_message") or {}).get("text")


def build_bolt_app(
    *, client: AsyncWebClient, signing_secret: str | None, record: Record, **bolt_options: Any
) -> AsyncApp:
    """The Bolt app. ``signing_secret`` None means Socket Mode (no HTTP requests to verify).

    ``bolt_options`` go to ``AsyncApp`` as they are: OAuth mode passes its flow and ``authorize`` there
    (``adapters/slack/oauth.py``).
    """
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        process_before_response=True,
        request_verification_enabled=signing_secret is not None,
        **bolt_options,
    )

    @app.event("message")
    async def on_message(body: dict[str, Any], event: dict[str, Any]) -> None:
        translated = message_event(body, event)
        if translated is None:
            log.debug("message event ignored (subtype=%s)", event.get("subtype"))
            return
        await record(translated)

    @app.event("app_home_opened")
    async def on_home_opened(body: dict[str, Any], event: dict[str, Any]) -> None:
        translated = home_opened_event(body, event)
        if translated is None:
            log.debug("app_home_opened ignored (tab=%s)", event.get("tab"))
            return
        await record(translated)  # processing publishes the person's home (bridge/home.py)

    membership = ChannelMembership()

    @app.command("/rally")
    async def on_command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        text = (command.get("text") or "").strip()
        problem = await membership.problem(client, command["channel_id"])
        if problem is not None:  # the bot could not answer in this channel: say how to fix it, store nothing
            await ack(response_type="ephemeral", text=problem)
            return
        request_id = command.get("trigger_id") or f"{command.get('channel_id')}:{time.time_ns()}"
        await record(
            events.chat_command(
                platform=PLATFORM,
                request_id=request_id,
                workspace=command.get("team_id", ""),
                channel=command["channel_id"],
                user_id=command["user_id"],
                text=text,
            )
        )
        await ack(response_type="ephemeral", text=registry.ack(text))

    interactive.register(app, record)  # buttons and scheduling modals
    shortcuts.register(app, record)  # the Send a saved reply message shortcut

    @app.error
    async def on_error(error: Exception) -> BoltResponse:
        if isinstance(error, StorageUnavailable):
            return BoltResponse(status=503, body="storage unavailable, retry")
        if isinstance(error, interactive.BadInteraction):
            body = json.dumps({"error": str(error)})
            return BoltResponse(status=400, body=body, headers={"content-type": "application/json"})
        log.error("Slack listener failed: %s", type(error).__name__)
        return BoltResponse(status=500, body="")

    return app


def _shape_problem(request: web.Request, raw: bytes) -> str | None:
    """Why the body is not a Slack request we can read; None when it is."""
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            return f"body is not valid JSON ({exc.msg} at position {exc.pos})"
        if not isinstance(body, dict) or "type" not in body:
            return "JSON body has no 'type' field"
        if body["type"] == "event_callback" and not isinstance(body.get("event"), dict):
            return "event_callback without an 'event' object"
        return None
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(raw.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return "form body is not valid application/x-www-form-urlencoded UTF-8"
        if "payload" in form:
            try:
                json.loads(form["payload"][0])
            except ValueError:
                return "interactivity 'payload' field is not valid JSON"
            return None
        if "command" not in form:
            return "form body is neither a slash command nor an interactivity payload"
        return None
    return f"unsupported content type {content_type!r}; Slack sends JSON or form bodies"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _signed(verifier: SignatureVerifier, raw: bytes, request: web.Request) -> bool:
    """Whether the request carries a valid, fresh Slack signature.

    slack_sdk raises instead of answering False for a non-numeric ``X-Slack-Request-Timestamp`` (``int()``) and
    for a body that is not UTF-8 (it decodes before hashing): both are unsigned garbage, not a server error.
    """
    try:
        return verifier.is_valid_request(raw, dict(request.headers))
    except ValueError:  # includes UnicodeDecodeError
        return False


def slack_route(bolt: AsyncApp, signing_secret: str, max_body: int) -> Handler:
    verifier = SignatureVerifier(signing_secret)

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await read_limited(request, max_body)
        if isinstance(raw, web.Response):
            return raw
        if not _signed(verifier, raw, request):
            return web.json_response({"error": "invalid or expired Slack signature"}, status=401)
        problem = _shape_problem(request, raw)
        if problem is not None:
            return web.json_response({"error": problem}, status=400)
        bolt_response = await bolt.async_dispatch(await to_bolt_request(request))
        if bolt_response.status == 404:
            # An event type no listener wants: acknowledge it so Slack does not retry it.
            return web.Response(status=200)
        return await to_aiohttp_response(bolt_response)

    return handle
