"""the voting deck: find one voter's ballots in a round by their pseudonym

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each deck click reads the voter's ballots (round, pseudonym); no new column, no timestamp.
    op.create_index("ix_ballots_round_voter", "ballots", ["round_id", "voter_key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ballots_round_voter", table_name="ballots")
