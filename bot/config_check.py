"""Name every missing or invalid setting, by its environment variable."""

from __future__ import annotations

from pydantic import ValidationError

from bot.settings import REQUIRED_FOR_SERVE, Settings


def load_settings() -> tuple[Settings | None, list[str]]:
    """The settings, or None and one line per invalid variable."""
    try:
        return Settings(), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            field = Settings.model_fields.get(name)
            alias = field.validation_alias if field is not None and isinstance(field.validation_alias, str) else name
            problems.append(f"{alias}: {error['msg']}")
        return None, problems


def problems_for_serve(settings: Settings) -> list[str]:
    """What `serve` needs and does not have."""
    problems = [f"{env}: not set" for env, attr in REQUIRED_FOR_SERVE.items() if getattr(settings, attr) is None]
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        problems.append("SLACK_SIGNING_SECRET: not set (needed unless SLACK_APP_TOKEN selects Socket Mode)")
    if settings.slack_app_token is not None and not settings.slack_app_token.get_secret_value().startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN: must be an app-level token starting with 'xapp-'")
    token = settings.slack_bot_token
    if token is not None and not token.get_secret_value().startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN: must be a bot token starting with 'xoxb-'")
    return problems
