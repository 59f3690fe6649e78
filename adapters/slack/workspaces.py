"""Which Slack workspaces have the app: a workspace that uninstalls it or revokes its bot token is forgotten and
recorded (both modes), and ``/readyz`` says, per workspace with linked studies, whether things move there and why
not. Links stay when a workspace leaves, so this is where an operator sees why nothing moves in one.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from adapters.slack.tokens import DB_ERRORS, NotInstalled, WorkspaceTokens
from adapters.web import Handler
from core.errors import StorageUnavailable, TemporaryFailure
from storage import installations
from storage.db import Database

log = logging.getLogger(__name__)


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
        except DB_ERRORS as exc:
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
        except DB_ERRORS:
            return response
        if not workspaces:
            return response
        body = {**json.loads(response.text), "slack_workspaces": workspaces}
        return web.json_response(body, status=response.status)

    return handle
