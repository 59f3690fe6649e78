"""Name every missing or invalid setting, by its environment variable, and say which chat platforms are on.

Each chat platform is optional, but at least one must be on. A platform is on once any of its settings is given,
and must then be complete: half a platform is an error naming what is missing, never a silently closed route.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from dotenv import dotenv_values
from pydantic import ValidationError

from bot.settings import DEFAULT_PG_CONNECTIONS, REQUIRED_FOR_SERVE, Settings

# Any of these set means Slack is meant to be on (SLACK_API_URL and the pacing settings have defaults: they do not).
SLACK_CREDENTIALS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
)
# Any of these set means Teams is meant to be on (``Settings.teams_enabled``; the sandbox flag when true).
TEAMS_SETTINGS = ("MICROSOFT_APP_ID", "MICROSOFT_APP_PASSWORD", "MICROSOFT_APP_TENANT_ID", "RALLYBRIDGE_TEAMS_SANDBOX")

NO_PLATFORM = (
    "chat platform: none configured; set at least one. Slack: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or "
    "SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET to install to many workspaces; see "
    "docs/slack-setup.md). Microsoft Teams: MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD and MICROSOFT_APP_TENANT_ID "
    "(see docs/teams-setup.md)"
)

IsSet = Callable[[str], bool]


def _alias(field_name: str) -> str:
    field = Settings.model_fields.get(field_name)
    alias = field.validation_alias if field is not None else None
    return alias if isinstance(alias, str) else field_name


def _slack_missing(is_set: IsSet) -> list[str]:
    """What a partly configured Slack lacks; nothing when it is complete or when no Slack credential is set."""
    if not any(is_set(env) for env in SLACK_CREDENTIALS):
        return []
    problems: list[str] = []
    oauth_part = is_set("SLACK_CLIENT_ID") or is_set("SLACK_CLIENT_SECRET")
    oauth = is_set("SLACK_CLIENT_ID") and is_set("SLACK_CLIENT_SECRET")
    if not is_set("SLACK_BOT_TOKEN") and not oauth:
        problems.append(
            "SLACK_BOT_TOKEN: not set (Slack is partly configured. One workspace: its xoxb- bot token; or set "
            "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install the app to many workspaces through /slack/install"
            + ("" if oauth_part else "; or remove the SLACK_* settings to run without Slack")
            + ")"
        )
    for given, other in (("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"), ("SLACK_CLIENT_SECRET", "SLACK_CLIENT_ID")):
        if is_set(given) and not is_set(other):
            problems.append(f"{other}: not set (OAuth install to many workspaces needs both {given} and {other})")
    if not is_set("SLACK_SIGNING_SECRET") and not is_set("SLACK_APP_TOKEN"):
        problems.append(
            "SLACK_SIGNING_SECRET: not set (Slack is partly configured: the app's signing secret verifies "
            "/slack/events; not needed when SLACK_APP_TOKEN selects Socket Mode)"
        )
    return problems


def _missing(is_set: IsSet, reported: set[str], *, teams_given: bool) -> list[str]:
    """The required settings that are not set, and what the chat platforms lack (``reported``: already named)."""
    problems = [f"{env}: not set" for env in REQUIRED_FOR_SERVE if not is_set(env)]
    if not teams_given and not any(is_set(env) for env in SLACK_CREDENTIALS):
        problems.insert(0, NO_PLATFORM)
    problems += _slack_missing(is_set)
    return [p for p in problems if p.split(":", 1)[0] not in reported]


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on", "t", "y")


def load_settings() -> tuple[Settings | None, list[str]]:
    """The settings, or None and one line per invalid variable and per missing required one."""
    try:
        return Settings(), []
    except ValidationError as exc:
        problems = [f"{_alias(str(e['loc'][0]) if e['loc'] else '?')}: {e['msg']}" for e in exc.errors()]
        given = {**{k: v for k, v in dotenv_values(".env").items() if v}, **os.environ}
        invalid = {line.split(":", 1)[0] for line in problems}

        def is_set(env: str) -> bool:
            return bool(given.get(env)) or env in invalid

        teams = any(is_set(env) for env in TEAMS_SETTINGS[:-1]) or _true(given.get(TEAMS_SETTINGS[-1]))
        return None, problems + _missing(is_set, invalid, teams_given=teams)


def _is_set(settings: Settings) -> IsSet:
    fields = {_alias(name): name for name in Settings.model_fields}
    return lambda env: getattr(settings, fields[env]) not in (None, "")


def problems_for_serve(settings: Settings) -> list[str]:
    """What `serve` needs and does not have, or has in the wrong shape."""
    problems = _missing(_is_set(settings), set(), teams_given=settings.teams_enabled)
    app_token, bot_token = settings.slack_app_token, settings.slack_bot_token
    if app_token is not None and not app_token.get_secret_value().startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN: must be an app-level token starting with 'xapp-'")
    if bot_token is not None and not bot_token.get_secret_value().startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN: must be a bot token starting with 'xoxb-'")
    from adapters.teams.setup import teams_problems  # Teams is optional: nothing to check without MICROSOFT_*

    problems.extend(teams_problems(settings))
    return problems


def _app_type(settings: Settings) -> str:
    """The bot's type of app as check-config reports it, with the way back for a bot that relied on the old default."""
    app_type, tenant = settings.microsoft_app_type, settings.microsoft_app_tenant_id
    said = f"{app_type}, tenant {tenant}" if tenant and app_type != "MultiTenant" else app_type
    if settings.microsoft_app_type_given:
        return said
    return (
        f"{said}: MICROSOFT_APP_TYPE is not set and SingleTenant is the default. If this bot was created as Multi "
        "Tenant (before 31 July 2025, when MultiTenant was this bridge's default) and Teams now refuses its "
        "tokens, set MICROSOFT_APP_TYPE=MultiTenant"
    )


def platform_lines(settings: Settings, *, socket_mode: bool | None = None) -> list[str]:
    """One line per chat platform: active and how, or not active and why (for a configuration that passed)."""
    socket_mode = settings.socket_mode if socket_mode is None else socket_mode
    lines: list[str] = []
    if settings.slack_enabled:
        how = "over Socket Mode (SLACK_APP_TOKEN)" if socket_mode else "over HTTP on /slack/events"
        if settings.slack_oauth:
            where = f"{settings.public_url}/slack/install" if settings.public_url else "/slack/install on this bridge"
            imported = ""
            if settings.slack_bot_token is not None:
                imported = " SLACK_BOT_TOKEN is imported as its workspace's installation."
            lines.append(f"Slack: active, {how}; OAuth, install to many workspaces at {where}.{imported}")
        else:
            lines.append(
                f"Slack: active, {how}; one workspace (SLACK_BOT_TOKEN). "
                "Set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for many."
            )
    else:
        lines.append(
            "Slack: not active (no SLACK_BOT_TOKEN, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_SIGNING_SECRET or "
            "SLACK_APP_TOKEN is set; /slack/* answer 404). To add it, see docs/slack-setup.md."
        )
    if settings.teams_enabled and settings.microsoft_app_id:
        lines.append(
            f"Teams: active on /api/messages (MICROSOFT_APP_ID {settings.microsoft_app_id}, {_app_type(settings)})."
        )
    elif settings.teams_enabled:
        lines.append(
            "Teams: active on /api/messages WITHOUT authentication (RALLYBRIDGE_TEAMS_SANDBOX: local sandboxes only)."
        )
    else:
        lines.append(
            "Teams: not active (no MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD or MICROSOFT_APP_TENANT_ID is set; "
            "/api/messages answers 404). To add it, see docs/teams-setup.md."
        )
    return lines


POOL_SETTINGS = {
    "db_pool_size": "RALLYBRIDGE_DB_POOL_SIZE",
    "db_max_overflow": "RALLYBRIDGE_DB_MAX_OVERFLOW",
    "db_inbound_pool_size": "RALLYBRIDGE_DB_INBOUND_POOL_SIZE",
    "db_pool_timeout_seconds": "RALLYBRIDGE_DB_POOL_TIMEOUT_SECONDS",
}
# More inbound connections than this are never used: the inbox writes at most 3 groups at once (storage/db.py).
INBOUND_WRITERS = 3


def database_lines(settings: Settings) -> list[str]:
    """The database's connections per replica, and warnings when they do not look sensible (a passed config).

    What the server allows is not asked (check-config does not connect): the figures assume PostgreSQL's default
    ``max_connections`` of 100, 97 of them for roles that are not superusers.
    """
    if settings.database_url.startswith("sqlite"):
        given = sorted(POOL_SETTINGS[name] for name in settings.model_fields_set & POOL_SETTINGS.keys())
        if not given:
            return []
        return [f"Database: SQLite; {', '.join(given)} apply to PostgreSQL only and are ignored."]
    total, fits = settings.db_connections, DEFAULT_PG_CONNECTIONS // settings.db_connections
    lines = [
        f"Database: PostgreSQL, up to {total} connections per replica (RALLYBRIDGE_DB_POOL_SIZE "
        f"{settings.db_pool_size} + RALLYBRIDGE_DB_MAX_OVERFLOW {settings.db_max_overflow} + "
        f"RALLYBRIDGE_DB_INBOUND_POOL_SIZE {settings.db_inbound_pool_size}); PostgreSQL's default max_connections "
        f"(100, {DEFAULT_PG_CONNECTIONS} for non-superusers) takes {fits} such replica{'' if fits == 1 else 's'}. "
        "See docs/operations.md (Connections)."
    ]
    if fits < 2:
        lines.append(
            f"Warning: {total} connections per replica: "
            + (
                f"more than PostgreSQL allows with its default max_connections ({DEFAULT_PG_CONNECTIONS}). "
                if fits == 0
                else "a second replica would not fit a PostgreSQL with the default max_connections. "
            )
            + "Lower RALLYBRIDGE_DB_POOL_SIZE / RALLYBRIDGE_DB_MAX_OVERFLOW, or make sure the server's "
            "max_connections (or your pooler) allows replicas x this plus your own tools."
        )
    if settings.db_inbound_pool_size > INBOUND_WRITERS:
        lines.append(
            f"Warning: RALLYBRIDGE_DB_INBOUND_POOL_SIZE {settings.db_inbound_pool_size}: inbound writes use at "
            f"most {INBOUND_WRITERS} connections at once; the rest stay unused."
        )
    return lines


def active_platforms(settings: Settings) -> list[str]:
    """The chat platforms `serve` opens with these settings, by the name the bridge gives them."""
    return [name for name, on in (("slack", settings.slack_enabled), ("teams", settings.teams_enabled)) if on]
