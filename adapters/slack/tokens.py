"""Which bot token speaks for which Slack workspace (OAuth mode), for calls out and requests in.

* :class:`WorkspaceTokens`: workspace -> newest stored bot token (cached for ``ttl`` seconds, dropped at once on
  uninstall), and channel or user id -> workspace through ``slack_directory`` (filled from every inbound Slack
  request, which names its team). ``SLACK_BOT_TOKEN`` beside OAuth is imported once per process, on first need, as
  the installation of its own workspace (after ``auth.test`` proves it valid).
* :class:`WorkspaceClient`: the ``AsyncWebClient`` ``SlackPlatform`` sends with; it signs each call with the token
  of the workspace its ``channel`` (or ``user``) belongs to. A workspace that removed the app fails permanently.
* :class:`StoredBotAuthorize`: Bolt's ``authorize`` for inbound requests, from the same lookup (no ``auth.test``).
* :func:`remembering`: the inbox ``record`` that first notes the workspace of each id an event names.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import BasicAuth, FormData
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlalchemy.exc import SQLAlchemyError

from adapters.slack.app_spec import install_url
from adapters.web import Record
from core.errors import PermanentFailure, StorageUnavailable, TemporaryFailure
from core.events import InboundEvent
from storage import installations
from storage.db import Database
from storage.installations import StoredBot

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
DB_ERRORS = (SQLAlchemyError, OSError)  # the bridge's database failed: answered as StorageUnavailable (503)


class NotInstalled(PermanentFailure):
    """The workspace has no stored bot token (never installed, uninstalled, or token revoked)."""


def _first(name: str, *sources: Any) -> str | None:
    for source in sources:
        if isinstance(source, dict) and source.get(name):
            return str(source[name])
    return None


class WorkspaceTokens:
    """Which bot token speaks for which workspace, and which workspace a channel or user id belongs to."""

    def __init__(
        self,
        db: Database,
        *,
        client_id: str,
        api_url: str,
        public_url: str | None = None,
        static_token: str | None = None,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.client_id = client_id
        self.api_url = api_url
        self.public_url = public_url
        self._static_token = static_token or None
        self._static_tried = False
        self._static_lock = asyncio.Lock()
        self._ttl = ttl
        self._clock = clock
        self._bots: dict[str, tuple[float, StoredBot]] = {}
        self._teams: dict[str, str] = {}
        self.store = AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=db.engine, logger=log)

    # --- workspace -> token ----------------------------------------------------------------------------

    async def bot(self, team_id: str) -> StoredBot:
        """The workspace's bot token; :class:`NotInstalled` (with the reason) when there is none."""
        cached = self._bots.get(team_id)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        found = await installations.latest_bot(self.db, self.client_id, team_id)
        if found is None and await self._import_static_token(team_id):
            found = await installations.latest_bot(self.db, self.client_id, team_id)
        if found is None:
            self._bots.pop(team_id, None)
            raise NotInstalled(await self.why_not_installed(team_id))
        self._bots[team_id] = (self._clock(), found)
        return found

    async def why_not_installed(self, team_id: str) -> str:
        """A sentence for people: why nothing moves in ``team_id`` and what to do."""
        removed = (await installations.uninstalls(self.db, [team_id])).get(team_id)
        where = install_url(self.public_url)
        if removed is not None:
            return (
                f"Rally Bridge was removed from Slack workspace {team_id} ({removed.reason}, "
                f"{removed.at:%Y-%m-%d %H:%M} UTC); nothing is sent there until someone installs it again at {where}"
            )
        return f"Rally Bridge is not installed in Slack workspace {team_id}; install it at {where}"

    def forget(self, team_id: str) -> None:
        """Drop the cached token of ``team_id`` (after an install or an uninstall)."""
        self._bots.pop(team_id, None)

    async def _import_static_token(self, team_id: str) -> bool:
        """Import SLACK_BOT_TOKEN as its workspace's installation: once per process, only if auth.test accepts it.

        Once per process, so a token revoked while the process runs is never imported again.
        """
        if self._static_token is None or self._static_tried:
            return False
        async with self._static_lock:
            if self._static_tried:
                return False
            client = AsyncWebClient(token=self._static_token, base_url=self.api_url, timeout=10, retry_handlers=[])
            try:
                auth = await client.auth_test()
            except SlackApiError as exc:
                self._static_tried = True
                log.warning(
                    "SLACK_BOT_TOKEN was not imported: Slack answered auth.test with %s", exc.response.get("error")
                )
                return False
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TemporaryFailure(f"Slack auth.test: could not connect ({type(exc).__name__})") from exc
            self._static_tried = True
            scopes = auth.headers.get("x-oauth-scopes") or auth.headers.get("X-OAuth-Scopes")
            installed_team = str(auth.get("team_id") or "")
            installation = Installation(
                app_id=str(auth.get("app_id") or "imported"),
                enterprise_id=auth.get("enterprise_id") or None,
                team_id=installed_team,
                team_name=auth.get("team"),
                bot_token=self._static_token,
                bot_id=auth.get("bot_id"),
                bot_user_id=auth.get("user_id"),
                bot_scopes=scopes or "",
                user_id=str(auth.get("user_id") or "imported"),
                is_enterprise_install=bool(auth.get("is_enterprise_install")),
                token_type="bot",
            )
            if await installations.latest_bot(self.db, self.client_id, installed_team) is None:
                await self.store.async_save(installation)
                await installations.clear_uninstall(self.db, installed_team)
                log.info("SLACK_BOT_TOKEN imported as the installation of Slack workspace %s", installed_team)
            return installed_team == team_id

    # --- id -> workspace -------------------------------------------------------------------------------

    async def remember(self, teams_by_id: dict[str, str]) -> None:
        """Record where ids were seen (only what this process does not know yet)."""
        new = {k: v for k, v in teams_by_id.items() if k and v and self._teams.get(k) != v}
        if not new:
            return
        await installations.remember(self.db, new)
        self._teams.update(new)

    async def team_of(self, slack_id: str) -> str | None:
        team = self._teams.get(slack_id)
        if team is None:
            team = await installations.team_of(self.db, slack_id)
            if team is not None:
                self._teams[slack_id] = team
        return team

    async def token_for(self, method: str, *, channel: str | None, user: str | None) -> str:
        """The bot token for a Web API call about ``channel`` (or else ``user``)."""
        team: str | None = None
        for slack_id in (channel, user):
            if slack_id and team is None:
                team = await self.team_of(slack_id)
        if team is None:
            teams = await installations.installed_teams(self.db, self.client_id)
            if len(teams) == 1:
                team = teams[0]
            else:
                about = f"channel {channel}" if channel else f"user {user}" if user else "no channel or user"
                raise PermanentFailure(
                    f"Slack {method}: the bridge does not know which Slack workspace {about} belongs to "
                    "(nothing from it has reached the bridge yet)"
                )
        return (await self.bot(team)).token


class WorkspaceClient(AsyncWebClient):
    """An ``AsyncWebClient`` that signs each call with the bot token of the workspace the call is about.

    The workspace comes from the call's ``channel`` argument (else ``user``); a call that carries its own
    ``token`` (or client credentials) is sent as it is.
    """

    def __init__(self, tokens: WorkspaceTokens, **kwargs: Any) -> None:
        super().__init__(token=None, **kwargs)
        self.tokens = tokens

    async def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | FormData | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        auth: dict[str, Any] | BasicAuth | None = None,
    ) -> AsyncSlackResponse:
        sources = (params, json, data if isinstance(data, dict) else None)
        if auth is None and _first("token", *sources) is None:
            token = await self.tokens.token_for(
                api_method,
                channel=_first("channel", *sources),
                user=_first("user", *sources) or _first("user_id", *sources),  # views.publish names user_id
            )
            headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
        return await super().api_call(
            api_method,
            http_verb=http_verb,
            files=files,
            data=data,
            params=params,
            json=json,
            headers=headers,
            auth=auth,  # type: ignore[arg-type]
        )


class StoredBotAuthorize(AsyncAuthorize):
    """Bolt ``authorize`` for inbound requests: the workspace's stored bot (no ``auth.test`` per request)."""

    def __init__(self, tokens: WorkspaceTokens) -> None:
        super().__init__()
        self.tokens = tokens

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        if not team_id:
            return None  # org-wide (Enterprise Grid) installs are not supported
        try:
            bot = await self.tokens.bot(team_id)
        except NotInstalled:
            log.warning("Slack request from workspace %s, which has no installation: not accepted", team_id)
            return None
        except DB_ERRORS as exc:
            raise StorageUnavailable(f"installation lookup failed: {type(exc).__name__}") from exc
        return AuthorizeResult(
            enterprise_id=bot.enterprise_id or enterprise_id,
            team_id=team_id,
            bot_user_id=bot.bot_user_id,
            bot_id=bot.bot_id,
            bot_token=bot.token,
            bot_scopes=bot.scopes,
        )


def remembering(tokens: WorkspaceTokens, record: Record) -> Record:
    """Wrap the inbox ``record``: first note the workspace of the event's channel, user and mentioned users."""

    async def wrapped(event: InboundEvent) -> bool:
        p = event.payload
        team = str(p.get("workspace") or "")
        if p.get("platform") == "slack" and team:
            ids = {str(p[name]): team for name in ("channel", "user_id") if p.get(name)}
            ids.update({mention: team for mention in _MENTION.findall(str(p.get("text") or ""))})
            try:
                await tokens.remember(ids)
            except DB_ERRORS as exc:
                raise StorageUnavailable(f"could not record the Slack workspace: {type(exc).__name__}") from exc
        return await record(event)

    return wrapped
