"""Events API and slash commands as Slack sends them to the bridge: signed POSTs, with Slack's retries."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from sandbox.slack.core import SandboxCore
from sandbox.slack.interactions import Interaction, OpenedView
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

    def _envelope(self, event: dict[str, Any], team_id: str | None = None) -> dict[str, Any]:
        now = int(time.time())
        workspace = self.workspaces[team_id or self.team_of_channel(event.get("channel"))]
        return {
            "token": "sandbox-verification-token",
            "team_id": workspace.team_id,
            "context_team_id": workspace.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:16].upper()}",
            "event_time": now,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": workspace.team_id,
                    "user_id": workspace.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }

    async def deliver_event(
        self, event: dict[str, Any], *, deliveries: int = 1, team_id: str | None = None
    ) -> list[Delivery]:
        """Send ``event`` in an envelope like Slack: signed, retried on failure, ``deliveries`` times at least.

        Attempts after the first carry ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``. A non-2xx answer,
        timeout or refused connection leads to a retry (at most 3, after ``retry_delays``).
        """
        envelope = self._envelope(event, team_id)
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
            "team": self.team_of_channel(channel),
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
            "team_id": self.workspace_of_channel(channel).team_id,
            "team_domain": self.workspace_of_channel(channel).domain,
            "channel_id": channel,
            "channel_name": self.channels[channel],
            "user_id": user_id,
            "user_name": str(user.get("name", user_id)),
            "command": command,
            "text": command_text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": f"{self.base_url}/response_url/{response_id}",
            "trigger_id": self.interactions.issue(user_id),  # may open a modal within 3 s, like Slack's
        }
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self.sign(body)}
        status, text = await self.deliver_raw(body, headers, url=self.commands_url or self.events_url)
        return CommandResult(status, text, form["response_url"], form["trigger_id"])

    # --- interactivity: button clicks and modal submissions, as Slack posts them --------------------------------

    def interaction_request(self, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The body (form field ``payload``: the JSON) and signed headers Slack sends for an interaction."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return body, {"Content-Type": "application/x-www-form-urlencoded", **self.sign(body)}

    async def deliver_interaction(self, payload: dict[str, Any]) -> Interaction:
        """POST ``payload`` signed to the bridge's interactivity URL (the events URL). Slack does not retry these:
        deliver the same payload again to act out a repeated request."""
        body, headers = self.interaction_request(payload)
        status, text = await self.deliver_raw(body, headers, url=self.events_url)
        return Interaction(status, text, payload)

    def _user_brief(self, user_id: str) -> dict[str, Any]:
        user = self.users.get(user_id, {})
        name = user.get("name", user_id)
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _new_response_url(self) -> str:
        response_id = uuid.uuid4().hex[:12]
        self.response_url_posts[response_id] = []
        return f"{self.base_url}/response_url/{response_id}"

    @staticmethod
    def _button(blocks: list[dict[str, Any]] | None, label: str) -> tuple[dict[str, Any], dict[str, Any]]:
        for block in blocks or []:
            for element in block.get("elements") or []:
                if element.get("type") == "button" and (element.get("text") or {}).get("text") == label:
                    return block, element
        raise ValueError(f"no button {label!r} on that message")

    async def click(
        self, channel: str, user_id: str, label: str, *, ts: str | None = None, ephemeral: dict[str, Any] | None = None
    ) -> Interaction:
        """``user_id`` clicks the button labelled ``label`` on message ``ts`` in ``channel``, or on an ephemeral
        message (an entry of ``ephemerals``, which only its recipient sees): a ``block_actions`` payload."""
        self._check_channel(channel)
        if ephemeral is not None:
            if ephemeral["user"] != user_id or ephemeral["channel"] != channel:
                raise ValueError("only its recipient sees an ephemeral message, in its channel")
            blocks, message_ts, message = ephemeral.get("blocks"), ephemeral["message_ts"], None
        else:
            found = self.find_message(channel, ts or "")
            if found is None:
                raise ValueError(f"no message {ts} in {channel}")
            message = {k: v for k, v in copy.deepcopy(found).items() if k != "metadata"}
            blocks, message_ts = found.get("blocks"), found["ts"]
        block, button = self._button(blocks, label)
        container = {"type": "message", "message_ts": message_ts, "channel_id": channel}
        container["is_ephemeral"] = message is None
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user_brief(user_id),
            "api_app_id": self.api_app_id,
            "token": "sandbox-verification-token",
            "container": container,
            "trigger_id": self.interactions.issue(user_id),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self.channels[channel]},
            "state": {"values": {}},
            "response_url": self._new_response_url(),
            "actions": [
                {
                    "action_id": button.get("action_id"),
                    "block_id": block.get("block_id") or uuid.uuid4().hex[:5],
                    "text": button.get("text"),
                    "value": button.get("value"),
                    "style": button.get("style"),
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        if message is not None:
            payload["message"] = message
        return await self.deliver_interaction(payload)

    def views_for(self, user_id: str) -> list[OpenedView]:
        """The modals opened for ``user_id``, oldest first."""
        return [v for v in self.interactions.views if v.user == user_id]

    async def submit_view(self, view: OpenedView, values: dict[str, str | None]) -> Interaction:
        """The person the modal is open for fills in ``values`` (block_id -> text) and presses submit: a
        ``view_submission`` payload. Like Slack's client, an empty required input is not submitted at all.
        An empty answer closes the modal; ``response_action: errors`` keeps it open with the errors shown."""
        if view.closed:
            raise ValueError("that modal is closed")
        state: dict[str, Any] = {}
        for block in view.view.get("blocks") or []:
            if block.get("type") != "input":
                continue
            element = block["element"]
            value = values.get(block["block_id"])
            if not block.get("optional") and not value:
                raise ValueError(f"Slack does not submit a modal whose required {block['block_id']!r} is empty")
            state[block["block_id"]] = {element["action_id"]: {"type": element.get("type"), "value": value or None}}
        submitted = {**copy.deepcopy(view.view), "state": {"values": state}}
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": self._user_brief(view.user),
            "api_app_id": self.api_app_id,
            "token": "sandbox-verification-token",
            "trigger_id": self.interactions.issue(view.user),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        result = await self.deliver_interaction(payload)
        answer = result.json
        if 200 <= result.status < 300 and isinstance(answer, dict) and answer.get("response_action") == "errors":
            view.errors = dict(answer.get("errors") or {})
        elif 200 <= result.status < 300 and not result.body.strip():
            view.closed, view.errors = True, {}
        return result
