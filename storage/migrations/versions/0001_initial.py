"""0001: study links, participant threads, message mappings, inbox and outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _queue_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("lane", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("needs_verify", sa.Boolean, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("key", name=f"uq_{name}_key"),
    )
    op.create_index(f"ix_{name}_due", name, ["status", "next_attempt_at"])
    op.create_index(f"ix_{name}_lane", name, ["lane", "status", "id"])


def upgrade() -> None:
    op.create_table(
        "study_links",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.String(128), nullable=False),
        sa.Column("study_name", sa.String(500), nullable=False),
        sa.Column("respondent_project_id", sa.String(128), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("linked_by", sa.String(128), nullable=False),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("study_id", name="uq_study_links_study_id"),
    )
    op.create_index("ix_study_links_respondent_project_id", "study_links", ["respondent_project_id"])
    op.create_index("ix_study_links_channel", "study_links", ["channel"])

    op.create_table(
        "participant_threads",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.String(128), nullable=False),
        sa.Column("participant_id", sa.String(128), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("respondent_project_id", sa.String(128), nullable=False),
        sa.Column("respondent_user_id", sa.String(128), nullable=False),
        sa.Column("conversation_uid", sa.String(128), nullable=True),
        sa.Column("scheduling_url", sa.Text, nullable=True),
        sa.Column("session_starts_at", UTCDateTime(), nullable=True),
        sa.Column("opted_out", sa.Boolean, nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("thread_ts", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("study_id", "participant_id", name="uq_thread_participant"),
        sa.UniqueConstraint("platform", "channel", "thread_ts", name="uq_thread_platform_ts"),
    )
    op.create_index("ix_thread_respondent", "participant_threads", ["respondent_project_id", "respondent_user_id"])
    op.create_index("ix_participant_threads_email", "participant_threads", ["email"])
    op.create_index("ix_participant_threads_conversation_uid", "participant_threads", ["conversation_uid"])

    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("thread_id", sa.Integer, sa.ForeignKey("participant_threads.id"), nullable=False),
        sa.Column("direction", sa.String(20), nullable=False),
        sa.Column("respondent_uid", sa.String(128), nullable=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("platform_ts", sa.String(64), nullable=True),
        sa.Column("author_user_id", sa.String(128), nullable=True),
        sa.Column("author_name", sa.String(200), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.Text, nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("respondent_uid", name="uq_message_respondent_uid"),
        sa.UniqueConstraint("platform", "channel", "platform_ts", name="uq_message_platform_ts"),
    )
    op.create_index("ix_chat_messages_thread_id", "chat_messages", ["thread_id"])

    _queue_table("inbox")
    _queue_table("outbox")


def downgrade() -> None:
    for table in ("outbox", "inbox", "chat_messages", "participant_threads", "study_links"):
        op.drop_table(table)
