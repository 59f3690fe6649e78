"""Slack in many workspaces: OAuth install, one bot token per workspace, uninstall and token revocation.

Design (also in docs/architecture.md, "Several Slack workspaces"):

* **Install**: Bolt's ``AsyncOAuthFlow`` serves ``GET /slack/install`` (a redirect to Slack's authorize page with a
  fresh ``state``, also set as a cookie) and ``GET /slack/oauth_redirect`` (state and cookie checked, the code
  exchanged with ``oauth.v2.access``, the installation saved). Installations and states live in the bridge's own
  database through slack_sdk's ``AsyncSQLAlchemyInstallationStore`` / ``AsyncSQLAlchemyOAuthStateStore`` on the
  bridge's engine (tables from migration 0004).
* **Sending**: the core's ``ChatPlatform`` port stays as it is (channel ids only). ``SlackPlatform`` gets a
  :class:`WorkspaceClient`: an ``AsyncWebClient`` that picks the bot token for each call from the call's own
  ``channel`` (or ``user``) argument: id -> workspace through ``slack_directory`` (filled from every inbound Slack
  request, which names its team), workspace -> newest stored bot token (cached for ``ttl`` seconds; dropped at once
  on uninstall). A call for a workspace that removed the app fails permanently with the reason.
* **Inbound**: Bolt authorizes each request with :class:`StoredBotAuthorize` (the same lookup, no ``auth.test``
  per request); a request from a workspace without an installation gets Bolt's "please reinstall" answer.
* **Uninstall / revocation**: ``app_uninstalled`` and ``tokens_revoked`` (bot) delete the workspace's
  installations, record why in ``slack_uninstalls`` and log which linked studies stop moving; ``/readyz`` shows it.
* ``SLACK_BOT_TOKEN`` beside OAuth is imported once per process, on first need, as the installation of its own
  workspace (after ``auth.test`` proves it valid): a single-workspace bridge moves to OAuth without reinstalling.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import BasicAuth, FormData, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.error import BoltError
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlalchemy.exc import SQLAlchemyError

from bridge.inbox import StorageUnavailable
from core.errors import PermanentFailure, TemporaryFailure
from core.events import InboundEvent
from storage import installations
from storage.db import Database
from storage.installations import StoredBot

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
EVENTS_PATH = "/slack/events"
STATE_SECONDS = 600

# The bot scopes the code uses, each with the reason (manifest.yml is written from this list).
BOT_SCOPES: dict[str, str] = {
    "chat:write": "post thread roots, participant messages and notices",
    "channels:read": "check the bot is in the channel a command comes from",
    "groups:read": "the same for private channels",
    "channels:join": "join a public channel when a command is run there before the bot was invited",
    "channels:history": "receive replies in public channels (message.channels)",
    "groups:history": "receive replies in private channels (message.groups)",
    "commands": "/rally",
    "users:read": "names for <@U123> mentions relayed to participants",
    "users:read.email": "match a researcher to their Rally account by email",
    "reactions:write": "mark a reply delivered (or failed)",
}
# The events the bridge subscribes to (app_home_opened / app_uninstalled / tokens_revoked need no scope).
BOT_EVENTS: tuple[str, ...] = (
    "message.channels",
    "message.groups",
    "app_home_opened",
    "app_uninstalled",
    "tokens_revoked",
)

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_DB_ERRORS = (SQLAlchemyError, OSError)

Record = Callable[[InboundEvent], Awaitable[bool]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authorize_url(api_url: str) -> str:
    """Slack's authorize page for a Web API base URL: ``https://slack.com/api/`` -> ``.../oauth/v2/authorize``."""
    base = api_url.rstrip("/")
    if base.endswith("/api"):
        base = base[: -len("/api")]
    return f"{base}/oauth/v2/authorize"


def install_url(public_url: str | None) -> str:
    """Where a person installs the app (absolute when the public URL is known)."""
    return f"{public_url}{INSTALL_PATH}" if public_url else f"{INSTALL_PATH} on this bridge"


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
        except _DB_ERRORS as exc:
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
            except _DB_ERRORS as exc:
                raise StorageUnavailable(f"could not record the Slack workspace: {type(exc).__name__}") from exc
        return await record(event)

    return wrapped


# --- uninstall / revocation ---------------------------------------------------------------------------


def _time(body: dict[str, Any]) -> float | None:
    """The envelope's ``event_time`` (epoch seconds), if it has one."""
    value = body.get("event_time")
    return float(value) if isinstance(value, int | float) else None


class SlackRemovals:
    """What happens when a workspace uninstalls the app or revokes its bot token (both modes)."""

    def __init__(self, db: Database, tokens: WorkspaceTokens | None) -> None:
        self.db = db
        self.tokens = tokens

    async def removed(
        self, team_id: str, enterprise_id: str | None, reason: str, *, event_time: float | None = None
    ) -> None:
        """Forget the workspace's tokens and record why. An event older than the newest installation (a retry
        delivered after the workspace installed again) changes nothing."""
        try:
            deleted = 0
            if self.tokens is not None and event_time is not None:
                latest = await installations.latest_bot(self.db, self.tokens.client_id, team_id)
                if latest is not None and latest.installed_at.timestamp() > event_time + 1:  # event_time: whole s
                    log.info("Slack workspace %s: %s event predates its newest installation; ignored", team_id, reason)
                    return
            if self.tokens is not None:
                deleted = await installations.delete_team(self.db, self.tokens.client_id, team_id)
                self.tokens.forget(team_id)
            await installations.record_uninstall(self.db, team_id, enterprise_id, reason)
            links = [w for w in await installations.slack_links_by_workspace(self.db) if w.team_id == team_id]
        except _DB_ERRORS as exc:
            raise StorageUnavailable(f"could not record the uninstall: {type(exc).__name__}") from exc
        studies = links[0].study_ids if links else ()
        log.warning(
            "Slack workspace %s: %s; %d stored installation rows deleted; %d linked studies stop moving there%s",
            team_id,
            reason,
            deleted,
            len(studies),
            f" ({', '.join(studies)})" if studies else "",
        )

    def add_listeners(self, bolt: AsyncApp) -> None:
        """``app_uninstalled`` and ``tokens_revoked`` (bot tokens) end the workspace's installation."""

        @bolt.event("app_uninstalled")
        async def on_app_uninstalled(body: dict[str, Any], context: AsyncBoltContext) -> None:
            team = context.team_id or body.get("team_id")
            if team:
                await self.removed(str(team), context.enterprise_id, "app uninstalled", event_time=_time(body))

        @bolt.event("tokens_revoked")
        async def on_tokens_revoked(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
            team = context.team_id or body.get("team_id")
            if team and (event.get("tokens") or {}).get("bot"):
                await self.removed(str(team), context.enterprise_id, "bot token revoked", event_time=_time(body))
            else:
                log.info("Slack tokens_revoked without bot tokens (user tokens are not used): ignored")


# --- the OAuth flow and its pages ---------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2a44}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""

# Failure reasons of Bolt's flow (and Slack's ``error`` parameter) -> (HTTP status, what to tell the person).
_FAILURES: dict[str, tuple[int, str]] = {
    "access_denied": (200, "The installation was cancelled in Slack. Nothing was installed."),
    "invalid_browser": (
        400,
        "This installation did not start in this browser (or the browser dropped its cookie). "
        "Start again from the install link.",
    ),
    "invalid_state": (
        403,
        "This installation link has expired or was already used. Start again from the install link.",
    ),
    "missing_code": (400, "Slack sent no installation code. Start again from the install link."),
    "invalid_code": (
        400,
        "Slack did not accept the installation code (it expired or was already used). Start again.",
    ),
    "storage_error": (503, "The bridge could not store the installation. Nothing was installed; try again shortly."),
}


def page(status: int, title: str, body_html: str, headers: dict[str, str | list[str]] | None = None) -> BoltResponse:
    """A small HTML page (``body_html`` must already be escaped)."""
    all_headers: dict[str, str | list[str]] = {"Content-Type": "text/html; charset=utf-8", **(headers or {})}
    return BoltResponse(
        status=status,
        body=_PAGE.format(title=html.escape(title), body=body_html),
        headers=all_headers,  # type: ignore[arg-type]
    )


class WorkspaceNotAllowed(BoltError):
    """An install from a workspace outside SLACK_ALLOWED_TEAM_IDS."""

    def __init__(self, team_id: str, team_name: str) -> None:
        super().__init__(f"workspace {team_id} is not allowed to install")
        self.team_id, self.team_name = team_id, team_name


class _AllowlistFlow(AsyncOAuthFlow):
    """Bolt's flow, refusing to store an installation from a workspace the operator has not allowed. The token
    Slack just issued for it is revoked at once, so the refused workspace keeps no working install."""

    allowed_teams: frozenset[str] = frozenset()

    async def store_installation(self, request: AsyncBoltRequest, installation: Installation) -> None:
        team = str(installation.team_id or "")
        if self.allowed_teams and team not in self.allowed_teams:
            log.warning("Slack workspace %s tried to install Rally Bridge; not in SLACK_ALLOWED_TEAM_IDS", team)
            if installation.bot_token:
                try:
                    await self.client.auth_revoke(token=installation.bot_token)
                except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
                    log.warning("could not revoke the refused workspace's token: %s", type(exc).__name__)
            raise WorkspaceNotAllowed(team, installation.team_name or team)
        await super().store_installation(request, installation)


class SlackOAuth:
    """OAuth mode: the token directory, the install flow, its routes, and the Bolt options that go with them."""

    def __init__(
        self,
        db: Database,
        *,
        client_id: str,
        client_secret: str,
        api_url: str,
        public_url: str | None = None,
        static_token: str | None = None,
        allowed_teams: frozenset[str] = frozenset(),
    ) -> None:
        self.db = db
        self.public_url = public_url
        self.tokens = WorkspaceTokens(
            db, client_id=client_id, api_url=api_url, public_url=public_url, static_token=static_token
        )
        self.removals = SlackRemovals(db, self.tokens)
        self.sending_client = WorkspaceClient(self.tokens, base_url=api_url, timeout=10, retry_handlers=[])
        self.bolt_client = AsyncWebClient(base_url=api_url, timeout=10, retry_handlers=[])  # a code is single-use
        self.state_store = AsyncSQLAlchemyOAuthStateStore(
            expiration_seconds=STATE_SECONDS, engine=db.engine, logger=log
        )
        settings = AsyncOAuthSettings(
            client_id=client_id,
            client_secret=client_secret,
            scopes=list(BOT_SCOPES),
            redirect_uri=f"{public_url}{REDIRECT_PATH}" if public_url else None,
            install_path=INSTALL_PATH,
            install_page_rendering_enabled=False,  # /slack/install redirects straight to Slack's authorize page
            redirect_uri_path=REDIRECT_PATH,
            callback_options=AsyncCallbackOptions(success=self._success, failure=self._failure),
            authorization_url=authorize_url(api_url),
            installation_store=self.tokens.store,
            installation_store_bot_only=True,
            state_store=self.state_store,
            state_expiration_seconds=STATE_SECONDS,
            logger=log,
        )
        self.flow = _AllowlistFlow(client=self.bolt_client, logger=log, settings=settings)
        self.flow.allowed_teams = allowed_teams

    def bolt_options(self) -> dict[str, Any]:
        """Keyword arguments for Bolt's ``AsyncApp``: the flow, and authorize from the stored bots."""
        return {
            "oauth_flow": self.flow,
            "authorize": StoredBotAuthorize(self.tokens),
            "user_facing_authorize_error_message": (
                f"Rally Bridge is not installed in this workspace (any more): nothing you send here reaches it. "
                f"Install it at {install_url(self.public_url)}."
            ),
        }

    def record(self, record: Record) -> Record:
        return remembering(self.tokens, record)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(INSTALL_PATH, self._route(self.flow.handle_installation))
        app.router.add_get(REDIRECT_PATH, self._route(self.flow.handle_callback))

    def _route(self, handle: Callable[[AsyncBoltRequest], Awaitable[BoltResponse]]) -> Handler:
        async def route(request: web.Request) -> web.StreamResponse:
            try:
                response = await handle(await to_bolt_request(request))
            except _DB_ERRORS as exc:
                log.error("Slack OAuth %s failed: %s", request.path, type(exc).__name__)
                status, text = _FAILURES["storage_error"]
                response = page(status, "Installation failed", f"<p>{html.escape(text)}</p>")
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.error("Slack OAuth %s could not reach Slack: %s", request.path, type(exc).__name__)
                text = "The bridge could not reach Slack. Nothing was installed; try again shortly."
                response = page(502, "Installation failed", f"<p>{html.escape(text)}</p>")
            return await to_aiohttp_response(response)

        return route

    async def _success(self, args: AsyncSuccessArgs) -> BoltResponse:
        installation = args.installation
        team = str(installation.team_id or "")
        await installations.clear_uninstall(self.db, team)
        self.tokens.forget(team)
        log.info("Slack workspace %s installed Rally Bridge", team)
        name = html.escape(installation.team_name or team)
        body = (
            f"<p>Rally Bridge is now installed in <strong>{name}</strong>.</p>"
            "<p>Invite it to a study channel (<code>/invite @Rally Bridge</code>) and link a study there with "
            "<code>/rally link &lt;studyId&gt;</code>.</p>"
        )
        return page(
            200,
            "Rally Bridge is installed",
            body,
            {"Set-Cookie": [args.settings.state_utils.build_set_cookie_for_deletion()]},
        )

    async def _failure(self, args: AsyncFailureArgs) -> BoltResponse:
        if isinstance(args.error, WorkspaceNotAllowed):
            text = (
                f"This Rally Bridge serves only the workspaces its operator allowed, and "
                f"{args.error.team_name} ({args.error.team_id}) is not one of them. Nothing was installed. "
                "Ask whoever runs the bridge to add this workspace id to SLACK_ALLOWED_TEAM_IDS."
            )
            return page(403, "Rally Bridge was not installed", f"<p>{html.escape(text)}</p>")
        status, text = _FAILURES.get(args.reason, (400, "Slack reported a problem; nothing was installed."))
        log.warning("Slack OAuth install failed: %s", args.reason)
        start = f' <a href="{html.escape(INSTALL_PATH)}">Install again</a>.' if status != 503 else ""
        reason = html.escape(args.reason)
        return page(status, "Rally Bridge was not installed", f"<p>{html.escape(text)}{start}</p><p>({reason})</p>")

    async def workspace_status(self) -> dict[str, Any]:
        """For ``/readyz``: each workspace with linked studies, installed or why not."""
        return await workspace_status(self.db, self.tokens)


async def workspace_status(db: Database, tokens: WorkspaceTokens | None) -> dict[str, Any]:
    """Each Slack workspace with active links (and each recorded removal): whether things move there, and why not."""
    links = {w.team_id: w.study_ids for w in await installations.slack_links_by_workspace(db)}
    removed = await installations.uninstalls(db)
    status: dict[str, Any] = {}
    # One workspace (no token directory): only removals are news. OAuth: every linked workspace.
    teams = set(removed) if tokens is None else (set(links) | set(removed)) - {""}
    for team in sorted(teams):
        studies = list(links.get(team, ()))
        entry: dict[str, Any] = {"linked_studies": studies}
        installed = team not in removed
        if tokens is not None:
            try:
                await tokens.bot(team)
                installed = True
            except NotInstalled:
                installed = False
            except TemporaryFailure:
                installed = team not in removed
        entry["installed"] = installed
        if not installed:
            entry["problem"] = (
                await tokens.why_not_installed(team)
                if tokens is not None
                else f"Rally Bridge was removed from Slack workspace {team} ({removed[team].reason})"
            )
        status[team] = entry
    return status


def with_slack_status(ready: Handler, db: Database, tokens: WorkspaceTokens | None) -> Handler:
    """``/readyz`` plus ``slack_workspaces`` when ready: links stay, and this says why nothing moves in one."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response = await ready(request)
        if response.status != 200 or not isinstance(response, web.Response) or response.text is None:
            return response
        try:
            workspaces = await workspace_status(db, tokens)
        except _DB_ERRORS:
            return response
        if not workspaces:
            return response
        body = {**json.loads(response.text), "slack_workspaces": workspaces}
        return web.json_response(body, status=response.status)

    return handle
