"""retention: when a round entered its phase, and timers that belong to no round

Revision ID: 0005
Revises: 0001
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

import bot.persistence.tables

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rounds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phase_since", bot.persistence.tables.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("roster_purged", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Rounds from before: retention counts from the upgrade (never earlier than it should).
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    op.get_bind().execute(sa.text("UPDATE rounds SET phase_since = :now"), {"now": now})
    with op.batch_alter_table("rounds", schema=None) as batch_op:
        batch_op.alter_column("phase_since", existing_type=bot.persistence.tables.UTCDateTime(), nullable=False)
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.alter_column("round_id", existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    op.get_bind().execute(sa.text("DELETE FROM timers WHERE round_id IS NULL"))
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.alter_column("round_id", existing_type=sa.String(length=32), nullable=False)
    with op.batch_alter_table("rounds", schema=None) as batch_op:
        batch_op.drop_column("roster_purged")
        batch_op.drop_column("phase_since")
