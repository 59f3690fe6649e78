"""One typed settings object, read from the environment (and a ``.env`` file when present)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./rallybridge.sqlite3"
# The shortest retention of finished queue rows. A finished inbox row's key is what recognises a redelivered event
# as a duplicate, so it must outlive every source's redeliveries: Slack retries for about 5 minutes, Respondent
# (undocumented) reportedly for under an hour, Rally through Svix for about 28 hours (0 s, 5 s, 5 min, 30 min, 2 h,
# 5 h, 10 h, 10 h). Two days covers the longest with a day to spare.
MIN_RETENTION_DAYS = 2
DEFAULT_RETENTION_DAYS = 30
# The chat platforms, by the name the bridge gives them (``Services.chats``), as people call them.
PLATFORM_NAMES = {"slack": "Slack", "teams": "Microsoft Teams"}
# MICROSOFT_APP_TYPE's values, as Azure's "Type of app" and botbuilder's APP_TYPE name them.
APP_TYPES = ("SingleTenant", "UserAssignedMSI", "MultiTenant")
# PostgreSQL connections per process by default: 10 + 5 + 3 = 18, so that five replicas fit a PostgreSQL left at
# its default max_connections (100, of which 3 are reserved for superusers) with room for a migration and psql.
DB_POOL_SIZE, DB_MAX_OVERFLOW, DB_INBOUND_POOL_SIZE = 10, 5, 3
# What PostgreSQL allows ordinary roles when max_connections is left at its default: 100 minus 3 reserved.
DEFAULT_PG_CONNECTIONS = 97


class Settings(BaseSettings):
    # An empty variable (``SLACK_BOT_TOKEN=`` in a .env) counts as unset, as bot/config_check.py counts it.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True)

    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias="RALLYBRIDGE_DATABASE_URL")
    host: str = Field("0.0.0.0", validation_alias="RALLYBRIDGE_HOST")
    port: int = Field(3000, validation_alias="RALLYBRIDGE_PORT", ge=0, le=65535)
    log_level: str = Field("INFO", validation_alias="RALLYBRIDGE_LOG_LEVEL")
    # json: one JSON object per line; console: key=value; auto: JSON unless stderr is a terminal.
    log_format: Literal["auto", "json", "console"] = Field("auto", validation_alias="RALLYBRIDGE_LOG_FORMAT")
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
    # Finished inbox and outbox rows, with the message text they carry, are deleted this many days after they
    # finished (storage/retention.py); a relay that gave up stays while it can be retried. See _retention.
    retention_days: int = Field(DEFAULT_RETENTION_DAYS, validation_alias="RALLYBRIDGE_RETENTION_DAYS")
    # PostgreSQL connections of one process (SQLite ignores them): the pool of the workers and everything else keeps
    # DB_POOL_SIZE open and opens up to DB_MAX_OVERFLOW more in bursts; inbound writes (what Slack and the webhooks
    # wait for) have DB_INBOUND_POOL_SIZE of their own. A transaction finding every connection of its pool in use
    # waits up to DB_POOL_TIMEOUT_SECONDS. Per replica at most the sum: docs/operations.md "Connections".
    db_pool_size: int = Field(DB_POOL_SIZE, validation_alias="RALLYBRIDGE_DB_POOL_SIZE")
    db_max_overflow: int = Field(DB_MAX_OVERFLOW, validation_alias="RALLYBRIDGE_DB_MAX_OVERFLOW")
    db_inbound_pool_size: int = Field(DB_INBOUND_POOL_SIZE, validation_alias="RALLYBRIDGE_DB_INBOUND_POOL_SIZE")
    db_pool_timeout_seconds: float = Field(30.0, validation_alias="RALLYBRIDGE_DB_POOL_TIMEOUT_SECONDS")
    # Links in a researcher's message are checked before it goes out (core/links.py, adapters/linkcheck.py).
    # on/off; hosts or host:port (comma-separated) reachable even on a private address; seconds per link.
    link_check: bool = Field(True, validation_alias="RALLYBRIDGE_LINK_CHECK")
    link_check_allow: str | None = Field(None, validation_alias="RALLYBRIDGE_LINK_CHECK_ALLOW")
    link_check_timeout_seconds: float = Field(3.0, validation_alias="RALLYBRIDGE_LINK_CHECK_TIMEOUT_SECONDS", gt=0)

    # Slack (optional, like Teams): on when its credentials are set (bot/config_check.py says which are needed).
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    # Pacing of chat.postMessage (adapters/slack/pacing.py): Slack allows ~1 post/s per channel with short bursts
    # and "several hundred" a minute per workspace. A rate of 0 switches that level of pacing off.
    slack_channel_rate: float = Field(1.0, validation_alias="RALLYBRIDGE_SLACK_CHANNEL_RATE", ge=0)
    slack_channel_burst: int = Field(3, validation_alias="RALLYBRIDGE_SLACK_CHANNEL_BURST", ge=1)
    slack_posts_per_minute: float = Field(600.0, validation_alias="RALLYBRIDGE_SLACK_POSTS_PER_MINUTE", ge=0)
    slack_workspace_burst: int = Field(30, validation_alias="RALLYBRIDGE_SLACK_WORKSPACE_BURST", ge=1)
    # OAuth install to many workspaces (both set): tokens come from installations stored in the bridge's database;
    # SLACK_BOT_TOKEN, if also set, is imported as its workspace's installation. See README "Install to several
    # workspaces".
    slack_client_id: str | None = Field(None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(None, validation_alias="SLACK_CLIENT_SECRET")
    # OAuth mode: the only workspaces (team ids, comma-separated) that may install; unset lets any workspace.
    slack_allowed_team_ids: str | None = Field(None, validation_alias="SLACK_ALLOWED_TEAM_IDS")
    # Where people reach this bridge (https://bridge.example.com): the OAuth redirect URL and links in messages.
    public_url: str | None = Field(None, validation_alias="RALLYBRIDGE_PUBLIC_URL")

    respondent_api_url: str = Field("https://api.respondent.io", validation_alias="RESPONDENT_API_URL")
    respondent_api_key: SecretStr | None = Field(None, validation_alias="RESPONDENT_API_KEY")
    respondent_api_secret: SecretStr | None = Field(None, validation_alias="RESPONDENT_API_SECRET")
    respondent_webhook_key: SecretStr | None = Field(None, validation_alias="RESPONDENT_WEBHOOK_KEY")
    # Sent as externalResearcherId when opening a conversation.
    respondent_researcher_id: str = Field("rally-bridge", validation_alias=AliasChoices("RESPONDENT_RESEARCHER_ID"))

    rally_api_url: str = Field("https://api.rallyuxr.com/api/public/v1", validation_alias="RALLY_API_URL")
    rally_api_token: SecretStr | None = Field(None, validation_alias="RALLY_API_TOKEN")
    rally_webhook_secret: SecretStr | None = Field(None, validation_alias="RALLY_WEBHOOK_SECRET")

    # Microsoft Teams (optional): without any MICROSOFT_* setting the bridge runs without Teams. See docs/teams.md.
    microsoft_app_id: str | None = Field(None, validation_alias="MICROSOFT_APP_ID")
    microsoft_app_password: SecretStr | None = Field(None, validation_alias="MICROSOFT_APP_PASSWORD")
    # How the Azure Bot authenticates (APP_TYPES; adapters/teams/setup.py). SingleTenant is the default: Azure
    # creates no new multi-tenant bots since 31 July 2025; a bot created as Multi Tenant before then sets MultiTenant.
    microsoft_app_type: str = Field("SingleTenant", validation_alias="MICROSOFT_APP_TYPE")
    microsoft_app_tenant_id: str | None = Field(None, validation_alias="MICROSOFT_APP_TENANT_ID")
    # Overrides for sandboxes: where channel tokens' keys are published, their issuer, the outbound token URL.
    microsoft_openid_metadata_url: str | None = Field(None, validation_alias="MICROSOFT_OPENID_METADATA_URL")
    microsoft_token_issuer: str | None = Field(None, validation_alias="MICROSOFT_TOKEN_ISSUER")
    microsoft_login_url: str | None = Field(None, validation_alias="MICROSOFT_LOGIN_URL")
    # Lets the Teams route open without an app id (no authentication): local sandboxes only.
    teams_sandbox: bool = Field(False, validation_alias="RALLYBRIDGE_TEAMS_SANDBOX")

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.strip().upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.strip().upper()

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value < MIN_RETENTION_DAYS:
            raise ValueError(
                f"must be at least {MIN_RETENTION_DAYS} (days): Rally's webhooks are redelivered for up to about 28 "
                "hours, and until then a finished inbox row is what keeps a redelivered event from being taken "
                "for a new one"
            )
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _slash_terminated(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")) or " " in value:
            raise ValueError("must be the bridge's public http(s) URL, e.g. https://bridge.example.com")
        return value

    @field_validator("rally_webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("whsec_"):
            raise ValueError("must start with 'whsec_' (the Svix signing secret shown by Rally)")
        return value

    @field_validator("link_check_allow")
    @classmethod
    def _link_check_allow(cls, value: str | None) -> str | None:
        for entry in (value or "").split(","):
            if any(mark in entry.strip() for mark in ("/", " ", "@", "?", "#")):
                raise ValueError(
                    f"must be host names or host:port, comma-separated (e.g. wiki.internal,10.0.0.5:8080), "
                    f"not {entry.strip()!r}"
                )
        return value

    @field_validator("microsoft_app_type")
    @classmethod
    def _app_type(cls, value: str) -> str:
        for known in APP_TYPES:
            if value.strip().casefold() == known.casefold():
                return known
        raise ValueError("must be SingleTenant, UserAssignedMSI or MultiTenant (the Azure Bot's type of app)")

    @field_validator("db_pool_size", "db_inbound_pool_size")
    @classmethod
    def _pool_size(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1 (connections kept open to PostgreSQL), not {value}")
        return value

    @field_validator("db_max_overflow")
    @classmethod
    def _overflow(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"must be 0 or more (connections opened beyond the pool in bursts), not {value}")
        return value

    @field_validator("db_pool_timeout_seconds")
    @classmethod
    def _pool_timeout(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"must be more than 0 (seconds to wait for a free connection), not {value:g}")
        return value

    @property
    def db_connections(self) -> int:
        """The most PostgreSQL connections one process opens: both pools, full, plus the overflow."""
        return self.db_pool_size + self.db_max_overflow + self.db_inbound_pool_size

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def slack_oauth(self) -> bool:
        """True when Slack runs in OAuth mode (install to many workspaces): client id and secret are both set."""
        return bool(self.slack_client_id) and self.slack_client_secret is not None

    @property
    def slack_enabled(self) -> bool:
        """True when Slack can run: a bot token or the OAuth pair, and a signing secret or a Socket Mode token."""
        tokens = self.slack_bot_token is not None or self.slack_oauth
        inbound = self.slack_signing_secret is not None or self.slack_app_token is not None
        return tokens and inbound

    @property
    def allowed_slack_teams(self) -> frozenset[str]:
        return frozenset(t.strip() for t in (self.slack_allowed_team_ids or "").split(",") if t.strip())

    @property
    def link_check_allowed_hosts(self) -> tuple[str, ...]:
        """RALLYBRIDGE_LINK_CHECK_ALLOW's entries (hosts or host:port), trimmed, empty ones dropped."""
        return tuple(h.strip() for h in (self.link_check_allow or "").split(",") if h.strip())

    @property
    def microsoft_app_type_given(self) -> bool:
        """False when MICROSOFT_APP_TYPE is not set and the default (SingleTenant) applies."""
        return "microsoft_app_type" in self.model_fields_set

    @property
    def teams_enabled(self) -> bool:
        """True when the Teams route should open: an app id, any other MICROSOFT_* setting, or the sandbox flag."""
        given = (self.microsoft_app_id, self.microsoft_app_password, self.microsoft_app_tenant_id)
        return self.teams_sandbox or any(v is not None for v in given)


# What `serve` cannot run without, by environment variable name. Besides these, at least one chat platform:
# Slack, Teams or both, each complete once any of its settings is given (bot/config_check.py).
REQUIRED_FOR_SERVE: tuple[str, ...] = (
    "RESPONDENT_API_KEY",
    "RESPONDENT_API_SECRET",
    "RESPONDENT_WEBHOOK_KEY",
    "RALLY_API_TOKEN",
    "RALLY_WEBHOOK_SECRET",
)
