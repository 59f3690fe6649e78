"""Slack's OAuth v2 install flow, more workspaces, uninstall and token revocation, as the sandbox serves them.

* ``configure_oauth(client_id, client_secret, redirect_urls)``: the app's credentials and redirect URLs, as in
  its manifest. ``add_workspace`` adds a team (with its own channels and users) where the app is not installed.
* A browser signs in to a workspace at :meth:`OAuthMixin.sign_in_url` (a session cookie, as on slack.com) and
  then opens ``GET /oauth/v2/authorize?client_id=...&scope=...&state=...&redirect_uri=...``: the sandbox approves
  at once and redirects back with ``code`` and ``state`` (or ``error=access_denied`` after ``decline_next()``);
  without a session it shows a sign-in page and does not redirect.
* ``POST /api/oauth.v2.access`` checks the client id and secret (HTTP Basic or form fields), that the code is
  known, unexpired (10 minutes) and unused, and that ``redirect_uri`` matches the authorize request, then issues
  a bot token for the code's team. Every token is tied to one team (``auth.test`` answers per token) and cannot
  see another team's channels or users.
* ``auth.revoke`` revokes the calling token; ``apps.uninstall`` (client id and secret plus a token) removes the
  app from the token's team. :meth:`OAuthMixin.uninstall` and :meth:`OAuthMixin.revoke_bot_tokens` do what an
  admin does in Slack and send the bridge ``app_uninstalled`` / ``tokens_revoked``.
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from sandbox.slack.events import EventsMixin
from sandbox.slack.state import Delivery
from sandbox.slack.webapi import ApiError
from sandbox.slack.workspaces import APP_AUTHORIZATION, CALLER_TEAM, CALLER_TOKEN, Workspace

CODE_SECONDS = 600.0
SESSION_COOKIE = "d"  # slack.com's session cookie name


@dataclass
class OAuthApp:
    client_id: str
    client_secret: str
    redirect_urls: list[str]


@dataclass
class Grant:
    """An authorization code, as issued by the authorize page."""

    code: str
    team_id: str
    user_id: str
    scopes: list[str]
    redirect_uri: str | None
    expires_at: float
    used: bool = False


@dataclass
class OAuthRecords:
    """What happened in the OAuth flow, for assertions."""

    authorizations: list[dict[str, str]] = field(default_factory=list)  # authorize page visits that redirected
    exchanges: list[tuple[str, str]] = field(default_factory=list)  # (code, "ok" or Slack's error)
    uninstalled: list[str] = field(default_factory=list)  # teams


class _OAuthError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _sign_in_page(text: str, status: int = 200) -> web.Response:
    body = f"<!doctype html><html><body><h1>Slack</h1><p>{html.escape(text)}</p></body></html>"
    return web.Response(status=status, text=body, content_type="text/html")


class OAuthMixin(EventsMixin):
    """OAuth v2 install, extra workspaces, uninstall and revocation."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.oauth_app: OAuthApp | None = None
        self.oauth_records = OAuthRecords()
        self._grants: dict[str, Grant] = {}
        self._sessions: dict[str, tuple[str, str]] = {}  # browser session cookie -> (team, user)
        self._decline_next = False

    # --- setup -----------------------------------------------------------------------------------------

    def configure_oauth(self, client_id: str, client_secret: str, redirect_urls: list[str]) -> None:
        """The app's OAuth credentials and redirect URLs (the manifest's ``oauth_config.redirect_urls``)."""
        self.oauth_app = OAuthApp(client_id, client_secret, list(redirect_urls))

    def add_workspace(self, team_id: str, name: str, *, domain: str | None = None) -> Workspace:
        """Another workspace, where the app is not installed yet (its bot user appears on install)."""
        suffix = team_id[1:] if team_id.startswith("T") else team_id
        workspace = Workspace(
            team_id=team_id,
            name=name,
            domain=domain or name.lower().replace(" ", "-"),
            bot_user_id=f"U{suffix}BOT",
            bot_id=f"B{suffix}BOT",
        )
        self.workspaces[team_id] = workspace
        return workspace

    def add_workspace_channel(self, team_id: str, channel_id: str, name: str) -> None:
        """A public channel of ``team_id`` (the bot is a member once the app is installed)."""
        self.add_channel(channel_id, name)
        self.channel_teams[channel_id] = team_id

    def add_workspace_user(
        self, team_id: str, user_id: str, name: str, email: str | None, tz: str = "America/New_York"
    ) -> None:
        """A person in workspace ``team_id``."""
        self.add_user(user_id, name, email, tz=tz)
        self.users[user_id]["team_id"] = team_id

    def sign_in_url(self, team_id: str, user_id: str) -> str:
        """Visiting this in a browser signs it in to ``team_id`` as ``user_id`` (a session cookie)."""
        if self.base_url is None:
            raise RuntimeError("start the sandbox first")
        return f"{self.base_url}/sandbox/sign_in?{urlencode({'team': team_id, 'user': user_id})}"

    def decline_next(self) -> None:
        """The next authorize visit is declined by the person (``error=access_denied``)."""
        self._decline_next = True

    def expire_codes(self) -> None:
        """Every authorization code issued so far expires now (a person who took too long to come back)."""
        for grant in self._grants.values():
            grant.expires_at = 0.0

    def bot_tokens(self, team_id: str) -> list[str]:
        """The live bot tokens of ``team_id``."""
        return [t for t, team in self.token_teams.items() if team == team_id and t not in self.revoked_tokens]

    def add_oauth_routes(self, app: web.Application) -> None:
        app.router.add_get("/sandbox/sign_in", self._sign_in)
        app.router.add_get("/oauth/v2/authorize", self._authorize)

    def oauth_handlers(self) -> dict[str, Any]:
        """Web API methods answered here; ``oauth.v2.access`` and ``apps.uninstall`` check client credentials."""
        return {
            "oauth.v2.access": self._oauth_v2_access,
            "apps.uninstall": self._apps_uninstall,
            "auth.revoke": self._auth_revoke,
        }

    # --- browser pages ---------------------------------------------------------------------------------

    async def _sign_in(self, request: web.Request) -> web.Response:
        team, user = request.query.get("team", ""), request.query.get("user", "")
        if team not in self.workspaces or self.users.get(user, {}).get("team_id") != team:
            return _sign_in_page("No such workspace member.", status=404)
        session = secrets.token_urlsafe(16)
        self._sessions[session] = (team, user)
        response = _sign_in_page(f"Signed in to {self.workspaces[team].name}.")
        response.set_cookie(SESSION_COOKIE, session, path="/", httponly=True)
        return response

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        app = self.oauth_app
        if app is None or query.get("client_id") != app.client_id:
            return _sign_in_page("invalid_client_id: this app does not exist.", status=400)
        redirect_uri = query.get("redirect_uri") or None
        target = redirect_uri or (app.redirect_urls[0] if app.redirect_urls else None)
        if target is None or not any(_redirect_matches(target, allowed) for allowed in app.redirect_urls):
            return _sign_in_page("bad_redirect_uri: the redirect URL is not one of the app's.", status=400)
        session = self._sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        if session is None:
            return _sign_in_page("Sign in to your workspace to continue.")
        team, user = session
        state = query.get("state", "")
        if self._decline_next:
            self._decline_next = False
            raise web.HTTPFound(_with_query(target, {"error": "access_denied", "state": state}))
        scopes = [s for s in query.get("scope", "").split(",") if s]
        code = f"{int(time.time())}.{secrets.token_hex(12)}"
        self._grants[code] = Grant(code, team, user, scopes, redirect_uri, time.monotonic() + CODE_SECONDS)
        self.oauth_records.authorizations.append({"team": team, "user": user, "state": state})
        raise web.HTTPFound(_with_query(target, {"code": code, "state": state}))

    # --- Web API ---------------------------------------------------------------------------------------

    def _client_credentials(self, params: dict[str, Any], authorization: str | None) -> None:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            try:
                decoded = base64.b64decode(authorization[len("Basic ") :]).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise _OAuthError("invalid_client_id") from exc
            client_id, _, client_secret = decoded.partition(":")
        app = self.oauth_app
        if app is None or client_id != app.client_id:
            raise _OAuthError("invalid_client_id")
        if client_secret != app.client_secret:
            raise _OAuthError("bad_client_secret")

    async def _oauth_v2_access(self, params: dict[str, Any]) -> dict[str, Any]:
        records = self.oauth_records
        code = str(params.get("code") or "")
        try:
            self._client_credentials(params, APP_AUTHORIZATION.get())
            grant = self._grants.get(code)
            if grant is None or grant.used or time.monotonic() > grant.expires_at:
                raise _OAuthError("invalid_code")
            grant.used = True
            if grant.redirect_uri is not None and params.get("redirect_uri") != grant.redirect_uri:
                raise _OAuthError("bad_redirect_uri")
        except _OAuthError as exc:
            records.exchanges.append((code, exc.error))
            raise ApiError(exc.error) from exc
        workspace = self.workspaces[grant.team_id]
        token = f"xoxb-{grant.team_id}-{secrets.token_hex(12)}"
        self.token_teams[token] = grant.team_id
        if workspace.bot_user_id not in self.users:
            self.add_workspace_user(grant.team_id, workspace.bot_user_id, "rallybridge", None)
            self.users[workspace.bot_user_id]["is_bot"] = True
        records.exchanges.append((code, "ok"))
        return {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": ",".join(grant.scopes),
            "bot_user_id": workspace.bot_user_id,
            "app_id": self.api_app_id,
            "team": {"id": workspace.team_id, "name": workspace.name},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": grant.user_id},
        }

    async def _apps_uninstall(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            self._client_credentials(params, None)
        except _OAuthError as exc:
            raise ApiError(exc.error) from exc
        team = CALLER_TEAM.get()
        if team is None:
            raise ApiError("not_authed")
        self._remove(team)
        return {"ok": True}

    async def _auth_revoke(self, params: dict[str, Any]) -> dict[str, Any]:
        token = CALLER_TOKEN.get()
        if token is None:
            raise ApiError("not_authed")
        self.revoked_tokens.add(token)
        return {"ok": True, "revoked": True}

    # --- what an admin does in Slack -------------------------------------------------------------------

    def _remove(self, team_id: str) -> None:
        self.revoked_tokens.update(self.bot_tokens(team_id))
        self.oauth_records.uninstalled.append(team_id)

    async def uninstall(self, team_id: str) -> list[Delivery]:
        """An admin removes the app from ``team_id``: its tokens stop working; the bridge gets ``app_uninstalled``."""
        self._remove(team_id)
        return await self.deliver_event({"type": "app_uninstalled", "event_ts": self.new_ts()}, team_id=team_id)

    async def revoke_bot_tokens(self, team_id: str) -> list[Delivery]:
        """The bot token of ``team_id`` is revoked: the bridge gets ``tokens_revoked``."""
        self.revoked_tokens.update(self.bot_tokens(team_id))
        workspace = self.workspaces[team_id]
        event = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [workspace.bot_user_id]}}
        return await self.deliver_event({**event, "event_ts": self.new_ts()}, team_id=team_id)


def _redirect_matches(target: str, allowed: str) -> bool:
    """Slack's rule: same scheme, host and port, and the path starts with the configured path."""
    t, a = urlsplit(target), urlsplit(allowed)
    return (t.scheme, t.netloc) == (a.scheme, a.netloc) and t.path.startswith(a.path)


def _with_query(url: str, values: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(values)}"
