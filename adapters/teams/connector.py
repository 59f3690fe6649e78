"""A small client for the Bot Framework connector REST API, as the Teams adapter uses it.

Paths (relative to the conversation's ``serviceUrl``): ``POST /v3/conversations``,
``POST /v3/conversations/{id}/activities``, ``POST /v3/conversations/{id}/activities/{replyToId}``,
``PUT /v3/conversations/{id}/activities/{activityId}`` (an update), ``GET /v3/conversations/{id}/members/{userId}``.

Failures become ``core.errors``: 429, 412, 408 and every 5xx (so 502 and 504) -> ``TemporaryFailure`` with the
``Retry-After`` the connector gave; 404 -> ``NotFound``; other 4xx -> ``PermanentFailure``; no connection ->
``TemporaryFailure``; a timeout or a dropped connection after sending -> ``UnknownOutcome``. Error texts name
the call template, never ids, tokens or message bodies.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from adapters.http import error_for_exception, error_for_status, malformed, parse_retry_after
from adapters.teams.pacing import ThreadPacer
from core.errors import PermanentFailure, RallyBridgeError, TemporaryFailure

log = logging.getLogger(__name__)

TokenSource = Callable[[], Awaitable[str | None]]
SERVICE = "Teams connector"
CHECK_CREDENTIALS = "check MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD, MICROSOFT_APP_TYPE and MICROSOFT_APP_TENANT_ID"
# In botbuilder's token failure text: MSAL's error code and Entra's AADSTS number (never the description, which
# names the app and tenant).
_TOKEN_ERROR = re.compile(r"\berror: ([a-z_]+)|\b(AADSTS\d+)")
_REASONS = {
    401: f"the bot's Microsoft credentials were refused ({CHECK_CREDENTIALS})",
    403: "the bot may not post there (is the Rally Bridge app installed in this team?)",
}


def _error(what: str, status: int, reason: str | None, body: Any, headers: Any) -> RallyBridgeError:
    if status == 412:  # Teams: "precondition failed", transient; retry with backoff
        return TemporaryFailure(f"{SERVICE} {what}: 412", retry_after=parse_retry_after(headers.get("Retry-After")))
    if status in _REASONS:
        return PermanentFailure(f"{_REASONS[status]} ({what}: {status})", status=status)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = {"message": body["error"].get("message") or body["error"].get("code")}
    return error_for_status(f"{SERVICE} {what}:", status, reason, body, headers)


def _token_error(exc: Exception) -> str:
    """Why no token came: the exception type, plus Entra's error codes when it refused the credentials."""
    codes = [a or b for a, b in _TOKEN_ERROR.findall(str(exc))]
    if not codes:
        return type(exc).__name__
    return f"{type(exc).__name__} {' '.join(dict.fromkeys(codes))}: {CHECK_CREDENTIALS}"


class ConnectorClient:
    """Connector calls with an outbound token, per-thread pacing and the error mapping above."""

    def __init__(self, token: TokenSource, *, pacer: ThreadPacer | None = None, timeout: float = 15.0) -> None:
        self._token = token
        self.pacer = pacer or ThreadPacer()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def _call(self, method: str, url: str, what: str, body: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        try:
            token = await self._token()
        except RallyBridgeError:
            raise
        except Exception as exc:  # MSAL / token endpoint trouble: nothing was sent yet
            raise TemporaryFailure(f"{SERVICE}: could not get a bot token ({_token_error(exc)})") from exc
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._get_session().request(
                method, url, json=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                raw = await resp.read()
                status, reason, resp_headers = resp.status, resp.reason, resp.headers
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise error_for_exception(SERVICE, what, exc) from exc
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                if 200 <= status < 300:
                    raise malformed(SERVICE, what, "body is not JSON") from None
        if not 200 <= status < 300:
            mapped = _error(what, status, reason, parsed, resp_headers)
            log.info("teams %s failed: %s %s", what, status, type(mapped).__name__)
            raise mapped
        return parsed if parsed is not None else {}

    @staticmethod
    def _base(service_url: str) -> str:
        return service_url.rstrip("/")

    async def create_conversation(self, service_url: str, params: dict[str, Any], *, pace: str) -> dict[str, Any]:
        """``POST /v3/conversations`` (a new post in a channel, or a personal chat)."""
        url = f"{self._base(service_url)}/v3/conversations"
        async with self.pacer.slot(pace):  # counted when the answer is back (adapters/teams/pacing.py)
            result = await self._call("POST", url, "POST /v3/conversations", params)
        if not isinstance(result, dict) or not result.get("id"):
            raise malformed(SERVICE, "POST /v3/conversations", "no conversation id")
        return result

    async def send(
        self, service_url: str, conversation_id: str, activity: dict[str, Any], *, reply_to: str | None = None
    ) -> str:
        """Send ``activity`` into a conversation (as a reply to ``reply_to`` if given); returns its id."""
        path = f"/v3/conversations/{quote(conversation_id, safe='')}/activities"
        what = "POST /v3/conversations/{id}/activities"
        if reply_to:
            path += f"/{quote(reply_to, safe='')}"
            what += "/{replyToId}"
        async with self.pacer.slot(conversation_id):
            result = await self._call("POST", self._base(service_url) + path, what, activity)
        activity_id = result.get("id") if isinstance(result, dict) else None
        if not activity_id:
            raise malformed(SERVICE, what, "no activity id")
        return str(activity_id)

    async def update(self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]) -> None:
        """``PUT /v3/conversations/{id}/activities/{activityId}``: replace a posted activity (Bot Framework's
        ``update_activity``), paced as a send into that conversation."""
        path = f"/v3/conversations/{quote(conversation_id, safe='')}/activities/{quote(activity_id, safe='')}"
        async with self.pacer.slot(conversation_id):
            await self._call(
                "PUT", self._base(service_url) + path, "PUT /v3/conversations/{id}/activities/{activityId}", activity
            )

    async def get_member(self, service_url: str, conversation_id: str, user_id: str) -> dict[str, Any]:
        """``GET /v3/conversations/{id}/members/{userId}``: a ``TeamsChannelAccount``."""
        path = f"/v3/conversations/{quote(conversation_id, safe='')}/members/{quote(user_id, safe='')}"
        result = await self._call("GET", self._base(service_url) + path, "GET /v3/conversations/{id}/members/{userId}")
        if not isinstance(result, dict):
            raise malformed(SERVICE, "GET members", "not an object")
        return result

    async def paged_members(
        self, service_url: str, conversation_id: str, continuation: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """``GET /v3/conversations/{id}/pagedmembers``: one page of the team's ``TeamsChannelAccount``s and the
        continuation token of the next (None after the last)."""
        path = f"/v3/conversations/{quote(conversation_id, safe='')}/pagedmembers?pageSize=500"
        if continuation:
            path += f"&continuationToken={quote(continuation, safe='')}"
        result = await self._call("GET", self._base(service_url) + path, "GET /v3/conversations/{id}/pagedmembers")
        if not isinstance(result, dict) or not isinstance(result.get("members"), list):
            raise malformed(SERVICE, "GET pagedmembers", "no members list")
        token = result.get("continuationToken")
        return [m for m in result["members"] if isinstance(m, dict)], str(token) if token else None
