"""0007: the thread as a live case: owner, waiting time, last message each way, seen, nudges, root card versions;
per-study nudge thresholds.

``waiting_since`` is set when a participant writes and nobody has answered, cleared when the team answers; the nudge
job reads only threads that wait, through a partial index of them (normally a handful), so its tick costs one index
probe however many threads there are. ``card_version`` counts changes of what the root card shows and
``card_shown`` is the version last drawn: several pending redraws of one root collapse into one API call.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

WAITING = "waiting_since IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("participant_threads") as batch:
        batch.add_column(sa.Column("owner_user_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("owner_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("owner_tz", sa.String(64), nullable=True))
        batch.add_column(sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_in_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_out_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("seen_message_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("nudged", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("card_version", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("card_shown", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.create_index(
        "ix_thread_waiting",
        "participant_threads",
        ["waiting_since"],
        postgresql_where=sa.text(WAITING),
        sqlite_where=sa.text(WAITING),
    )
    with op.batch_alter_table("study_links") as batch:
        batch.add_column(sa.Column("nudge_wait_minutes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("nudge_soon_minutes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("study_links") as batch:
        batch.drop_column("nudge_soon_minutes")
        batch.drop_column("nudge_wait_minutes")
    op.drop_index("ix_thread_waiting", table_name="participant_threads")
    with op.batch_alter_table("participant_threads") as batch:
        for column in (
            "card_shown",
            "card_version",
            "nudged",
            "seen_message_id",
            "last_out_at",
            "last_in_at",
            "waiting_since",
            "owner_tz",
            "owner_name",
            "owner_user_id",
        ):
            batch.drop_column(column)
