"""Slack in many workspaces: OAuth install, one bot token per workspace, uninstall and token revocation.

Design (also in docs/architecture.md, "Several Slack workspaces"); this module holds the install flow and
:class:`SlackOAuth`, which wires OAuth mode together; the other parts live beside it:

* **Install** (here): Bolt's ``AsyncOAuthFlow`` serves ``GET /slack/install`` (a redirect to Slack's authorize page
  with a fresh ``state``, also set as a cookie) and ``GET /slack/oauth_redirect`` (state and cookie checked, the
  code exchanged with ``oauth.v2.access``, the installation saved). Installations and states live in the bridge's
  own database through slack_sdk's ``AsyncSQLAlchemyInstallationStore`` / ``AsyncSQLAlchemyOAuthStateStore`` on the
  bridge's engine (tables from migration 0004). What the app asks for and its paths: ``adapters/slack/app_spec.py``.
* **Sending** (``adapters/slack/tokens.py``): the core's ``ChatPlatform`` port stays as it is (channel ids only).
  ``SlackPlatform`` gets a :class:`WorkspaceClient`: an ``AsyncWebClient`` that picks the bot token for each call
  from the call's own ``channel`` (or ``user``) argument: id -> workspace through ``slack_directory`` (filled from
  every inbound Slack request, which names its team), workspace -> newest stored bot token (cached for ``ttl``
  seconds; dropped at once on uninstall). A call for a workspace that removed the app fails permanently with the
  reason.
* **Inbound** (``adapters/slack/tokens.py``): Bolt authorizes each request with ``StoredBotAuthorize`` (the same
  lookup, no ``auth.test`` per request); a request from a workspace without an installation gets Bolt's "please
  reinstall" answer.
* **Uninstall / revocation** (``adapters/slack/workspaces.py``): ``app_uninstalled`` and ``tokens_revoked`` (bot)
  delete the workspace's installations, record why in ``slack_uninstalls`` and log which linked studies stop
  moving; ``/readyz`` shows it.
* ``SLACK_BOT_TOKEN`` beside OAuth is imported once per process, on first need, as the installation of its own
  workspace (after ``auth.test`` proves it valid): a single-workspace bridge moves to OAuth without reinstalling
  (``WorkspaceTokens`` in ``adapters/slack/tokens.py``).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.error import BoltError
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app_spec import BOT_EVENTS, BOT_SCOPES, INSTALL_PATH, REDIRECT_PATH, authorize_url, install_url
from adapters.slack.tokens import (
    DB_ERRORS,
    NotInstalled,
    StoredBotAuthorize,
    WorkspaceClient,
    WorkspaceTokens,
    remembering,
)
from adapters.slack.workspaces import SlackRemovals, workspace_status
from adapters.web import Handler, Record
from storage import installations
from storage.db import Database

# OAuth mode's public names, importable from here too (each part lives in the module the docstring names).
__all__ = [
    "BOT_EVENTS",
    "BOT_SCOPES",
    "NotInstalled",
    "SlackOAuth",
    "SlackRemovals",
    "WorkspaceClient",
    "WorkspaceNotAllowed",
    "WorkspaceTokens",
    "page",
]

log = logging.getLogger(__name__)

STATE_SECONDS = 600

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
            except DB_ERRORS as exc:
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
