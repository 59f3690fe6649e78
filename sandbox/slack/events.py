"""Events API and slash commands as Slack sends them to the bridge: signed POSTs, with Slack's retries."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from sandbox.slack.core import SandboxCore
from sandbox.slack.state import CommandResult, Delivery

log = logging.getLogger(__name__)


class EventsMixin(SandboxCore):
    """Delivery of ``event_callback`` envelopes and slash commands to ``events_url``/``commands_url``."""

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` for ``body`` (v0 HMAC-SHA256)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(self.signing_secret).generate_signature(timestamp=ts, body=body)
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature or ""}

    async def deliver_raw(self, body: bytes, headers: dict[str, str], *, url: str | None = None) -> tuple[int, str]:
        """POST ``body`` with exactly ``headers`` to the bridge (default ``events_url``): (status, text)."""
        target = url or self.events_url
        if not target:
            raise RuntimeError("SlackSandbox.events_url is not set")
        timeout = aiohttp.ClientTimeout(total=self.delivery_timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(target, data=body, headers=headers) as response,
        ):
            return response.status, await response.text()

    def _envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        return {
            "token": "sandbox-verification-token",
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:16].upper()}",
            "event_time": now,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }

    async def deliver_event(self, event: dict[str, Any], *, deliveries: int = 1) -> list[Delivery]:
        """Send ``event`` in an envelope like Slack: signed, retried on failure, ``deliveries`` times at least.

        Attempts after the first carry ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``. A non-2xx answer,
        timeout or refused connection leads to a retry (at most 3, after ``retry_delays``).
        """
        envelope = self._envelope(event)
        body = json.dumps(envelope).encode()
        results: list[Delivery] = []
        reason = "http_timeout"
        for attempt in range(4):
            headers = {"Content-Type": "application/json", **self.sign(body)}
            if attempt:
                headers["X-Slack-Retry-Num"] = str(attempt)
                headers["X-Slack-Retry-Reason"] = reason
            status: int | None
            try:
                status, _ = await self.deliver_raw(body, headers)
            except TimeoutError:
                status, reason = None, "http_timeout"
            except aiohttp.ClientError:
                status, reason = None, "connection_failed"
            else:
                reason = "http_timeout" if 200 <= status < 300 else "http_error"
            delivery = Delivery(envelope["event_id"], attempt, status)
            results.append(delivery)
            self.event_deliveries.append(delivery)
            ok = status is not None and 200 <= status < 300
            if ok and attempt + 1 >= deliveries:
                break
            if not ok and attempt < len(self.retry_delays):
                await asyncio.sleep(self.retry_delays[attempt])
        return results

    def _check_channel(self, channel: str) -> None:
        if channel not in self.channels:
            raise ValueError(f"unknown sandbox channel {channel!r}")

    async def user_posts(
        self,
        channel: str,
        user_id: str,
        text: str,
        *,
        thread_ts: str | None = None,
        files: bool = False,
        deliveries: int = 1,
    ) -> str:
        """A person posts ``text`` (in a thread when ``thread_ts``); the bridge gets the event. Returns ts."""
        self._check_channel(channel)
        ts = self.new_ts()
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "user": user_id,
            "text": text,
            "ts": ts,
            "team": self.team_id,
            "channel_type": "channel",
            "event_ts": ts,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        if files:
            event["subtype"] = "file_share"
            event["files"] = [{"id": f"F{uuid.uuid4().hex[:10].upper()}", "name": "photo.png", "mimetype": "image/png"}]
        stored = {k: v for k, v in event.items() if k not in {"channel", "channel_type", "event_ts"}}
        self.store_message(channel, {**stored, "type": "message"})
        await self.deliver_event(event, deliveries=deliveries)
        return ts

    async def user_edits(self, channel: str, user_id: str, ts: str, new_text: str) -> None:
        """A person edits message ``ts``: a ``message_changed`` event."""
        self._check_channel(channel)
        message = self.find_message(channel, ts)
        if message is None:
            raise ValueError(f"no message {ts} in {channel}")
        previous = dict(message)
        event_ts = self.new_ts()
        message["text"] = new_text
        message["edited"] = {"user": user_id, "ts": event_ts}
        event = {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": channel,
            "ts": event_ts,
            "event_ts": event_ts,
            "channel_type": "channel",
            "message": dict(message),
            "previous_message": previous,
        }
        await self.deliver_event(event)

    async def user_deletes(self, channel: str, ts: str) -> None:
        """A message is deleted: a ``message_deleted`` event."""
        self._check_channel(channel)
        previous = self.remove_message(channel, ts)
        event_ts = self.new_ts()
        event: dict[str, Any] = {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "channel": channel,
            "ts": event_ts,
            "deleted_ts": ts,
            "event_ts": event_ts,
            "channel_type": "channel",
        }
        if previous is not None:
            event["previous_message"] = previous
        await self.deliver_event(event)

    async def _echo_bot_message(self, channel: str, message: dict[str, Any]) -> None:
        """Deliver the bot's own post as a ``message`` event with ``bot_id`` (what real Slack does)."""
        if not self.events_url:
            return
        event = {**message, "channel": channel, "channel_type": "channel", "event_ts": message["ts"]}
        event.pop("metadata", None)
        try:
            await self.deliver_event(event)
        except Exception:  # a background echo must not crash the sandbox
            log.exception("slack sandbox: echo delivery failed")

    async def run_command(
        self, channel: str, user_id: str, command_text: str, *, command: str = "/rally"
    ) -> CommandResult:
        """A person runs a slash command in ``channel``: signed form POST; returns the bridge's ack."""
        self._check_channel(channel)
        if not self.base_url:
            raise RuntimeError("start the sandbox before running commands")
        response_id = uuid.uuid4().hex[:12]
        self.response_url_posts[response_id] = []
        user = self.users.get(user_id, {})
        form = {
            "token": "sandbox-verification-token",
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel,
            "channel_name": self.channels[channel],
            "user_id": user_id,
            "user_name": str(user.get("name", user_id)),
            "command": command,
            "text": command_text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": f"{self.base_url}/response_url/{response_id}",
            "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:16]}",
        }
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self.sign(body)}
        status, text = await self.deliver_raw(body, headers, url=self.commands_url or self.events_url)
        return CommandResult(status, text, form["response_url"], form["trigger_id"])
