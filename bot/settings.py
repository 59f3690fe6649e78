"""One typed settings object, read from the environment (and a ``.env`` file when present)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./rallybridge.sqlite3"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias="RALLYBRIDGE_DATABASE_URL")
    host: str = Field("0.0.0.0", validation_alias="RALLYBRIDGE_HOST")
    port: int = Field(3000, validation_alias="RALLYBRIDGE_PORT", ge=0, le=65535)
    log_level: str = Field("INFO", validation_alias="RALLYBRIDGE_LOG_LEVEL")
    # Largest inbound request body accepted on any route; bigger gets 413.
    max_body_bytes: int = Field(1_000_000, validation_alias="RALLYBRIDGE_MAX_BODY_BYTES", gt=0)
    # Messages starting with this stay in the thread and are never relayed.
    internal_note_marker: str = Field("//", validation_alias="RALLYBRIDGE_INTERNAL_NOTE_MARKER")
    reconcile_interval_seconds: float = Field(300.0, validation_alias="RALLYBRIDGE_RECONCILE_SECONDS", gt=0)
    lease_seconds: float = Field(60.0, validation_alias="RALLYBRIDGE_LEASE_SECONDS", gt=0)
    worker_poll_seconds: float = Field(0.5, validation_alias="RALLYBRIDGE_POLL_SECONDS", gt=0)
    # Temporary failures without Retry-After wait base, 2*base, 4*base ... up to cap (with jitter).
    retry_base_seconds: float = Field(1.0, validation_alias="RALLYBRIDGE_RETRY_BASE_SECONDS", gt=0)
    retry_cap_seconds: float = Field(300.0, validation_alias="RALLYBRIDGE_RETRY_CAP_SECONDS", gt=0)

    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")

    respondent_api_url: str = Field("https://api.respondent.io", validation_alias="RESPONDENT_API_URL")
    respondent_api_key: SecretStr | None = Field(None, validation_alias="RESPONDENT_API_KEY")
    respondent_api_secret: SecretStr | None = Field(None, validation_alias="RESPONDENT_API_SECRET")
    respondent_webhook_key: SecretStr | None = Field(None, validation_alias="RESPONDENT_WEBHOOK_KEY")
    # Sent as externalResearcherId when opening a conversation.
    respondent_researcher_id: str = Field("rally-bridge", validation_alias=AliasChoices("RESPONDENT_RESEARCHER_ID"))

    rally_api_url: str = Field("https://api.rallyuxr.com/api/public/v1", validation_alias="RALLY_API_URL")
    rally_api_token: SecretStr | None = Field(None, validation_alias="RALLY_API_TOKEN")
    rally_webhook_secret: SecretStr | None = Field(None, validation_alias="RALLY_WEBHOOK_SECRET")

    # Microsoft Teams (optional): without any MICROSOFT_* setting the bridge runs Slack-only. See docs/teams.md.
    microsoft_app_id: str | None = Field(None, validation_alias="MICROSOFT_APP_ID")
    microsoft_app_password: SecretStr | None = Field(None, validation_alias="MICROSOFT_APP_PASSWORD")
    microsoft_app_type: str = Field("MultiTenant", validation_alias="MICROSOFT_APP_TYPE")
    microsoft_app_tenant_id: str | None = Field(None, validation_alias="MICROSOFT_APP_TENANT_ID")
    # Overrides for sandboxes: where channel tokens' keys are published, their issuer, the outbound token URL.
    microsoft_openid_metadata_url: str | None = Field(None, validation_alias="MICROSOFT_OPENID_METADATA_URL")
    microsoft_token_issuer: str | None = Field(None, validation_alias="MICROSOFT_TOKEN_ISSUER")
    microsoft_login_url: str | None = Field(None, validation_alias="MICROSOFT_LOGIN_URL")
    # Lets the Teams route open without an app id (no authentication): local sandboxes only.
    teams_sandbox: bool = Field(False, validation_alias="RALLYBRIDGE_TEAMS_SANDBOX")

    @field_validator("slack_api_url")
    @classmethod
    def _slash_terminated(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("rally_webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("whsec_"):
            raise ValueError("must start with 'whsec_' (the Svix signing secret shown by Rally)")
        return value

    @field_validator("microsoft_app_type")
    @classmethod
    def _app_type(cls, value: str) -> str:
        for known in ("MultiTenant", "SingleTenant"):
            if value.strip().casefold() == known.casefold():
                return known
        raise ValueError("must be MultiTenant or SingleTenant")

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def teams_enabled(self) -> bool:
        """True when the Teams route should open: an app id, any other MICROSOFT_* setting, or the sandbox flag."""
        given = (self.microsoft_app_id, self.microsoft_app_password, self.microsoft_app_tenant_id)
        return self.teams_sandbox or any(v is not None for v in given)


# What `serve` cannot run without, by environment variable name.
REQUIRED_FOR_SERVE: tuple[str, ...] = (
    "SLACK_BOT_TOKEN",
    "RESPONDENT_API_KEY",
    "RESPONDENT_API_SECRET",
    "RESPONDENT_WEBHOOK_KEY",
    "RALLY_API_TOKEN",
    "RALLY_WEBHOOK_SECRET",
)
