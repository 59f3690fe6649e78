"""Is the bot in the channel a command came from? Slack delivers ``/rally`` from any channel, but the bot can
post there (thread roots, notices, private answers) only as a member.

Public channel without the bot: it joins (``conversations.join``) and carries on. Private channel (Slack hides it
from non-members, ``channel_not_found``): the command is answered at once with how to invite the bot, and
nothing is stored. Any other failure of the check (Slack slow or down) does not block the command: it goes on as
before, and a post that then fails says so in the usual way.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 1.5  # the command must still be acknowledged within Slack's 3 s


def invite_first(bot_name: str) -> str:
    return (
        f"I'm not in this channel yet, so I can't post here. Invite me with `/invite @{bot_name}` "
        "(or the channel's name → Integrations → Add apps), then run the command again."
    )


class ChannelMembership:
    """Remembers the channels the bot is known to be in (per process; a removal shows as a failed post)."""

    def __init__(self, bot_name: str = "Rally Bridge") -> None:
        self.bot_name = bot_name
        self._member: set[str] = set()

    async def problem(self, client: AsyncWebClient, channel: str) -> str | None:
        """None when the bot can post in ``channel`` (joining a public channel if needed); else what to do."""
        if channel in self._member or not channel.startswith(("C", "G")):
            return None  # known, or a DM / group DM, where the app is always present
        try:
            return await asyncio.wait_for(self._check(client, channel), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("channel membership check timed out for %s; going on", channel)
            return None

    async def _check(self, client: AsyncWebClient, channel: str) -> str | None:
        try:
            info = (await client.conversations_info(channel=channel)).get("channel") or {}
            if not info.get("is_member"):
                if info.get("is_private"):
                    return invite_first(self.bot_name)
                await client.conversations_join(channel=channel)
                log.info("joined public channel %s to answer a command there", channel)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if error in ("channel_not_found", "method_not_supported_for_channel_type", "not_in_channel"):
                return invite_first(self.bot_name)
            log.warning("channel membership check failed for %s (%s); going on", channel, error)
            return None
        self._member.add(channel)
        return None
