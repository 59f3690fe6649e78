"""Tables of Rally Bridge. Every mapping is unique in both directions; every queue row has a natural key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        from datetime import UTC

        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        from datetime import UTC

        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


class StudyLink(Base):
    """A Rally study bridged to one chat channel. One channel may hold several studies."""

    __tablename__ = "study_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(128), unique=True)
    study_name: Mapped[str] = mapped_column(String(500))
    respondent_project_id: Mapped[str] = mapped_column(String(128), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(128), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    linked_by: Mapped[str] = mapped_column(String(128))
    linked_at: Mapped[datetime]
    nudge_wait_minutes: Mapped[int | None] = mapped_column(Integer)
    nudge_soon_minutes: Mapped[int | None] = mapped_column(Integer)


class ParticipantThread(Base):
    """One approved participant of a linked study and the one thread that carries their conversation."""

    __tablename__ = "participant_threads"
    __table_args__ = (
        UniqueConstraint("study_id", "participant_id", name="uq_thread_participant"),
        UniqueConstraint("platform", "channel", "thread_ts", name="uq_thread_platform_ts"),
        Index("ix_thread_respondent", "respondent_project_id", "respondent_user_id"),
        Index(
            "ix_thread_waiting",
            "waiting_since",
            postgresql_where=text("waiting_since IS NOT NULL"),
            sqlite_where=text("waiting_since IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(128))
    participant_id: Mapped[str] = mapped_column(String(128))
    person_id: Mapped[str | None] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    respondent_project_id: Mapped[str] = mapped_column(String(128))
    respondent_user_id: Mapped[str] = mapped_column(String(128))
    conversation_uid: Mapped[str | None] = mapped_column(String(128), index=True)
    scheduling_url: Mapped[str | None] = mapped_column(Text)
    session_starts_at: Mapped[datetime | None]
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(128))
    thread_ts: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # The live case (migration 0007): owner, waiting, last message each way, seen, nudges, root card versions.
    owner_user_id: Mapped[str | None] = mapped_column(String(128))
    owner_name: Mapped[str | None] = mapped_column(String(200))
    owner_tz: Mapped[str | None] = mapped_column(String(64))
    waiting_since: Mapped[datetime | None]
    last_in_at: Mapped[datetime | None]
    last_out_at: Mapped[datetime | None]
    seen_message_id: Mapped[int | None] = mapped_column(Integer)
    nudged: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    card_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    card_shown: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class ChatMessage(Base):
    """One message of a participant conversation, in either direction, with its ids on every side."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("respondent_uid", name="uq_message_respondent_uid"),
        UniqueConstraint("platform", "channel", "platform_ts", name="uq_message_platform_ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("participant_threads.id"), index=True)
    direction: Mapped[str] = mapped_column(String(20))
    respondent_uid: Mapped[str | None] = mapped_column(String(128))
    platform: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(128))
    platform_ts: Mapped[str | None] = mapped_column(String(64))
    author_user_id: Mapped[str | None] = mapped_column(String(128))
    author_name: Mapped[str | None] = mapped_column(String(200))
    # pending | delivered | failed (researcher messages); mirrored (participant messages)
    state: Mapped[str] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime]
    created_at: Mapped[datetime]


class QueueColumns:
    """Columns shared by the inbox and the outbox: a keyed row, ordered within its ``lane``, leased."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    # Rows of one lane are handled strictly in id order (one participant's thread, one conversation).
    lane: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    # pending | working | done | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    # Set when an attempt may have taken effect: the next attempt checks at the target first.
    needs_verify: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


# Unfinished rows in id order, on their own (migration 0005): the claim's order, whatever PostgreSQL's statistics say.
_UNFINISHED = text("status IN ('pending', 'working')")
# Finished rows by when they finished (migration 0006): what retention deletes (storage/retention.py) is found
# without reading the rows kept. Unfinished rows (finished_at NULL) are not in it, so enqueueing never writes it.
_FINISHED = text("finished_at IS NOT NULL")


class InboxEvent(QueueColumns, Base):
    """Everything that came in, stored before it was acknowledged."""

    __tablename__ = "inbox"
    __table_args__ = (
        Index("ix_inbox_due", "status", "next_attempt_at"),
        Index("ix_inbox_lane", "lane", "status", "id"),
        Index("ix_inbox_unfinished", "id", postgresql_where=_UNFINISHED, sqlite_where=_UNFINISHED),
        Index("ix_inbox_finished", "finished_at", postgresql_where=_FINISHED, sqlite_where=_FINISHED),
    )


class OutboxItem(QueueColumns, Base):
    """Every effect outside the database: a post, a relay, an archive call, a reaction."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_lane", "lane", "status", "id"),
        Index("ix_outbox_unfinished", "id", postgresql_where=_UNFINISHED, sqlite_where=_UNFINISHED),
        Index("ix_outbox_finished", "finished_at", postgresql_where=_FINISHED, sqlite_where=_FINISHED),
    )


# --- Slack OAuth distribution (migration 0004) -----------------------------------------------------------------
# The layouts of slack_sdk's SQLAlchemy installation and OAuth state stores (naive UTC DateTime columns, as
# slack_sdk writes them), so ``AsyncSQLAlchemyInstallationStore``/``AsyncSQLAlchemyOAuthStateStore`` run on the
# bridge's engine. Declared here too so the schema has one description next to the migrations.


class SlackInstallation(Base):
    """One OAuth installation of the Slack app (a workspace's bot token and what is needed to revoke it)."""

    __tablename__ = "slack_installations"
    __table_args__ = (
        Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(32))
    app_id: Mapped[str] = mapped_column(String(32))
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    enterprise_url: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(String(32))
    team_name: Mapped[str | None] = mapped_column(String(200))
    bot_token: Mapped[str | None] = mapped_column(String(200))
    bot_id: Mapped[str | None] = mapped_column(String(32))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_scopes: Mapped[str | None] = mapped_column(String(1000))
    bot_refresh_token: Mapped[str | None] = mapped_column(String(200))
    bot_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime())
    user_id: Mapped[str] = mapped_column(String(32))
    user_token: Mapped[str | None] = mapped_column(String(200))
    user_scopes: Mapped[str | None] = mapped_column(String(1000))
    user_refresh_token: Mapped[str | None] = mapped_column(String(200))
    user_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime())
    incoming_webhook_url: Mapped[str | None] = mapped_column(String(200))
    incoming_webhook_channel: Mapped[str | None] = mapped_column(String(200))
    incoming_webhook_channel_id: Mapped[str | None] = mapped_column(String(200))
    incoming_webhook_configuration_url: Mapped[str | None] = mapped_column(String(200))
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, default=False)
    token_type: Mapped[str | None] = mapped_column(String(32))
    installed_at: Mapped[datetime] = mapped_column(DateTime(), server_default=func.now())


class SlackBot(Base):
    """The bot part of an installation (slack_sdk keeps it apart so user re-installs keep the bot token)."""

    __tablename__ = "slack_bots"
    __table_args__ = (Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(32))
    app_id: Mapped[str] = mapped_column(String(32))
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(String(32))
    team_name: Mapped[str | None] = mapped_column(String(200))
    bot_token: Mapped[str | None] = mapped_column(String(200))
    bot_id: Mapped[str | None] = mapped_column(String(32))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_scopes: Mapped[str | None] = mapped_column(String(1000))
    bot_refresh_token: Mapped[str | None] = mapped_column(String(200))
    bot_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime())
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, default=False)
    installed_at: Mapped[datetime] = mapped_column(DateTime(), server_default=func.now())


class SlackOAuthState(Base):
    """A single-use OAuth ``state`` issued by ``/slack/install``, consumed by ``/slack/oauth_redirect``."""

    __tablename__ = "slack_oauth_states"
    __table_args__ = (Index("ix_slack_oauth_states_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(String(200))
    expire_at: Mapped[datetime] = mapped_column(DateTime())


class SlackUninstall(Base):
    """A workspace that uninstalled the app or revoked its token: why its links stopped moving, and since when."""

    __tablename__ = "slack_uninstalls"
    __table_args__ = (UniqueConstraint("team_id", name="uq_slack_uninstalls_team"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]


class SlackDirectoryEntry(Base):
    """Which Slack workspace (team) a channel or user id was seen in: whose bot token may call Slack about it."""

    __tablename__ = "slack_directory"
    __table_args__ = (UniqueConstraint("slack_id", name="uq_slack_directory_slack_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slack_id: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[str] = mapped_column(String(32))
    seen_at: Mapped[datetime]


class SavedReplyRow(Base):
    """A saved reply of a workspace (``study_id`` empty) or of one study; its name is unique where it is offered."""

    __tablename__ = "saved_replies"
    __table_args__ = (UniqueConstraint("platform", "workspace", "study_id", "name", name="uq_saved_reply_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    study_id: Mapped[str] = mapped_column(String(128), default="")
    name: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_by_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class StudyUpdateRow(Base):
    """A study-wide update: previewed (draft), then confirmed once (sending: one relay per recipient) or cancelled."""

    __tablename__ = "study_updates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    platform: Mapped[str] = mapped_column(String(16))
    workspace: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(128))
    study_id: Mapped[str] = mapped_column(String(128), index=True)
    audience: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    author: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class HeldMessageRow(Base):
    """A message to a participant held back because a link in it looked broken, until its author decides."""

    __tablename__ = "held_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("participant_threads.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[dict[str, Any]]
    problems: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
