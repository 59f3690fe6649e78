"""The Slack sandbox's workspace: channels, users, messages, records and scripted faults."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

from sandbox.slack.interactions import Interactions
from sandbox.slack.ratelimit import RateLimits
from sandbox.slack.state import ApiCall, Delivery, Fault, ReactionMap, TsClock
from sandbox.slack.workspaces import CALLER_TEAM, Workspace


class SandboxCore:
    """State shared by the Web API and the event sender. Use :class:`sandbox.slack.SlackSandbox`."""

    team_id = "T0SANDBOX"
    team_domain = "rallybridge-sandbox"
    api_app_id = "A0SANDBOX"
    bot_user_id = "U0BOT"
    bot_id = "B0BOT"

    def __init__(
        self,
        *,
        token: str = "xoxb-sandbox-token",
        signing_secret: str = "sandbox-signing-secret",
        events_url: str | None = None,
        commands_url: str | None = None,
        rate_limit: bool = True,
        channel_rate: float = 1.0,
        channel_burst: int = 3,
        workspace_rate: float = 10.0,
        workspace_burst: int = 30,
        clock: Callable[[], float] = time.monotonic,
        echo_bot_messages: bool = False,
        retry_delays: tuple[float, ...] = (0.2, 0.2, 0.2),
        delivery_timeout: float = 3.0,
    ) -> None:
        """A workspace with only the bot user; add channels and people with ``add_channel``/``add_user``."""
        self.token = token
        self.signing_secret = signing_secret
        self.events_url = events_url
        self.commands_url = commands_url
        self.rate_limits = RateLimits(
            enabled=rate_limit,
            channel_rate=channel_rate,
            channel_burst=channel_burst,
            workspace_rate=workspace_rate,
            workspace_burst=workspace_burst,
            clock=clock,
        )
        self.echo_bot_messages = echo_bot_messages
        self.retry_delays = retry_delays
        self.delivery_timeout = delivery_timeout
        self.base_url: str | None = None
        self.channels: dict[str, str] = {}
        # Channels the bot has not joined, and private channels: Slack refuses posts from non-members
        # (``not_in_channel``) and hides private channels from them (``channel_not_found``).
        self.bot_absent: set[str] = set()
        self.private_channels: set[str] = set()
        self.users: dict[str, dict[str, Any]] = {}
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.reactions = ReactionMap()
        # Every reaction change in order: (channel, ts, name, "add" | "remove").
        self.reaction_events: list[tuple[str, str, str, str]] = []
        self.request_log: list[ApiCall] = []
        self.event_deliveries: list[Delivery] = []
        self.response_url_posts: dict[str, list[Any]] = {}
        self.faults: list[Fault] = []
        self.interactions = Interactions()  # trigger_ids and opened modals (views.open, clicks, submissions)
        self._ts = TsClock()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        # Workspaces: this default one, plus any added by ``add_workspace`` (sandbox/slack/oauth.py). A token,
        # channel or user belongs to one team; channels and users not listed in ``*_teams`` are the default team's.
        self.workspaces: dict[str, Workspace] = {
            self.team_id: Workspace(
                self.team_id, "Rally Bridge Sandbox", self.team_domain, self.bot_user_id, self.bot_id
            )
        }
        self.token_teams: dict[str, str] = {token: self.team_id}
        self.revoked_tokens: set[str] = set()
        self.channel_teams: dict[str, str] = {}
        self.team_calls: list[tuple[str, str]] = []  # (method, team of the token) of every authenticated call
        self.add_user(self.bot_user_id, "rallybridge", None, is_bot=True)

    # --- workspace setup -------------------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str, *, bot_member: bool = True, private: bool = False) -> None:
        """Create a channel (public, with the bot in it, unless told otherwise)."""
        self.channels[channel_id] = name
        if not bot_member:
            self.bot_absent.add(channel_id)
        if private:
            self.private_channels.add(channel_id)
        self._messages.setdefault(channel_id, [])

    def add_user(
        self,
        user_id: str,
        name: str,
        email: str | None,
        tz: str = "America/New_York",
        is_bot: bool = False,
        *,
        display_name: str | None = None,
    ) -> None:
        """Add a person (``name`` is the real name; display name defaults to it)."""
        shown = name if display_name is None else display_name
        profile: dict[str, Any] = {
            "real_name": name,
            "real_name_normalized": name,
            "display_name": shown,
            "display_name_normalized": shown,
        }
        if email is not None:
            profile["email"] = email
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name.lower().replace(" ", "."),
            "real_name": name,
            "deleted": False,
            "tz": tz,
            "tz_label": tz,
            "is_bot": is_bot,
            "is_app_user": False,
            "profile": profile,
        }

    # --- workspaces ------------------------------------------------------------------------------------

    def team_of_channel(self, channel: str | None) -> str:
        """The team that owns ``channel`` (the default team for unknown ids)."""
        return self.channel_teams.get(channel or "", self.team_id)

    def workspace_of_channel(self, channel: str | None) -> Workspace:
        return self.workspaces[self.team_of_channel(channel)]

    def caller_workspace(self) -> Workspace:
        """The workspace of the token that authenticated the current Web API request."""
        return self.workspaces[CALLER_TEAM.get() or self.team_id]

    def check_team_scope(self, team: str, params: dict[str, Any]) -> None:
        """Like Slack: a token cannot see another workspace's channels or users (``*_not_found``)."""
        channel = self.channel_id(str(params.get("channel") or ""))
        if channel is not None and self.team_of_channel(channel) != team:
            raise LookupError("channel_not_found")
        user = self.users.get(str(params.get("user") or ""))
        if user is not None and user.get("team_id") != team:
            raise LookupError("user_not_found")

    def oauth_handlers(self) -> dict[str, Any]:
        """Web API methods of the OAuth flow (``oauth.v2.access``, ``auth.revoke``...): sandbox/slack/oauth.py."""
        return {}

    # --- scripted faults -------------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500, method: str | None = None, *, error: str | None = None) -> None:
        """Answer the next ``n`` calls (of ``method``) with HTTP ``status`` and an error body.

        ``error`` defaults to Slack's code for the status (``internal_error``, ``service_unavailable``...);
        with ``status=200`` and an ``error`` this scripts any Slack error, e.g. ``is_archived``.
        """
        self.faults.append(Fault("fail", n, method, status=status, error=error))

    def rate_limit_next(self, n: int, retry_after: int = 1, method: str | None = None) -> None:
        """Answer the next ``n`` calls (of ``method``) with HTTP 429 and ``Retry-After``."""
        self.faults.append(Fault("ratelimit", n, method, status=429, retry_after=retry_after))

    def hang_next(self, seconds: float, method: str | None = None) -> None:
        """Carry out the next call (of ``method``), then hold the answer ``seconds``: an unknown outcome."""
        self.faults.append(Fault("hang", 1, method, seconds=seconds))

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # --- messages --------------------------------------------------------------------------------------

    def new_ts(self) -> str:
        """A fresh, increasing message timestamp."""
        return self._ts.next()

    def channel_id(self, channel: str) -> str | None:
        """Resolve an id, ``#name`` or name to a known channel id."""
        if channel in self.channels:
            return channel
        wanted = channel.lstrip("#")
        return next((cid for cid, name in self.channels.items() if name == wanted), None)

    def store_message(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        """Append ``message`` to ``channel``; for a reply, update the parent's thread fields."""
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            parent = self.find_message(channel, thread_ts)
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = int(parent.get("reply_count", 0)) + 1
                parent["latest_reply"] = message["ts"]
        self._messages.setdefault(channel, []).append(message)
        return message

    def find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The stored message ``ts`` in ``channel``."""
        return next((m for m in self._messages.get(channel, []) if m["ts"] == ts), None)

    def remove_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """Delete a message; returns it."""
        message = self.find_message(channel, ts)
        if message is not None:
            self._messages[channel].remove(message)
        return message

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Every message in ``channel`` (roots and replies) in posting order, as copies."""
        return copy.deepcopy(self._messages.get(channel, []))

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The replies of thread ``thread_ts`` (root excluded), oldest first."""
        return [m for m in self.messages(channel) if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts]

    def calls(self, method: str) -> int:
        """How many requests for Web API ``method`` arrived (answered or not)."""
        return sum(1 for call in self.request_log if call.method == method)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _echo_bot_message(self, channel: str, message: dict[str, Any]) -> None:
        """Overridden by the event sender: tell the bridge about the bot's own post."""
