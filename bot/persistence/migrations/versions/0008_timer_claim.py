"""timer claim: the pending timers indexed by due time alone (a partial index), in place of the
(status, due_at) index of 0004. Marking a timer done removes its index entry and inserts none, and
the done timers, which only grow, are in no index the scheduler reads.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.drop_index("ix_timers_status_due_at")
        batch_op.create_index(
            "ix_timers_pending_due_at", ["due_at"], sqlite_where=PENDING, postgresql_where=PENDING
        )


def downgrade() -> None:
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.drop_index("ix_timers_pending_due_at")
        batch_op.create_index("ix_timers_status_due_at", ["status", "due_at"], unique=False)
