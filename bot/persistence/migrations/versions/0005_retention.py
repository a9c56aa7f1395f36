"""retention: when a round entered its phase, and timers that belong to no round

Revision ID: 0005
Revises: 0004
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

import bot.persistence.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added columns only, never a rebuilt `rounds`: on SQLite a batch rebuild drops the old table,
    # and with foreign keys on that DROP cascades into every table that points at rounds.
    op.add_column("rounds", sa.Column("phase_since", bot.persistence.tables.UTCDateTime(), nullable=True))
    op.add_column(
        "rounds", sa.Column("roster_purged", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    # Rounds from before: retention counts from the upgrade (never earlier than it should).
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    op.get_bind().execute(sa.text("UPDATE rounds SET phase_since = :now"), {"now": now})
    # Nothing points at timers, so rebuilding it (SQLite) loses nothing.
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.alter_column("round_id", existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    op.get_bind().execute(sa.text("DELETE FROM timers WHERE round_id IS NULL"))
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.alter_column("round_id", existing_type=sa.String(length=32), nullable=False)
    op.drop_column("rounds", "roster_purged")
    op.drop_column("rounds", "phase_since")
