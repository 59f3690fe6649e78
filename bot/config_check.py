"""Name every missing or invalid setting, by its environment variable."""

from __future__ import annotations

import os
from collections.abc import Callable

from dotenv import dotenv_values
from pydantic import ValidationError

from bot.settings import REQUIRED_FOR_SERVE, Settings


def _alias(field_name: str) -> str:
    field = Settings.model_fields.get(field_name)
    alias = field.validation_alias if field is not None else None
    return alias if isinstance(alias, str) else field_name


def _missing(is_set: Callable[[str], bool], reported: set[str]) -> list[str]:
    problems = [f"{env}: not set" for env in REQUIRED_FOR_SERVE if not is_set(env) and env not in reported]
    oauth = is_set("SLACK_CLIENT_ID") and is_set("SLACK_CLIENT_SECRET")
    if not is_set("SLACK_BOT_TOKEN") and not oauth and "SLACK_BOT_TOKEN" not in reported:
        problems.insert(
            0,
            "SLACK_BOT_TOKEN: not set (one workspace: its xoxb- bot token; or set SLACK_CLIENT_ID and "
            "SLACK_CLIENT_SECRET to install the app to many workspaces through /slack/install)",
        )
    for given, other in (("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"), ("SLACK_CLIENT_SECRET", "SLACK_CLIENT_ID")):
        if is_set(given) and not is_set(other) and other not in reported:
            problems.append(f"{other}: not set (OAuth install to many workspaces needs both {given} and {other})")
    if not is_set("SLACK_SIGNING_SECRET") and not is_set("SLACK_APP_TOKEN") and "SLACK_SIGNING_SECRET" not in reported:
        problems.append("SLACK_SIGNING_SECRET: not set (needed unless SLACK_APP_TOKEN selects Socket Mode)")
    return problems


def load_settings() -> tuple[Settings | None, list[str]]:
    """The settings, or None and one line per invalid variable and per missing required one."""
    try:
        return Settings(), []
    except ValidationError as exc:
        problems = [f"{_alias(str(e['loc'][0]) if e['loc'] else '?')}: {e['msg']}" for e in exc.errors()]
        given = {**{k: v for k, v in dotenv_values(".env").items() if v}, **os.environ}
        invalid = {line.split(":", 1)[0] for line in problems}
        return None, problems + _missing(lambda env: bool(given.get(env)), invalid)


def problems_for_serve(settings: Settings) -> list[str]:
    """What `serve` needs and does not have, or has in the wrong shape."""
    fields = {_alias(name): name for name in Settings.model_fields}
    problems = _missing(lambda env: getattr(settings, fields[env]) is not None, set())
    app_token, bot_token = settings.slack_app_token, settings.slack_bot_token
    if app_token is not None and not app_token.get_secret_value().startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN: must be an app-level token starting with 'xapp-'")
    if bot_token is not None and not bot_token.get_secret_value().startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN: must be a bot token starting with 'xoxb-'")
    from adapters.teams.setup import teams_problems  # Teams is optional: nothing to check without MICROSOFT_*

    problems.extend(teams_problems(settings))
    return problems
