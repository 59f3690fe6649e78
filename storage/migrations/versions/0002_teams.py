"""0002: Microsoft Teams context: conversation references, users, the bridge's record of its own posts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams_conversations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scope_key", sa.String(300), nullable=False),
        sa.Column("conversation_id", sa.String(300), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("team_id", sa.String(300), nullable=True),
        sa.Column("service_url", sa.Text, nullable=False),
        sa.Column("reference", sa.JSON, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("scope_key", name="uq_teams_conversations_scope_key"),
    )
    op.create_table(
        "teams_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("aad_object_id", sa.String(64), nullable=True),
        sa.Column("conversation_id", sa.String(300), nullable=False),
        sa.Column("service_url", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("user_id", name="uq_teams_users_user_id"),
    )
    op.create_table(
        "teams_posts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("conversation_id", sa.String(300), nullable=False),
        sa.Column("activity_id", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("key", name="uq_teams_posts_key"),
    )


def downgrade() -> None:
    for table in ("teams_posts", "teams_users", "teams_conversations"):
        op.drop_table(table)
