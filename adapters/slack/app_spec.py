"""The Slack app as Slack sees it: the bot scopes it asks for (each with its reason), the events it subscribes to,
and where Slack reaches it. ``manifest.yml`` (``adapters/slack/manifest.py``) and the OAuth install request
(``adapters/slack/oauth.py``) are both written from here, so they and the code cannot drift apart.
"""

from __future__ import annotations

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
EVENTS_PATH = "/slack/events"

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


def authorize_url(api_url: str) -> str:
    """Slack's authorize page for a Web API base URL: ``https://slack.com/api/`` -> ``.../oauth/v2/authorize``."""
    base = api_url.rstrip("/")
    if base.endswith("/api"):
        base = base[: -len("/api")]
    return f"{base}/oauth/v2/authorize"


def install_url(public_url: str | None) -> str:
    """Where a person installs the app (absolute when the public URL is known)."""
    return f"{public_url}{INSTALL_PATH}" if public_url else f"{INSTALL_PATH} on this bridge"
