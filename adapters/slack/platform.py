"""``ChatPlatform`` for Slack, on slack_sdk's ``AsyncWebClient``.

Design decisions (documented here once):

* Retries belong to the caller's outbox. ``SlackPlatform`` therefore empties the client's
  ``retry_handlers``: slack_sdk's default connection-error handler would silently repeat a
  ``chat.postMessage`` that may already have been posted, and a rate-limit handler would hide 429s.
  Build clients with :func:`build_client` (no retry handlers, short timeout) or accept that the client
  handed in is changed in place.
* Attribution of participant messages is in the text (``*Jordan L.* (participant):`` on its own line,
  then the escaped body), so only ``chat:write`` is needed, not ``chat:write.customize``.
* Every post carries message metadata ``{"event_type": "rallybridge_post", "event_payload": {"key": k}}``;
  :meth:`SlackPlatform.find_post` scans recent history for it after an unknown outcome.
* Bodies longer than Slack's 40,000-character text limit are split (never truncated) into parts posted in
  order with keys ``key#1``, ``key#2``...; each part's header says ``part i/n``. Before posting a split
  message the thread is scanned and only missing parts are posted, so a retry completes a partial post.
  ``find_post`` reports such a message only when every part exists.
* ``chat.postMessage`` is paced per channel and per workspace when a ``SlackPacer`` is given (the composition
  root builds one from settings): a post over budget raises ``Paced`` before anything is sent, and a 429 holds
  back only its channel for ``Retry-After``. A root card's redraw (``chat.update``) shares the same budget: it
  changes what the channel shows as much as a post does.
* The thread root is a live card (``adapters/slack/card.py``): posted once, redrawn in place with ``chat.update``.
* A direct message (``post_direct``) is a ``chat.postMessage`` to the user's id: Slack delivers it into the app's
  DM with that person and answers with the DM's ``D...`` id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import card, home, interactive
from adapters.slack import format as fmt
from adapters.slack.errors import error_code, map_error
from adapters.slack.pacing import SlackPacer
from core.domain import Action, ChatUser, Mark, PostedMessage
from core.errors import TemporaryFailure
from core.home import HomeView
from core.message import Text
from core.ports import ThreadRoot

log = logging.getLogger(__name__)

# How each mark shows on a researcher's reply: a reaction.
EMOJI = {
    Mark.PENDING: "hourglass_flowing_sand",
    Mark.DELIVERED: "white_check_mark",
    Mark.FAILED: "x",
    Mark.SEEN: "eyes",  # the participant has read it (Respondent's read flag)
}

EVENT_TYPE = "rallybridge_post"
MAX_TEXT_CHARS = 40_000


def build_client(token: str, *, base_url: str | None = None, timeout: int = 10) -> AsyncWebClient:
    """An ``AsyncWebClient`` suitable for :class:`SlackPlatform`: no SDK retries, bounded time per call."""
    kwargs: dict[str, Any] = {"token": token, "timeout": timeout, "retry_handlers": []}
    if base_url is not None:
        kwargs["base_url"] = base_url
    return AsyncWebClient(**kwargs)


@dataclass
class _Found:
    single: PostedMessage | None = None
    parts: dict[int, PostedMessage] = field(default_factory=dict)
    total: int = 0


class SlackPlatform:
    """The Slack side of the bridge: implements ``core.ports.ChatPlatform``."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        max_text_chars: int = MAX_TEXT_CHARS,
        scan_limit: int = 200,
        scan_pages: int = 5,
        user_cache_seconds: float = 600.0,
        pacer: SlackPacer | None = None,
    ) -> None:
        """Wrap ``client``; its SDK retry handlers are removed (the outbox owns retries).

        ``pacer`` paces ``chat.postMessage`` per channel and workspace (``adapters/slack/pacing.py``); None: no
        pacing (429s are still mapped to retries with ``Retry-After``).
        """
        client.retry_handlers = []
        self._client = client
        self.pacer = pacer
        self._max_text = max_text_chars
        self._scan_limit = scan_limit
        self._scan_pages = scan_pages
        self._cache_seconds = user_cache_seconds
        self._users: dict[str, tuple[float, ChatUser]] = {}
        self._session: aiohttp.ClientSession | None = None  # ours to close (see ``_pooled``)

    def _pooled(self) -> None:
        """Give the client one pooled HTTP session, made in the running loop on first use.

        Without one, slack_sdk opens a new session, and so a new TCP connection, for every API call and closes it
        after: two connections per relayed message, a good part of its CPU (docs/performance.md).
        """
        if self._client.session is None or self._client.session.closed:
            timeout = aiohttp.ClientTimeout(total=self._client.timeout)
            self._session = self._client.session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _guard(
        self, method: str, call: Awaitable[Any], *, ok_errors: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """Await one SDK call, translating every failure into ``core.errors``. Never logs bodies or tokens.

        Slack error codes in ``ok_errors`` count as success (an empty dict is returned).
        """
        self._pooled()  # before the call runs: the SDK reads ``client.session`` when it sends
        try:
            response = await call
        except Exception as exc:
            if isinstance(exc, SlackApiError) and ok_errors and error_code(exc) in ok_errors:
                return {}
            mapped = map_error(method, exc)
            log.info("slack %s failed: %s", method, type(mapped).__name__)
            raise mapped from exc
        data = response.data
        return data if isinstance(data, dict) else {}

    async def _post(
        self,
        channel: str,
        key: str,
        *,
        text: str,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> PostedMessage:
        args: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "metadata": {"event_type": EVENT_TYPE, "event_payload": {"key": key, **(payload or {})}},
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts is not None:
            args["thread_ts"] = thread_ts
        if blocks is not None:
            args["blocks"] = blocks
        data = await self._paced(channel, "chat.postMessage", lambda: self._client.chat_postMessage(**args))
        return PostedMessage(channel=str(data.get("channel") or channel), post_id=str(data["ts"]))

    async def _paced(self, channel: str, method: str, call: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
        """Make one paced call into ``channel`` (a post or a redraw): the pacer's moment first (``Paced``, nothing
        sent, when it is too far off), and a 429 holds back this channel for its ``Retry-After``."""
        if self.pacer is not None:
            await self.pacer.acquire(channel)  # may raise Paced: nothing sent, the outbox defers the row
        try:
            return await self._guard(method, call())
        except TemporaryFailure as exc:
            if self.pacer is not None and exc.retry_after is not None:  # a 429: hold this channel only
                self.pacer.rate_limited(channel, exc.retry_after)
            raise

    async def post_thread_root(self, channel: str, root: ThreadRoot, *, key: str) -> PostedMessage:
        """Post the root of a participant's thread: its live card (``adapters/slack/card.py``)."""
        text, blocks = card.root_message(root)
        return await self._post(channel, key, text=text, blocks=blocks)

    async def update_thread_root(self, channel: str, root_id: str, root: ThreadRoot) -> None:
        """Redraw the root card in place (``chat.update``, the same rendering as the post), paced like a post.
        A root that is gone or that Slack will not let the bot change (``message_not_found``,
        ``cant_update_message``, ``edit_window_closed``) is a ``PermanentFailure``."""
        text, blocks = card.root_message(root)
        await self._paced(
            channel,
            "chat.update",
            lambda: self._client.chat_update(channel=channel, ts=root_id, text=text, blocks=blocks),
        )

    async def post_direct(self, user_id: str, text: Text, *, key: str) -> None:
        """A direct message from the bot: ``chat.postMessage`` to the user's id, which Slack delivers into the app's
        DM with them (opening it if needed), keyed like every post."""
        await self._post(user_id, key, text=fmt.render(text))

    async def post_participant_message(
        self, channel: str, root_id: str, author_name: str, body: str, *, key: str
    ) -> PostedMessage:
        """Post a participant's message in their thread, attributed; split (never truncated) if too long."""
        header = f"*{fmt.escape(author_name)}* (participant)"
        escaped = fmt.escape(body)
        if len(header) + 1 + len(escaped) <= self._max_text:
            return await self._post(channel, key, text=f"{header}:\n{escaped}", thread_ts=root_id)
        room = self._max_text - len(header) - len(" (part 999/999):\n")
        chunks = fmt.split_text(escaped, room)
        total = len(chunks)
        existing = (await self._existing_parts(channel, key, root_id)).parts
        first: PostedMessage | None = existing.get(1)
        for index, chunk in enumerate(chunks, start=1):
            if index in existing:
                continue
            text = f"*{fmt.escape(author_name)}* (participant, part {index}/{total}):\n{chunk}"
            posted = await self._post(
                channel, f"{key}#{index}", text=text, thread_ts=root_id, payload={"part": index, "parts": total}
            )
            first = first or posted
        assert first is not None
        return first

    async def post_notice(self, channel: str, text: Text, *, key: str, root_id: str | None = None) -> PostedMessage:
        """Post the bot's own notice (rendered as escaped mrkdwn) in the channel or a thread."""
        return await self._post(channel, key, text=fmt.render(text), thread_ts=root_id)

    async def post_private(
        self, channel: str, user_id: str, text: Text, *, root_id: str | None = None, actions: Sequence[Action] = ()
    ) -> None:
        """Tell ``user_id`` something only they see (``chat.postEphemeral``); ``actions`` as buttons under it."""
        mrkdwn = fmt.render(text)
        args: dict[str, Any] = {"channel": channel, "user": user_id, "text": mrkdwn}
        if actions:
            args["blocks"] = interactive.private_blocks(mrkdwn, actions)
        if root_id is not None:
            args["thread_ts"] = root_id
        await self._guard("chat.postEphemeral", self._client.chat_postEphemeral(**args))

    async def publish_home(self, user_id: str, view: HomeView) -> None:
        """Draw ``user_id``'s App Home tab (``views.publish``; ``core.ports.HomeSurface``): escaped Block Kit within
        Slack's limits (``adapters/slack/home.py``). Publishing replaces the tab, so repeating it is harmless."""
        call = self._client.views_publish(user_id=user_id, view=home.home_view(view))
        await self._guard("views.publish", call)

    async def add_mark(self, channel: str, post_id: str, mark: Mark, *, occasion: str = "") -> None:
        """A mark is a reaction (``EMOJI``); an existing reaction counts as success. A reaction taken off and shown
        again is the same reaction, so ``occasion`` changes nothing here."""
        call = self._client.reactions_add(channel=channel, timestamp=post_id, name=EMOJI[mark])
        await self._guard("reactions.add", call, ok_errors=frozenset({"already_reacted"}))

    async def remove_mark(self, channel: str, post_id: str, mark: Mark) -> None:
        """Remove the mark's reaction; a reaction that is not there counts as success."""
        call = self._client.reactions_remove(channel=channel, timestamp=post_id, name=EMOJI[mark])
        await self._guard("reactions.remove", call, ok_errors=frozenset({"no_reaction"}))

    async def _scan(self, channel: str, thread_ts: str | None) -> AsyncIterator[dict[str, Any]]:
        method = "conversations.replies" if thread_ts else "conversations.history"
        cursor: str | None = None
        for _ in range(self._scan_pages):
            args: dict[str, Any] = {"channel": channel, "limit": self._scan_limit, "include_all_metadata": True}
            if thread_ts:
                args["ts"] = thread_ts
            if cursor:
                args["cursor"] = cursor
            call = (
                self._client.conversations_replies(**args)
                if thread_ts
                else (self._client.conversations_history(**args))
            )
            data = await self._guard(method, call)
            for message in data.get("messages") or []:
                if isinstance(message, dict):
                    yield message
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor or not data.get("has_more", True):
                return

    async def _existing_parts(self, channel: str, key: str, thread_ts: str | None) -> _Found:
        """What an earlier attempt posted for ``key``: a single post, or parts of a split message."""
        found = _Found()
        async for message in self._scan(channel, thread_ts):
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") != EVENT_TYPE:
                continue
            payload = metadata.get("event_payload") or {}
            found_key = str(payload.get("key", ""))
            posted = PostedMessage(channel=channel, post_id=str(message.get("ts")))
            suffix = found_key[len(key) + 1 :]
            if found_key == key:
                found.single = posted
            elif found_key.startswith(f"{key}#") and suffix.isdigit():
                found.parts[int(suffix)] = posted
                found.total = max(found.total, int(payload.get("parts") or 0))
        return found

    async def find_post(self, channel: str, key: str, *, root_id: str | None = None) -> PostedMessage | None:
        """The post carrying ``key`` among the last few pages; a split message only if all parts exist."""
        found = await self._existing_parts(channel, key, root_id)
        if found.single is not None:
            return found.single
        if found.total and all(i in found.parts for i in range(1, found.total + 1)):
            return found.parts[1]
        return None

    async def find_user_by_email(self, email: str, *, channel: str) -> ChatUser | None:
        """``users.lookupByEmail`` (needs ``users:read.email``); None when nobody of the workspace has ``email``."""
        call = self._client.users_lookupByEmail(email=email)
        data = await self._guard("users.lookupByEmail", call, ok_errors=frozenset({"users_not_found"}))
        user = data.get("user")
        return self._chat_user(str(user["id"]), user) if isinstance(user, dict) and user.get("id") else None

    async def lookup_user(self, user_id: str) -> ChatUser:
        """A Slack user's name, email (needs ``users:read.email``), time zone and bot flag."""
        data = await self._guard("users.info", self._client.users_info(user=user_id))
        return self._chat_user(user_id, data.get("user") or {})

    def _chat_user(self, user_id: str, user: dict[str, Any]) -> ChatUser:
        profile = user.get("profile") or {}
        name = (
            profile.get("display_name")
            or profile.get("real_name")
            or user.get("real_name")
            or user.get("name")
            or user_id
        )
        chat_user = ChatUser(
            user_id=user_id,
            name=str(name),
            email=profile.get("email") or None,
            tz=user.get("tz") or None,
            is_bot=bool(user.get("is_bot", False)),
        )
        self._users[user_id] = (time.monotonic(), chat_user)
        return chat_user

    async def _user_name(self, user_id: str) -> str:
        cached = self._users.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1].name
        return (await self.lookup_user(user_id)).name

    async def to_plain_text(self, text: str) -> str:
        """A researcher's Slack text as the participant should read it (mentions resolved, no markup)."""
        return await fmt.to_plain_text(text, self._user_name)
