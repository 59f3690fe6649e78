"""Several Slack workspaces (teams) in one sandbox: which team a token, a channel and a user belong to."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

# The team whose token authenticated the Web API request being served (set by ``_check_auth``).
CALLER_TEAM: ContextVar[str | None] = ContextVar("slack_sandbox_caller_team", default=None)


@dataclass
class Workspace:
    """One Slack workspace and the app's bot user in it."""

    team_id: str
    name: str
    domain: str
    bot_user_id: str
    bot_id: str


# The token of that request, and the Authorization header of an app-authenticated call (oauth.v2.access).
CALLER_TOKEN: ContextVar[str | None] = ContextVar("slack_sandbox_caller_token", default=None)
APP_AUTHORIZATION: ContextVar[str | None] = ContextVar("slack_sandbox_app_authorization", default=None)
