"""The Slack Web API as the sandbox serves it under ``/api/<method>``: Slack's wire shapes and errors."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.slack.core import SandboxCore
from sandbox.slack.interactions import OpenedView, PublishedHome, blocks_problem, home_view_problem, view_problem
from sandbox.slack.state import MAX_SECTION_CHARS, MAX_TEXT_CHARS, ApiCall
from sandbox.slack.workspaces import APP_AUTHORIZATION, CALLER_TEAM, CALLER_TOKEN

log = logging.getLogger(__name__)

_STATUS_ERRORS = {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable", 504: "request_timeout"}


class ApiError(Exception):
    """A Slack error answer: ``{"ok": false, "error": error}`` with HTTP ``status``."""

    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in {"1", "true", "yes"}
    return bool(value)


def _json_value(value: Any, error: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ApiError(error) from exc
    return value


def _page(items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    limit = max(1, min(int(params.get("limit") or 100), 999))
    cursor = str(params.get("cursor") or "")
    start = int(cursor[len("next:") :]) if cursor.startswith("next:") else 0
    page = items[start : start + limit]
    has_more = start + limit < len(items)
    with_metadata = _bool(params.get("include_all_metadata", False))
    messages = [copy.deepcopy(m) for m in page]
    if not with_metadata:
        for message in messages:
            message.pop("metadata", None)
    return {
        "ok": True,
        "messages": messages,
        "has_more": has_more,
        "response_metadata": {"next_cursor": f"next:{start + limit}" if has_more else ""},
    }


class WebApiMixin(SandboxCore):
    """Request parsing, auth, faults and the Web API methods."""

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            else:
                params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return params

    def _check_auth(self, request: web.Request, params: dict[str, Any]) -> None:
        header = request.headers.get("Authorization", "")
        if request.match_info["method"] == "oauth.v2.access":
            APP_AUTHORIZATION.set(header)  # the app's client id and secret instead of a token (sandbox/slack/oauth.py)
            return
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else params.get("token")
        if not token:
            raise ApiError("not_authed")
        if token in self.revoked_tokens:
            raise ApiError("token_revoked")
        team = self.token_teams.get(str(token))
        if team is None:
            raise ApiError("invalid_auth")
        try:
            self.check_team_scope(team, params)
        except LookupError as exc:
            raise ApiError(str(exc.args[0])) from exc
        CALLER_TEAM.set(team)
        CALLER_TOKEN.set(str(token))
        self.team_calls.append((request.match_info["method"], team))

    async def handle_api(self, request: web.Request) -> web.Response:
        """Serve one Web API call, applying scripted faults and recording it in ``request_log``."""
        method = request.match_info["method"]
        hang = 0.0
        try:
            params = await self._params(request)
            fault = self._take_fault(method)
            if fault is not None and fault.kind == "ratelimit":
                raise ApiError("ratelimited", 429, {"Retry-After": str(fault.retry_after)})
            if fault is not None and fault.kind == "fail":
                raise ApiError(fault.error or _STATUS_ERRORS.get(fault.status, "fatal_error"), fault.status)
            if fault is not None and fault.kind == "hang":
                hang = fault.seconds
            self._check_auth(request, params)
            handler = {**self._handlers(), **self.oauth_handlers()}.get(method)
            if handler is None:
                raise ApiError("unknown_method")
            payload = await handler(params)
            status, headers = 200, {}
            self.request_log.append(ApiCall(method, "ok", 200))
        except ApiError as exc:
            payload, status, headers = {"ok": False, "error": exc.error}, exc.status, exc.headers
            self.request_log.append(ApiCall(method, exc.error, exc.status))
        if hang:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), hang)
        return web.json_response(payload, status=status, headers=headers)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._get_permalink,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
        }

    def _channel(self, params: dict[str, Any]) -> str:
        channel = self.channel_id(str(params.get("channel") or ""))
        if channel is None or (channel in self.private_channels and channel in self.bot_absent):
            raise ApiError("channel_not_found")
        return channel

    def _member_channel(self, params: dict[str, Any]) -> str:
        """The channel of a call that needs the bot in it (posting, reacting)."""
        channel = self._channel(params)
        if channel in self.bot_absent:
            raise ApiError("not_in_channel")
        return channel

    async def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        workspace = self.caller_workspace()
        return {
            "ok": True,
            "url": f"https://{workspace.domain}.slack.com/",
            "team": workspace.name,
            "user": "rallybridge",
            "team_id": workspace.team_id,
            "user_id": workspace.bot_user_id,
            "bot_id": workspace.bot_id,
            "is_enterprise_install": False,
        }

    def _content(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]] | None]:
        text = str(params.get("text") or "")
        blocks = _json_value(params.get("blocks"), "invalid_blocks") if params.get("blocks") else None
        if blocks is not None:
            if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
                raise ApiError("invalid_blocks")
            for block in blocks:
                section = block.get("text")
                if isinstance(section, dict) and len(str(section.get("text", ""))) > MAX_SECTION_CHARS:
                    raise ApiError("invalid_blocks")
            if blocks_problem(blocks):  # actions blocks, buttons, unique ids (sandbox/slack/interactions.py)
                raise ApiError("invalid_blocks")
        if not text and not blocks:
            raise ApiError("no_text")
        if len(text) > MAX_TEXT_CHARS:
            raise ApiError("msg_too_long")
        return text, blocks

    async def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(params)
        text, blocks = self._content(params)
        metadata = _json_value(params.get("metadata"), "invalid_metadata_format") if params.get("metadata") else None
        if metadata is not None and (
            not isinstance(metadata, dict) or "event_type" not in metadata or "event_payload" not in metadata
        ):
            raise ApiError("invalid_metadata_format")
        wait = self.rate_limits.check(channel)
        if wait is not None:
            raise ApiError("ratelimited", 429, {"Retry-After": str(wait)})
        ts = self.new_ts()
        workspace = self.workspace_of_channel(channel)
        message: dict[str, Any] = {
            "type": "message",
            "ts": ts,
            "user": workspace.bot_user_id,
            "bot_id": workspace.bot_id,
            "app_id": self.api_app_id,
            "team": workspace.team_id,
            "text": text,
        }
        for name, value in (("blocks", blocks), ("metadata", metadata), ("thread_ts", params.get("thread_ts"))):
            if value:
                message[name] = value
        if params.get("username"):
            message["username"] = str(params["username"])
        self.store_message(channel, message)
        self.rate_limits.record(channel, message)
        if self.echo_bot_messages:
            self._spawn(self._echo_bot_message(channel, copy.deepcopy(message)))
        return {"ok": True, "channel": channel, "ts": ts, "message": copy.deepcopy(message)}

    async def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(params)
        user = str(params.get("user") or "")
        if user not in self.users:
            raise ApiError("user_not_in_channel")
        text, blocks = self._content(params)
        ts = self.new_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": text,
                "blocks": blocks,
                "thread_ts": params.get("thread_ts"),
                "message_ts": ts,
            }
        )
        return {"ok": True, "message_ts": ts}

    def _message(self, channel: str, ts: Any) -> dict[str, Any]:
        message = self.find_message(channel, str(ts or ""))
        if message is None:
            raise ApiError("message_not_found")
        return message

    async def _get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._message(channel, params.get("message_ts"))
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{message['ts'].replace('.', '')}"
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            link += f"?thread_ts={thread_ts}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    async def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(params)
        message = self._message(channel, params.get("timestamp"))
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise ApiError("invalid_name")
        names = self.reactions.setdefault((channel, message["ts"]), set())
        if name in names:
            raise ApiError("already_reacted")
        names.add(name)
        self.reaction_events.append((channel, message["ts"], name, "add"))
        return {"ok": True}

    async def _reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(params)
        message = self._message(channel, params.get("timestamp"))
        name = str(params.get("name") or "").strip(":")
        names = self.reactions.get((channel, message["ts"]), set())
        if name not in names:
            raise ApiError("no_reaction")
        names.discard(name)
        self.reaction_events.append((channel, message["ts"], name, "remove"))
        return {"ok": True}

    async def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user") or ""))
        if user is None:
            raise ApiError("user_not_found")
        return {"ok": True, "user": copy.deepcopy(user)}

    def _channel_object(self, channel: str) -> dict[str, Any]:
        private = channel in self.private_channels
        return {
            "id": channel,
            "name": self.channels[channel],
            "is_channel": not private,
            "is_group": private,
            "is_private": private,
            "is_member": channel not in self.bot_absent,
        }

    async def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "channel": self._channel_object(self._channel(params))}

    async def _conversations_join(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        if channel in self.private_channels:
            raise ApiError("method_not_supported_for_channel_type")
        self.bot_absent.discard(channel)
        return {"ok": True, "channel": self._channel_object(channel)}

    async def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        roots = [m for m in self._messages[channel] if m.get("thread_ts") in (None, m["ts"])]
        if params.get("latest"):
            roots = [m for m in roots if float(m["ts"]) < float(params["latest"])]
        if params.get("oldest"):
            roots = [m for m in roots if float(m["ts"]) > float(params["oldest"])]
        return _page(list(reversed(roots)), params)

    async def _replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self.find_message(channel, str(params.get("ts") or ""))
        if message is None:
            raise ApiError("thread_not_found")
        root_ts = message.get("thread_ts") or message["ts"]
        root = self.find_message(channel, root_ts)
        replies = [m for m in self._messages[channel] if m.get("thread_ts") == root_ts and m["ts"] != root_ts]
        return _page(([root] if root is not None else []) + replies, params)

    async def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        """Open a modal for the user of a recent interaction: the trigger_id must be fresh (3 s) and unused."""
        view = _json_value(params.get("view"), "invalid_arguments") if params.get("view") else None
        trigger_id = str(params.get("trigger_id") or "")
        if not trigger_id:
            raise ApiError("invalid_arguments")
        if view_problem(view) or not isinstance(view, dict):
            raise ApiError("invalid_arguments")
        user, error = self.interactions.exchange(trigger_id)
        if user is None:
            raise ApiError(error or "invalid_trigger_id")
        view_id = f"V{uuid.uuid4().hex[:10].upper()}"
        stored = {
            **copy.deepcopy(view),
            "id": view_id,
            "team_id": self.team_id,
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": self.api_app_id,
            "external_id": "",
            "bot_id": self.bot_id,
            "clear_on_close": False,
            "notify_on_close": False,
        }
        self.interactions.views.append(OpenedView(stored, user, trigger_id))
        return {"ok": True, "view": copy.deepcopy(stored)}

    async def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        """Publish (replace) ``user_id``'s App Home tab. The view is checked like Slack does (``invalid_arguments``);
        a user of another workspace than the token's is ``user_not_found``. ``hash``, when given, must be the
        current view's (``hash_conflict`` otherwise)."""
        view = _json_value(params.get("view"), "invalid_arguments") if params.get("view") else None
        user = self.users.get(str(params.get("user_id") or ""))
        if user is None or user.get("team_id") != self.caller_workspace().team_id:
            raise ApiError("user_not_found")
        if home_view_problem(view) or not isinstance(view, dict):
            raise ApiError("invalid_arguments")
        current = self.interactions.homes.get(user["id"])
        if params.get("hash") and (current is None or current.view.get("hash") != params["hash"]):
            raise ApiError("hash_conflict")
        view_id = current.view_id if current is not None else f"V{uuid.uuid4().hex[:10].upper()}"
        stored = {
            **copy.deepcopy(view),
            "id": view_id,
            "team_id": user["team_id"],
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": self.api_app_id,
            "external_id": "",
            "bot_id": self.caller_workspace().bot_id,
        }
        published = PublishedHome(stored, user["id"])
        self.interactions.homes[user["id"]] = published
        self.interactions.home_publishes.append(published)
        return {"ok": True, "view": copy.deepcopy(stored)}
