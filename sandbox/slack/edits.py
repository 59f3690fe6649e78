"""Two Web API behaviours of the Slack stand-in beside posting: changing a message (``chat.update``) and the app's
direct messages (``chat.postMessage`` to a user id).

``chat.update`` as Slack documents it: ``channel`` must be a conversation id (a name is ``channel_not_found``; for a
DM its ``D...`` id, not the user's), ``ts`` a message in it (``message_not_found``), posted by the calling app
(``cant_update_message``). ``text`` and ``blocks`` replace the message's; ``text`` without ``blocks`` removes the
blocks, ``blocks`` without ``text`` keeps the text; ``metadata`` is kept unless given. The message gains an
``edited`` field, and every update is recorded (:meth:`EditsMixin.update_history`). The answer is
``{"ok": true, "channel", "ts", "text", "message"}``. Slack rates ``chat.update`` as Tier 3 (50+ a minute per
workspace): :meth:`EditsMixin.limit_updates` models that (off unless asked for; scripted faults apply as to every
method: ``rate_limit_next(1, method="chat.update")``).

A post whose ``channel`` is a user id goes into the app's DM with that user, a ``D...`` channel opened on first
use (the same id every time), and the answer names that channel; :meth:`EditsMixin.direct_messages` reads it.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.slack.ratelimit import TokenBucket
from sandbox.slack.webapi import ApiError, WebApiMixin, _json_value

TIER_3_PER_MINUTE = 50


def dm_channel_id(user_id: str) -> str:
    """The id of the app's DM with ``user_id`` (``D`` + the user id's characters; stable)."""
    return f"D{user_id.lstrip('UW')[:10]}"


class EditsMixin(WebApiMixin):
    """The Web API (:class:`WebApiMixin`) with ``chat.update`` and posts to users (DMs)."""

    def __init__(self, **options: Any) -> None:
        self.update_log: list[tuple[str, str]] = []  # (channel, ts) of every accepted chat.update, in order
        self._update_history: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._dms: dict[str, str] = {}  # user id -> the app's DM with them
        self._update_tier: tuple[float, int] | None = None  # (per second, burst) per workspace; None: no limit
        self._update_buckets: dict[str, TokenBucket] = {}
        super().__init__(**options)

    # --- for tests -------------------------------------------------------------------------------------

    def update_history(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The message ``ts`` as each accepted ``chat.update`` left it, oldest first (copies; empty: never updated)."""
        return copy.deepcopy(self._update_history.get((channel, ts), []))

    def dm_channel(self, user_id: str) -> str | None:
        """The id of the app's DM with ``user_id``; None until the app first wrote to them."""
        return self._dms.get(user_id)

    def direct_messages(self, user_id: str) -> list[dict[str, Any]]:
        """What the app posted in its DM with ``user_id``, oldest first (copies)."""
        dm = self._dms.get(user_id)
        return self.messages(dm) if dm is not None else []

    def limit_updates(self, per_minute: float = TIER_3_PER_MINUTE, burst: int = TIER_3_PER_MINUTE) -> None:
        """Refuse ``chat.update`` beyond ``per_minute`` per workspace (bursts of ``burst``): 429 + ``Retry-After``."""
        self._update_tier = (per_minute / 60.0, burst)
        self._update_buckets = {}

    # --- Web API ---------------------------------------------------------------------------------------

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]]:
        return {**super()._handlers(), "chat.update": self._chat_update, "users.lookupByEmail": self._by_email}

    async def _by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        """``users.lookupByEmail``: the workspace's user with that email (Slack compares it case-insensitively);
        ``users_not_found`` otherwise."""
        wanted = str(params.get("email") or "").strip().casefold()
        for user in self.users.values():
            if wanted and str((user.get("profile") or {}).get("email") or "").casefold() == wanted:
                return {"ok": True, "user": copy.deepcopy(user)}
        raise ApiError("users_not_found")

    def channel_id(self, channel: str) -> str | None:
        """As :meth:`SandboxCore.channel_id`, and a DM's ``D...`` id once it is open."""
        if channel in self._dms.values():
            return channel
        return super().channel_id(channel)

    async def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        """``chat.postMessage``; to a user id (``U...``/``W...``): into the app's DM with them, opened if needed."""
        user = self.users.get(str(params.get("channel") or ""))
        if user is not None and not user.get("is_bot"):
            dm = self._dms.get(user["id"])
            if dm is None:
                dm = self._dms[user["id"]] = dm_channel_id(user["id"])
                self._messages.setdefault(dm, [])
                self.channel_teams[dm] = str(user.get("team_id") or self.team_id)
            params = {**params, "channel": dm}
        return await super()._post_message(params)

    async def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        raw = str(params.get("channel") or "")
        if self.channel_id(raw) != raw:  # an id only: no names, no user ids
            raise ApiError("channel_not_found")
        channel = self._member_channel(params)
        message = self._message(channel, params.get("ts"))
        if message.get("bot_id") != self.caller_workspace().bot_id:
            raise ApiError("cant_update_message")
        _text, blocks = self._content(params)
        if params.get("metadata"):
            metadata = _json_value(params["metadata"], "invalid_metadata_format")
            if not isinstance(metadata, dict) or "event_type" not in metadata or "event_payload" not in metadata:
                raise ApiError("invalid_metadata_format")
            params = {**params, "metadata": metadata}
        wait = self._update_refused(channel)
        if wait is not None:
            raise ApiError("ratelimited", 429, {"Retry-After": str(wait)})
        self._apply_update(channel, message, params, blocks)
        return {
            "ok": True,
            "channel": channel,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": copy.deepcopy(message),
        }

    def _update_refused(self, channel: str) -> int | None:
        """None when one more ``chat.update`` fits the workspace's Tier 3 budget (taken), else ``Retry-After``."""
        if self._update_tier is None:
            return None
        team = self.team_of_channel(channel)
        bucket = self._update_buckets.get(team)
        if bucket is None:
            rate, burst = self._update_tier
            bucket = self._update_buckets[team] = TokenBucket(rate, burst, self.rate_limits.clock)
        return bucket.take()

    def _apply_update(
        self, channel: str, message: dict[str, Any], params: dict[str, Any], blocks: list[dict[str, Any]] | None
    ) -> None:
        if params.get("text") is not None:
            message["text"] = str(params["text"])
            if blocks is None:
                message.pop("blocks", None)  # text without blocks: the blocks go, the text is what shows
        if blocks is not None:
            if blocks:
                message["blocks"] = blocks
            else:
                message.pop("blocks", None)
        if params.get("metadata"):
            message["metadata"] = params["metadata"]
        message["edited"] = {"user": self.workspace_of_channel(channel).bot_user_id, "ts": self.new_ts()}
        self._update_history.setdefault((channel, message["ts"]), []).append(copy.deepcopy(message))
        self.update_log.append((channel, message["ts"]))
