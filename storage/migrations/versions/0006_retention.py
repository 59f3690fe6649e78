"""0006: the queues' finished rows, indexed by when they finished (retention, ``storage/retention.py``).

Retention deletes done and failed rows whose ``finished_at`` is older than ``RALLYBRIDGE_RETENTION_DAYS``, a batch
at a time, every minute. Without an index on ``finished_at`` each batch had to walk the table (or every done row
through ``ix_<queue>_due``) to find them, and once everything old was gone, each tick read every row of the
retention period (about 3,000,000 at 100,000 participants) to find nothing. A partial index of finished rows by
``finished_at`` finds exactly the old ones, and a tick with nothing to delete reads one index entry. Unfinished rows
(``finished_at`` NULL) are not in it, so queueing a row does not write it; finishing one adds one entry.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FINISHED = "finished_at IS NOT NULL"


def upgrade() -> None:
    for queue in ("inbox", "outbox"):
        op.create_index(
            f"ix_{queue}_finished",
            queue,
            ["finished_at"],
            postgresql_where=sa.text(FINISHED),
            sqlite_where=sa.text(FINISHED),
        )


def downgrade() -> None:
    for queue in ("inbox", "outbox"):
        op.drop_index(f"ix_{queue}_finished", table_name=queue)
