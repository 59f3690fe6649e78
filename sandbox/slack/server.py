"""``SlackSandbox``: an aiohttp stand-in for Slack (Web API at ``/api/``, events sent to the bridge)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from sandbox.slack.edits import EditsMixin
from sandbox.slack.home import HomeMixin
from sandbox.slack.oauth import OAuthMixin
from sandbox.slack.shortcuts import ShortcutsMixin
from sandbox.slack.socket_mode import SocketModeMixin

log = logging.getLogger(__name__)


class SlackSandbox(EditsMixin, OAuthMixin, HomeMixin, ShortcutsMixin, SocketModeMixin):
    """A Slack workspace on 127.0.0.1 speaking Slack's wire protocol, for tests and local runs.

    Clients use ``AsyncWebClient(token=sandbox.token, base_url=f"{url}/api/")``. Set ``events_url`` (and
    optionally ``commands_url``) to the bridge's ``/slack/events`` to receive events and commands, or pass
    ``socket_mode=True`` to deliver them over Socket Mode (the bridge connects with ``app_token``).
    See :class:`sandbox.slack.core.SandboxCore` for options, state and fault injection.
    """

    def __init__(self, **options: Any) -> None:
        """Options as for :class:`SandboxCore` (token, signing_secret, rate limits, echo, retry delays)."""
        super().__init__(**options)
        self.app = web.Application()
        self.add_socket_mode_routes(self.app)  # apps.connections.open and the websocket (sandbox/slack/socket_mode.py)
        self.app.router.add_route("*", "/api/{method}", self.handle_api)
        self.app.router.add_post("/response_url/{response_id}", self._response_url)
        self.add_oauth_routes(self.app)  # /oauth/v2/authorize, /sandbox/sign_in (sandbox/slack/oauth.py)
        self._runner: web.AppRunner | None = None

    async def _response_url(self, request: web.Request) -> web.Response:
        """Record what the bridge posts to a slash command's ``response_url`` (at most 5 uses, like Slack)."""
        posts = self.response_url_posts.get(request.match_info["response_id"])
        if posts is None:
            return web.json_response({"ok": False, "error": "invalid_response_url"}, status=404)
        if len(posts) >= 5:
            return web.json_response({"ok": False, "error": "used_url"}, status=410)
        try:
            body: Any = await request.json()
        except ValueError:
            body = await request.text()
        posts.append(body)
        return web.json_response({"ok": True})

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: any free port); returns the base URL (``http://host:port``)."""
        self._stopping.clear()
        self._runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        """Release hung answers, cancel background deliveries and stop serving."""
        self._stopping.set()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.close_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
