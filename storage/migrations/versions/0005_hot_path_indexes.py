"""0005: the queues' unfinished rows, indexed on their own.

The claim takes due rows in id order, the head of each lane only. With millions of finished rows and a few
pending ones, PostgreSQL planned it two bad ways, both measured at 100,000 participants (3,000,000 queue rows,
``bench/scale.py``): with statistics taken while nothing was pending, an anti-join that compares every due row with
every unfinished row (4,000 due rows: 1.4 s per claim); with statistics taken during a backlog, a walk of the
primary key through 2,000,000 finished rows to find the first pending ones (1 s per claim, however few are due).
A partial index of unfinished rows in id order gives the claim its order over those rows only: 15 ms with 4,000 due,
1.5 ms idle, whatever the statistics say. It holds only pending and working rows, so it stays small.

SQLite plans the claim with ``ix_<queue>_lane`` already, and cannot use a partial index whose condition is bound as
a parameter; the index is created there too, so both databases have one schema (it costs one small entry per
unfinished row).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UNFINISHED = "status IN ('pending', 'working')"


def upgrade() -> None:
    for queue in ("inbox", "outbox"):
        op.create_index(
            f"ix_{queue}_unfinished",
            queue,
            ["id"],
            postgresql_where=sa.text(UNFINISHED),
            sqlite_where=sa.text(UNFINISHED),
        )


def downgrade() -> None:
    for queue in ("inbox", "outbox"):
        op.drop_index(f"ix_{queue}_unfinished", table_name=queue)
