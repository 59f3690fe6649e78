"""0003: scheduled sends (reminders, follow-ups, scheduling links).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("thread_id", sa.Integer, sa.ForeignKey("participant_threads.id"), nullable=False),
        sa.Column("study_id", sa.String(128), nullable=False),
        sa.Column("participant_id", sa.String(128), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("spec", sa.String(200), nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("created_by_user_id", sa.String(128), nullable=False),
        sa.Column("created_by_name", sa.String(200), nullable=False),
        sa.Column("created_by_email", sa.String(320), nullable=True),
        sa.Column("created_by_rally_user_id", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.UniqueConstraint("source_key", name="uq_reminders_source_key"),
    )
    op.create_index("ix_reminders_due", "reminders", ["status", "due_at"])
    op.create_index("ix_reminders_thread", "reminders", ["thread_id", "status"])
    op.create_index("ix_reminders_channel", "reminders", ["channel"])


def downgrade() -> None:
    op.drop_table("reminders")
