"""Slack Web API failures as ``core.errors``: what the outbox may retry, what it must verify first, and the reason
people read when Slack refused for good."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

from core.errors import NotFound, PermanentFailure, RallyBridgeError, TemporaryFailure, UnknownOutcome

_TEMPORARY_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
_REASONS = {
    "channel_not_found": "the Slack channel does not exist or the bot cannot see it",
    "not_in_channel": "the bot is not a member of the Slack channel",
    "is_archived": "the Slack channel is archived",
    "invalid_auth": "the Slack token is invalid",
    "not_authed": "no Slack token was sent",
    "token_revoked": "the Slack token was revoked",
    "account_inactive": "the Slack app or workspace is inactive",
    "missing_scope": "the Slack app lacks a required scope",
    "msg_too_long": "the message is longer than Slack accepts",
    "no_text": "the message is empty",
    "invalid_blocks": "Slack rejected the message layout",
    "restricted_action": "the workspace does not allow the bot to post there",
    "thread_not_found": "the Slack thread does not exist",
    "message_not_found": "the Slack message does not exist",
    "cant_update_message": "Slack does not let the bot change that message",
    "edit_window_closed": "the Slack message can no longer be changed (its edit window has closed)",
    "user_not_found": "the Slack user does not exist",
    "user_not_in_channel": "the Slack user is not in the channel",
    "not_enabled": "the Slack app's Home tab is not enabled (App Home settings)",
    "invalid_arguments": "Slack rejected the request's arguments",
}
_NOT_FOUND = {"channel_not_found", "thread_not_found", "message_not_found", "user_not_found"}


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def error_code(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def map_error(method: str, exc: BaseException) -> RallyBridgeError:
    """Translate a slack_sdk / aiohttp failure of ``method`` into a ``core.errors`` exception."""
    if isinstance(exc, RallyBridgeError):
        return exc  # already decided (e.g. no installation for the channel's workspace: adapters/slack/tokens.py)
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = int(getattr(response, "status_code", 0) or 0)
        error = error_code(exc)
        if status == 429 or error == "ratelimited":
            return TemporaryFailure(
                f"Slack {method} rate limited", retry_after=_retry_after(getattr(response, "headers", None))
            )
        if status >= 500 or error in _TEMPORARY_ERRORS:
            return TemporaryFailure(f"Slack {method} failed: HTTP {status} {error}".rstrip())
        reason = _REASONS.get(error, f"Slack refused {method}: {error or f'HTTP {status}'}")
        if error in _NOT_FOUND:
            return NotFound(reason, status=status)
        return PermanentFailure(reason, status=status)
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return TemporaryFailure(f"Slack {method}: could not connect ({type(exc).__name__})")
    if isinstance(
        exc, asyncio.TimeoutError | aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | aiohttp.ClientPayloadError
    ):
        return UnknownOutcome(f"Slack {method}: no answer ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientError):
        return UnknownOutcome(f"Slack {method}: {type(exc).__name__}")
    return PermanentFailure(f"Slack {method}: unexpected {type(exc).__name__}")
